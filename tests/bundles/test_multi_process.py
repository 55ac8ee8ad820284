"""Training beyond one process: ``multi_gpu_train.json`` under ``torchrun`` with 2 CPU processes (gloo), for every
bundle's training config (ddm's train.json and multi_gpu_train.json are diffusemorph's: test_ddm.py checks the
former, test_bundle_layout.py that every multi_gpu_train.json uses the same rank handlers)."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from .helpers import REPO, copy_bundle

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_on_two_ranks(root: str, tmp_path, configs: list[str], dataset: str, **overrides) -> str:
    """``torchrun --nproc_per_node=2`` of ``train.json``-like ``configs[0]`` + multi_gpu_train.json + the rest, for
    1 epoch with validation after it; after training every rank saves its weights as ``models/rank<r>.pt``.
    Returns the processes' output."""
    with open(os.path.join(root, "configs", "multi_gpu_train.json"), encoding="utf-8") as f:
        run = json.load(f)["run"]
    check = {"run": [*run, "$torch.save(@network.module.state_dict(), @ckpt_dir + f'/rank{dist.get_rank()}.pt')"]}
    check_file = tmp_path / "rank_weights.json"
    check_file.write_text(json.dumps(check))
    files = [os.path.join(root, "configs", c) for c in (configs[0], "multi_gpu_train.json", *configs[1:])]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={_free_port()}",
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        json.dumps([*files, str(check_file)]),
        "--bundle_root",
        root,
        "--dataset_dir",
        dataset,
        "--val_interval",
        "1",
    ]
    for key, value in overrides.items():
        cmd += [f"--{key}", json.dumps(value)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, check=False, cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout + result.stderr


def _check_ranks(root: str, output: str, best: str, state: str) -> None:
    models = os.path.join(root, "models")
    ranks = [torch.load(os.path.join(models, f"rank{r}.pt"), weights_only=True) for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])  # DDP kept the ranks identical
    assert torch.load(os.path.join(models, best), weights_only=True).keys() == ranks[0].keys()  # rank 0's best
    assert os.path.isfile(os.path.join(models, state))
    assert output.count("Epoch[1] Metrics") == 1  # validation table on rank 0 only
    for r in (0, 1):
        os.remove(os.path.join(models, f"rank{r}.pt"))


EPOCHS = {"train#trainer#max_epochs": 1, "pairs_per_epoch": 2}


@pytest.mark.parametrize(
    "bundle, data, stages",
    [
        ("voxelmorph", "acdc_demo", [(["train.json", "quick.json"], EPOCHS, "model.pt", "training_state.pt")]),
        (
            "midir",
            "brain_demo",
            [(["train.json", "quick.json"], {**EPOCHS, "pairs_per_epoch": 4}, "model.pt", "training_state.pt")],
        ),
        (
            "transmorph_tvf",
            "brain_demo",
            [(["train.json", "quick.json"], {"max_epochs": 1, "pairs_per_epoch": 2}, "model.pt", "training_state.pt")],
        ),
        ("diffusemorph", "acdc_demo", [(["train.json", "quick.json"], EPOCHS, "model.pt", "training_state.pt")]),
        (
            "diffusereg",
            "acdc_demo",
            [
                (
                    ["train_bootstrap.json", "quick.json"],
                    {"bootstrap_epochs": 1, "pairs_per_epoch": 2},
                    "bootstrap.pt",
                    "bootstrap_state.pt",
                ),
                (
                    ["train.json", "quick.json"],
                    {"max_epochs": 1, "pairs_per_epoch": 2, "sampling_steps": 2},
                    "model.pt",
                    "training_state.pt",
                ),
            ],
        ),
    ],
)
def test_two_processes_train_in_sync_and_checkpoint_once(bundle, data, stages, request, tmp_path):
    dataset = request.getfixturevalue(data)
    root = copy_bundle(bundle, tmp_path)
    for configs, overrides, best, state in stages:
        output = _train_on_two_ranks(root, tmp_path, configs, dataset, **overrides)
        _check_ranks(root, output, best, state)
