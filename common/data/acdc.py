"""ACDC (cardiac cine MR) as distributed: ``<root>/{training,testing}/patientNNN/``.

Each subject folder holds ``Info.cfg`` (ED and ES frame numbers, group, height, weight, NbFrame),
``patientNNN_frameXX.nii.gz`` with ``patientNNN_frameXX_gt.nii.gz`` labels (1 RV, 2 myocardium, 3 LV) for the
ED and ES frames, and the cine sequence ``patientNNN_4d.nii.gz``. The phantoms of :mod:`.phantoms` add
``patientNNN_4d_gt.nii.gz``, labels of every frame (the truth for intermediate-frame metrics).
"""

from __future__ import annotations

import os
import re

from .files import DataError, check_image_file
from .splits import PARTS, split_by_fraction

__all__ = ["parse_info_cfg", "acdc_subject_dirs", "acdc_subjects", "acdc_pairs", "acdc_sequences", "ACDC_SCHEMES"]

_SUBJECT = re.compile(r"^patient\d{3}$")
ACDC_SCHEMES = ("acdc", "90/10", "fsdiffreg")


def parse_info_cfg(path: str) -> dict:
    """``Info.cfg`` -> ``{"ED": int, "ES": int, "Group": str, "Height": float, "Weight": float, "NbFrame": int}``.

    ED and ES are required (1-based frame numbers); the other fields are kept when present.
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: Info.cfg not found")
    info: dict = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            if ":" not in line:
                raise DataError(f"{path}:{number}: expected 'Key: value', got {line.strip()!r}")
            key, value = (part.strip() for part in line.split(":", 1))
            info[key] = value
    for key in ("ED", "ES"):
        if key not in info:
            raise DataError(f"{path}: no '{key}' entry (the {key} frame number)")
    out: dict = {"Group": info.get("Group", "")}
    for key, cast in (("ED", int), ("ES", int), ("NbFrame", int), ("Height", float), ("Weight", float)):
        if key in info:
            try:
                out[key] = cast(float(info[key])) if cast is int else cast(info[key])
            except ValueError:
                raise DataError(f"{path}: '{key}' must be a number, got {info[key]!r}") from None
    for key in ("ED", "ES"):
        if out[key] < 1 or ("NbFrame" in out and out[key] > out["NbFrame"]):
            raise DataError(f"{path}: {key} frame {out[key]} is outside 1..{out.get('NbFrame', '?')}")
    return out


def acdc_subject_dirs(root: str, folder: str = "training") -> list[str]:
    """Sorted ``patientNNN`` folders of ``<root>/<folder>``."""
    base = os.path.join(root, folder)
    if not os.path.isdir(base):
        raise DataError(f"{base}: ACDC folder not found (expected <root>/training and <root>/testing)")
    dirs = sorted(os.path.join(base, n) for n in os.listdir(base) if _SUBJECT.match(n))
    if not dirs:
        raise DataError(f"{base}: no patientNNN subject folder")
    return dirs


def _frame_file(subject_dir: str, frame: int, label: bool) -> str:
    name = os.path.basename(subject_dir)
    return os.path.join(subject_dir, f"{name}_frame{frame:02d}{'_gt' if label else ''}.nii.gz")


def acdc_subjects(root: str, part: str = "training", scheme: str = "90/10") -> list[str]:
    """Subject folders of one part of a split scheme.

    ``"acdc"``: the distribution's own folders (training: 100 subjects, testing: 50; no validation).
    ``"90/10"``: the training folder, first 90% training, last 10% testing (DiffuseMorph, DDM); validation is
    the testing part, as those papers report on it.
    ``"fsdiffreg"``: the training folder, last 11% (patients 090-100 of 100) validation, the rest training;
    testing is the testing folder.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    if scheme == "acdc":
        if part == "validation":
            return []
        return acdc_subject_dirs(root, part)
    if scheme == "90/10":
        split = split_by_fraction(acdc_subject_dirs(root, "training"), validation=0.0, testing=0.1)
        return split["testing"] if part == "validation" else split[part]
    if scheme == "fsdiffreg":
        if part == "testing":
            return acdc_subject_dirs(root, "testing")
        return split_by_fraction(acdc_subject_dirs(root, "training"), validation=0.11, testing=0.0)[part]
    raise ValueError(f"scheme must be one of {ACDC_SCHEMES}, got {scheme!r}")


def acdc_pairs(
    root: str, part: str = "training", scheme: str = "90/10", moving: str = "ED", labels: bool = True
) -> list[dict]:
    """ED/ES pairs of one subject each: ``{"moving", "fixed", "moving_label", "fixed_label", "subject", ...}``.

    ``moving="ED"``: moving = end-diastole, fixed = end-systole (DiffuseMorph, DDM); ``"ES"`` the reverse
    (DiffuseReg). Files are checked to exist (and be 3D NIfTI headers) now, so a bad folder fails before training.
    """
    if moving not in ("ED", "ES"):
        raise ValueError(f"moving must be 'ED' or 'ES', got {moving!r}")
    fixed = "ES" if moving == "ED" else "ED"
    pairs = []
    for subject_dir in acdc_subjects(root, part, scheme):
        info = parse_info_cfg(os.path.join(subject_dir, "Info.cfg"))
        item = {
            "subject": os.path.basename(subject_dir),
            "group": info["Group"],
            "moving_frame": info[moving],
            "fixed_frame": info[fixed],
        }
        roles = {"moving": info[moving], "fixed": info[fixed]}
        for role, frame in roles.items():
            keys = [(role, False)] + ([(f"{role}_label", True)] if labels else [])
            for key, is_label in keys:
                path = _frame_file(subject_dir, frame, is_label)
                if not os.path.exists(path):
                    what = "label" if is_label else "image"
                    raise DataError(
                        f"{path}: missing {moving if role == 'moving' else fixed} {what} file "
                        f"(frame {frame} of {item['subject']})"
                    )
                check_image_file(path, ndim=3)
                item[key] = path
        pairs.append(item)
    return pairs


def acdc_sequences(root: str, part: str = "training", scheme: str = "90/10") -> list[dict]:
    """Cine sequences: ``{"subject", "sequence", "ed", "es", "nb_frames"}`` plus ``"sequence_label"`` when the
    per-frame labels exist (phantoms), and the ED/ES pair keys of :func:`acdc_pairs` (moving = ED)."""
    out = []
    pairs = {p["subject"]: p for p in acdc_pairs(root, part, scheme, moving="ED")}
    for subject_dir in acdc_subjects(root, part, scheme):
        name = os.path.basename(subject_dir)
        info = parse_info_cfg(os.path.join(subject_dir, "Info.cfg"))
        sequence = os.path.join(subject_dir, f"{name}_4d.nii.gz")
        shape = check_image_file(sequence, ndim=4)
        item = dict(pairs[name], sequence=sequence, ed=info["ED"], es=info["ES"], nb_frames=shape[3])
        label = os.path.join(subject_dir, f"{name}_4d_gt.nii.gz")
        if os.path.exists(label):
            if check_image_file(label, ndim=4) != shape:
                raise DataError(f"{label}: shape {check_image_file(label)} differs from its sequence {shape}")
            item["sequence_label"] = label
        out.append(item)
    return out
