"""The ``peforge`` command line: listing, generation, verification and its error lines."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from peforge.models.params import config_hash
from peforge.models.systolic import SystolicConfig


def peforge(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "peforge.sim.cli", *args], cwd=cwd,
                          capture_output=True, text=True)


def test_list_names_every_parameter_with_range_and_default():
    result = peforge("list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert any(line.startswith("systolic: ") for line in lines)
    assert any(line.split() == ["--rows", "an", "integer", "in", "1..256;", "default", "8.",
                                "PE", "rows", "(OS:", "outputs", "of", "M", "per", "tile;", "WS:",
                                "K", "per", "tile)"] for line in lines)
    assert any(line.strip().startswith("--dataflow   one of os, ws; default os.") for line in lines)


def test_gen_writes_verilog_and_manifest(tmp_path):
    result = peforge("gen", "systolic", "--rows", "4", "--cols", "2", "--dataflow", "ws",
                     "--bits", "6", "--no-signed", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    digest = config_hash("systolic", SystolicConfig(rows=4, cols=2, dataflow="ws", bits=6,
                                                    signed=False))
    verilog = (tmp_path / f"systolic_{digest}.v").read_text()
    manifest = json.loads((tmp_path / f"systolic_{digest}.json").read_text())
    assert "module systolic(" in verilog
    assert manifest["parameters"] == {"rows": 4, "cols": 2, "dataflow": "ws", "bits": 6,
                                      "signed": False, "k_max": 4096, "acc_bits": 24,
                                      "pe": "int", "format": "bf16", "mul_stages": 0,
                                      "add_stages": 0}
    assert manifest["config_hash"] == digest
    ports = {port["name"]: port for port in manifest["ports"]}
    # ws payload: a[4] x 6 + load + b[2] x 6 + d[2] x 24 + last
    assert ports["i_stream__payload"]["width"] == 4 * 6 + 1 + 2 * 6 + 2 * 24 + 1
    assert ports["o_stream__payload"] == {"name": "o_stream__payload", "direction": "output",
                                          "width": 2 * 24 + 1,
                                          "meaning": ports["o_stream__payload"]["meaning"]}
    assert ports["o_stream__payload"]["meaning"]
    # ws: ceil(K/rows) * ceil(N/cols) tiles of 2*rows + M + cols - 2 cycles, plus 1
    assert manifest["latency"] == "ceil(K/4) * ceil(N/2) * (M + 8) + 1"
    assert manifest["peforge_version"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"systolic_{digest}.json",
                                                          f"systolic_{digest}.v"]


@pytest.mark.parametrize("args, message", [
    (["gen", "systolic", "--rows", "0"], "peforge: error: rows: must be an integer in 1..256, got 0"),
    (["gen", "systolic", "--bits", "1"], "peforge: error: bits: must be an integer in 2..16, got 1"),
    (["gen", "systolic", "--dataflow", "xs"],
     "peforge: error: dataflow: must be one of os, ws, got 'xs'"),
    (["gen", "nosuch"], "peforge: error: argument FAMILY: invalid choice: 'nosuch' "
                        "(choose from "),
    (["verify", "systolic", "--cols", "999"],
     "peforge: error: cols: must be an integer in 1..256, got 999"),
])
def test_bad_input_is_one_clear_line(args, message, tmp_path):
    result = peforge(*args, "--out", str(tmp_path)) if args[0] == "gen" else peforge(*args)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message)
    assert result.stdout == ""
    assert not list(tmp_path.iterdir())


def test_unwritable_out_leaves_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = peforge("gen", "systolic", "--out", str(blocker / "sub"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"peforge: error: out: cannot write to {blocker / 'sub'}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


@pytest.mark.verilator
def test_verify_passes_and_reports_cycles():
    result = peforge("verify", "systolic", "--rows", "2", "--cols", "3", "--dataflow", "ws")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("build: ") and "/bulk/systolic-" in lines[1]
    jobs = [line for line in lines if line.strip().startswith("job")]
    assert len(jobs) == 8 and all(line.endswith("PASS") for line in jobs)
    # 2 x 3 ws, GEMM 1x1x1: one tile of 2*2 + 1 + 3 - 2 cycles, plus 1
    assert "a[1, 1] b[1, 1]" in jobs[0] and "cycles 7 = model 7" in jobs[0]
    assert lines[-2] == "PASS: 8/8 jobs bit-exact with cycles equal to the model"
    assert re.fullmatch(r"simulated \d+ cycles in [\d.]+ s \([\d,]+ cycles/s, bulk\)", lines[-1])


@pytest.mark.verilator
def test_verify_shapes_and_jobs():
    result = peforge("verify", "systolic", "--rows", "2", "--cols", "3", "--shape", "5x7x4",
                     "--shape", "1X1X1", "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = [line for line in result.stdout.splitlines() if line.strip().startswith("job")]
    assert len(jobs) == 4 and all(line.endswith("PASS") for line in jobs)
    assert "a[5, 7] b[7, 4]" in jobs[0] and "a[1, 1] b[1, 1]" in jobs[3]


@pytest.mark.parametrize("args, message", [
    (["--shape", "3x4"], "peforge: error: shape: must be MxKxN with positive integers, got '3x4'"),
    (["--shape", "0x1x1"], "peforge: error: shape: must be MxKxN with positive integers, "
                           "got '0x1x1'"),
    (["--jobs", "0"], "peforge: error: jobs: must be >= 1, got 0"),
])
def test_verify_rejects_bad_shapes(args, message):
    result = peforge("verify", "systolic", *args)
    assert result.returncode == 2 and result.stderr.strip() == message and not result.stdout


@pytest.mark.verilator
@pytest.mark.skipif(not Path("/usr/include/lz4.h").exists(),
                    reason="FST traces need the lz4 headers (apt-get install liblz4-dev)")
def test_verify_waves_writes_an_fst():
    result = peforge("verify", "systolic", "--rows", "1", "--cols", "2", "--waves")
    assert result.returncode == 0, result.stdout + result.stderr
    waves = [line for line in result.stdout.splitlines() if line.startswith("waves: ")]
    assert len(waves) == 1
    trace = Path(waves[0].removeprefix("waves: "))
    assert trace.name == "dump.fst" and trace.stat().st_size > 0
