"""The real-scan stage against independent truths: ITK's own resampling and transform readers, known affines,
the same pair stored in other orientations.

The networks here are stand-ins with known outputs (zero, or a fixed smooth field), so the tests check the
geometry of the stage, not a trained method (the bundle tests do that)."""

import json
import math
import os
import subprocess

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from torch import nn

from common.realscan import RealScanStage, align_affine, describe_affine, network_grid, register_pair

itk = pytest.importorskip("itk")

SIZE = (80, 96, 112)  # the demo brains' grid at 2 mm


class FieldNet(nn.Module):
    """Inference contract stand-in: ``(B, 2, *S)`` -> a fixed smooth DDF (voxels), or zero with ``amplitude=0``."""

    def __init__(self, amplitude: float = 0.0) -> None:
        super().__init__()
        self.amplitude = amplitude

    def forward(self, x):
        shape = x.shape[2:]
        axes = torch.meshgrid(*[torch.linspace(0, 2 * math.pi, n) for n in shape], indexing="ij")
        field = torch.stack([torch.sin(axes[(c + 1) % 3]) * (1.0 + 0.5 * c) for c in range(3)])
        return (self.amplitude * field)[None].expand(x.shape[0], -1, *shape)


def _rotation_affine(degrees, axis, shift, scales=(1.0, 1.0, 1.0), centre=(0.0, 0.0, 0.0)):
    matrix = np.eye(4)
    linear = Rotation.from_rotvec(np.radians(degrees) * np.asarray(axis) / np.linalg.norm(axis)).as_matrix()
    matrix[:3, :3] = linear @ np.diag(scales)
    matrix[:3, 3] = np.asarray(centre) - matrix[:3, :3] @ np.asarray(centre) + np.asarray(shift)
    return matrix


def _itk_resample(moving_path, reference_path, transform=None, nearest=False):
    moving = itk.imread(str(moving_path), itk.F)
    reference = itk.imread(str(reference_path), itk.F)
    interpolator = (itk.NearestNeighborInterpolateImageFunction if nearest else itk.LinearInterpolateImageFunction).New(
        moving
    )
    kwargs = {"transform": transform} if transform is not None else {}
    out = itk.resample_image_filter(
        moving, use_reference_image=True, reference_image=reference, interpolator=interpolator, **kwargs
    )
    return np.transpose(itk.array_from_image(out), (2, 1, 0))


@pytest.fixture(scope="module")
def brain(brain_demo):
    folder = os.path.join(brain_demo, "OASIS_OAS1_0001_MR1")
    return {
        "image": os.path.join(folder, "aligned_norm.nii.gz"),
        "label": os.path.join(folder, "aligned_seg35.nii.gz"),
        "t2": os.path.join(folder, "aligned_norm_t2.nii.gz"),
    }


@pytest.fixture(scope="module")
def regridded(brain, tmp_path_factory):
    """The demo brain resampled by ITK onto an oblique 2 x 2 x 3 mm grid with another origin (same anatomy, same
    physical place: a pair that needs no registration at all)."""
    root = tmp_path_factory.mktemp("regridded")
    fixed = nib.load(brain["image"])
    grid = _rotation_affine(18, (1, 1, 0.3), (7.0, -5.0, 4.0)) @ np.diag([2.0, 2.0, 3.0, 1.0])
    grid[:3, 3] += fixed.affine[:3, 3] + [-6.0, 5.0, 10.0]
    shape = (86, 100, 70)
    nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), grid), root / "grid.nii.gz")
    paths = {}
    for key, nearest in (("image", False), ("label", True)):
        data = _itk_resample(brain[key], root / "grid.nii.gz", nearest=nearest)
        paths[key] = str(root / f"moving_{key}.nii.gz")
        nib.save(nib.Nifti1Image(data.astype(np.int16 if nearest else np.float32), grid), paths[key])
    return paths


def _stage(**kwargs):
    return RealScanStage(spatial_size=SIZE, percentiles=(0.05, 99.95), **kwargs)


def test_network_grid_of_a_ras_image_is_its_own_voxels_around_the_foreground():
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-80.0, -90.0, -100.0]
    grid = network_grid(affine, (80, 96, 112), (64, 64, 64), centre=(30.2, 50.0, 61.7))
    assert np.allclose(grid[:3, :3], affine[:3, :3])
    offset = np.linalg.solve(affine[:3, :3], grid[:3, 3] - affine[:3, 3])
    assert np.allclose(offset, np.round(offset)) and np.allclose(offset, [30 - 31.5, 50 - 31.5, 62 - 31.5], atol=0.51)
    # stored as LPS (flipped first two axes): the same physical grid, its axes still RAS
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[:2, 3] = [79, 95]
    lps = affine @ flip
    assert np.allclose(network_grid(lps, (80, 96, 112), (64, 64, 64), centre=(79 - 30.2, 95 - 50.0, 61.7)), grid)


