import subprocess
import sys

from tools import benchmark


def test_nmi_benchmark_prints_both_losses_and_small_errors(capsys):
    benchmark.nmi(sizes=[[12, 10, 8]], num_bins=16)
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith("12x10x8")][0].split("|")
    assert len(row) == 9
    assert float(row[3]) < 1e-4 and float(row[6]) < 1e-4  # each loss agrees with its numpy reference


def test_regzoo_command_lists_subcommands():
    result = subprocess.run([sys.executable, "-m", "tools.cli", "benchmark", "--help"], capture_output=True, text=True)
    assert "nmi" in result.stdout + result.stderr
