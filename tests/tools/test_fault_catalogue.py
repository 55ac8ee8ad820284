"""The fault catalogue: bad inputs and interruptions against ``regzoo register``, ``fetch``, ``package``,
``make-demo-data`` and the trainings' writers. Each case asserts the one-line error (exit code 2, the file named,
no traceback), that nothing partial is left behind and that nothing that existed was changed.

The register cases run the command in this process (``regzoo.cli.main``) with a voxelmorph network of fixed small
weights (``test_register._checkpoint``); the kill cases run a real process and kill it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import zipfile

import nibabel as nib
import numpy as np
import pytest
import torch

from common.atomic import OUTPUT_MARKER
from regzoo import cli

from .test_register import _checkpoint, pair  # noqa: F401  (the module fixture)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(monkeypatch, capsys, *argv: str) -> tuple[int, str]:
    """(exit code, stderr) of ``regzoo <argv>`` run in this process."""
    monkeypatch.setattr(sys, "argv", ["regzoo", *argv])
    code = 0
    try:
        cli.main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    return code, capsys.readouterr().err


def _refused(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("regzoo: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], err


def _snapshot(folder) -> dict:
    """{relative path: bytes} of every file under ``folder`` (what must not change)."""
    found = {}
    for directory, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def _leftovers(folder) -> list[str]:
    """Temporary or partial entries anywhere under ``folder``."""
    return [
        os.path.join(d, n)
        for d, dirs, files in os.walk(folder)
        for n in dirs + files
        if n.endswith(".partial") or ".tmp-" in n or ".fetch-" in n
    ]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return _checkpoint("voxelmorph", tmp_path_factory.mktemp("ckpt") / "vm.pt")


def _register_args(pair, out, ckpt, **extra) -> list[str]:  # noqa: F811
    args = {"fixed": pair["fixed"], "moving": pair["moving"], "checkpoint": ckpt, "out": str(out)}
    args.update({"affine": "none", "refine": "0"}, **extra)
    flags = [item for key, value in args.items() if value is not None for item in (f"--{key}", value)]
    return ["register", "--bundle", "voxelmorph", *flags]


def _save(path, data, affine=None, dtype=np.float32):
    nib.save(nib.Nifti1Image(np.asarray(data, dtype), np.eye(4) if affine is None else affine), str(path))
    return str(path)


# --------------------------------------------------------------------------------------------- register: inputs


def _bad_file(kind: str, pair, tmp_path) -> tuple[dict, str]:  # noqa: F811
    """(flags to change, expected words in the error) of one bad input file."""
    moving = nib.load(pair["moving"])
    data = np.asarray(moving.dataobj, np.float32)
    label = np.asarray(nib.load(pair["moving_label"]).dataobj)
    if kind == "2d":
        return {"moving": _save(tmp_path / "m.nii.gz", np.zeros((8, 8)))}, "expected a 3D image"
    if kind == "4d":
        return {"moving": _save(tmp_path / "m.nii.gz", np.zeros((8, 8, 8, 3)))}, "expected a 3D image"
    if kind == "nan":
        data[3, 4, 5] = np.nan
        return {"moving": _save(tmp_path / "m.nii.gz", data, moving.affine)}, "NaN"
    if kind == "inf":
        data[3, 4, 5] = np.inf
        return {"fixed": _save(tmp_path / "f.nii.gz", data, moving.affine)}, "infinite"
    if kind == "truncated":
        raw = open(pair["moving"], "rb").read()
        path = tmp_path / "m.nii.gz"
        path.write_bytes(raw[: len(raw) // 2])
        return {"moving": str(path)}, "m.nii.gz"
    if kind == "empty":
        (tmp_path / "m.nii.gz").write_bytes(b"")
        return {"moving": str(tmp_path / "m.nii.gz")}, "not a readable NIfTI"
    if kind == "not_nifti":
        (tmp_path / "m.png").write_bytes(b"\x89PNG")
        return {"moving": str(tmp_path / "m.png")}, "not a NIfTI file"
    if kind == "missing":
        return {"moving": str(tmp_path / "absent.nii.gz")}, "file not found"
    if kind == "folder":
        (tmp_path / "dir.nii.gz").mkdir()
        return {"moving": str(tmp_path / "dir.nii.gz")}, "is a folder"
    if kind == "singular":
        affine = moving.affine.copy()
        affine[:3, 2] = 0  # written as the sform only (nibabel cannot write such a qform), as some tools do
        image = nib.Nifti1Image(data, None)
        image.set_sform(affine, code=1)
        nib.save(image, tmp_path / "m.nii.gz")
        return {"moving": str(tmp_path / "m.nii.gz")}, "singular affine"
    if kind == "label_fractional":
        smooth = label.astype(np.float32) * 0.37
        return {"moving_label": _save(tmp_path / "l.nii.gz", smooth, moving.affine)}, "non-integer"
    if kind == "label_grid":
        return {"moving_label": _save(tmp_path / "l.nii.gz", np.zeros((10, 10, 10)), dtype=np.int16)}, "grid"
    if kind == "label_nan":
        bad = label.astype(np.float32)
        bad[0, 0, 0] = np.nan
        return {"moving_label": _save(tmp_path / "l.nii.gz", bad, moving.affine)}, "NaN"
    raise AssertionError(kind)


BAD_FILES = [
    "2d",
    "4d",
    "nan",
    "inf",
    "truncated",
    "empty",
    "not_nifti",
    "missing",
    "folder",
    "singular",
    "label_fractional",
    "label_grid",
    "label_nan",
]


@pytest.mark.parametrize("kind", BAD_FILES)
def test_bad_input_file_is_refused_and_nothing_is_written(kind, pair, ckpt, tmp_path, monkeypatch, capsys):  # noqa: F811
    change, words = _bad_file(kind, pair, tmp_path)
    out = tmp_path / "out"
    labels = {k: v for k, v in change.items() if k.endswith("label")}
    code, err = _run(monkeypatch, capsys, *_register_args({**pair, **change}, out, ckpt, **labels))
    file_named = next(iter(change.values()))
    _refused(code, err, words, os.path.basename(file_named))
    assert not out.exists() and not _leftovers(tmp_path)


@pytest.mark.parametrize(
    "case, words",
    [
        ("unknown_bundle", "unknown bundle 'nope'"),
        ("affine_word", "--affine must be one of"),
        ("missing_config", "config 'absent.json' not found"),
        ("foreign_checkpoint", "another bundle"),
        ("missing_checkpoint", "checkpoint not found"),
        ("code_pickle", "not a readable PyTorch checkpoint"),
        ("no_pair", "give --fixed and --moving"),
        ("refine_word", "--refine takes a whole number of steps"),
    ],
)
def test_bad_command_is_refused_before_any_work(case, words, pair, ckpt, tmp_path, monkeypatch, capsys):  # noqa: F811
    out = tmp_path / "out"
    args = _register_args(pair, out, ckpt)
    flag = {"affine_word": ("--affine", "sideways"), "missing_config": ("--configs", "absent.json")}
    if case == "unknown_bundle":
        args[2] = "nope"
    elif case in flag:
        args += list(flag[case])
    elif case == "foreign_checkpoint":
        other = _checkpoint("transmorph_tvf", tmp_path / "tm.pt", ("quick.json",), tvf=True)
        args[args.index("--checkpoint") + 1] = other
    elif case == "missing_checkpoint":
        args[args.index("--checkpoint") + 1] = str(tmp_path / "none.pt")
    elif case == "refine_word":
        args[args.index("--refine") + 1] = "lots"
    elif case == "code_pickle":
        import pickle

        marker = tmp_path / "executed"

        class Evil:
            def __reduce__(self):
                return (open, (str(marker), "w"))

        (tmp_path / "evil.pt").write_bytes(pickle.dumps(Evil()))
        args[args.index("--checkpoint") + 1] = str(tmp_path / "evil.pt")
    elif case == "no_pair":
        args = ["register", "--bundle", "voxelmorph", "--out", str(out)]
    code, err = _run(monkeypatch, capsys, *args)
    _refused(code, err, words)
    assert not out.exists() and not _leftovers(tmp_path)
    assert not (tmp_path / "executed").exists()  # a pickle's code is never run


# ----------------------------------------------------------------------------------------- register: outputs


def test_overwrite_never_deletes_a_folder_of_the_users_files(pair, ckpt, tmp_path, monkeypatch, capsys):  # noqa: F811
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "thesis.txt").write_text("four years")
    (out / "sub" / "important.csv").write_text("a,b\n")
    before = _snapshot(out)
    code, err = _run(monkeypatch, capsys, *_register_args(pair, out, ckpt), "--overwrite")
    _refused(code, err, str(out), "not written by regzoo")
    assert _snapshot(out) == before and not _leftovers(tmp_path)


def test_overwrite_replaces_only_what_regzoo_wrote(pair, ckpt, tmp_path, monkeypatch, capsys):  # noqa: F811
    out = tmp_path / "out"
    code, err = _run(monkeypatch, capsys, *_register_args(pair, out, ckpt))
    assert code == 0, err
    assert (out / OUTPUT_MARKER).is_file() and (out / "transform.h5").is_file()
    # without --overwrite: refused, unchanged
    before = _snapshot(out)
    code, err = _run(monkeypatch, capsys, *_register_args(pair, out, ckpt))
    _refused(code, err, str(out), "exists")
    assert _snapshot(out) == before
    # with --overwrite: replaced (the result of a different affine setting)
    code, err = _run(monkeypatch, capsys, *_register_args(pair, out, ckpt, affine="rigid"), "--overwrite")
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["affine"]["model"] == "rigid"
    # a user's note added to the result folder makes it theirs: refused even with --overwrite, note kept
    (out / "notes.txt").write_text("mine")
    before = _snapshot(out)
    code, err = _run(monkeypatch, capsys, *_register_args(pair, out, ckpt), "--overwrite")
    _refused(code, err, "notes.txt")
    assert _snapshot(out) == before and not _leftovers(tmp_path)


def test_a_users_partial_folder_beside_the_output_is_left_alone(pair, ckpt, tmp_path, monkeypatch, capsys):  # noqa: F811
    (tmp_path / "out.partial").mkdir()
    (tmp_path / "out.partial" / "draft.txt").write_text("mine")
    code, err = _run(monkeypatch, capsys, *_register_args(pair, tmp_path / "out", ckpt))
    assert code == 0, err
    assert (tmp_path / "out.partial" / "draft.txt").read_text() == "mine"


@pytest.mark.parametrize("case", ["out_is_file", "parent_is_file"])
def test_an_output_that_cannot_be_a_folder_is_refused_first(case, pair, ckpt, tmp_path, monkeypatch, capsys):  # noqa: F811
    (tmp_path / "taken").write_text("keep me")
    out = tmp_path / "taken" if case == "out_is_file" else tmp_path / "taken" / "out"
    code, err = _run(monkeypatch, capsys, *_register_args(pair, out, ckpt))
    _refused(code, err, "taken")
    assert (tmp_path / "taken").read_text() == "keep me" and not _leftovers(tmp_path)


@pytest.mark.parametrize("case", ["constant", "spacing_ratio"])
def test_suspicious_images_are_registered_with_a_warning(case, pair, ckpt, tmp_path, monkeypatch, capsys):  # noqa: F811
    moving = nib.load(pair["moving"])
    if case == "constant":
        path, words = _save(tmp_path / "m.nii.gz", np.zeros(moving.shape), moving.affine), "is constant"
    else:
        affine = moving.affine.copy()
        affine[:3, 2] *= 5000 / np.linalg.norm(affine[:3, 2])
        path, words = _save(tmp_path / "m.nii.gz", np.asarray(moving.dataobj), affine), "ratio over 100:1"
    code, err = _run(monkeypatch, capsys, *_register_args({**pair, "moving": path}, tmp_path / "out", ckpt))
    assert code == 0, err
    assert f"regzoo: warning: {path}" in err and words in err


# -------------------------------------------------------------------------------------------- register: batch


def _datalist(tmp_path, entries, name="pairs.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"testing": entries}))
    return str(path)


def test_batch_pairs_with_the_same_folder_and_stem_do_not_share_a_result(pair, ckpt, tmp_path, monkeypatch, capsys):  # noqa: F811
    """``a/x/fixed.nii.gz`` and ``b/x/fixed.nii.gz``: two folders, and each row holds its own pair's files."""
    entries = []
    for root, shift in (("a", 0), ("b", 3)):
        folder = tmp_path / root / "x"
        folder.mkdir(parents=True)
        moving = nib.load(pair["moving"])
        data = np.roll(np.asarray(moving.dataobj), shift, axis=0)
        entries.append(
            {
                "fixed": _save(folder / "fixed.nii.gz", np.asarray(nib.load(pair["fixed"]).dataobj),
                               nib.load(pair["fixed"]).affine),
                "moving": _save(folder / "moving.nii.gz", data, moving.affine),
            }
        )  # fmt: skip
    out = tmp_path / "batch"
    args = ["register", "--bundle", "voxelmorph", "--datalist", _datalist(tmp_path, entries), "--out", str(out)]
    code, err = _run(monkeypatch, capsys, *args, "--checkpoint", ckpt, "--affine", "none", "--refine", "0")
    assert code == 0, err
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3
    assert any(f"{os.sep}a{os.sep}x{os.sep}moving" in r for r in rows[1:])
    assert any(f"{os.sep}b{os.sep}x{os.sep}moving" in r for r in rows[1:])
    folders = [p for p in os.listdir(out) if (out / p).is_dir()]
    assert len(folders) == 2
    moved = {json.loads((out / f / "metrics.json").read_text())["moving"] for f in folders}
    assert moved == {e["moving"] for e in entries}


