"""Running bundles as a user does: ``python -m monai.bundle <command>`` in a subprocess.

Every run gets its own copy of the bundle folder (``--bundle_root``), so tests never touch the checkout's
models, runs or data; the demo data come from the session fixtures (same parameters as the configs).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The shared voxelmorph training runs 10 of quick.json's 40 epochs, the diffusemorph one 5 (the suite's time
# budget). Measured on the held-out demo pairs vs identity 0.622: VoxelMorph 0.855 after 10 epochs (2026-11-29),
# DiffuseMorph 0.774 after 5 (2026-12-02; 0.840 after 10, 0.871 after 20); the full quick figures are in the
# bundles' docs.
SHORT_ACDC = {"train#trainer#max_epochs": 10}
SHORT_DIFFUSEMORPH = {"train#trainer#max_epochs": 5, "val_interval": 5}


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
    """``python -m monai.bundle <command> --config_file [...] --bundle_root root --key value ...`` from the root.

    A run expected to succeed (``check``) calls MONAI's ``run`` in this process, its output captured (the same
    function the command line reaches through fire; each subprocess spent 8-9 s of CPU importing torch, MONAI and
    ignite, the suite's largest fixed cost); one expected to fail (``check=False``) runs as a subprocess, so its
    exit status and stderr are the user's."""
    files = [os.path.join(root, "configs", c) for c in configs]
    options = {
        "config_file": files,
        "meta_file": os.path.join(root, "configs", "metadata.json"),
        "logging_file": os.path.join(root, "configs", "logging.conf"),
        "bundle_root": root,
    }
    flags = dict(zip([a.removeprefix("--") for a in args[::2]], args[1::2]))
    if check and command == "run":
        return _run_here({**options, **flags, **overrides})
    cmd = [sys.executable, "-m", "monai.bundle", command, *args]
    for key, value in options.items():
        cmd += [f"--{key}", json.dumps(value) if isinstance(value, list) else value]
    for key, value in overrides.items():
        cmd += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
        )
    return result


class _Capture(io.TextIOBase):
    """A stream that writes into the buffer of the run under way (``None``: discards). Loggers a run creates keep
    the stream they were given (MONAI adds a handler only the first time a logger is asked for), so every run
    hands out the same stream and points it at its own buffer."""

    def __init__(self) -> None:
        self.target: io.StringIO | None = None

    def write(self, text: str) -> int:
        if self.target is not None:
            self.target.write(text)
        return len(text)

    def writable(self) -> bool:
        return True


_STDOUT, _STDERR = _Capture(), _Capture()


def _run_here(options: dict) -> subprocess.CompletedProcess:
    """``monai.bundle.scripts.run(**options)`` from the repository root, stdout / stderr (and the bundle's log,
    which its logging.conf sends to stdout) captured as a subprocess's would be."""
    from monai.bundle.scripts import run

    _STDOUT.target, _STDERR.target, cwd = io.StringIO(), io.StringIO(), os.getcwd()
    try:
        os.chdir(REPO)
        with contextlib.redirect_stdout(_STDOUT), contextlib.redirect_stderr(_STDERR):
            run(**options)
        return subprocess.CompletedProcess(["run"], 0, _STDOUT.target.getvalue(), _STDERR.target.getvalue())
    except Exception as error:
        out, err = _STDOUT.target.getvalue()[-4000:], _STDERR.target.getvalue()[-6000:]
        raise AssertionError(f"run({options}) failed: {error!r}\n{out}\n{err}") from error
    finally:
        os.chdir(cwd)
        _STDOUT.target = _STDERR.target = None


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
