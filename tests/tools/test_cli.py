import subprocess
import sys

import pytest

from regzoo import benchmark


def test_nmi_benchmark_prints_both_losses_and_small_errors(capsys):
    benchmark.nmi(sizes=[[12, 10, 8]], num_bins=16)
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith("12x10x8")][0].split("|")
    assert len(row) == 9
    assert float(row[3]) < 1e-4 and float(row[6]) < 1e-4  # each loss agrees with its numpy reference


def regzoo(*args: str) -> subprocess.CompletedProcess:
    """The ``regzoo`` command as a user runs it."""
    return subprocess.run([sys.executable, "-m", "regzoo.cli", *args], capture_output=True, text=True)


def test_regzoo_command_lists_subcommands():
    result = regzoo("benchmark", "--help")
    assert result.returncode == 0, result.stderr
    assert "nmi" in result.stdout + result.stderr and "accuracy" in result.stdout + result.stderr


def test_the_installed_command_package_is_regzoo_not_a_generic_tools(tmp_path):
    # run outside the repository, so only what the distribution installed can be imported
    code = "import importlib.util as u, regzoo.cli, regzoo.monailabel_app; print(u.find_spec('tools'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


def test_make_demo_data_command_refuses_foreign_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    small = ("--kind", "oasis", "--subjects", "2", "--size", "16,16,16")
    result = regzoo("make-demo-data", "--out", str(tmp_path), *small)
    assert result.returncode == 2
    assert "not a regzoo demo folder" in result.stderr and "Traceback" not in result.stderr
    out = tmp_path / "demo"
    result = regzoo("make-demo-data", "--out", str(out), *small)
    assert result.returncode == 0, result.stderr
    assert (out / "OASIS_OAS1_0002_MR1" / "aligned_seg35.nii.gz").exists()


def test_diffusemorph_benchmark_prints_every_task_beside_the_papers(capsys):
    benchmark.diffusemorph(size=(32, 32, 16), frames=3, ddim_steps=20, ddpm=False)
    out = capsys.readouterr().out
    rows = {line.split(" | ")[0]: line.split(" | ")[1:] for line in out.splitlines() if " | " in line}
    assert float(rows["registration"][1]) == 0.07 and float(rows["sequence (3 frames)"][1]) == 0.456
    assert float(rows["generation DDIM (20 requested)"][1]) == 6.02
    assert all(float(v[0]) > 0 for k, v in rows.items() if k != "task")


def test_affine_benchmark_table_shows_the_alignment_helping(capsys, tmp_path):
    from regzoo import benchmark_affine

    benchmark_affine.affine(
        pairs=1,
        resolutions=4,
        ants_python=str(tmp_path / "no-python"),
        data_dir=str(tmp_path),  # as fire gives it
    )
    out = capsys.readouterr().out
    rows = {line.split("|")[2].strip(): line.split("|") for line in out.splitlines() if line.startswith("| 4 mm")}
    assert "ANTs: " in out and set(rows) >= {"headers", "regzoo affine (torch)", "headers, before the known affine"}
    # the known affine (15-30 degrees, 10-20 mm) ruins the overlap; the stage's alignment brings it back
    assert float(rows["regzoo affine (torch)"][3]) > float(rows["headers"][3]) + 0.2


