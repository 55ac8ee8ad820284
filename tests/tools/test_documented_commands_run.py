"""Every ``python -m monai.bundle run`` and ``torchrun`` command the docs show (README.md and each bundle's
docs/README.md), run verbatim in the order the docs give them, with a tiny budget appended, from a fresh copy of
the bundles' configs (the repository root a user's clone has, without trained models or demo data).

The budget appends the keys every bundle names alike, where the command's configs have them: one epoch
(``max_epochs``, ``bootstrap_epochs``), validation each epoch, 2 pairs per epoch, 2 sampling and refinement steps;
commands at the paper settings run at the bundle's quick grid and network size (what its ``quick.json`` sets
besides the budget: ``demo_size``, ``pixdim``, ``image_size``, the network's widths and depths) unless they or
their overlays set them. Real-data commands run against demo-layout folders standing in
for the real data sets (``/data/ACDC``: the ACDC layout, ``/data/OASIS``: Learn2Reg OASIS); ``my_pairs.json`` is a
datalist of two demo pairs. The static checks of every command (and the ``regzoo`` and ``monailabel`` ones) are in
``test_documented_commands.py``; the ``regzoo`` commands run in ``tests/tools``' own tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import fire
import pytest
from monai.bundle import ConfigParser
from monai.bundle.scripts import run

from common.data import ensure_demo_data, inference_pairs

from .test_documented_commands import COMMANDS_FOUND, REPO, _has, _kind, _options

pytestmark = pytest.mark.slow

BUDGET = {
    "max_epochs": 1,
    "bootstrap_epochs": 1,
    "val_interval": 1,
    "pairs_per_epoch": 2,
    "max_pairs": 2,
    "sampling_steps": 2,
    "start_step": 1,  # generation from t = 1: 2 DDPM steps
    "refine_steps": 2,
    "demo_subjects": 8,
}
# what quick.json sets beyond the budget: the grid and the network's size
NOT_GRID = (
    "_desc_",
    "val_interval",
    "learning_rate",
    "output_dir",
    "max_epochs",
    "bootstrap_epochs",
    "pairs_per_epoch",
    "lr_step",
)
DOCS = ["README.md", *sorted(f"bundles/{b}/docs/README.md" for b in os.listdir(os.path.join(REPO, "bundles")))]
RUNS = {
    doc: [argv for where, argv in COMMANDS_FOUND if where.startswith(doc + ":") and _kind(argv) == "monai"]
    for doc in DOCS
}


def _files(argv: list[str]) -> list[str]:
    files = dict(_options(argv[argv.index("run") + 1 :])[0])["config_file"]
    return fire.parser.DefaultParseValue(files) if files.startswith("[") else [files]


def _budgeted(argv: list[str]) -> list[str]:
    """``argv`` with the tiny budget (in place of the command's own value) and the quick grid and network size
    (unless the command or one of its overlays sets them), for the keys the command's configs have."""
    files = _files(argv)
    parser = ConfigParser()
    parser.read_config(files)
    quick = os.path.join(os.path.dirname(files[0]), "quick.json")
    with open(quick, encoding="utf-8") as f:
        grid = {k: v for k, v in json.load(f).items() if k not in NOT_GRID}
    given = {name for name, _ in _options(argv[argv.index("run") + 1 :])[0]}
    for overlay in files[1:]:  # a variant's own grid (brain_atlas.json) stays
        with open(overlay, encoding="utf-8") as f:
            given.update(json.load(f))
    extra = {k: v for k, v in grid.items() if k not in given}
    extra.update(BUDGET)
    out = list(argv)
    for key, value in extra.items():
        if not _has(parser, key):
            continue
        value = json.dumps(value).replace(" ", "")
        if f"--{key}" in out:
            out[out.index(f"--{key}") + 1] = value
        else:
            out += [f"--{key}", value]
    return out


def _substituted(argv: list[str], stand_ins: dict[str, str], datalist: str) -> list[str]:
    return [stand_ins.get(w, datalist if w == "my_pairs.json" else w) for w in argv]


def _write_datalist(path: str, layout: str, root: str) -> None:
    pairs = inference_pairs(layout=layout, data_root=root)[:2]
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"testing": pairs}, f)


@pytest.mark.parametrize("doc", [d for d in DOCS if RUNS[d]])
def test_documented_commands_run_verbatim(doc, acdc_demo, tmp_path, monkeypatch):
    for name in os.listdir(os.path.join(REPO, "bundles")):  # the configs a fresh clone has, nothing trained
        shutil.copytree(os.path.join(REPO, "bundles", name, "configs"), tmp_path / "bundles" / name / "configs")
        with open(tmp_path / "bundles" / name / "configs" / "train.json", encoding="utf-8") as f:
            if '"kind": "acdc"' in f.read():  # the bundle's default demo set is the session's (written once)
                shutil.copytree(acdc_demo, tmp_path / "bundles" / name / "data" / "demo_acdc")
    monkeypatch.chdir(tmp_path)
    stand_ins = {}
    if any("/data/ACDC" in argv for argv in RUNS[doc]):
        stand_ins["/data/ACDC"] = str(shutil.copytree(acdc_demo, tmp_path / "real" / "ACDC"))
    if any("/data/OASIS" in argv for argv in RUNS[doc]):
        stand_ins["/data/OASIS"] = ensure_demo_data(
            str(tmp_path / "real" / "OASIS"), "oasis", subjects=8, seed=3, size=(48, 56, 64)
        )
    datalist = str(tmp_path / "my_pairs.json")
    if any("my_pairs.json" in argv for argv in RUNS[doc]):
        if any(b in doc for b in ("midir", "transmorph_tvf")):
            root = ensure_demo_data(str(tmp_path / "pairs" / "oasis"), "oasis", seed=5, size=(48, 56, 64))
            _write_datalist(datalist, "oasis", root)
        else:  # the session's ACDC set (writing another took 100-250 s per document)
            _write_datalist(datalist, "acdc", acdc_demo)
    for argv in RUNS[doc]:
        command = _budgeted(_substituted(argv, stand_ins, datalist))
        start = time.perf_counter()
        if command[0] == "torchrun":
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            result = subprocess.run(
                [sys.executable, "-m", "torch.distributed.run", *command[1:]], capture_output=True, text=True, env=env
            )
            assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr[-3000:]}"
        else:
            fire.Fire({"run": run}, command=command[command.index("run") :])
        print(f"{time.perf_counter() - start:6.1f} s  {' '.join(command)}")
