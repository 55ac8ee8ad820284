"""Learn2Reg OASIS brain MR: ``<root>/OASIS_OAS1_NNNN_MR1/aligned_norm.nii.gz`` + ``aligned_seg35.nii.gz``
(160 x 192 x 224, labels 1-35), or the Learn2Reg dataset JSON (``imagesTr``/``labelsTr`` and a list of
validation pairs)."""

from __future__ import annotations

import os
import re

from .files import DataError, check_image_file, read_json_list
from .splits import PARTS, split_by_fraction

__all__ = [
    "oasis_subjects",
    "oasis_split",
    "consecutive_pairs",
    "all_pairs",
    "atlas_pairs",
    "oasis_pairs",
    "oasis_atlas_pairs",
    "learn2reg_pairs",
]

_SUBJECT = re.compile(r"^OASIS_OAS1_\d{4}_MR1$")


def oasis_subjects(
    root: str, image: str = "aligned_norm.nii.gz", label: str | None = "aligned_seg35.nii.gz"
) -> list[dict]:
    """Sorted subjects ``{"subject", "image", "label"}`` of a Learn2Reg OASIS folder (headers checked)."""
    if not os.path.isdir(root):
        raise DataError(f"{root}: OASIS folder not found")
    names = sorted(n for n in os.listdir(root) if _SUBJECT.match(n))
    if not names:
        raise DataError(f"{root}: no OASIS_OAS1_NNNN_MR1 subject folder")
    subjects = []
    for name in names:
        item = {"subject": name, "image": os.path.join(root, name, image)}
        shape = check_image_file(item["image"], ndim=3)
        if label is not None:
            item["label"] = os.path.join(root, name, label)
            if check_image_file(item["label"], ndim=3) != shape:
                raise DataError(
                    f"{item['label']}: shape {check_image_file(item['label'])} differs from its image "
                    f"{item['image']} {shape}"
                )
        subjects.append(item)
    return subjects


def oasis_split(
    root: str, part: str = "training", validation: float = 0.1, testing: float = 0.1, **kwargs
) -> list[dict]:
    """One part of a deterministic split of :func:`oasis_subjects` (last subjects for validation/testing)."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    return split_by_fraction(oasis_subjects(root, **kwargs), validation, testing)[part]


def _pair(fixed: dict, moving: dict) -> dict:
    pair = {
        "fixed": fixed["image"],
        "moving": moving["image"],
        "fixed_subject": fixed.get("subject", ""),
        "moving_subject": moving.get("subject", ""),
    }
    if "label" in fixed and "label" in moving:
        pair["fixed_label"], pair["moving_label"] = fixed["label"], moving["label"]
    return pair


def consecutive_pairs(subjects: list[dict]) -> list[dict]:
    """Fixed pairs (subject i fixed, subject i + 1 moving), like the Learn2Reg validation list."""
    if len(subjects) < 2:
        raise DataError(f"inter-subject pairs need at least 2 subjects, got {len(subjects)}")
    return [_pair(subjects[i], subjects[i + 1]) for i in range(len(subjects) - 1)]


def all_pairs(subjects: list[dict]) -> list[dict]:
    """Every ordered pair of different subjects (n (n - 1) pairs): held-out evaluation on few subjects."""
    if len(subjects) < 2:
        raise DataError(f"inter-subject pairs need at least 2 subjects, got {len(subjects)}")
    return [_pair(f, m) for f in subjects for m in subjects if f is not m]


def atlas_pairs(subjects: list[dict], atlas: dict, atlas_role: str = "moving") -> list[dict]:
    """Atlas-to-subject pairs: the atlas ``{"image", "label"}`` is moving (default) or fixed for every subject."""
    if atlas_role not in ("moving", "fixed"):
        raise ValueError(f"atlas_role must be 'moving' or 'fixed', got {atlas_role!r}")
    return [_pair(s, atlas) if atlas_role == "moving" else _pair(atlas, s) for s in subjects]


def oasis_pairs(root: str, part: str = "testing", validation: float = 0.15, testing: float = 0.25) -> list[dict]:
    """Every ordered pair of different subjects (:func:`all_pairs`) of one part of :func:`oasis_split`."""
    return all_pairs(oasis_split(root, part, validation, testing))


def oasis_atlas_pairs(
    root: str, part: str = "training", validation: float = 0.15, testing: float = 0.25, max_pairs: int | None = None
) -> list[dict]:
    """Atlas-based pairs of one part of :func:`oasis_split`: the first training subject is the atlas (moving) for
    every subject of ``part`` (the training part without the atlas itself); the first ``max_pairs`` of them."""
    atlas = oasis_split(root, "training", validation, testing)[0]
    subjects = [s for s in oasis_split(root, part, validation, testing) if s != atlas]
    return atlas_pairs(subjects, atlas)[:max_pairs]


def learn2reg_pairs(json_path: str, key: str = "registration_val") -> list[dict]:
    """Pairs listed under ``key`` of a Learn2Reg dataset JSON, with labels from ``labelsTr`` when present."""
    entries = read_json_list(json_path, key, "Learn2Reg dataset JSON")
    base = os.path.dirname(os.path.abspath(json_path))
    pairs = []
    for n, entry in enumerate(entries):
        if "fixed" not in entry or "moving" not in entry:
            raise DataError(f"{json_path}: {key}[{n}] needs 'fixed' and 'moving'")
        pair = {}
        for role in ("fixed", "moving"):
            image = os.path.normpath(os.path.join(base, entry[role]))
            check_image_file(image, ndim=3)
            pair[role] = image
            label = image.replace(f"{os.sep}imagesTr{os.sep}", f"{os.sep}labelsTr{os.sep}")
            if label != image and os.path.exists(label):
                pair[f"{role}_label"] = label
        if "fixed_label" not in pair or "moving_label" not in pair:
            pair.pop("fixed_label", None)
            pair.pop("moving_label", None)
        pairs.append(pair)
    return pairs