def test_zero_field_on_a_regridded_copy_is_the_physical_identity(brain, regridded, tmp_path):
    pair = {"fixed": brain["image"], "moving": regridded["image"], "moving_label": regridded["label"]}
    pair["fixed_label"] = brain["label"]
    fixed = nib.load(brain["image"])
    for affine in ("none", "affine"):
        out = tmp_path / affine
        metrics = register_pair(_stage(affine=affine), FieldNet(0.0), pair, str(out))
        d = np.asarray(nib.load(out / "ddf_itk.nii.gz").dataobj)[..., 0, :]
        brain_mask = np.asarray(fixed.dataobj) > 0.05 * np.asarray(fixed.dataobj).max()
        # every displacement under half a voxel (1 mm); with no affine exactly the identity
        assert np.linalg.norm(d[brain_mask], axis=-1).max() < (1e-4 if affine == "none" else 1.0)
        assert metrics["affine"]["rotation_deg"] < (1e-6 if affine == "none" else 0.5)
        ours = np.asarray(nib.load(out / "warped.nii.gz").dataobj)
        theirs = _itk_resample(regridded["image"], brain["image"])
        inside = brain_mask & (theirs > 0)
        if affine == "none":  # the same linear interpolation of the same file
            assert np.abs(ours[inside] - theirs[inside]).max() < 1e-3 * theirs.max()
        assert np.corrcoef(ours[inside], theirs[inside])[0, 1] > 0.999
        assert metrics["dice_mean"] > 0.9


def test_known_affine_is_recovered_within_a_degree_and_a_millimetre(brain):
    fixed = nib.load(brain["image"])
    centre = (fixed.affine @ np.array([40.0, 48.0, 56.0, 1.0]))[:3]
    truth = _rotation_affine(25, (1, 2, 0.5), (12.0, -15.0, 8.0), scales=(1.1, 0.92, 1.05), centre=centre)
    stage = _stage()
    image = stage.normalise(torch.from_numpy(np.asarray(fixed.dataobj, np.float32))[None])
    t2 = stage.normalise(torch.from_numpy(np.asarray(nib.load(brain["t2"]).dataobj, np.float32))[None])
    points = fixed.affine @ np.vstack([np.argwhere(image[0].numpy() > 0.1).T, np.ones((1, int((image > 0.1).sum())))])
    # moving: the same voxels with the header moved by ``truth``, so fixed point x shows at moving point truth(x)
    for moving, similarity in ((image, "ncc"), (t2, "nmi")):
        found = align_affine(image, fixed.affine, moving, truth @ fixed.affine, similarity=similarity).matrix
        error = describe_affine(np.linalg.inv(truth) @ found)
        assert error["rotation_deg"] < 1.0, similarity
        assert np.linalg.norm((found - truth) @ points, axis=0).max() < 1.0, similarity  # mm, over the brain
    with pytest.raises(ValueError, match="rigid_iterations"):
        align_affine(image, fixed.affine, image, fixed.affine, rigid_iterations=(50,))


def _reorient(path, out, order, flips):
    """The same image stored with its voxel axes permuted (``order``) and flipped: no interpolation."""
    image = nib.load(path)
    data = np.transpose(np.asarray(image.dataobj), order)
    affine = image.affine[:, list(order) + [3]]
    for axis in flips:
        data = np.flip(data, axis)
        shift = np.eye(4)
        shift[axis, axis], shift[axis, 3] = -1, data.shape[axis] - 1
        affine = affine @ shift
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data), affine), out)
    return str(out)


