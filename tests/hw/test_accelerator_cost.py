"""The accelerator tile's cost: ``peforge energy accelerator`` charging a GEMM from the RTL's
recorded counters (else the model's prediction), ``peforge synth accelerator`` its area by part."""

import json

import pytest

from peforge.hw.accelerator.config import AccelConfig
from peforge.sim.accel.flow import generate, place
from peforge.sim.accel.measured import lookup, record
from peforge.sim.accel.predict import predict
from peforge.sim.accel.verify import choose_mapping
from peforge.sim.cli import main
from peforge.sim.perf.accelerator import load_accelerator
from peforge.sim.perf.memory import bank_area_mm2, sram_cost

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


def test_synth_reports_the_tile_in_parts(tmp_path, capsys):
    # The default cache: the yosys runs (about a minute of CPU) are kept between test runs.
    path = tmp_path / "accel.yaml"
    path.write_text(CONFIG)
    assert main(["synth", "accelerator", "--config", str(path), "--json",
                 str(tmp_path / "tile.json")]) == 0
    tile = json.loads((tmp_path / "tile.json").read_text())
    parts = tile["area_um2"]
    assert set(parts) == {"array", "scratchpads", "dma_controller", "feeder", "axi_lite"}
    assert all(area > 0 for area in parts.values())
    assert sum(parts.values()) == pytest.approx(tile["total_um2"], rel=1e-12)
    # The array part is what peforge synth reports for the same array at the same node.
    assert main(["synth", "systolic", "--rows", "4", "--cols", "4", "--no-liberty", "--node",
                 "nangate45", "--json", str(tmp_path / "array.json")]) == 0
    array = json.loads((tmp_path / "array.json").read_text())
    assert tile["nand2_eq"]["array"] == array["nand2_eq"]
    assert parts["array"] == pytest.approx(array["area_um2"], rel=1e-12)
    # Scratchpads, by hand: 4 input lanes of 4 KiB / (4 x 8 bytes) = 128 words of 8 bytes, one
    # weight bank of 4 KiB, 4096 / 16 = 256 output words of 4 x 28 bits (14 bytes).
    memories = [(mem["name"], mem["bytes"]) for mem in tile["memories"]]
    assert memories == [(f"input_lane{lane}", 1024) for lane in range(4)] + [
        ("weight_bank0", 4096), ("output", 3584)]
    assert parts["scratchpads"] == pytest.approx(
        1e6 * (4 * bank_area_mm2(1024) + bank_area_mm2(4096) + bank_area_mm2(3584)))
    capsys.readouterr()
    assert main(["synth", "accelerator", "--config", str(path), "--axi-bits", "48"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == \
        "peforge: error: axi_data_bits: must be a power of two >= 32, got 48\n"
