"""Deterministic phantoms written in the real data sets' layouts: the embedded default data.

* ``write_acdc_phantoms``: 4D cardiac cine MR in the ACDC layout. Per subject: LV blood pool, myocardial
  ring and RV crescent inside a body with liver, lungs, fat and textured tissue; random size, position,
  in-plane rotation, wall thickness, ejection fraction and twist; a smooth non-rigid contraction from ED
  to ES and back over 12-30 frames, rendered with through-plane partial volume (3 sub-slices per 10 mm
  slice), in-plane blur, bias field and Rician noise, at ACDC-like spacing (1.3-1.6 mm in-plane, 10 mm
  slices), so that the papers' resampling is exercised. Labels of every frame are written too
  (``patientNNN_4d_gt.nii.gz``): the truth for intermediate frames.
* ``write_oasis_phantoms``: brain-like volumes in the Learn2Reg OASIS layout, 18 labels (folded cortex,
  white matter, ventricles, deep nuclei, hippocampi, brainstem, cerebellum; left and right), each subject a
  random affine and smooth non-linear deformation of one template, with bias field and noise. With
  ``t2=True`` a second rendering of the same anatomy through a non-monotone intensity map (T2-like) is
  written beside it, with a datalist JSON of multi-modal pairs (fixed T1w, moving T2w of another subject).

Everything is drawn from ``numpy.random.default_rng(seed)`` per subject, so a seed gives identical files.
"""

from __future__ import annotations

import json
import math
import os
import shutil

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock

from ..atomic import atomic_folder
from ..bundle.values import flag, optional
from ..spatial.integrate import integrate_svf
from .splits import split_by_fraction

__all__ = [
    "BRAIN_PHANTOM_GROUPS",
    "OASIS_PHANTOM_LABELS",
    "data_root",
    "ensure_demo_data",
    "make_demo_data",
    "write_acdc_phantoms",
    "write_oasis_phantoms",
]

_GZ_LEVEL = 1  # fast compression: the phantoms are regenerated, not archived
PHANTOM_VERSION = 3  # bump when the phantoms change: demo folders of another version are regenerated


def _save(array: np.ndarray, affine: np.ndarray, path: str, dtype) -> None:
    img = nib.Nifti1Image(np.asarray(array).astype(dtype), affine)
    img.header.set_xyzt_units("mm", "sec")
    nib.openers.Opener.default_compresslevel = _GZ_LEVEL
    nib.save(img, path)


def _smooth_noise(rng: np.random.Generator, size, coarse, device="cpu") -> torch.Tensor:
    """Smooth random field in about [-1, 1]: Gaussian noise on a coarse grid, trilinear upsampling."""
    grid = torch.from_numpy(rng.standard_normal((1, 1, *coarse)).astype(np.float32))
    mode = "bilinear" if len(size) == 2 else "trilinear"
    return F.interpolate(grid, size=tuple(size), mode=mode, align_corners=True)[0, 0].to(device) / 1.5


def _blur(volume: torch.Tensor, sigma: tuple) -> torch.Tensor:
    """Separable Gaussian blur of a 3D volume (sigma in voxels per axis; 0 = none)."""
    out = volume[None, None]
    for axis, s in enumerate(sigma):
        if s <= 0:
            continue
        radius = max(1, int(math.ceil(3 * s)))
        x = torch.arange(-radius, radius + 1, dtype=torch.float32)
        k = torch.exp(-(x**2) / (2 * s * s))
        k = (k / k.sum()).view(1, 1, *[-1 if a == axis else 1 for a in range(3)])
        pad = [0, 0] * 3
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = radius
        out = F.conv3d(F.pad(out, pad, mode="replicate"), k)
    return out[0, 0]


def _rician(image: torch.Tensor, sigma: float, rng: np.random.Generator) -> torch.Tensor:
    n1 = torch.from_numpy(rng.standard_normal(image.shape).astype(np.float32)) * sigma
    n2 = torch.from_numpy(rng.standard_normal(image.shape).astype(np.float32)) * sigma
    return torch.sqrt((image + n1) ** 2 + n2**2)


# --------------------------------------------------------------------------------------------- cardiac


