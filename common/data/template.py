"""Brain subjects made from real anatomy: the MNI ICBM152 2009a template (T1 and the grey / white matter
probability maps, 1 mm, RAS, skull-stripped) that ships inside the ``nilearn`` wheel, in the Learn2Reg OASIS layout.

The files are read from the installed wheel (``pip install nilearn``, or ``regzoo[template]``); nilearn itself is
not imported and nothing is downloaded. Each subject is the template under :func:`random_brain_map` (the random
affine and smooth diffeomorphic deformation of the brain phantoms) with a random gamma, bias field and Rician
noise, so a pair's true correspondence is smooth and invertible, and the anatomy (folding, ventricles, grey /
white contrast) is a real brain's. Labels: grey and white matter (the larger probability, where it is at least
0.5) in each of 8 sectors of MNI space (left / right, anterior / posterior of y = -18 mm, superior / inferior of
z = 18 mm): 16 labels, so Dice measures local alignment, not only the tissue classes.
"""

from __future__ import annotations

import importlib.util
import os

import nibabel as nib
import numpy as np
import torch

from ..spatial.physical import grid_world, resample_affine
from ..spatial.warp import identity_grid, warp, warp_label
from .files import DataError

__all__ = ["MNI_LABELS", "MNI_GROUPS", "template_files", "template_volumes", "write_template_subjects"]

_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
_SECTORS = [
    (side, ap, si) for side in ("left", "right") for ap in ("anterior", "posterior") for si in ("superior", "inferior")
]
MNI_LABELS = {
    1 + 2 * n + t: f"{side} {ap} {si} {tissue}"
    for n, (side, ap, si) in enumerate(_SECTORS)
    for t, tissue in enumerate(("grey matter", "white matter"))
}
MNI_GROUPS = {  # per-label-group Dice columns
    "GM": [k for k, v in MNI_LABELS.items() if v.endswith("grey matter")],
    "WM": [k for k, v in MNI_LABELS.items() if v.endswith("white matter")],
}


def template_files() -> dict[str, str]:
    """Paths of the template's T1, GM and WM files inside the installed ``nilearn`` package."""
    spec = importlib.util.find_spec("nilearn")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data") if spec else None
    files = {k: os.path.join(folder, name) for k, name in _FILES.items()} if folder else {}
    if not files or not all(os.path.isfile(p) for p in files.values()):
        raise DataError(
            "the 'mni' data kind reads the MNI ICBM152 2009 template shipped inside the nilearn wheel, which is not "
            "installed: pip install nilearn (or regzoo[template])"
        )
    return files


def template_volumes(size) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """The template on a ``size`` grid: T1 in [0, 1], labels (``MNI_LABELS``) and the grid's affine (RAS mm).

    The grid is isotropic and centred on the brain; its spacing is the smallest that holds the brain's bounding box
    with a 4 mm margin on every axis (about 2 mm for 80 x 96 x 112). T1 is resampled linearly, the probability
    maps linearly before labelling."""
    files = template_files()
    images = {k: nib.load(p) for k, p in files.items()}
    affine = images["t1"].affine
    volumes = {k: torch.from_numpy(np.asarray(im.dataobj, dtype=np.float32) / 255.0) for k, im in images.items()}
    inside = np.argwhere(volumes["t1"].numpy() > 0.02)
    ijk_box = np.stack([inside.min(0), inside.max(0)]).astype(np.float64)
    world_box = nib.affines.apply_affine(affine, ijk_box)
    centre, extent = world_box.mean(0), np.abs(world_box[1] - world_box[0]) + 8.0
    size = [int(n) for n in size]
    spacing = float(max(e / n for e, n in zip(extent, size)))
    out_affine = np.diag([spacing, spacing, spacing, 1.0])
    out_affine[:3, 3] = centre - spacing * (np.asarray(size) - 1) / 2
    sample = {k: resample_affine(v[None], affine, out_affine, size)[0] for k, v in volumes.items()}
    tissue = torch.where(sample["wm"] > sample["gm"], 1, 0)
    brain = torch.maximum(sample["gm"], sample["wm"]) >= 0.5
    x, y, z = grid_world(out_affine, size)
    sector = (x >= 0).long() * 4 + (y < -18).long() * 2 + (z < 18).long()
    labels = (1 + 2 * sector + tissue) * brain
    return sample["t1"].clamp(0, 1), labels.to(torch.uint8), out_affine


def write_template_subjects(out: str, subjects: int = 10, seed: int = 0, size=(80, 96, 112)) -> list[str]:
    """Write ``subjects`` template subjects as ``<out>/OASIS_OAS1_NNNN_MR1/aligned_norm.nii.gz`` (T1, [0, 1]) and
    ``aligned_seg35.nii.gz`` (``MNI_LABELS``), each drawn from ``numpy.random.default_rng([seed, 2000 + n])``."""
    from .phantoms import _rician, _save, _smooth_noise, random_brain_map

    size = tuple(int(n) for n in size)
    t1, labels, affine = template_volumes(size)
    folders = []
    for index in range(subjects):
        rng = np.random.default_rng([seed, 2000 + index])
        q = random_brain_map(rng, size)  # template points, normalised over the grid
        half = torch.tensor([(n - 1) / 2 for n in size]).view(3, 1, 1, 1)
        ddf = ((q + 1) * half - identity_grid(size))[None]  # the same map as a DDF in voxels
        image = warp(t1[None, None], ddf, padding_mode="zeros")[0, 0]
        label = warp_label(labels[None, None], ddf)[0, 0].to(torch.uint8)
        gamma = float(rng.uniform(0.8, 1.25))
        bias = 1 + 0.1 * _smooth_noise(rng, size, (3, 3, 3))
        image = _rician(image.clamp(0, 1) ** gamma * bias, 0.02, rng).clamp(0, 1) * (image > 0)
        folder = os.path.join(out, f"OASIS_OAS1_{index + 1:04d}_MR1")
        os.makedirs(folder, exist_ok=True)
        _save(image.numpy(), affine, os.path.join(folder, "aligned_norm.nii.gz"), np.float32)
        _save(label.numpy(), affine, os.path.join(folder, "aligned_seg35.nii.gz"), np.uint8)
        folders.append(folder)
    return folders