def test_accuracy_benchmark_quick_run_writes_the_table(brain_demo, tmp_path, monkeypatch):
    """The smoke run: one test pair of a data set in the OASIS layout, a random-weight MIDIR with 3 refinement
    steps; the table has every row and column (the figures themselves are measured by the full run, not here)."""
    import os

    import torch

    from common.bundle import inference_parser
    from regzoo import benchmark_accuracy
    from regzoo.register import find_bundle

    folder = find_bundle("midir")
    parser = inference_parser([os.path.join(folder, "configs", c) for c in ("inference.json", "quick.json")])
    parser.update({"bundle_root": folder})
    torch.save(parser.get_parsed_content("network_def").state_dict(), tmp_path / "midir.pt")
    for variable in (
        "REGZOO_ANTS_PYTHON",
        "REGZOO_ELASTIX_PYTHON",
        "REGZOO_CONVEXADAM_PYTHON",
        "REGZOO_FIREANTS_PYTHON",
    ):
        monkeypatch.delenv(variable, raising=False)
    benchmark_accuracy.accuracy(
        bundles={"midir": str(tmp_path / "midir.pt")},
        configs="quick.json",
        refine=(3,),
        pairs=1,
        dataset_dir=brain_demo,
        layout="oasis",
        label_groups={"cortex": [1, 2], "WM": [3, 4]},
        ants_python=str(tmp_path / "no-python"),
        hd95=False,
        out=str(tmp_path / "table"),
    )
    table = (tmp_path / "table" / "accuracy.md").read_text()
    assert "threads" in table and "torch" in table
    for method in ("identity (headers)", "affine only", "midir", "midir + refine 3"):
        assert f"| {method} |" in table
    rows = (tmp_path / "table" / "accuracy.csv").read_text().splitlines()
    assert rows[0] == "method,dice,dice_cortex,dice_WM,hd95_mm,njd_percent,sdlogj,seconds" and len(rows) == 5
    assert f"1 pairs ({brain_demo} (oasis))" in table
    assert "ANTs SyN (antspyx) not found" in table and "elastix affine + B-spline (itk-elastix) not found" in table
    assert "ConvexAdam (convexadam) not found" in table and "FireANTs greedy (fireants) not found" in table
    with pytest.raises(ValueError, match="peers must be among ants, elastix, convexadam, fireants"):
        benchmark_accuracy.accuracy(pairs=1, dataset_dir=brain_demo, peers="ants,niftyreg", out=str(tmp_path / "x"))


def test_accuracy_benchmark_keeps_its_table_when_a_peer_fails(brain_demo, tmp_path):
    """A peer that is found but fails (here a stand-in Python that passes the import check, then exits 3 with a
    message) leaves the other rows and the table written; its row names it, the exit status and the message."""
    from regzoo import benchmark_accuracy

    fake = tmp_path / "fake-python"
    fake.write_text('#!/bin/sh\n[ "$2" = "import ants" ] && exit 0\necho "antspyx: out of memory" >&2\nexit 3\n')
    fake.chmod(0o755)
    benchmark_accuracy.accuracy(
        pairs=1, dataset_dir=brain_demo, peers="ants", ants_python=str(fake), hd95=False, refine=0, out=str(tmp_path)
    )
    table = (tmp_path / "accuracy.md").read_text()
    assert f"| ANTs SyN (antspyx): failed (ants ({fake}) exited with 3: antspyx: out of memory) |" in table
    assert "| affine only | 0." in table and len((tmp_path / "accuracy.csv").read_text().splitlines()) == 4


def test_fireants_sampling_grid_becomes_the_displacement_our_warp_applies_alike():
    """FireANTs gives a ``grid_sample`` grid over SimpleITK's array order (z, y, x; normalised, corners aligned):
    warping with the voxel displacement made of it (``common.spatial.warp``, nibabel order) must give what
    ``grid_sample`` gives with the grid itself on the SimpleITK-ordered image (the independent path)."""
    import torch
    import torch.nn.functional as F

    from common.spatial import warp
    from regzoo.benchmark_accuracy import fireants_ddf

    g = torch.Generator().manual_seed(0)
    size = (9, 11, 13)  # nibabel (i, j, k)
    image = F.interpolate(torch.rand(1, 1, 4, 5, 6, generator=g), size=size, mode="trilinear", align_corners=True)
    sitk_order = image.permute(0, 1, 4, 3, 2)  # (k, j, i)
    theta = torch.tensor([[[1.0, 0.05, 0.0, 0.1], [-0.04, 0.95, 0.02, -0.05], [0.0, 0.03, 1.05, 0.08]]])
    grid = F.affine_grid(theta, (1, 1, *sitk_order.shape[2:]), align_corners=True)
    grid = grid + 0.05 * F.interpolate(
        torch.randn(1, 3, 3, 3, 3, generator=g), size=sitk_order.shape[2:], mode="trilinear", align_corners=True
    ).permute(0, 2, 3, 4, 1)
    expected = F.grid_sample(sitk_order, grid, align_corners=True, padding_mode="border").permute(0, 1, 4, 3, 2)
    ddf = fireants_ddf(grid[0].numpy())
    assert ddf.shape == (1, 3, *size) and ddf.abs().max() > 0.3  # a real displacement, in voxels
    torch.testing.assert_close(warp(image, ddf), expected, atol=1e-4, rtol=0)
    identity = F.affine_grid(torch.eye(3, 4)[None], (1, 1, *sitk_order.shape[2:]), align_corners=True)
    assert fireants_ddf(identity[0].numpy()).abs().max() < 1e-5


