"""Running bundles as a user does: ``python -m monai.bundle <command>`` in a subprocess.

Every run gets its own copy of the bundle folder (``--bundle_root``), so tests never touch the checkout's
models, runs or data; the demo data come from the session fixtures (same parameters as the configs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The shared voxelmorph / diffusemorph trainings run 10 of quick.json's 40 epochs (the suite's time budget).
# Measured 2026-11-29 on the held-out demo pairs after 10 epochs: VoxelMorph 0.855, DiffuseMorph 0.840 (after 20:
# 0.839, 0.871) vs identity 0.622; the full quick figures are in the bundles' docs.
SHORT_ACDC = {"train#trainer#max_epochs": 10}


def copy_bundle(name: str, tmp_path) -> str:
    """A fresh copy of ``bundles/<name>`` (configs, docs, licence) in ``tmp_path``."""
    target = os.path.join(str(tmp_path), name)
    shutil.copytree(
        os.path.join(REPO, "bundles", name), target, ignore=shutil.ignore_patterns("data", "models", "runs", "eval")
    )
    return target


def monai_bundle(
    command: str, configs: list[str], root: str, *args: str, check: bool = True, timeout: int = 1200, **overrides
) -> subprocess.CompletedProcess:
    """``python -m monai.bundle <command> --config_file [...] --bundle_root root --key value ...`` from the root."""
    files = [os.path.join(root, "configs", c) for c in configs]
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        command,
        *args,
        "--config_file",
        json.dumps(files),
        "--meta_file",
        os.path.join(root, "configs", "metadata.json"),
        "--logging_file",
        os.path.join(root, "configs", "logging.conf"),
        "--bundle_root",
        root,
    ]
    for key, value in overrides.items():
        cmd += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
        )
    return result


def summary(path: str) -> dict:
    with open(os.path.join(path, "summary.json"), encoding="utf-8") as f:
        return {k: v["mean"] for k, v in json.load(f).items()}


def verify_and_export(
    root: str,
    tmp_path,
    input_shape: list[int],
    configs: tuple[str, ...] = ("inference.json",),
    checkpoint: str | None = None,
    verify_overrides: dict | None = None,
    **overrides,
) -> str:
    """``verify_net_in_out`` on the inference ``network_def`` (with ``verify_overrides``; its input is the shape in
    ``metadata.json``), then ``ckpt_export`` (traced, ``input_shape``, ``overrides``) of the trained
    ``models/model.pt`` (or ``checkpoint``); returns the TorchScript file. MONAI's own command functions, called in
    this process (the commands are these functions behind fire; a subprocess each cost 8-15 s of start-up)."""
    from monai.bundle import ckpt_export, verify_net_in_out

    files = [os.path.join(root, "configs", c) for c in configs]
    meta = os.path.join(root, "configs", "metadata.json")
    extra = verify_overrides or {}
    verify_net_in_out(net_id="network_def", meta_file=meta, config_file=files, device="cpu", bundle_root=root, **extra)
    ts = os.path.join(str(tmp_path), "model.ts")
    ckpt_export(
        net_id="network_def",
        filepath=ts,
        ckpt_file=checkpoint or os.path.join(root, "models", "model.pt"),
        meta_file=meta,
        config_file=files,
        use_trace=True,
        input_shape=input_shape,
        bundle_root=root,
        **overrides,
    )
    return ts