def test_batch_goes_on_past_a_bad_pair_and_names_it(pair, ckpt, tmp_path, monkeypatch, capsys):  # noqa: F811
    data = np.asarray(nib.load(pair["moving"]).dataobj).copy()
    data[1, 1, 1] = np.nan
    nan = _save(tmp_path / "nan.nii.gz", data, nib.load(pair["moving"]).affine)
    entries = [
        {"fixed": pair["fixed"], "moving": pair["moving"]},
        {"fixed": pair["fixed"], "moving": nan},
        {"fixed": pair["moving"], "moving": pair["fixed"]},
    ]
    out = tmp_path / "batch"
    args = ["register", "--bundle", "voxelmorph", "--datalist", _datalist(tmp_path, entries), "--out", str(out)]
    code, err = _run(monkeypatch, capsys, *args, "--checkpoint", ckpt, "--affine", "none", "--refine", "0")
    assert code == 2 and "Traceback" not in err, err
    assert "nan.nii.gz" in err and "1 of 3 pairs failed" in err
    with open(out / "metrics.csv", encoding="utf-8") as f:
        rows = list(__import__("csv").DictReader(f))
    assert [bool(r["error"]) for r in rows] == [False, True, False]
    assert "NaN" in rows[1]["error"]
    assert sum((out / p / "metrics.json").is_file() for p in os.listdir(out) if (out / p).is_dir()) == 2
    assert not _leftovers(out)