def _cardiac_subject(rng: np.random.Generator) -> dict:
    """Random anatomy and motion parameters of one cardiac subject (mm, radians)."""
    nb_frames = int(rng.integers(12, 31))
    return {
        "nb_frames": nb_frames,
        "es": int(round(rng.uniform(0.35, 0.45) * nb_frames)) + 1,
        "spacing": (float(rng.uniform(1.3, 1.6)),) * 2 + (10.0,),
        "size": (176, 176, int(rng.integers(9, 12))),
        "centre": rng.uniform(-12, 12, 2),
        "rotation": float(rng.uniform(-math.pi / 6, math.pi / 6)),
        "r_endo": float(rng.uniform(21, 27)),
        "ellipticity": float(rng.uniform(0.0, 0.1)),
        "wall": float(rng.uniform(7, 10.5)),
        "ef": float(rng.uniform(0.45, 0.62)),
        "ef_rv": float(rng.uniform(0.35, 0.52)),
        "hypokinesia": float(rng.uniform(0.0, 0.35)),
        "hypo_angle": float(rng.uniform(0, 2 * math.pi)),
        "lobes": rng.uniform(-0.04, 0.04, 4),
        "twist": float(rng.uniform(math.radians(8), math.radians(16))),
        "rv_radii": (float(rng.uniform(40, 48)), float(rng.uniform(22, 28))),
        "rv_angle": float(rng.uniform(math.radians(-130), math.radians(-100))),
        "heart_slices": None,
    }


def _phase(frame: int, es: int, nb_frames: int) -> float:
    """Contraction phase of a 1-based frame: 0 at ED (frame 1), 1 at ES, back towards 0 at the end."""
    if frame <= es:
        return 0.5 * (1 - math.cos(math.pi * (frame - 1) / (es - 1)))
    return 0.5 * (1 + math.cos(math.pi * (frame - es) / (nb_frames + 1 - es)))


