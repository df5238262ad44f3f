"""The accelerator tile around a weight-stationary systolic array (``pe.dataflow: ws``): GEMMs
end to end under Verilator with cocotbext-axi's AxiRam as DRAM, C read back bit-exact against
the golden model, DRAM and scratchpad traffic equal to hand counts per tile, and the model's
cycles, stalls, DRAM bytes and SRAM accesses equal to the RTL's (ideal and stalled DRAM)."""

import math

import numpy as np
import pytest

from peforge.sim.accel.flow import build_tile, generate, place, run_gemms
from peforge.sim.families import GemmJob, family
from peforge.sim.perf.pipeline import tile_steps
from peforge.sim.perf.tiling import Mapping
from peforge.sim.perf.workloads import Gemm
from peforge.sim.rtl.backends.verilator import lint

from tests.hw.test_accelerator import (ALIGNED, IDEAL, ODD_WRITES, RAGGED, _bus_read_bytes,
                                       _model_agrees, accel_config, random_runs)

WS = {"dataflow": "ws"}


@pytest.mark.verilator
def test_ws_lint_clean():
    verilog, manifest = generate(accel_config(**WS))
    clean, messages = lint(verilog, manifest["top"])
    assert clean, messages
    assert manifest["pe"]["dataflow"] == "ws"


@pytest.fixture(scope="module")
def ws_runs():
    cfg = accel_config(**WS)
    runs = random_runs(cfg, 16)
    # Every product -128 * -128 over K = 20 (split 8 + 8 + 4: a ragged last block of K, whose
    # missing weight rows must be zeros): sums that need the accumulator's sign extension.
    runs.append((place(cfg, 9, 20, 7, 16, 8, 16, "mnk"), np.full((9, 20), -128),
                 np.full((20, 7), -128)))
    return cfg, runs, run_gemms(cfg, build_tile(cfg), runs)


@pytest.mark.verilator
def test_ws_gemms_bit_exact_and_counted(ws_runs):
    cfg, runs, results = ws_runs
    fam, pe = family("systolic"), cfg.accel.pe
    assert len(runs) >= 20
    for (d, a, w), r in zip(runs, results):
        label = f"{d.m}x{d.k}x{d.n} tile {d.tm}x{d.tk}x{d.tn}/{d.order}"
        assert not r.illegal, label
        assert (r.c == fam.golden(pe, GemmJob(a, w))["c"]).all(), label
        mapping = Mapping(d.tm, d.tk, d.tn, "mnk" if d.order == 0 else "nmk")
        tiles = [sizes for _, _, _, sizes, *_ in tile_steps(Gemm("", d.m, d.k, d.n), mapping)]
        assert r.counters["dram_write_bytes"] == 4 * d.m * d.n, label
        assert r.counters["dram_read_bytes"] == _bus_read_bytes(cfg, d.m, d.k, d.n, mapping), \
            label
        # Per 4 x 4 array block (4 K steps x 4 columns) of a tile: 4 weight beats, of which
        # those of K steps inside the tile read a weight row, then one A beat per row of the
        # tile, each reading all 4 input lanes and giving one result row.
        blocks = [(sm, sk, math.ceil(sk / 4) * math.ceil(sn / 4)) for sm, sk, sn in tiles]
        assert r.counters["weight_sram_reads"] == sum(
            sk * math.ceil(sn / 4) for sm, sk, sn in tiles), label
        assert r.counters["input_sram_reads"] == sum(4 * sm * b for sm, _, b in blocks), label
        assert r.counters["output_sram_writes"] == sum(sm * b for sm, _, b in blocks), label


@pytest.mark.verilator
def test_ws_model_predicts_every_cycle_ideal_dram():
    _model_agrees(IDEAL, ALIGNED[:3] + RAGGED[:4], **WS)


@pytest.mark.verilator
def test_ws_model_predicts_every_cycle_stalled_dram():
    # 4 bytes per cycle on a 64-bit bus: a beat every 2 cycles; latency 50.
    _model_agrees({"bytes_per_cycle": 4, "latency_cycles": 50}, RAGGED[:4] + ODD_WRITES[:2],
                  **WS)


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("rate, latency, bits", [(4, 50, 64), (8, 50, 64), (math.inf, 50, 64),
                                                 (16, 50, 128)])
def test_ws_model_predicts_every_cycle_stalled_dram_all_shapes(rate, latency, bits):
    _model_agrees({"bytes_per_cycle": rate, "latency_cycles": latency},
                  ALIGNED + RAGGED + ODD_WRITES, bits, **WS)