def test_batch_registers_a_repeated_entry_once_with_a_warning(pair, ckpt, tmp_path, monkeypatch, capsys):  # noqa: F811
    entries = [{"fixed": pair["fixed"], "moving": pair["moving"]}] * 2
    out = tmp_path / "batch"
    args = ["register", "--bundle", "voxelmorph", "--datalist", _datalist(tmp_path, entries), "--out", str(out)]
    code, err = _run(monkeypatch, capsys, *args, "--checkpoint", ckpt, "--affine", "none", "--refine", "0")
    assert code == 0, err
    assert "repeats an earlier entry" in err
    assert len((out / "metrics.csv").read_text().splitlines()) == 2


@pytest.mark.parametrize(
    "spec, words",
    [
        ('{"testing": ["fixed.nii.gz"]}', "is a str, expected an object"),
        ('{"testing": [{"fixed": "f.nii.gz", "moving": 3}]}', "expected a file path"),
        ('{"testing": [{"fixed": "f.nii.gz"}]}', "lacks ['moving']"),
        ('{"training": []}', "no 'testing' list"),
        ('["fixed.nii.gz"]', "no 'testing' list"),
        ('{"testing": [', "not valid JSON"),
        ('{"testing": []}', "is empty"),
    ],
)
def test_bad_datalist_is_refused_with_its_file_named(spec, words, ckpt, tmp_path, monkeypatch, capsys):
    (tmp_path / "pairs.json").write_text(spec)
    out = tmp_path / "batch"
    args = ["register", "--bundle", "voxelmorph", "--datalist", str(tmp_path / "pairs.json"), "--out", str(out)]
    code, err = _run(monkeypatch, capsys, *args, "--checkpoint", ckpt)
    _refused(code, err, "pairs.json", words)
    assert not out.exists()


