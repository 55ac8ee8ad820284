import filecmp
import os

import nibabel as nib
import numpy as np
import pytest
import torch

from common.data import acdc_pairs, ensure_demo_data, oasis_subjects, write_acdc_phantoms, write_oasis_phantoms
from common.metrics import dice_per_label


def _all_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_same_seed_gives_identical_files_other_seed_differs(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_acdc_phantoms(str(tmp_path / name / "acdc"), subjects=1, seed=seed, testing=0)
        write_oasis_phantoms(str(tmp_path / name / "oasis"), subjects=1, seed=seed, size=(24, 28, 32), t2=True)
    files = _all_files(tmp_path / "a")
    assert files == _all_files(tmp_path / "b")
    for f in files:
        assert filecmp.cmp(tmp_path / "a" / f, tmp_path / "b" / f, shallow=False), f
    assert not filecmp.cmp(
        tmp_path / "a" / "oasis" / "OASIS_OAS1_0001_MR1" / "aligned_norm.nii.gz",
        tmp_path / "c" / "oasis" / "OASIS_OAS1_0001_MR1" / "aligned_norm.nii.gz",
        shallow=False,
    )


def _labels(path):
    return torch.from_numpy(np.asarray(nib.load(path).dataobj).astype(np.float32))[None, None]


def test_acdc_identity_dice_like_the_real_data(acdc_demo):
    # ACDC's initial (identity) Dice between ED and ES is ~0.64-0.69 in the papers
    dice = [
        dice_per_label(_labels(p["moving_label"]), _labels(p["fixed_label"]), [1, 2, 3]).mean().item()
        for p in acdc_pairs(acdc_demo, "training", "acdc")
    ]
    assert 0.55 <= float(np.mean(dice)) <= 0.75
    assert max(dice) < 0.9  # every subject really moves


def test_brain_identity_dice_between_subjects(oasis_demo):
    subjects = oasis_subjects(oasis_demo)
    dice = []
    for a, b in zip(subjects[:-1], subjects[1:]):
        la, lb = _labels(a["label"]), _labels(b["label"])
        assert len(la.unique()) >= 11  # background + at least 10 structures
        dice.append(torch.nanmean(dice_per_label(la, lb, list(range(1, 19)))).item())
    assert 0.55 <= float(np.mean(dice)) <= 0.75


def test_multimodal_rendering_is_not_a_monotone_map(oasis_demo):
    folder = os.path.join(oasis_demo, "OASIS_OAS1_0001_MR1")
    t1 = np.asarray(nib.load(os.path.join(folder, "aligned_norm.nii.gz")).dataobj)
    t2 = np.asarray(nib.load(os.path.join(folder, "aligned_norm_t2.nii.gz")).dataobj)
    labels = np.asarray(nib.load(os.path.join(folder, "aligned_seg35.nii.gz")).dataobj)
    means = [(t1[labels == k].mean(), t2[labels == k].mean()) for k in (3, 1, 11, 7, 5)]  # WM, GM, put, thal, vent
    t1_order, t2_order = np.argsort([m[0] for m in means]), np.argsort([m[1] for m in means])
    assert not np.array_equal(t1_order, t2_order) and not np.array_equal(t1_order, t2_order[::-1])


def test_ensure_demo_data_never_overwrites(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "scan.nii.gz").write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="not a regzoo demo folder"):
        ensure_demo_data(str(foreign), "oasis", subjects=2, size=(16, 16, 16))
    assert (foreign / "scan.nii.gz").read_bytes() == b"precious"
    out = str(tmp_path / "demo")
    ensure_demo_data(out, "oasis", subjects=2, size=(16, 16, 16))
    stamp = os.path.getmtime(os.path.join(out, "OASIS_OAS1_0001_MR1", "aligned_norm.nii.gz"))
    ensure_demo_data(out, "oasis", subjects=2, size=(16, 16, 16))  # same parameters: nothing rewritten
    assert os.path.getmtime(os.path.join(out, "OASIS_OAS1_0001_MR1", "aligned_norm.nii.gz")) == stamp
    with pytest.raises(FileExistsError, match="other parameters"):
        ensure_demo_data(out, "oasis", subjects=3, size=(16, 16, 16))
    ensure_demo_data(out, "oasis", subjects=3, size=(16, 16, 16), overwrite=True)
    assert len(oasis_subjects(out)) == 3


def _rank(out: str, log: str, start) -> None:
    """One torchrun-like rank: ensure_demo_data with the data writer slowed down and logged."""
    import time

    import common.data.phantoms as phantoms

    write = phantoms.make_demo_data

    def slow(*args):
        with open(log, "a", encoding="utf-8") as f:
            f.write("wrote\n")
        time.sleep(1.0)  # both ranks are surely inside ensure_demo_data meanwhile
        return write(*args)

    phantoms.make_demo_data = slow
    start.wait()
    phantoms.ensure_demo_data(out, "oasis", subjects=2, size=(16, 16, 16))


def test_ensure_demo_data_from_two_processes_at_once(tmp_path):
    """torchrun ranks call ensure_demo_data at once: one writes the set, the other finds it complete."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    out, log, start = str(tmp_path / "demo"), str(tmp_path / "writers.log"), ctx.Barrier(2)
    ranks = [ctx.Process(target=_rank, args=(out, log, start)) for _ in range(2)]
    for rank in ranks:
        rank.start()
    for rank in ranks:
        rank.join(120)
    assert [rank.exitcode for rank in ranks] == [0, 0]
    assert open(log, encoding="utf-8").read() == "wrote\n"  # written once
    assert len(oasis_subjects(out)) == 2 and not os.path.exists(out + ".partial")