def test_the_same_pair_in_other_orientations_gives_the_same_result(brain, regridded, tmp_path):
    ras = {"fixed": brain["image"], "moving": regridded["image"]}
    pir = {  # fixed stored PIR (axes: A->P, S->I, R), moving LPS
        "fixed": _reorient(brain["image"], tmp_path / "fixed_pir.nii.gz", (1, 2, 0), (0, 1)),
        "moving": _reorient(regridded["image"], tmp_path / "moving_lps.nii.gz", (0, 1, 2), (0, 1)),
    }
    assert "".join(nib.aff2axcodes(nib.load(pir["fixed"]).affine)) == "PIR"

    def to_ras(image):  # undo the PIR storage: flip axes 0 and 1, then (A, S, R) -> (R, A, S)
        return np.flip(np.flip(np.asarray(image.dataobj), 0), 1).transpose(2, 0, 1, *range(3, image.ndim))

    # without the affine stage the two runs see the same network inputs: the same transform to float precision;
    # with it, the optimiser stops within a flat optimum (measured up to 0.28 mm apart, a seventh of a voxel)
    for affine, tolerance in (("none", 1e-3), ("affine", 0.5)):
        results = {}
        for name, pair in (("ras", ras), ("pir", pir)):
            out = tmp_path / f"{name}_{affine}"
            register_pair(_stage(affine=affine), FieldNet(1.5), pair, str(out))
            results[name] = {k: nib.load(out / f"{k}.nii.gz") for k in ("warped", "ddf_itk")}
        assert np.allclose(results["pir"]["warped"].affine, nib.load(pir["fixed"]).affine)
        warped = {"ras": np.asarray(results["ras"]["warped"].dataobj), "pir": to_ras(results["pir"]["warped"])}
        fields = {"ras": np.asarray(results["ras"]["ddf_itk"].dataobj), "pir": to_ras(results["pir"]["ddf_itk"])}
        inside = warped["ras"] > 0.02
        assert np.linalg.norm(fields["ras"] - fields["pir"], axis=-1)[inside].max() < tolerance, affine
        assert np.corrcoef(warped["ras"][inside], warped["pir"][inside])[0, 1] > 0.999, affine


def test_transform_files_reproduce_the_warped_image_in_itk(brain, tmp_path):
    """Composite ``.h5``, the ANTs pair applied in ANTs' order, and the single full field: each, applied by ITK,
    gives ``warped.nii.gz``; the labels agree except at boundaries."""
    fixed = nib.load(brain["image"])
    centre = (fixed.affine @ np.array([40.0, 48.0, 56.0, 1.0]))[:3]
    moved = _rotation_affine(12, (0.3, 1, 1), (6.0, 4.0, -5.0), centre=centre) @ fixed.affine
    moving = {}
    for key in ("image", "label"):
        moving[key] = str(tmp_path / f"moving_{key}.nii.gz")
        nib.save(nib.Nifti1Image(np.asarray(nib.load(brain[key]).dataobj), moved), moving[key])
    pair = {"fixed": brain["image"], "moving": moving["image"], "moving_label": moving["label"]}
    out = tmp_path / "out"
    metrics = register_pair(_stage(), FieldNet(1.5), pair, str(out))
    assert 10 < metrics["affine"]["rotation_deg"] < 14
    ours = np.asarray(nib.load(out / "warped.nii.gz").dataobj)
    label = np.asarray(nib.load(out / "warped_label.nii.gz").dataobj)

    composite = itk.transformread(str(out / "transform.h5"))[0]
    inside = ours > 0.02 * ours.max()
    theirs = _itk_resample(moving["image"], brain["image"], composite)
    assert np.corrcoef(ours[inside], theirs[inside])[0, 1] > 0.999
    theirs_label = _itk_resample(moving["label"], brain["image"], composite, nearest=True)
    assert (theirs_label == label).mean() > 0.99
    # the ANTs pair in ANTs' order (antsApplyTransforms -t 1Warp -t 0GenericAffine: the last listed is queued
    # first, ITK applies the last queued first) and the single full field map every point as the composite does
    ants_order = itk.CompositeTransform[itk.F, 3].New()
    ants_order.AddTransform(_float_affine(out / "transform_0GenericAffine.mat"))
    ants_order.AddTransform(_field(out / "transform_1Warp.nii.gz"))
    full = _field(out / "ddf_itk.nii.gz")
    reference = itk.imread(brain["image"], itk.F)
    rng = np.random.default_rng(0)
    for index in np.argwhere(inside)[rng.choice(int(inside.sum()), 200, replace=False)]:
        point = reference.TransformIndexToPhysicalPoint([int(i) for i in index])
        expected = np.array(composite.TransformPoint(point))
        assert np.abs(np.array(ants_order.TransformPoint(point)) - expected).max() < 1e-3
        assert np.abs(np.array(full.TransformPoint(point)) - expected).max() < 1e-3
    assert np.abs(np.asarray(nib.load(out / "transform_1Warp.nii.gz").dataobj)).max() > 1.0  # the field is there
    saved = json.loads((out / "metrics.json").read_text())
    assert np.allclose(saved["affine"]["matrix_ras"], np.asarray(saved["affine"]["matrix_ras"]))