def test_accuracy_benchmark_multimodal_pairs_and_bundles_trained_two_ways(brain_demo, tmp_path):
    """``data="multimodal"``: the demo test pairs with the moving T2w-like rendering, the affine-only row on NMI;
    one bundle listed twice under its own labels and configs (NMI and LNCC training) gives two sets of rows."""
    import os

    import torch

    from common.bundle import inference_parser
    from regzoo import benchmark_accuracy
    from regzoo.register import find_bundle

    folder = find_bundle("midir")
    parser = inference_parser([os.path.join(folder, "configs", c) for c in ("inference.json", "quick.json")])
    parser.update({"bundle_root": folder})
    torch.save(parser.get_parsed_content("network_def").state_dict(), tmp_path / "midir.pt")
    os.symlink(brain_demo, tmp_path / "demo_oasis_80x96x112")  # the benchmark's demo set is the suite's brain set
    checkpoint = str(tmp_path / "midir.pt")
    benchmark_accuracy.accuracy(
        bundles={
            "midir NMI": {"bundle": "midir", "checkpoint": checkpoint, "configs": ["multimodal.json", "quick.json"]},
            "midir LNCC": {"bundle": "midir", "checkpoint": checkpoint, "configs": ["quick.json"]},
        },
        refine=(),
        pairs=1,
        data="multimodal",
        data_dir=str(tmp_path),
        peers="none",
        hd95=False,
        out=str(tmp_path / "table"),
    )
    table = (tmp_path / "table" / "accuracy.md").read_text()
    assert "moving T2w-like" in table and "affine only: nmi" in table
    assert "midir NMI: inference.json + multimodal.json + quick.json" in table
    for method in ("affine only", "midir NMI", "midir LNCC"):
        assert f"| {method} |" in table
    with pytest.raises(ValueError, match=r"bundles\['midir'\] must be a checkpoint path"):
        benchmark_accuracy.accuracy(bundles={"midir": {"configs": []}}, pairs=1, data_dir=str(tmp_path), peers="none")


def test_switches_and_nulls_typed_on_the_command_line_mean_what_they_say(tmp_path):
    """fire passes ``--overwrite false`` as the string "false" (true): every command reads its switches and optional
    values through ``common.bundle.values`` (``regzoo.cli.typed``)."""
    from regzoo.cli import typed

    def command(out: str, overwrite: bool = False, checkpoint: str | None = None):
        return out, overwrite, checkpoint

    assert typed(command)("x", overwrite="false", checkpoint="null") == ("x", False, None)
    assert typed(command)("x", "True", "m.pt") == ("x", True, "m.pt")
    with pytest.raises(ValueError, match="--overwrite: expected true or false, got 'maybe'"):
        typed(command)("x", overwrite="maybe")
    target = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "regzoo.cli", "make-demo-data", "--kind", "oasis", "--out", str(target)]
        + ["--overwrite", "maybe"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.strip() == (
        "regzoo: error: --overwrite: expected true or false, got 'maybe'"
    )
    assert not target.exists()
    shown = subprocess.run([sys.executable, "-m", "regzoo.cli", "register", "--help"], capture_output=True, text=True)
    assert "--refine_levels" in shown.stderr and "--overwrite" in shown.stderr  # fire still reads the signature