def _render_cardiac_frame(p: dict, s: float, textures: dict, sub_slices: int = 3):
    """Labels (centre sub-slice) and intensity (mean over ``sub_slices`` per slice) of the frame at phase ``s``.

    All slices and sub-slices are computed at once: tensors are ``(nx, ny, nz * sub_slices)``.
    """
    nx, ny, nz = p["size"]
    sx, sy, _ = p["spacing"]
    x = (torch.arange(nx, dtype=torch.float32) - (nx - 1) / 2) * sx - p["centre"][0]
    y = (torch.arange(ny, dtype=torch.float32) - (ny - 1) / 2) * sy - p["centre"][1]
    xx, yy = (t[..., None] for t in torch.meshgrid(x, y, indexing="ij"))
    z = torch.arange(nz * sub_slices, dtype=torch.float32) / sub_slices + 0.5 / sub_slices - 0.5
    base, apex = 1, nz - 2  # the heart spans these slices, as in a short-axis stack
    zeta = ((z - base) / (apex - base)).view(1, 1, -1)  # 0 at the base, 1 at the apex
    in_heart = (zeta >= -0.15) & (zeta <= 1.05)
    zc = zeta.clamp(0, 1)
    taper = torch.sqrt((1 - (0.92 * zc) ** 2).clamp(min=0.05))

    c, sn = math.cos(p["rotation"]), math.sin(p["rotation"])
    u, v = c * xx + sn * yy, -sn * xx + c * yy  # heart frame (mm)
    e = p["ellipticity"]
    r = torch.sqrt((u / (1 + e)) ** 2 + (v / (1 - e)) ** 2)
    alpha = torch.atan2(v, u)
    lobes = 1 + sum(p["lobes"][k] * torch.cos((k + 2) * alpha + k) for k in range(len(p["lobes"])))
    local_ef = p["ef"] * (1 - p["hypokinesia"] * (0.5 + 0.5 * torch.cos(alpha - p["hypo_angle"])))
    r_endo_ed = p["r_endo"] * taper * lobes
    r_epi_ed = r_endo_ed + p["wall"] * (0.8 + 0.2 * taper)
    r_endo = r_endo_ed * torch.sqrt(1 - local_ef * s)
    r_epi = torch.sqrt(r_endo**2 + r_epi_ed**2 - r_endo_ed**2)  # myocardial area is conserved
    # material coordinates of the texture: area-preserving radial motion in the wall, uniform scaling in the
    # cavity, and a twist growing from base to apex that fades outside the heart
    r_mat = torch.where(r < r_endo, r * r_endo_ed / r_endo, torch.sqrt((r**2 + r_endo_ed**2 - r_endo**2).clamp(min=0)))
    a_mat = alpha - p["twist"] * s * (zc - 0.5) * torch.exp(-(((r - r_epi).clamp(min=0) / 15.0) ** 2))
    tex_heart = textures["heart"](r_mat * torch.cos(a_mat), r_mat * torch.sin(a_mat), zc)

    # RV: an ellipse beside the LV, contracting towards it; the septum is the LV wall
    rv_scale = math.sqrt(1 - p["ef_rv"] * s) * taper
    ra, rb = p["rv_radii"][0] * (0.6 + 0.4 * rv_scale), p["rv_radii"][1] * rv_scale
    d = p["r_endo"] * taper * 1.05
    ca, sa = math.cos(p["rv_angle"]), math.sin(p["rv_angle"])
    du, dv = u - d * ca, v - d * sa
    ru, rv_ = du * ca + dv * sa, -du * sa + dv * ca
    rv_in = (ru / ra) ** 2 + (rv_ / rb) ** 2 < 1
    rv_wall = ((ru / (ra + 3)) ** 2 + (rv_ / (rb + 3)) ** 2 < 1) & ~rv_in
    lv_cav = (r < r_endo) & in_heart
    myo = (r >= r_endo) & (r < r_epi) & in_heart
    rv = rv_in & (r >= r_epi + 1.0) & in_heart & (zc < 0.9)
    rvw = rv_wall & (r >= r_epi) & in_heart & (zc < 0.9)

    tissue = textures["tissue"].repeat_interleave(sub_slices, dim=2)
    body = (xx / 150.0) ** 2 + (yy / 115.0) ** 2  # scanner frame, does not move
    lung = ((xx + 10) / 70.0) ** 2 + ((yy - 25) / 95.0) ** 2
    liver = ((xx - 60) / 55.0) ** 2 + ((yy + 55) / 45.0) ** 2
    img = torch.where(body < 1, 0.42 + 0.08 * tissue, torch.zeros_like(tissue))
    img = torch.where((body < 1) & (body > 0.85), 0.85 + 0.05 * tissue, img)  # subcutaneous fat
    img = torch.where((lung < 1) & (body < 0.85), 0.07 + 0.03 * tissue, img)
    img = torch.where((liver < 1) & (body < 0.85), 0.5 + 0.05 * tissue, img)
    img = torch.where((r < r_epi + 6) & in_heart & ~myo & ~lv_cav, 0.38 + 0.05 * tex_heart, img)  # pericardium
    img = torch.where(rvw, 0.3 + 0.04 * tex_heart, img)
    img = torch.where(myo, 0.28 + 0.06 * tex_heart, img)
    img = torch.where(lv_cav, 0.9 + 0.06 * tex_heart, img)
    img = torch.where(rv, 0.82 + 0.06 * tex_heart, img)
    labels = torch.zeros(img.shape, dtype=torch.uint8)
    labels[rv.expand_as(img)] = 1
    labels[myo.expand_as(img)] = 2
    labels[lv_cav.expand_as(img)] = 3
    intensity = img.view(nx, ny, nz, sub_slices).mean(-1)
    return labels[..., sub_slices // 2 :: sub_slices], intensity


def _heart_texture(rng: np.random.Generator):
    """A smooth random texture in the heart's material coordinates (mm, and zeta along the long axis):
    a sum of six plane waves of 10-25 mm wavelength with random directions and phases, in about [-1, 1]."""
    waves = []
    for _ in range(6):
        angle, length = rng.uniform(0, 2 * math.pi), rng.uniform(10, 25)
        k = 2 * math.pi / length
        waves.append((k * math.cos(angle), k * math.sin(angle), rng.uniform(-3, 3), rng.uniform(0, 2 * math.pi)))

    def sample(u: torch.Tensor, v: torch.Tensor, zeta: torch.Tensor) -> torch.Tensor:
        return sum(torch.cos(ku * u + kv * v + kz * zeta + phase) for ku, kv, kz, phase in waves) / 2.5

    return sample


def write_acdc_phantoms(out: str, subjects: int = 10, seed: int = 0, testing: int | None = None) -> list[str]:
    """Write ``subjects`` cardiac phantoms to ``<out>/training`` and ``testing`` (default ``max(2, subjects // 3)``)
    more to ``<out>/testing``, numbered on from the training ones as in ACDC. Returns the subject folders."""
    testing = max(2, subjects // 3) if testing is None else testing
    folders = []
    groups = ("NOR", "MINF", "DCM", "HCM", "RV")
    for index in range(subjects + testing):
        rng = np.random.default_rng([seed, index])
        p = _cardiac_subject(rng)
        name = f"patient{index + 1:03d}"
        folder = os.path.join(out, "training" if index < subjects else "testing", name)
        os.makedirs(folder, exist_ok=True)
        nx, ny, nz = p["size"]
        textures = {"heart": _heart_texture(rng), "tissue": _smooth_noise(rng, (nx, ny, nz), (12, 12, 4))}
        bias = 1 + 0.12 * _smooth_noise(rng, (nx, ny, nz), (3, 3, 2))
        frames, frame_labels = [], []
        for frame in range(1, p["nb_frames"] + 1):
            labels, image = _render_cardiac_frame(p, _phase(frame, p["es"], p["nb_frames"]), textures)
            image = _blur(image, (0.6, 0.6, 0.0)) * bias
            image = _rician(image, 0.03, rng)
            frames.append((image.clamp(min=0) * 1000).round().numpy())
            frame_labels.append(labels.numpy())
        sx, sy, sz = p["spacing"]
        affine = np.diag([sx, sy, sz, 1.0])
        affine[:3, 3] = [-sx * (nx - 1) / 2, -sy * (ny - 1) / 2, -sz * (nz - 1) / 2]
        for frame in (1, p["es"]):
            _save(frames[frame - 1], affine, os.path.join(folder, f"{name}_frame{frame:02d}.nii.gz"), np.int16)
            _save(frame_labels[frame - 1], affine, os.path.join(folder, f"{name}_frame{frame:02d}_gt.nii.gz"), np.uint8)
        _save(np.stack(frames, -1), affine, os.path.join(folder, f"{name}_4d.nii.gz"), np.int16)
        _save(np.stack(frame_labels, -1), affine, os.path.join(folder, f"{name}_4d_gt.nii.gz"), np.uint8)
        height, weight = rng.uniform(150, 195), rng.uniform(50, 110)
        with open(os.path.join(folder, "Info.cfg"), "w", encoding="utf-8") as f:
            f.write(
                f"ED: 1\nES: {p['es']}\nGroup: {groups[index % len(groups)]}\nHeight: {height:.1f}\n"
                f"NbFrame: {p['nb_frames']}\nWeight: {weight:.1f}\n"
            )
        folders.append(folder)
    return folders


# ----------------------------------------------------------------------------------------------- brain

OASIS_PHANTOM_LABELS = {
    1: "cortex L",
    2: "cortex R",
    3: "white matter L",
    4: "white matter R",
    5: "lateral ventricle L",
    6: "lateral ventricle R",
    7: "thalamus L",
    8: "thalamus R",
    9: "caudate L",
    10: "caudate R",
    11: "putamen L",
    12: "putamen R",
    13: "hippocampus L",
    14: "hippocampus R",
    15: "brainstem",
    16: "cerebellum L",
    17: "cerebellum R",
    18: "third ventricle",
}
BRAIN_PHANTOM_GROUPS = {  # per-label-group Dice columns
    "cortex": (1, 2),
    "WM": (3, 4),
    "subcortical": (5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 18),
    "cerebellum": (16, 17),
}
# intensities per label (0 = background, 19 = sulcal CSF): T1-like, and a T2-like map that is not a monotone
# function of it: CSF bright and grey matter darkest, white matter between (a V-shaped map, like (x - 0.45)^2),
# so a local linear relation (LNCC) breaks wherever CSF, grey and white matter meet, while NMI still holds
_T1 = np.array(
    [
        0.0,
        0.45,
        0.45,
        0.78,
        0.78,
        0.12,
        0.12,
        0.62,
        0.62,
        0.52,
        0.52,
        0.57,
        0.57,
        0.47,
        0.47,
        0.68,
        0.52,
        0.52,
        0.14,
        0.16,
    ],
    dtype=np.float32,
)
_T2 = np.array(
    [0.0, 0.2, 0.2, 0.62, 0.62, 0.95, 0.95, 0.4, 0.4, 0.27, 0.27, 0.33, 0.33, 0.23, 0.23, 0.5, 0.28, 0.28, 0.9, 0.88],
    dtype=np.float32,
)
_ELLIPSOIDS = [  # label, centre (x: left-right, y: posterior-anterior, z: inferior-superior), radii; normalised units
    (5, (-0.13, 0.05, 0.12), (0.0875, 0.375, 0.15)),
    (6, (0.13, 0.05, 0.12), (0.0875, 0.375, 0.15)),
    (7, (-0.11, -0.08, -0.02), (0.125, 0.163, 0.112)),
    (8, (0.11, -0.08, -0.02), (0.125, 0.163, 0.112)),
    (9, (-0.17, 0.22, 0.08), (0.075, 0.15, 0.112)),
    (10, (0.17, 0.22, 0.08), (0.075, 0.15, 0.112)),
    (11, (-0.3, 0.08, 0.0), (0.0875, 0.2, 0.125)),
    (12, (0.3, 0.08, 0.0), (0.0875, 0.2, 0.125)),
    (13, (-0.27, -0.1, -0.3), (0.075, 0.25, 0.075)),
    (14, (0.27, -0.1, -0.3), (0.075, 0.25, 0.075)),
    (18, (0.0, -0.02, 0.02), (0.025, 0.175, 0.125)),
]


def _brain_labels(q: torch.Tensor) -> torch.Tensor:
    """Template labels at normalised points ``q`` (3, ...) in [-1, 1]; 19 marks sulcal CSF."""
    x, y, z = q[0], q[1], q[2]
    labels = torch.zeros(q.shape[1:], dtype=torch.uint8)
    cerebrum = (x / 0.82) ** 2 + (y / 0.92) ** 2 + ((z - 0.08) / 0.72) ** 2
    azimuth, polar = torch.atan2(y, x), torch.acos(((z - 0.08) / 0.72 / cerebrum.sqrt().clamp(min=1e-6)).clamp(-1, 1))
    folds = torch.sin(9 * azimuth) * torch.sin(7 * polar) + 0.5 * torch.sin(5 * azimuth + 3 * polar)
    shell_inner = 0.62 + 0.1 * folds  # folded grey/white boundary (normalised radius squared units)
    inside = cerebrum < 1
    sulci = inside & (cerebrum > 0.72) & (folds > 0.8)
    left = x < 0
    labels[inside & left] = 3
    labels[inside & ~left] = 4
    cortex = inside & (cerebrum > shell_inner)
    labels[cortex & left] = 1
    labels[cortex & ~left] = 2
    labels[sulci] = 19
    for label, centre, radii in _ELLIPSOIDS:
        e = sum(((c - m) / r) ** 2 for c, m, r in zip((x, y, z), centre, radii))
        labels[e < 1] = label
    stem = (x / 0.1) ** 2 + ((y + 0.12) / 0.11) ** 2 < 1
    labels[stem & (z < -0.1) & (z > -0.85)] = 15
    cereb = (x / 0.55) ** 2 + ((y + 0.62) / 0.3) ** 2 + ((z + 0.55) / 0.28) ** 2 < 1
    labels[cereb & left & (labels == 0)] = 16
    labels[cereb & ~left & (labels == 0)] = 17
    return labels


def random_brain_map(rng: np.random.Generator, size) -> torch.Tensor:
    """Where each voxel of a ``size`` subject grid lies in the template: normalised points (3, *size) in about
    [-1, 1] (axis 0: x left-right, y posterior-anterior, z inferior-superior), a random affine (scale 0.93-1.07,
    rotation up to 0.08 rad about the vertical axis, shift up to 3 %) and a smooth diffeomorphic (SVF) deformation
    of at most about 9 % of the half-width. The brain phantoms and the template subjects share it."""
    ndim = 3
    grid = torch.stack(torch.meshgrid(*[torch.linspace(-1, 1, n) for n in size], indexing="ij"))
    scale = torch.from_numpy(rng.uniform(0.93, 1.07, 3).astype(np.float32)).view(3, 1, 1, 1)
    angle = float(rng.uniform(-0.08, 0.08))
    shift = torch.from_numpy(rng.uniform(-0.03, 0.03, 3).astype(np.float32)).view(3, 1, 1, 1)
    x, y = grid[0], grid[1]
    rot = torch.stack([math.cos(angle) * x - math.sin(angle) * y, math.sin(angle) * x + math.cos(angle) * y, grid[2]])
    q = rot * scale + shift
    coarse = torch.from_numpy(rng.standard_normal((1, ndim, 4, 4, 4)).astype(np.float32))
    svf = F.interpolate(coarse, size=tuple(size), mode="trilinear", align_corners=True)
    svf = svf * (0.09 / svf.abs().amax()) * torch.tensor([(n - 1) / 2 for n in size]).view(1, 3, 1, 1, 1)
    ddf = integrate_svf(svf)[0]  # voxels
    return q + ddf * torch.tensor([2 / (n - 1) for n in size]).view(3, 1, 1, 1)


def _brain_subject(rng: np.random.Generator, size, template: bool = False):
    """Labels, T1-like and T2-like volumes of one subject (a deformed template); ``template=True`` undeformed."""
    if template:
        q = torch.stack(torch.meshgrid(*[torch.linspace(-1, 1, n) for n in size], indexing="ij"))
    else:
        q = random_brain_map(rng, size)
    labels = _brain_labels(q)
    texture = _smooth_noise(rng, size, [max(2, n // 12) for n in size])
    bias = 1 + 0.1 * _smooth_noise(rng, size, (3, 3, 3))
    volumes = []
    for table in (_T1, _T2):
        img = torch.from_numpy(table)[labels.long()] * (1 + 0.05 * texture)
        img = _blur(img, (0.6, 0.6, 0.6)) * bias
        volumes.append(_rician(img, 0.02, rng).clamp(0, 1))
    labels[labels == 19] = 0
    return labels, volumes[0], volumes[1]


def _write_multimodal_datalist(out: str, names: list[str], validation: float = 0.15, testing: float = 0.25) -> None:
    """``<out>/dataset_multimodal.json``: every ordered pair (fixed T1w of one subject, moving T2w of another)
    within each part of the subject split the brain configs use (``oasis_split`` with the same fractions), so
    the multi-modal and the T1w-T1w configs hold out the same subjects."""
    try:
        parts = split_by_fraction(names, validation, testing)
    except ValueError:  # too few subjects to hold any out: every pair is a training pair
        parts = {"training": names, "validation": [], "testing": []}

    def pairs(subjects):
        return [
            {
                "fixed": f"{f}/aligned_norm.nii.gz",
                "moving": f"{m}/aligned_norm_t2.nii.gz",
                "fixed_label": f"{f}/aligned_seg35.nii.gz",
                "moving_label": f"{m}/aligned_seg35.nii.gz",
            }
            for f in subjects
            for m in subjects
            if f != m
        ]

    spec = {
        "description": "regzoo multi-modal phantom pairs: fixed T1w-like, moving T2w-like of another subject",
        "labels": {str(k): v for k, v in OASIS_PHANTOM_LABELS.items()},
        **{part: pairs(subjects) for part, subjects in parts.items()},
    }
    with open(os.path.join(out, "dataset_multimodal.json"), "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=1)


def write_oasis_phantoms(
    out: str, subjects: int = 10, seed: int = 0, size=(80, 96, 112), t2: bool = False
) -> list[str]:
    """Write ``subjects`` brain phantoms as ``<out>/OASIS_OAS1_NNNN_MR1/aligned_norm.nii.gz`` +
    ``aligned_seg35.nii.gz`` (and ``aligned_norm_t2.nii.gz`` with ``t2``), spacing ``160 / size[0]`` mm so the
    field of view is OASIS's. Default size is half of OASIS's 160 x 192 x 224 (2 mm), for CPU demos.
    With ``t2``, also ``<out>/dataset_multimodal.json`` (see :func:`_write_multimodal_datalist`).
    """
    size = tuple(int(n) for n in size)
    spacing = 160.0 / size[0]
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = [-spacing * (n - 1) / 2 for n in size]
    folders = []
    for index in range(subjects):
        rng = np.random.default_rng([seed, 1000 + index])
        labels, t1, t2_img = _brain_subject(rng, size)
        folder = os.path.join(out, f"OASIS_OAS1_{index + 1:04d}_MR1")
        os.makedirs(folder, exist_ok=True)
        _save(t1.numpy(), affine, os.path.join(folder, "aligned_norm.nii.gz"), np.float32)
        _save(labels.numpy(), affine, os.path.join(folder, "aligned_seg35.nii.gz"), np.uint8)
        if t2:
            _save(t2_img.numpy(), affine, os.path.join(folder, "aligned_norm_t2.nii.gz"), np.float32)
        folders.append(folder)
    if t2:
        _write_multimodal_datalist(out, [os.path.basename(f) for f in folders])
    return folders


def make_demo_data(kind: str, out: str, subjects: int = 10, seed: int = 0, size=None) -> str:
    """Write a demo data set of ``kind`` to ``out``; returns ``out``. Kinds: ``acdc``, ``oasis`` and
    ``multimodal`` (phantoms), ``mni`` (subjects of the MNI ICBM152 template, :mod:`common.data.template`; needs
    the nilearn wheel's files)."""
    if kind == "acdc":
        write_acdc_phantoms(out, subjects, seed)
    elif kind in ("oasis", "multimodal"):
        write_oasis_phantoms(out, subjects, seed, size=size or (80, 96, 112), t2=kind == "multimodal")
    elif kind == "mni":
        from .template import write_template_subjects

        write_template_subjects(out, subjects, seed, size=size or (80, 96, 112))
    else:
        raise ValueError(f"kind must be 'acdc', 'oasis', 'multimodal' or 'mni', got {kind!r}")
    return out


def data_root(demo, dataset_dir: str, kind: str, subjects: int = 10, seed: int = 0, size=None) -> str:
    """The data folder a bundle reads: with ``demo`` the demo set ``kind`` written to ``dataset_dir`` if it is not
    there yet (:func:`ensure_demo_data`), else the user's ``dataset_dir``. ``demo`` may be a word typed on the
    command line (``--demo_data false``: ``common.bundle.values.flag``)."""
    if flag(demo, "demo_data"):
        return ensure_demo_data(dataset_dir, kind, subjects, seed, optional(size, "demo_size"))
    return dataset_dir  # the readers name it if it is missing (it is unused when a datalist gives the pairs)


def ensure_demo_data(out: str, kind: str, subjects: int = 10, seed: int = 0, size=None, overwrite: bool = False) -> str:
    """Write the demo set to ``out`` unless the same one is there already (marker file); returns ``out``.

    Bundles call this first, so a fresh clone trains with no data downloaded. Data is never lost: a
    non-empty ``out`` without the marker is refused, and a demo set with other parameters is replaced only
    with ``overwrite=True``; one written by an older phantom generator is regenerated. Several processes at
    once (``torchrun`` ranks) take turns through the lock file ``<out>.lock``: one writes, the others find
    its set.
    """
    marker = os.path.join(out, ".regzoo-demo.json")
    wanted = {
        "kind": kind,
        "subjects": int(subjects),
        "seed": int(seed),
        "size": list(size) if size else None,
        "version": PHANTOM_VERSION,
    }
    if os.path.exists(out) and not os.path.isdir(out):
        raise FileExistsError(f"{out}: is a file, expected a folder for the demo data")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with FileLock(out.rstrip(os.sep) + ".lock"):
        if os.path.exists(marker):
            with open(marker, encoding="utf-8") as f:
                found = json.load(f)
            if found == wanted:
                return out
            outdated = {k: v for k, v in found.items() if k != "version"} == {
                k: v for k, v in wanted.items() if k != "version"
            }
            if not (overwrite or outdated):
                raise FileExistsError(
                    f"{out}: holds a demo data set made with other parameters ({marker}); "
                    "pass overwrite=True (--overwrite) to replace it, or choose another folder"
                )
            shutil.rmtree(out)
        elif os.path.isdir(out) and os.listdir(out):
            raise FileExistsError(f"{out}: exists and is not a regzoo demo folder; refusing to write demo data into it")
        with atomic_folder(out) as tmp:  # a complete set appears at once (out is absent or empty here)
            make_demo_data(kind, tmp, subjects, seed, size)
            with open(os.path.join(tmp, ".regzoo-demo.json"), "w", encoding="utf-8") as f:
                json.dump(wanted, f)
    return out