def _field(path):
    transform = itk.DisplacementFieldTransform[itk.F, 3].New()
    transform.SetDisplacementField(itk.imread(str(path), itk.Vector[itk.F, 3]))
    return transform


def _float_affine(path):
    reader = itk.TransformFileReaderTemplate[itk.F].New(FileName=str(path))
    reader.Update()
    return itk.down_cast(reader.GetTransformList()[0])


def test_outputs_keep_the_fixed_qform_and_sform_codes(brain, tmp_path):
    image = nib.load(brain["image"])
    fixed = nib.Nifti1Image(np.asarray(image.dataobj), image.affine)
    fixed.set_qform(image.affine, code=1)
    fixed.set_sform(image.affine, code=4)
    nib.save(fixed, tmp_path / "fixed.nii.gz")
    pair = {"fixed": str(tmp_path / "fixed.nii.gz"), "moving": brain["image"]}
    register_pair(_stage(affine="none"), FieldNet(0.0), pair, str(tmp_path / "out"))
    for name in ("warped", "jacobian"):
        header = nib.load(tmp_path / "out" / f"{name}.nii.gz").header
        assert (int(header["qform_code"]), int(header["sform_code"])) == (1, 4)


_ANTS_PYTHON = os.environ.get("REGZOO_ANTS_PYTHON")
_ANTS_APPLY = r"""
import sys, ants, numpy as np
fixed, moving, out = ants.image_read(sys.argv[1]), ants.image_read(sys.argv[2]), sys.argv[3]
for name, transforms in (("pair", sys.argv[4:6]), ("composite", sys.argv[6:7])):
    warped = ants.apply_transforms(fixed, moving, transformlist=transforms, interpolator="linear")
    np.save(f"{out}_{name}.npy", warped.numpy())
"""


@pytest.mark.skipif(not _ANTS_PYTHON, reason="set REGZOO_ANTS_PYTHON to a Python with antspyx (it pins other numpy)")
def test_ants_applies_our_transform_files_as_we_do(brain, tmp_path):
    """ANTs itself (``ants.apply_transforms``, the ``antsApplyTransforms`` order ``[1Warp, 0GenericAffine]``, and
    the composite ``.h5``) reproduces ``warped.nii.gz``."""
    fixed = nib.load(brain["image"])
    centre = (fixed.affine @ np.array([40.0, 48.0, 56.0, 1.0]))[:3]
    moving = str(tmp_path / "moving.nii.gz")
    moved = _rotation_affine(12, (0.3, 1, 1), (6.0, 4.0, -5.0), centre=centre) @ fixed.affine
    nib.save(nib.Nifti1Image(np.asarray(fixed.dataobj), moved), moving)
    out = tmp_path / "out"
    register_pair(_stage(), FieldNet(1.5), {"fixed": brain["image"], "moving": moving}, str(out))
    files = [str(out / n) for n in ("transform_1Warp.nii.gz", "transform_0GenericAffine.mat", "transform.h5")]
    args = [_ANTS_PYTHON, "-c", _ANTS_APPLY, brain["image"], moving, str(tmp_path / "ants"), *files]
    subprocess.run(args, check=True, timeout=600)
    ours = np.asarray(nib.load(out / "warped.nii.gz").dataobj)
    inside = ours > 0.02 * ours.max()
    for name in ("pair", "composite"):
        theirs = np.load(tmp_path / f"ants_{name}.npy")
        assert np.corrcoef(ours[inside], theirs[inside])[0, 1] > 0.999, name


def test_principal_axes_start_recovers_a_rotation_too_large_for_centres_of_mass(brain):
    """120 degrees about the vertical axis: from the centres of mass alone the rigid stage cannot get there;
    the principal-axes start (``init="moments"``) picks the right axes and the stages finish within a degree."""
    fixed = nib.load(brain["image"])
    centre = (fixed.affine @ np.array([40.0, 48.0, 56.0, 1.0]))[:3]
    truth = _rotation_affine(120, (0, 0, 1), (5.0, -5.0, 3.0), centre=centre)
    image = _stage().normalise(torch.from_numpy(np.asarray(fixed.dataobj, np.float32))[None])
    found = {
        init: align_affine(image, fixed.affine, image, truth @ fixed.affine, model="rigid", init=init).matrix
        for init in ("com", "moments")
    }
    errors = {init: describe_affine(np.linalg.inv(truth) @ m)["rotation_deg"] for init, m in found.items()}
    assert errors["moments"] < 1.0 and errors["com"] > 10.0, errors