# -------------------------------------------------------------------------- trainings: kill during every save

_KILL = """
import os, signal, sys, torch
real_save = torch.save
def killed_while_writing(obj, f, *args, **kwargs):
    with open(f, "wb") as h:
        h.write(b"half a checkpoint")
    os.kill(os.getpid(), signal.SIGKILL)
torch.save = killed_while_writing
"""


def _killed(code: str, tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _KILL + textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == -signal.SIGKILL, result.stderr


def test_killed_while_saving_the_best_model_keeps_the_previous_one(tmp_path):
    from common.engines import AtomicDiskSaver

    AtomicDiskSaver(str(tmp_path), "model.pt")({"w": torch.ones(3)}, "ignored.pt")
    _killed(
        f"""
        from common.engines import AtomicDiskSaver
        AtomicDiskSaver({str(tmp_path)!r}, "model.pt")({{"w": torch.zeros(3)}}, "ignored.pt")
        """,
        tmp_path,
    )
    assert torch.equal(torch.load(tmp_path / "model.pt", weights_only=True)["w"], torch.ones(3))
    assert _leftovers(tmp_path)  # a SIGKILL leaves the hidden temporary ...
    AtomicDiskSaver(str(tmp_path), "model.pt")({"w": torch.full((3,), 2.0)}, "ignored.pt")
    assert not _leftovers(tmp_path)  # ... which the next save of the same file removes
    assert torch.equal(torch.load(tmp_path / "model.pt", weights_only=True)["w"], torch.full((3,), 2.0))


def test_killed_while_saving_the_training_state_keeps_the_previous_one(tmp_path):
    from ignite.engine import Engine

    from common.engines import TrainingStateSaver

    path = str(tmp_path / "state.pt")
    net = torch.nn.Linear(2, 2)
    TrainingStateSaver(path, {"network": net})(Engine(lambda e, b: None))
    _killed(
        f"""
        from ignite.engine import Engine
        from common.engines import TrainingStateSaver
        TrainingStateSaver({path!r}, {{"network": torch.nn.Linear(2, 2)}})(Engine(lambda e, b: None))
        """,
        tmp_path,
    )
    state = torch.load(path, weights_only=True)["network"]
    assert torch.equal(state["weight"], net.state_dict()["weight"])


def test_an_interrupted_table_write_keeps_the_previous_table(tmp_path, monkeypatch):
    from common.engines import RegistrationMetricsTable

    table = RegistrationMetricsTable(str(tmp_path))
    table.rows = [{"pair": "a", "dice_mean": 0.5}]
    table.write()
    before = _snapshot(tmp_path)
    table.rows = [{"pair": "b", "dice_mean": 0.9}]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(json, "dump", interrupted)
    with pytest.raises(KeyboardInterrupt):
        table.write()
    assert _snapshot(tmp_path)["summary.json"] == before["summary.json"] and not _leftovers(tmp_path)


def test_a_resumed_training_replaces_the_best_model_only_with_a_better_one(tmp_path):
    """The best score travels with the training state (``BestModelSaver.state_dict``): after a resume, a worse
    validation leaves ``model.pt`` alone. Without the restored state it would be replaced (the control)."""
    from ignite.engine import Engine, Events

    from common.engines import BestModelSaver

    def validate(score: float, weight: float, state: dict | None = None) -> BestModelSaver:
        net = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.constant_(net.weight, weight)
        saver = BestModelSaver(str(tmp_path), {"model": net}, key_metric_name="dice")
        if state is not None:
            saver.load_state_dict(state)
        engine = Engine(lambda e, b: None)
        engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(dice=score))
        saver.attach(engine)
        engine.run([0], max_epochs=1)
        return saver

    def best_weight() -> float:
        return float(torch.load(tmp_path / "model.pt", weights_only=True)["weight"])

    state = validate(0.8, 1.0).state_dict()
    validate(0.7, 2.0, json.loads(json.dumps(state)))  # resumed: worse, kept
    assert best_weight() == 1.0
    validate(0.9, 3.0, state)  # resumed: better, replaced
    assert best_weight() == 3.0
    validate(0.1, 4.0)  # the control: a saver that forgot the best score replaces it with a worse model
    assert best_weight() == 4.0


