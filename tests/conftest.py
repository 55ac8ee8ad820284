"""Shared fixtures: the default demo data sets, written once per test session, and how the session is spread
over xdist workers (``-n 2`` in ``pyproject.toml``)."""

import json
import os

import pytest
from filelock import FileLock

from common.data import ensure_demo_data

# the long trainings first (longest first) and with them the producers of shared trained bundles, their consumers
# last: xdist hands out test files in this order (pyproject.toml: --no-loadscope-reorder)
_FIRST = (
    "test_transmorph_tvf.py",
    "test_diffusemorph.py",
    "test_midir.py",
    "test_documented_commands_run.py",
    "test_voxelmorph.py",
    "test_diffusereg.py",
)
_LAST = ("test_ddm.py", "test_package.py")


def shared(tmp_path_factory, name: str, produce):
    """``produce()`` once per test session, even across xdist workers: the first worker to ask builds it under a
    file lock and records the (JSON) result; the others wait for it and read the record."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder every worker's basetemp lives in
    record = root / f"shared-{name}.json"
    with FileLock(str(record) + ".lock"):
        if record.is_file():
            return json.loads(record.read_text())
        value = produce()
        record.write_text(json.dumps(value))
        return value


@pytest.fixture(scope="session")
def acdc_demo(tmp_path_factory):
    """The default ACDC phantom set (10 training + 3 testing subjects, seed 0)."""
    return shared(
        tmp_path_factory,
        "acdc_demo",
        lambda: ensure_demo_data(str(tmp_path_factory.mktemp("demo") / "acdc"), "acdc", subjects=10, seed=0),
    )


@pytest.fixture(scope="session")
def oasis_demo(tmp_path_factory):
    """The default brain phantom set with T2-like renderings (10 subjects, 80 x 96 x 112, seed 0)."""
    return shared(
        tmp_path_factory,
        "oasis_demo",
        lambda: ensure_demo_data(str(tmp_path_factory.mktemp("demo") / "oasis"), "multimodal", subjects=10, seed=0),
    )


@pytest.fixture(scope="session")
def brain_demo(tmp_path_factory):
    """The brain demo set of the midir bundle's quick config (16 subjects with T2-like renderings, 80 x 96 x 112)."""
    return shared(
        tmp_path_factory,
        "brain_demo",
        lambda: ensure_demo_data(
            str(tmp_path_factory.mktemp("demo") / "brain"), "multimodal", subjects=16, seed=0, size=(80, 96, 112)
        ),
    )


def pytest_configure(config):
    """Under xdist, share the cores between the workers: each worker and the bundle runs it starts use
    ``cores / workers`` threads (oversubscribed OpenMP threads made CPU training 10x slower). An explicit
    ``OMP_NUM_THREADS`` wins."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and "OMP_NUM_THREADS" not in os.environ:
        threads = max(1, (os.cpu_count() or 1) // int(workers))
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return _FIRST.index(name) if name in _FIRST else len(_FIRST) + 1 if name in _LAST else len(_FIRST)

    items.sort(key=rank)
