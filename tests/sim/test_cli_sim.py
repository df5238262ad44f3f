"""``peforge sim``: cycles without energy (``--cycles-only``), units in the headers and readable
magnitudes, and the shipped examples/ files with every README command that uses them."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from peforge.sim.cli import main
from peforge.sim.families import family
from peforge.sim.perf.accelerator import Accelerator, load_accelerator
from peforge.sim.perf.model import simulate_gemm
from peforge.sim.perf.workloads import load_scalesim_topology

ROOT = Path(__file__).resolve().parents[2]


def test_cycles_only_needs_no_energy_flow(fresh_machine, capsys, tmp_path):
    # A 1 x 64 systolic array is not in the shipped energy table and fresh_machine fails its
    # gate-level measurement: the full model refuses, --cycles-only simulates.
    topology = tmp_path / "one.csv"
    topology.write_text("Layer, M, N, K,\ng, 3, 130, 10,\n")
    args = ["sim", "--family", "systolic", "--rows", "1", "--cols", "64", "--topology",
            str(topology), "--dram-bw", "inf", "--dram-latency", "0"]
    assert main(args) == 2
    assert "--cycles-only" in capsys.readouterr().err
    assert main([*args, "--cycles-only", "--csv", str(tmp_path / "out.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["layer", "m", "k", "n", "count", "cycles", "compute_cycles",
                                "stall_cycles", "utilisation[%]", "compute_bound_cycles",
                                "dram_bound_cycles", "roofline_ratio", "dram_read[KiB]",
                                "dram_write[KiB]", "time[ns]", "mapping", "mappings_simulated",
                                "mappings_pruned"]
    # By hand, an OS 1 x 64 array, int8, ideal memory: 3 x 3 output tiles of 1 x 64 (130 =
    # 64 + 64 + 2) and the family's cycle model for each; here checked against that model.
    config = family("systolic").make_config(rows=1, cols=64)
    expected = family("systolic").gemm_cycles(config, 3, 10, 130)
    row = lines[1].split()
    assert row[:5] == ["g", "3", "10", "130", "1"]
    assert int(row[5]) >= expected and int(row[7]) == int(row[5]) - int(row[6])
    assert int(row[6]) == expected
    # Roofline: 3 * 10 * 130 MACs over 64 PEs is 60.94 cycles; an infinite DRAM bandwidth
    # bounds nothing (0 cycles).
    assert row[9:11] == ["60.94", "0"]
    # One buffer tile holds it all: A 3 x 10 and W 10 x 130 int8 read once (1330 B = 1.299 KiB),
    # 3 x 130 outputs of 24-bit accumulators written as 4 bytes (1560 B = 1.523 KiB);
    # utilisation 3 * 10 * 130 MACs over 64 PEs x the cycles.
    assert row[12:14] == ["1.299", "1.523"]
    assert float(row[8]) == pytest.approx(100 * 3900 / (64 * int(row[5])), abs=0.01)
    assert lines[-2].startswith(f"roofline: {row[5]} cycles = ")
    assert "energy" not in "\n".join(lines)
    csv = (tmp_path / "out.csv").read_text().splitlines()
    header = csv[0].split(",")
    assert {"cycles", "dram_read_bytes", "roofline_ratio", "time_ms"} <= set(header)
    assert not any(name.startswith(("energy", "power", "area", "tops")) for name in header)


def test_cycles_only_equals_the_full_models_cycles(capsys):
    accel = load_accelerator(ROOT / "examples" / "accel.yaml")
    gemms = load_scalesim_topology(ROOT / "examples" / "layers.csv")
    assert main(["sim", "--config", str(ROOT / "examples" / "accel.yaml"), "--topology",
                 str(ROOT / "examples" / "layers.csv"), "--cycles-only"]) == 0
    lines = capsys.readouterr().out.splitlines()
    cycles = [simulate_gemm(accel, gemm).cycles for gemm in gemms]
    assert [int(line.split()[5]) for line in lines[1:4]] == cycles
    assert int(lines[4].split()[1]) == sum(cycles)
    assert lines[5].startswith(f"roofline: {sum(cycles)} cycles = ")


def test_headers_carry_units_and_values_read_in_them(capsys):
    # LLaMA-2-7B decode on a 4 x 4 array: joules of energy, gibibytes of weights read.
    assert main(["sim", "--family", "systolic", "--rows", "4", "--cols", "4", "--workload",
                 "llama2-7b", "--phase", "decode", "--seq", "16"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert {"energy[J]", "dram_read[GiB]", "power[W]", "time[s]"} <= set(header)
    assert "e+" not in out  # no 1e13 pJ: every magnitude in a unit it reads in
    energy_line = next(line for line in out.splitlines() if line.startswith("energy "))
    assert re.match(r"energy \(45 nm, gaussian operands\): \d+\.?\d* J = PE array \d", energy_line)


def readme_example_commands() -> list[str]:
    """The README's ``peforge`` command lines that use the shipped examples/ files."""
    text = (ROOT / "README.md").read_text()
    return [line.split("#")[0].strip() for line in text.splitlines()
            if line.startswith(".venv/bin/peforge ") and "examples/" in line]


def test_readme_shows_the_examples():
    commands = readme_example_commands()
    used = {word for command in commands for word in shlex.split(command)
            if word.startswith("examples/")}
    assert used == {f"examples/{path.name}" for path in (ROOT / "examples").iterdir()}


@pytest.mark.parametrize("command", readme_example_commands())
def test_readme_example_command_runs(command, tmp_path):
    words = shlex.split(command)[1:]
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    result = subprocess.run([sys.executable, "-m", "peforge.sim.cli", *words], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_accel_yaml_documents_every_accelerator_key():
    text = (ROOT / "examples" / "accel.yaml").read_text()
    keys = {line.split(":")[0] for line in text.splitlines() if re.match(r"^[a-z_]+:", line)}
    assert keys == set(Accelerator.__dataclass_fields__)
    assert load_accelerator(ROOT / "examples" / "accel.yaml").pe.rows == 16
