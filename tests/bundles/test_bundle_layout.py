"""Every bundle has the files and metadata keys the model zoo expects; the schema check runs when it can download."""

import json
import os
import subprocess
import sys

import pytest

from .helpers import REPO

BUNDLES = sorted(d for d in os.listdir(os.path.join(REPO, "bundles")) if not d.startswith("."))
FILES = [
    "configs/metadata.json",
    "configs/train.json",
    "configs/quick.json",
    "configs/inference.json",
    "configs/evaluate.json",
    "configs/multi_gpu_train.json",
    "configs/logging.conf",
    "docs/README.md",
    "LICENSE",
]
META_KEYS = [
    "version",
    "changelog",
    "monai_version",
    "pytorch_version",
    "numpy_version",
    "required_packages_version",
    "task",
    "description",
    "authors",
    "copyright",
    "references",
    "intended_use",
    "data_source",
    "network_data_format",
]


@pytest.mark.parametrize("bundle", BUNDLES)
def test_bundle_files_and_metadata(bundle):
    root = os.path.join(REPO, "bundles", bundle)
    for name in FILES:
        assert os.path.isfile(os.path.join(root, name)), f"{bundle} lacks {name}"
    for name in os.listdir(os.path.join(root, "configs")):
        if name.endswith(".json"):
            with open(os.path.join(root, "configs", name), encoding="utf-8") as f:
                json.load(f)
    meta = json.load(open(os.path.join(root, "configs", "metadata.json"), encoding="utf-8"))
    assert [k for k in META_KEYS if k not in meta] == []
    assert meta["name"] == bundle
    fmt = meta["network_data_format"]
    assert fmt["inputs"]["image"]["num_channels"] == 2 and fmt["inputs"]["image"]["channel_def"] == {
        "0": "moving",
        "1": "fixed",
    }
    assert fmt["outputs"]["pred"]["num_channels"] == len(fmt["outputs"]["pred"]["spatial_shape"])
    train = json.load(open(os.path.join(root, "configs", "train.json"), encoding="utf-8"))
    for key in ("bundle_root", "device", "dataset_dir", "network_def", "val_interval"):
        assert key in train, f"{bundle}/train.json lacks {key}"
    assert "trainer" in train["train"] and "max_epochs" in train["train"]["trainer"] and "handlers" in train["train"]
    assert "evaluator" in train["validate"]
    infer = json.load(open(os.path.join(root, "configs", "inference.json"), encoding="utf-8"))
    for key in ("bundle_root", "device", "network_def", "inferer", "output_dir"):
        assert key in infer, f"{bundle}/inference.json lacks {key}"
    assert not os.path.isdir(os.path.join(root, "scripts")), "bundles hold configuration, not code"
    # one default refinement per bundle: regzoo register and the register run read inference.json's, the
    # evaluation overlay refine.json repeats it (it stacks on train.json, not on inference.json)
    assert int(infer["refine_steps"]) > 0 and float(infer["refine_lr"]) > 0
    refine = os.path.join(root, "configs", "refine.json")
    if os.path.isfile(refine):
        overlay = json.load(open(refine, encoding="utf-8"))
        assert (overlay["refine_steps"], overlay["refine_lr"]) == (infer["refine_steps"], infer["refine_lr"])
    multi = json.load(open(os.path.join(root, "configs", "multi_gpu_train.json"), encoding="utf-8"))
    # every rank runs every state-changing handler (validation, learning-rate schedules, field statistics)
    assert multi["train#trainer#train_handlers"] == "$common.engines.rank_handlers(@train#handlers)"


def _verify_metadata(bundle: str, schema: str) -> subprocess.CompletedProcess:
    meta = os.path.join(REPO, "bundles", bundle, "configs", "metadata.json")
    command = [sys.executable, "-m", "monai.bundle", "verify_metadata", "--meta_file", meta, "--filepath", schema]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    """The model-zoo metadata schema, downloaded once (by MONAI's ``verify_metadata``); offline, every schema
    check is skipped after this one attempt."""
    path = str(tmp_path_factory.mktemp("schema") / "schema.json")
    result = _verify_metadata(BUNDLES[0], path)
    if not os.path.exists(path):
        pytest.skip(
            "offline: the model-zoo metadata schema could not be downloaded, so only the schema check is skipped"
        )
    return path, result


@pytest.mark.parametrize("bundle", BUNDLES)
def test_metadata_against_model_zoo_schema(bundle, schema):
    path, first = schema
    result = first if bundle == BUNDLES[0] else _verify_metadata(bundle, path)
    assert result.returncode == 0, result.stderr[-3000:]
