"""Shared fixtures: the default demo data sets, written once per test session."""

import pytest

from common.data import ensure_demo_data


@pytest.fixture(scope="session")
def acdc_demo(tmp_path_factory):
    """The default ACDC phantom set (10 training + 3 testing subjects, seed 0)."""
    return ensure_demo_data(str(tmp_path_factory.mktemp("demo") / "acdc"), "acdc", subjects=10, seed=0)


@pytest.fixture(scope="session")
def oasis_demo(tmp_path_factory):
    """The default brain phantom set with T2-like renderings (10 subjects, 80 x 96 x 112, seed 0)."""
    return ensure_demo_data(str(tmp_path_factory.mktemp("demo") / "oasis"), "multimodal", subjects=10, seed=0)


@pytest.fixture(scope="session")
def brain_demo(tmp_path_factory):
    """The brain demo set of the midir bundle's quick config (16 subjects with T2-like renderings, 80 x 96 x 112)."""
    return ensure_demo_data(
        str(tmp_path_factory.mktemp("demo") / "brain"), "multimodal", subjects=16, seed=0, size=(80, 96, 112)
    )
