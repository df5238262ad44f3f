"""The accelerator tile's cost: ``peforge energy accelerator`` charging a GEMM from the RTL's
recorded counters (else the model's prediction)."""

import json

import pytest

from peforge.hw.accelerator.config import AccelConfig
from peforge.sim.accel.flow import generate, place
from peforge.sim.accel.measured import lookup, record
from peforge.sim.accel.predict import predict
from peforge.sim.accel.verify import choose_mapping
from peforge.sim.cli import main
from peforge.sim.perf.accelerator import load_accelerator
from peforge.sim.perf.memory import sram_cost

CONFIG = ("family: systolic\npe: {rows: 4, cols: 4}\ninput_sram: {size_kib: 4}\n"
          "weight_sram: {size_kib: 4}\noutput_sram: {size_kib: 4}\n"
          "dram: {bytes_per_cycle: .inf, latency_cycles: 0}\n")


@pytest.fixture
def tile(tmp_path, monkeypatch):
    monkeypatch.setenv("PEFORGE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "accel.yaml"
    path.write_text(CONFIG)
    return path, AccelConfig(load_accelerator(str(path)))


def _energy(path, out, *extra):
    assert main(["energy", "accelerator", "--config", str(path), "--gemm", "32x32x32",
                 "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_energy_charges_the_recorded_rtl_counts(tile, tmp_path, capsys):
    path, cfg = tile
    mapping = choose_mapping(cfg, 32, 32, 32)
    descriptor = place(cfg, 32, 32, 32, mapping.tm, mapping.tk, mapping.tn, mapping.order)
    verilog, _ = generate(cfg)
    assert lookup(cfg, verilog, descriptor) is None
    modelled = _energy(path, tmp_path / "model.json")
    assert "counts from the model" in capsys.readouterr().out
    predicted = predict(cfg, 32, 32, 32, mapping)
    assert modelled["source"] == "model" and modelled["cycles"] == predicted["cycles"]
    assert modelled["input_sram_read_bytes"] == predicted["input_sram_read"]

    # A measurement of the same GEMM on the same tile (counts made up, unlike any prediction):
    # its words are charged at the tile's widths (8-byte lane and bank words, 4 x 28-bit
    # output words of 14 bytes) and the 4 KiB SRAMs' unit costs.
    counters = {"cycles": 5000, "busy_cycles": 4000, "dram_read_bytes": 800,
                "dram_write_bytes": 400, "input_sram_reads": 1000, "input_sram_writes": 100,
                "weight_sram_reads": 250, "weight_sram_writes": 50, "output_sram_reads": 30,
                "output_sram_writes": 60}
    record(cfg, verilog, descriptor, counters)
    measured = _energy(path, tmp_path / "rtl.json")
    assert "counts from the RTL's counters" in capsys.readouterr().out
    assert measured["source"] == "rtl" and measured["cycles"] == 5000
    assert (measured["dram_read_bytes"], measured["dram_write_bytes"]) == (800, 400)
    assert [measured[f"{name}_sram_{way}_bytes"] for name in ("input", "weight", "output")
            for way in ("read", "write")] == [8000, 800, 2000, 400, 420, 840]
    cost = sram_cost(4096, 64, 4)
    assert measured["energy_input_sram_pj"] == pytest.approx(
        8000 * cost.read_pj_per_byte + 800 * cost.write_pj_per_byte)
    assert measured["energy_output_sram_pj"] == pytest.approx(
        420 * cost.read_pj_per_byte + 840 * cost.write_pj_per_byte)
    # The PE array is charged per MAC either way.
    assert measured["energy_pe_pj"] == modelled["energy_pe_pj"]


def test_energy_bad_gemm_is_one_line(tile, capsys):
    path, _cfg = tile
    assert main(["energy", "accelerator", "--config", str(path), "--gemm", "32x0x3"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "peforge: error: gemm: must be MxKxN with positive integers, " \
                           "got '32x0x3'\n"
