"""The app served by a real MONAI Label server: started on 127.0.0.1 with a free port (transmorph_tvf quick,
fixed small weights), bounded waits, ``/info/`` (the model and its label names), ``/infer`` by datastore id and
by upload (labels on the image's grid, values within the atlas's), no server paths in the response, nothing
written into the source tree; stopped by its process id. Needs ``monailabel`` (README's test command installs it)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import nibabel as nib
import numpy as np
import pytest

from regzoo.monailabel_app import demo_atlas

from .test_register import _checkpoint

pytest.importorskip("monailabel")
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP = os.path.join(REPO, "tools", "monailabel_app")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _post(url: str, body: bytes = b"", content_type: str | None = None, timeout: float = 300) -> bytes:
    request = urllib.request.Request(url, data=body, method="POST")
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def _upload(path: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    with open(path, "rb") as f:
        data = f.read()
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{os.path.basename(path)}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("monailabel")
    cache, studies = root / "cache", root / "studies"
    studies.mkdir()
    atlas_image, _ = demo_atlas(str(cache / "atlas"))
    shutil.copy(atlas_image.replace("0001", "0002"), studies / "subject2.nii.gz")
    checkpoint = _checkpoint("transmorph_tvf", root / "tm.pt", ("quick.json",), tvf=True)
    port = _free_port()
    before = sorted(os.listdir(APP))
    app = root / "app"
    made = subprocess.run([sys.executable, "-m", "regzoo.cli", "monailabel-app", "--out", str(app)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert made.returncode == 0, made.stderr
    command = [
        os.path.join(os.path.dirname(sys.executable), "monailabel"), "start_server", "--app", str(app),
        "--studies", str(studies), "--host", "127.0.0.1", "--port", str(port),
        "--conf", "bundle", "transmorph_tvf", "--conf", "checkpoint", checkpoint, "--conf", "configs", "quick.json",
        "--conf", "affine", "none",
    ]  # fmt: skip
    env = {**os.environ, "REGZOO_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    log = open(root / "server.log", "w")
    process = subprocess.Popen(command, cwd=str(root), env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        while True:
            assert process.poll() is None, (root / "server.log").read_text()[-4000:]
            assert time.monotonic() - started < 240, "server not up within 240 s"
            try:
                info = json.loads(_get(f"{url}/info/", timeout=5))
                break
            except OSError:
                time.sleep(1)
        yield {
            "url": url,
            "info": info,
            "studies": studies,
            "atlas": str(cache / "atlas"),
            "before": before,
            "startup_s": time.monotonic() - started,
        }
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()


def test_info_lists_the_model_with_its_label_names(server):
    model = server["info"]["models"]["atlas_propagation"]
    assert model["type"] == "segmentation" and model["dimension"] == 3
    assert model["labels"]["cortex L"] == 1 and len(model["labels"]) >= 10


def test_infer_by_datastore_id_and_by_upload_returns_atlas_labels_on_the_image_grid(server, tmp_path):
    image = server["studies"] / "subject2.nii.gz"
    atlas = np.unique(np.asarray(nib.load(demo_atlas(server["atlas"])[1]).dataobj))  # the server's own atlas
    timings = []
    for how in ("id", "id", "upload"):
        started = time.monotonic()
        if how == "id":
            body = _post(f"{server['url']}/infer/atlas_propagation?image=subject2&output=image")
        else:
            payload, kind = _upload(str(image))
            body = _post(f"{server['url']}/infer/atlas_propagation?output=image", payload, kind)
        timings.append(time.monotonic() - started)
        out = tmp_path / f"{how}{len(timings)}.nii.gz"
        out.write_bytes(body)
        label = nib.load(out)
        assert label.shape == nib.load(image).shape and np.allclose(label.affine, nib.load(image).affine, atol=1e-4)
        values = set(np.unique(np.asarray(label.dataobj)).astype(int))
        assert len(values) > 5 and values <= set(atlas.astype(int))
    params = json.loads(_post(f"{server['url']}/infer/atlas_propagation?image=subject2&output=json"))
    assert "njd_percent" in params and not any(isinstance(v, str) and os.sep in v for v in params.values())
    print(f"server up in {server['startup_s']:.1f} s; /infer {', '.join(f'{t:.1f}' for t in timings)} s")


def test_fine_tuning_runs_in_the_background_and_the_new_weights_are_served(server, tmp_path):
    url, truth = server["url"], demo_atlas(server["atlas"])[1].replace("0001", "0002")
    assert server["info"]["trainers"]["finetune"]["config"]["max_epochs"] == 1

    def labels():
        (tmp_path / "label.nii.gz").write_bytes(_post(f"{url}/infer/atlas_propagation?image=subject2&output=image"))
        return np.asarray(nib.load(tmp_path / "label.nii.gz").dataobj).astype(int)

    def dice(warped):
        reference = np.asarray(nib.load(truth).dataobj).astype(int)
        values = [v for v in np.unique(reference) if v != 0]
        overlap = [2 * ((warped == v) & (reference == v)).sum() / ((warped == v).sum() + (reference == v).sum())
                   for v in values]  # fmt: skip
        return float(np.mean(overlap))

    before = labels()
    started = time.monotonic()
    _post(f"{url}/train/finetune", json.dumps({"max_epochs": 2}).encode(), "application/json", timeout=30)
    while True:  # MONAI Label runs it in a subprocess: SUBMITTED, RUNNING, then DONE or ERROR
        assert time.monotonic() - started < 300, "fine-tuning not finished within 300 s"
        task = json.loads(_get(f"{url}/train/"))
        if task["status"] not in ("SUBMITTED", "RUNNING"):
            break
        time.sleep(2)
    seconds = time.monotonic() - started
    assert task["status"] == "DONE", task
    stats = json.loads(_get(f"{url}/info/"))["train_stats"]["finetune"]
    assert stats["improved"] and stats["val_similarity_best"] > stats["val_similarity_before"], stats
    after = labels()
    assert not np.array_equal(after, before) and dice(after) > dice(before)
    figures = f"Dice {dice(before):.3f} -> {dice(after):.3f}"
    print(f"fine-tuning ({stats['pairs']} pairs, 2 epochs) {seconds:.1f} s; {figures}")


def test_nothing_is_written_into_the_source_tree(server):
    assert sorted(os.listdir(APP)) == server["before"]
