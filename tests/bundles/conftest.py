"""Trained quick bundles shared by several test modules (each trained once per session, across xdist workers)."""

import pytest

from ..conftest import shared
from .helpers import SHORT_ACDC, SHORT_DIFFUSEMORPH, copy_bundle, monai_bundle


def _train(name, acdc_demo, tmp_path_factory, short):
    root = copy_bundle(name, tmp_path_factory.mktemp(name))
    monai_bundle("run", ["train.json", "quick.json"], root, dataset_dir=acdc_demo, **short)
    return root


@pytest.fixture(scope="session")
def voxelmorph_quick(acdc_demo, tmp_path_factory):
    """The voxelmorph bundle after ``train.json + quick.json`` for 10 epochs (VoxelMorph-1, 64 x 64 x 16)."""
    return shared(
        tmp_path_factory, "voxelmorph_quick", lambda: _train("voxelmorph", acdc_demo, tmp_path_factory, SHORT_ACDC)
    )


@pytest.fixture(scope="session")
def diffusemorph_quick(acdc_demo, tmp_path_factory):
    """The diffusemorph bundle after ``train.json + quick.json`` for 5 epochs (ACDC ED -> ES, 64 x 64 x 16)."""
    return shared(
        tmp_path_factory,
        "diffusemorph_quick",
        lambda: _train("diffusemorph", acdc_demo, tmp_path_factory, SHORT_DIFFUSEMORPH),
    )
