"""Training beyond one process: ``multi_gpu_train.json`` under ``torchrun`` with 2 CPU processes (gloo)."""

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


@pytest.mark.parametrize(
    "bundle, configs, data",
    # one bundle in CI for time (all share common.engines.rank_handlers, checked by the layout test);
    # transmorph_tvf (a learning-rate schedule) and diffusereg (field statistics all-reduced) passed by hand
    [("voxelmorph", ["quick.json"], "acdc_demo")],
)
def test_two_processes_train_in_sync_and_checkpoint_once(bundle, configs, data, request, tmp_path):
    dataset = request.getfixturevalue(data)
    root = copy_bundle(bundle, tmp_path)
    with open(os.path.join(root, "configs", "multi_gpu_train.json"), encoding="utf-8") as f:
        run = json.load(f)["run"]
    # after training, every rank saves its own weights: DDP must have kept them identical
    check = {"run": [*run, "$torch.save(@network.module.state_dict(), @ckpt_dir + f'/rank{dist.get_rank()}.pt')"]}
    check_file = tmp_path / "rank_weights.json"
    check_file.write_text(json.dumps(check))
    files = [os.path.join(root, "configs", c) for c in ("train.json", "multi_gpu_train.json", *configs)]
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
        "--train#trainer#max_epochs",
        "2",
        "--val_interval",
        "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    models = os.path.join(root, "models")
    ranks = [torch.load(os.path.join(models, f"rank{r}.pt"), weights_only=True) for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])
    best = torch.load(os.path.join(models, "model.pt"), weights_only=True)
    assert best.keys() == ranks[0].keys()  # the best-Dice checkpoint (rank 0 only) was written
    assert os.path.isfile(os.path.join(models, "training_state.pt"))
    assert result.stdout.count("Epoch[2] Metrics") + result.stderr.count("Epoch[2] Metrics") == 1  # rank 0 only