# --------------------------------------------------------------------------------------------------- fetch


class _SilentServer:
    """Accepts connections on 127.0.0.1 and never answers."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.held, self.stop = [], False
        threading.Thread(target=self._accept, daemon=True).start()
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self):
        while not self.stop:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def __exit__(self, *exc):
        self.stop = True
        self.sock.close()
        for conn in self.held:
            conn.close()


def _md5(path) -> str:
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def _archive(tmp_path, top="toy", large_path="models/model.pt", weights_md5=None, large_files=True) -> str:
    """A minimal model-zoo archive ``toy_v0.1.0.zip`` beside weights, and its index; returns the index path."""
    weights = tmp_path / "toy_model.pt"
    torch.save({"w": torch.ones(2)}, weights)
    spec = "large_files: []\n"
    if large_files:
        spec = (
            f'large_files:\n  - path: "{large_path}"\n    url: "file://{weights}"\n'
            f'    hash_val: "{weights_md5 or _md5(weights)}"\n    hash_type: "md5"\n'
        )
    archive = tmp_path / "toy_v0.1.0.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"{top}/configs/metadata.json", '{"version": "0.1.0"}')
        z.writestr(f"{top}/large_files.yml", spec)
    index = tmp_path / "model_info.json"
    index.write_text(json.dumps({"toy_v0.1.0": {"checksum": _md5(archive), "source": f"file://{archive}"}}))
    return str(index)


def _fetch(monkeypatch, capsys, index, bundle_dir, *extra) -> tuple[int, str]:
    return _run(
        monkeypatch, capsys, "fetch", "--name", "toy", "--index", index, "--bundle_dir", str(bundle_dir), *extra
    )


def test_fetch_control_installs_a_good_archive(tmp_path, monkeypatch, capsys):
    code, err = _fetch(monkeypatch, capsys, _archive(tmp_path), tmp_path / "bundles")
    assert code == 0, err
    assert (tmp_path / "bundles" / "toy" / "models" / "model.pt").is_file()
    assert not _leftovers(tmp_path / "bundles")
    code, err = _fetch(monkeypatch, capsys, _archive(tmp_path), tmp_path / "bundles")
    _refused(code, err, "exists")


@pytest.mark.parametrize(
    "case, words",
    [
        ("checksum_null", "no md5 'checksum'"),
        ("checksum_missing", "no md5 'checksum'"),
        ("source_missing", "no 'source'"),
        ("index_list", "JSON list, expected an object"),
        ("index_not_json", "cannot read the model index"),
        ("index_missing", "cannot read the model index"),
        ("key_escapes", "not a valid bundle name"),
        ("name_escapes", "not a valid bundle name"),
        ("wrong_md5", "is not"),
        ("top_folder", "top folder"),
        ("large_escapes", "points outside the bundle"),
        ("large_md5", "is not"),
        ("too_large", "MiB limit"),
        ("not_a_zip", "refused"),
    ],
)
def test_fetch_refuses_and_leaves_nothing(case, words, tmp_path, monkeypatch, capsys):
    index = _archive(
        tmp_path,
        top="other" if case == "top_folder" else "toy",
        large_path="../../evil.pt" if case == "large_escapes" else "models/model.pt",
        weights_md5="0" * 32 if case == "large_md5" else None,
    )
    entries = json.loads(open(index).read())
    entry = entries["toy_v0.1.0"]
    extra = []
    if case == "checksum_null":
        entry["checksum"] = None
    elif case == "checksum_missing":
        del entry["checksum"]
    elif case == "source_missing":
        del entry["source"]
    elif case == "index_list":
        entries = [entries]
    elif case == "index_not_json":
        entries = None
        open(index, "w").write("{not json")
    elif case == "index_missing":
        entries, index = None, str(tmp_path / "absent.json")
    elif case == "key_escapes":
        entries = {"toy_v../../../evil": entry}
    elif case == "wrong_md5":
        entry["checksum"] = "f" * 32
    elif case == "too_large":
        extra = ["--max_mb", "0.0001"]
    elif case == "not_a_zip":
        bogus = tmp_path / "bogus.zip"
        bogus.write_bytes(b"PK not really")
        entry.update(source=f"file://{bogus}", checksum=_md5(bogus))
    if entries is not None:
        open(index, "w").write(json.dumps(entries))
    bundles = tmp_path / "root" / "bundles"
    if case == "name_escapes":
        code, err = _run(
            monkeypatch, capsys, "fetch", "--name", "../toy", "--index", index, "--bundle_dir", str(bundles)
        )
    else:
        code, err = _fetch(monkeypatch, capsys, index, bundles, *extra)
    _refused(code, err, words)
    assert not os.path.exists(bundles / "toy")
    assert not _leftovers(tmp_path / "root")
    assert not (tmp_path / "root" / "toy").exists() and not (tmp_path / "evil.pt").exists()
    assert not (tmp_path / "toy_v0.1.0.zip.partial").exists()


def test_fetch_warns_about_an_archive_without_large_files(tmp_path, monkeypatch, capsys):
    code, err = _fetch(monkeypatch, capsys, _archive(tmp_path, large_files=False), tmp_path / "bundles")
    assert code == 0, err
    assert "regzoo: warning:" in err and "lists no large files" in err


@pytest.mark.parametrize("what", ["index", "archive", "large_file"])
def test_fetch_from_a_silent_server_stops_within_its_timeout(what, tmp_path, monkeypatch, capsys):
    index = _archive(tmp_path)
    with _SilentServer() as url:
        if what == "index":
            index = f"{url}/model_info.json"
        elif what == "archive":
            entries = json.loads(open(index).read())
            entries["toy_v0.1.0"]["source"] = f"{url}/toy_v0.1.0.zip"
            open(index, "w").write(json.dumps(entries))
        else:
            weights = tmp_path / "toy_model.pt"
            with zipfile.ZipFile(tmp_path / "toy_v0.1.0.zip", "w") as z:
                z.writestr("toy/large_files.yml", f'large_files:\n  - path: "models/model.pt"\n    url: "{url}/w.pt"\n'
                           f'    hash_val: "{_md5(weights)}"\n')  # fmt: skip
            entries = json.loads(open(index).read())
            entries["toy_v0.1.0"]["checksum"] = _md5(tmp_path / "toy_v0.1.0.zip")
            open(index, "w").write(json.dumps(entries))
        started = time.monotonic()
        code, err = _fetch(monkeypatch, capsys, index, tmp_path / "bundles", "--timeout", "2")
    assert time.monotonic() - started < 30
    _refused(code, err, "no answer within 2 s")
    assert not (tmp_path / "bundles" / "toy").exists() and not _leftovers(tmp_path / "bundles")


def test_fetch_terminated_while_downloading_leaves_nothing(tmp_path):
    index = _archive(tmp_path)
    with _SilentServer() as url:
        entries = json.loads(open(index).read())
        entries["toy_v0.1.0"]["source"] = f"{url}/toy_v0.1.0.zip"
        open(index, "w").write(json.dumps(entries))
        bundles = tmp_path / "bundles"
        command = [sys.executable, "-m", "regzoo.cli", "fetch", "--name", "toy", "--index", index]
        process = subprocess.Popen([*command, "--bundle_dir", str(bundles), "--timeout", "600"], cwd=REPO)
        deadline = time.monotonic() + 60
        while not any(n.startswith(".toy.fetch-") for n in (os.listdir(bundles) if bundles.is_dir() else [])):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert os.listdir(bundles) == []


# ------------------------------------------------------------------------------------ package, demo data


def test_package_refuses_an_output_that_is_a_file(tmp_path, monkeypatch, capsys, ckpt):
    (tmp_path / "dist").write_text("keep me")
    code, err = _run(monkeypatch, capsys, "package", "--bundle", "voxelmorph", "--out", str(tmp_path / "dist"),
                     "--checkpoint", ckpt)  # fmt: skip
    _refused(code, err, "dist")
    assert (tmp_path / "dist").read_text() == "keep me"


def test_package_keeps_an_existing_archive_without_overwrite(tmp_path, monkeypatch, capsys, ckpt):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "voxelmorph_v0.1.0.zip").write_bytes(b"a published archive")
    code, err = _run(monkeypatch, capsys, "package", "--bundle", "voxelmorph", "--out", str(dist), "--checkpoint", ckpt)
    _refused(code, err, "voxelmorph_v0.1.0.zip", "exists")
    assert (dist / "voxelmorph_v0.1.0.zip").read_bytes() == b"a published archive" and not _leftovers(dist)


@pytest.mark.parametrize("case", ["foreign_folder", "out_is_file", "other_parameters"])
def test_make_demo_data_never_replaces_what_it_did_not_write(case, tmp_path, monkeypatch, capsys):
    small = ("--kind", "oasis", "--subjects", "2", "--size", "16,16,16")
    out = tmp_path / "demo"
    if case == "foreign_folder":
        out.mkdir()
        (out / "scan.nii.gz").write_bytes(b"a user's scan")
    elif case == "out_is_file":
        out.write_text("keep me")
    else:
        code, err = _run(monkeypatch, capsys, "make-demo-data", "--out", str(out), *small)
        assert code == 0, err
    before = _snapshot(out) if out.is_dir() else out.read_text()
    code, err = _run(monkeypatch, capsys, "make-demo-data", "--out", str(out), *small[:-1], "20,16,16")
    _refused(code, err, str(out))
    assert (_snapshot(out) if out.is_dir() else out.read_text()) == before and not _leftovers(tmp_path)
