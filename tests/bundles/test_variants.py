"""Every variant config of the bundles trains (one short epoch) and validates from a fresh bundle folder; the log
shows the variant's loss terms. DiffuseMorph's ``brain_atlas.json`` and DDM's ``quick.json`` train in the docs'
own commands instead (``tests/tools/test_documented_commands_run.py``)."""

import os

import pytest

from .helpers import copy_bundle, monai_bundle

pytestmark = pytest.mark.slow

VARIANTS = [
    ("voxelmorph", ["train.json", "vm2.json", "quick.json"], "acdc", "reg"),
    ("voxelmorph", ["train.json", "vm_diff.json", "quick.json"], "acdc", "reg"),
    ("voxelmorph", ["train.json", "vm_diff_probabilistic.json", "quick.json"], "acdc", "reg"),
    ("voxelmorph", ["train.json", "train_oasis.json"], "brain", "reg"),
    ("midir", ["train.json", "brain_nmi.json", "quick.json"], "brain", "reg"),
    ("midir", ["train.json", "multimodal.json", "quick.json"], "brain", "reg"),
    ("midir", ["train.json", "multimodal.json", "multimodal_lncc.json", "quick.json"], "brain", "reg"),
    ("midir", ["train.json", "cardiac2d.json"], "acdc", "reg"),
    ("transmorph_tvf", ["train.json", "lddmm.json", "quick.json"], "brain", "reg"),
    ("transmorph_tvf", ["train.json", "direct.json", "quick.json"], "brain", "label"),
    ("transmorph_tvf", ["train.json", "brain2d.json", "quick.json"], "brain", "label"),
    ("diffusemorph", ["train.json", "cardiac2d.json"], "acdc", "denoise"),
]


@pytest.mark.parametrize(
    "bundle, configs, data, term", VARIANTS, ids=[f"{b}:{'+'.join(c[1:-1] or c[1:])}" for b, c, _, _ in VARIANTS]
)
def test_variant_trains_and_validates(bundle, configs, data, term, acdc_demo, brain_demo, tmp_path):
    root = copy_bundle(bundle, tmp_path)
    overrides = {"train#trainer#max_epochs": 1, "val_interval": 1, "pairs_per_epoch": 3}
    if "train_oasis.json" in configs:
        overrides["train#dataset#pairs_per_epoch"] = 3
    if "multimodal.json" in configs:  # the 3 pairs drawn, not all 72 training pairs, go through preprocessing
        overrides["train#dataset#cache_rate"] = 0.0
    result = monai_bundle("run", configs, root, dataset_dir=acdc_demo if data == "acdc" else brain_demo, **overrides)
    log = result.stdout + result.stderr
    assert f"{term}:" in log and "val_mean_dice:" in log
    assert os.path.isfile(os.path.join(root, "models", "model.pt"))
