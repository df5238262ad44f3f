"""The accelerator tile (hw/accelerator): configuration and descriptor checks, Verilator lint,
and GEMMs end to end under Verilator with cocotbext-axi's AxiRam as DRAM: C read back from DRAM
bit-exact against the golden model, the array's busy cycles equal to the family's cycle model
per tile, DRAM and scratchpad traffic equal to hand counts, illegal descriptors flagged."""

import math
from dataclasses import replace

import numpy as np
import pytest

from peforge.hw.accelerator.config import AccelConfig
from peforge.hw.accelerator.layout import descriptor_problems
from peforge.models.systolic import gemm_cycles
from peforge.sim.accel.flow import generate, place, run_gemms, build_tile
from peforge.sim.accel.golden import tile_golden
from peforge.sim.families import GemmJob, family
from peforge.sim.perf.accelerator import load_accelerator
from peforge.sim.perf.pipeline import tile_steps, step_loads
from peforge.sim.perf.tiling import Mapping
from peforge.sim.perf.workloads import Gemm
from peforge.sim.rtl.backends.verilator import lint

SRAM_4K = {"size_kib": 4}


def accel_config(dram=None, axi_data_bits=64, **pe):
    accel = load_accelerator({"family": "systolic", "pe": {"rows": 4, "cols": 4, **pe},
                              "input_sram": SRAM_4K, "weight_sram": SRAM_4K,
                              "output_sram": SRAM_4K,
                              "dram": dram or {"bytes_per_cycle": math.inf,
                                               "latency_cycles": 0}})
    return AccelConfig(accel, axi_data_bits=axi_data_bits)


#: (m, k, n, tm, tk, tn, order): ragged edges, K split over several tiles, A or W blocks reused
#: (a single K block), M or N of 1, both loop orders.
SHAPES = [
    (1, 1, 1, 1, 1, 1, "mnk"), (4, 4, 4, 4, 4, 4, "mnk"), (5, 3, 6, 5, 3, 6, "mnk"),
    (9, 20, 7, 16, 16, 16, "mnk"), (9, 20, 7, 16, 16, 16, "nmk"), (1, 17, 1, 16, 16, 16, "mnk"),
    (1, 40, 9, 16, 16, 16, "nmk"), (17, 8, 1, 16, 8, 1, "mnk"), (33, 8, 5, 16, 8, 16, "mnk"),
    (6, 8, 33, 16, 8, 16, "nmk"), (32, 32, 32, 16, 16, 16, "mnk"), (32, 32, 32, 16, 16, 16, "nmk"),
    (20, 24, 20, 16, 8, 16, "mnk"), (3, 64, 3, 16, 32, 16, "mnk"), (48, 16, 16, 16, 16, 16, "mnk"),
    (16, 16, 48, 16, 16, 16, "nmk"), (7, 7, 7, 7, 7, 7, "mnk"), (16, 1, 16, 16, 1, 16, "mnk"),
    (2, 100, 2, 16, 32, 16, "nmk"), (25, 9, 18, 16, 16, 16, "mnk"), (12, 40, 12, 16, 16, 16, "mnk"),
]


def test_config_rejects_what_the_rtl_cannot_build():
    base = accel_config()
    with pytest.raises(ValueError, match=r"^axi_data_bits: must be a power of two >= 32, got 48$"):
        AccelConfig(base.accel, axi_data_bits=48)
    with pytest.raises(ValueError, match=r"^axi_data_bits: must be a power of two >= 32, got 16$"):
        AccelConfig(base.accel, axi_data_bits=16)
    with pytest.raises(ValueError, match=r"^axi_data_bits: at most cols \* 32 = 128, got 256$"):
        AccelConfig(base.accel, axi_data_bits=256)
    small = replace(base.accel, output_sram=replace(base.accel.output_sram, size_kib=1),
                    pe=family("systolic").make_config(rows=128, cols=4))
    with pytest.raises(ValueError, match=r"^output_sram.size_kib: 1 KiB cannot hold a "
                                         r"double-buffered 128x1x4 tile of the array$"):
        AccelConfig(small)
    ws = replace(base.accel, pe=family("systolic").make_config(rows=8, cols=8, dataflow="ws"))
    assert AccelConfig(ws, axi_data_bits=64).weight_banks == 1
    with pytest.raises(ValueError, match=r"^axi_data_bits: ws needs at least rows \* bits = 64 "
                                         r"\(one A row block per lane word\), got 32$"):
        AccelConfig(ws, axi_data_bits=32)
    with pytest.raises(ValueError, match=r"^family: the accelerator RTL supports systolic only, "
                                         r"got 'lut'$"):
        AccelConfig(replace(base.accel, family="lut", pe=family("lut").make_config()))
    with pytest.raises(ValueError, match=r"^pe.rows: the accelerator RTL needs a power of two"):
        AccelConfig(replace(base.accel, pe=family("systolic").make_config(rows=3, cols=4)))


def test_descriptor_checks_name_the_field():
    cfg = accel_config()
    good = place(cfg, 9, 20, 7, 16, 16, 16, "mnk")
    assert descriptor_problems(cfg, good) == []
    assert descriptor_problems(cfg, replace(good, a_base=4)) == [
        "a_base: must be a multiple of the AXI width (8 bytes), got 4"]
    assert descriptor_problems(cfg, replace(good, tk=3)) == [
        "tk: a split K needs tk * 1 bytes to be a multiple of 8"]
    assert descriptor_problems(cfg, replace(good, m=0)) == ["m: must be in 1..65535, got 0"]
    assert descriptor_problems(cfg, replace(good, a_bits=4)) == [
        "a_bits: the array takes 8-bit operands, got 4"]
    big = place(cfg, 64, 64, 64, 64, 64, 64, "mnk")
    assert descriptor_problems(cfg, big)[0].startswith(
        "tile: two 64x64x64 slots need 256 words of the input scratchpad, which has 128")


@pytest.mark.verilator
def test_lint_clean():
    cfg = accel_config()
    verilog, manifest = generate(cfg)
    clean, messages = lint(verilog, manifest["top"])
    assert clean, messages
    assert {r["name"] for r in manifest["registers"]} >= {"ctrl", "status", "a_base", "cycles"}
    assert "m_axi__arlen" in {p["name"] for p in manifest["ports"]}


def _bus_read_bytes(cfg, m, k, n, mapping) -> int:
    """Whole AXI beats of every loaded row (hand count from the loads rule)."""
    w = cfg.beat_bytes
    gemm = Gemm("", m, k, n)
    total = 0
    steps = list(tile_steps(gemm, mapping))
    previous_a = previous_w = None
    for i, kk, j, (sm, sk, sn), *_ in steps:
        if (i, kk) != previous_a:
            total += sm * math.ceil(sk / w) * w
            previous_a = (i, kk)
        if (kk, j) != previous_w:
            total += sk * math.ceil(sn / w) * w
            previous_w = (kk, j)
    assert sum(step_loads(gemm, steps)) <= 8 * total
    return total


def random_runs(cfg, seed: int) -> list:
    """``(descriptor, A, W)`` of each of :data:`SHAPES` on ``cfg``, random operands of ``seed``."""
    fam, pe = family("systolic"), cfg.accel.pe
    rng = np.random.default_rng(seed)
    runs = []
    for m, k, n, tm, tk, tn, order in SHAPES:
        job = fam.random_job(pe, rng, m, k, n)
        runs.append((place(cfg, m, k, n, tm, tk, tn, order), job.a, job.b))
    return runs


@pytest.fixture(scope="module")
def ideal_runs():
    cfg = accel_config()
    runs = random_runs(cfg, 15)
    # Corner values: every product -128 * -128, K = 20, so the 20-bit sums exercise the
    # accumulator's sign extension into C's 32-bit words.
    low = np.full((9, 20), -128, dtype=np.int64)
    runs.append((place(cfg, 9, 20, 7, 16, 16, 16, "mnk"), low, np.full((20, 7), -128)))
    illegal = [replace(runs[3][0], a_base=4), replace(runs[3][0], tk=3),
               place(cfg, 64, 64, 64, 64, 64, 64, "mnk")]
    # Illegal descriptors in between legal ones: flagged, and the next GEMM still runs.
    runs = runs[:2] + [(d, None, None) for d in illegal] + runs[2:]
    return cfg, runs, run_gemms(cfg, build_tile(cfg), runs)


@pytest.mark.verilator
def test_gemms_bit_exact_and_counted(ideal_runs):
    cfg, runs, results = ideal_runs
    fam, pe = family("systolic"), cfg.accel.pe
    legal = [(d, a, w, r) for (d, a, w), r in zip(runs, results) if a is not None]
    assert len(legal) >= 20
    for d, a, w, r in legal:
        label = f"{d.m}x{d.k}x{d.n} tile {d.tm}x{d.tk}x{d.tn}/{d.order}"
        assert not r.illegal, label
        assert (r.c == fam.golden(pe, GemmJob(a, w))["c"]).all(), label
        mapping = Mapping(d.tm, d.tk, d.tn, "mnk" if d.order == 0 else "nmk")
        tiles = list(tile_steps(Gemm("", d.m, d.k, d.n), mapping))
        # The array's busy cycles: the family's cycle model of each tile, back to back.
        assert r.counters["busy_cycles"] == sum(gemm_cycles(pe, *sizes)
                                                for _, _, _, sizes, *_ in tiles), label
        assert r.counters["dram_write_bytes"] == 4 * d.m * d.n, label
        assert r.counters["dram_read_bytes"] == _bus_read_bytes(cfg, d.m, d.k, d.n, mapping), \
            label
        # One array beat per K step of each 4 x 4 array tile; each reads 4 input lanes.
        beats = sum(sk * math.ceil(sm / 4) * math.ceil(sn / 4) for _, _, _, (sm, sk, sn), *_ in tiles)
        assert r.counters["weight_sram_reads"] == beats, label
        assert r.counters["input_sram_reads"] == 4 * beats, label
        rows_out = sum(math.ceil(sm / 4) * 4 * math.ceil(sn / 4)
                       for _, _, _, (sm, _sk, sn), *_ in tiles)
        assert r.counters["output_sram_writes"] == rows_out, label


@pytest.mark.verilator
def test_illegal_descriptor_flagged_without_dram_traffic(ideal_runs):
    cfg, runs, results = ideal_runs
    flagged = [(d, r) for (d, a, _), r in zip(runs, results) if a is None]
    assert len(flagged) == 3
    for d, r in flagged:
        assert descriptor_problems(cfg, d)
        assert r.illegal and r.c is None
        assert r.counters["dram_read_bytes"] == r.counters["dram_write_bytes"] == 0


#: GEMMs whose rows are whole AXI beats (64-bit AXI, int8, 4x4 array).
ALIGNED = [(16, 16, 16, 16, 16, 16, "mnk"), (32, 32, 32, 16, 16, 16, "mnk"),
           (32, 32, 32, 16, 16, 16, "nmk"), (32, 16, 48, 16, 16, 16, "mnk"),
           (48, 16, 16, 16, 16, 16, "nmk"), (16, 64, 16, 16, 32, 16, "mnk"),
           (32, 8, 32, 16, 8, 16, "mnk"), (32, 8, 32, 16, 8, 16, "nmk")]

#: GEMMs with ragged rows: A, W or C rows that end inside an AXI beat, which the DMA reads (and
#: the DRAM channel times) as whole beats.
RAGGED = [(100, 3, 5, 16, 3, 5, "mnk"), (11, 11, 11, 11, 11, 11, "mnk"),
          (7, 7, 7, 7, 7, 7, "mnk"), (64, 8, 3, 64, 8, 3, "mnk"), (3, 8, 64, 3, 8, 64, "mnk"),
          (34, 20, 18, 32, 20, 16, "nmk"), (1, 17, 3, 1, 17, 3, "mnk")]

#: Ragged GEMMs whose C takes an odd number of W beats (5x3x5: 15, 1x24x9: 5, 3x1x1: 3): on a
#: DRAM slower than the bus, W beats must pass one per beat time, not in pairs.
ODD_WRITES = [(5, 3, 5, 5, 3, 5, "mnk"), (1, 24, 9, 1, 24, 9, "mnk"), (3, 1, 1, 3, 1, 1, "mnk")]


def _model_agrees(dram, gemms, axi_data_bits=64, **pe):
    """Each GEMM on the RTL (``pe``: the array's fields, e.g. ``dataflow``): C bit-exact, and
    its cycles, busy cycles, DRAM bytes and the accesses of each scratchpad (its word counters,
    in bytes) those the model predicts, by both engines."""
    from peforge.sim.accel.energy import rtl_sram_bytes
    from peforge.sim.accel.predict import predict

    cfg = accel_config(dram, axi_data_bits, **pe)
    fam = family("systolic")
    rng = np.random.default_rng(3)
    runs, jobs = [], []
    for m, k, n, tm, tk, tn, order in gemms:
        jobs.append(fam.random_job(cfg.accel.pe, rng, m, k, n))
        runs.append((place(cfg, m, k, n, tm, tk, tn, order), jobs[-1].a, jobs[-1].b))
    for (m, k, n, tm, tk, tn, order), job, r in zip(gemms, jobs,
                                                   run_gemms(cfg, build_tile(cfg), runs)):
        label = f"{m}x{k}x{n} {tm}x{tk}x{tn}/{order} {dram}"
        assert (r.c == tile_golden(cfg, job.a, job.b, tk)).all(), label
        model = predict(cfg, m, k, n, Mapping(tm, tk, tn, order))
        assert predict(cfg, m, k, n, Mapping(tm, tk, tn, order), engine="simpy") == model
        assert r.counters["cycles"] == model["cycles"], label
        assert r.counters["busy_cycles"] == model["compute_cycles"], label
        assert r.counters["dram_read_bytes"] == model["dram_read"], label
        assert r.counters["dram_write_bytes"] == model["dram_write"], label
        # The model counts whole bytes (half to even): an output word of cols x acc_bits
        # (1 x 28 on a 1 x 1 array) is 3.5 bytes.
        sram = {name: round(count) for name, count in rtl_sram_bytes(cfg, r.counters).items()}
        assert sram == {name: model[name] for name in sram}, label


IDEAL = {"bytes_per_cycle": math.inf, "latency_cycles": 0}


@pytest.mark.verilator
def test_model_predicts_every_cycle_ideal_dram():
    _model_agrees(IDEAL, ALIGNED[:3] + RAGGED[:4])


@pytest.mark.verilator
def test_model_predicts_every_cycle_ragged_rows_stalled_dram():
    # 4 bytes per cycle on a 64-bit bus: a beat every 2 cycles.
    _model_agrees({"bytes_per_cycle": 4, "latency_cycles": 50}, RAGGED[:4] + ODD_WRITES[:2])


@pytest.mark.verilator
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_one_pe_tile_lints_and_the_model_predicts_every_cycle(dataflow):
    # A 1 x 1 array: one-value selectors (output word parts, A and W segments) once came out
    # as zero-width Verilog vectors; the 32-bit bus holds one C element per beat.
    cfg = accel_config(None, 32, dataflow=dataflow, rows=1, cols=1)
    verilog, manifest = generate(cfg)
    clean, messages = lint(verilog, manifest["top"])
    assert clean, messages
    _model_agrees(IDEAL, ONE_PE, 32, dataflow=dataflow, rows=1, cols=1)
    _model_agrees({"bytes_per_cycle": 4, "latency_cycles": 50}, ONE_PE[1:4], 32,
                  dataflow=dataflow, rows=1, cols=1)


#: GEMMs on the 1 x 1 tile: M, K, N of 1, a ragged one, K of 1, and K split over tiles (ragged
#: in M and K, both loop orders).
ONE_PE = [(1, 1, 1, 1, 1, 1, "mnk"), (5, 3, 6, 5, 3, 6, "mnk"), (4, 1, 3, 4, 1, 3, "mnk"),
          (3, 9, 2, 2, 4, 2, "nmk"), (3, 9, 2, 2, 4, 2, "mnk"), (1, 8, 2, 1, 4, 2, "mnk"),
          (8, 8, 2, 8, 4, 2, "mnk")]


def test_one_pe_ws_tiles_share_no_cycle():
    # Hand count: 8x8x2 under 8x4x2 is two tiles (K split) that load in less time than they
    # compute. On 1 x 1, a tile is 4 x 2 folds of 2r + m + c - 2 = 9 cycles, plus 1: 73; the
    # feeder offers a tile's first beat one cycle after the previous tile's last output, so
    # the two share no cycle: 146 busy cycles (the RTL's count on the shapes of ONE_PE is the
    # model's: test_one_pe_tile_lints_and_the_model_predicts_every_cycle). On 1 x 2, 4 folds
    # of 10, plus 1: 41, and the second tile's first beat comes on the edge of the first's
    # last output: 2 * 41 - 1.
    from peforge.sim.accel.predict import predict

    for cols, busy in ((1, 2 * 73), (2, 2 * 41 - 1)):
        cfg = accel_config(IDEAL, 32, dataflow="ws", rows=1, cols=cols)
        assert predict(cfg, 8, 8, 2, Mapping(8, 4, 2, "mnk"))["compute_cycles"] == busy


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("rate, latency, bits", [(4, 50, 64), (4, 0, 64), (8, 50, 64),
                                                 (math.inf, 50, 64), (16, 50, 128)])
def test_model_predicts_every_cycle_stalled_dram(rate, latency, bits):
    _model_agrees({"bytes_per_cycle": rate, "latency_cycles": latency},
                  ALIGNED + RAGGED + ODD_WRITES, bits)


def test_cli_gen_writes_verilog_and_manifest(tmp_path, capsys):
    from peforge.sim.cli import main

    config = tmp_path / "accel.yaml"
    config.write_text("family: systolic\npe: {rows: 4, cols: 4}\ninput_sram: {size_kib: 4}\n"
                      "weight_sram: {size_kib: 4}\noutput_sram: {size_kib: 4}\n")
    assert main(["gen", "accelerator", "--config", str(config), "--out",
                 str(tmp_path / "out")]) == 0
    written = sorted(path.suffix for path in (tmp_path / "out").iterdir())
    assert written == [".json", ".v"]
    assert main(["gen", "accelerator", "--config", str(config), "--axi-bits", "40",
                 "--out", str(tmp_path / "bad")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        "peforge: error: axi_data_bits: must be a power of two >= 32, got 40"
    assert not (tmp_path / "bad").exists()


@pytest.mark.verilator
def test_cli_verify_runs_twenty_gemms(tmp_path, capsys):
    from peforge.sim.cli import main

    config = tmp_path / "accel.yaml"
    config.write_text("family: systolic\npe: {rows: 4, cols: 4}\ninput_sram: {size_kib: 4}\n"
                      "weight_sram: {size_kib: 4}\noutput_sram: {size_kib: 4}\n"
                      "dram: {bytes_per_cycle: .inf, latency_cycles: 0}\n")
    assert main(["verify", "accelerator", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "20 of 20 GEMMs bit-exact"
    # Rows of whole AXI beats: 32x32x32 under the model's mapping, cycles equal to the model's.
    row = next(line.split() for line in lines if line.split()[0] == "32x32x32")
    assert row[2] == "yes" and row[5] == "0"
    # verify recorded the RTL's counters: energy charges that GEMM from them.
    assert main(["energy", "accelerator", "--config", str(config), "--gemm", "32x32x32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("counts from the RTL's counters")
    assert lines[1].split() == ["cycles", row[3]]


def test_sram_energy_charges_the_rtl_word_counts():
    from peforge.sim.accel.energy import rtl_sram_bytes, sram_energy_pj
    from peforge.sim.perf.memory import sram_cost

    cfg = accel_config()          # 64-bit AXI: 8-byte lane and bank words; 4 x 28-bit outputs
    counters = {"input_sram_reads": 12, "input_sram_writes": 3, "weight_sram_reads": 5,
                "weight_sram_writes": 2, "output_sram_reads": 4, "output_sram_writes": 8}
    assert rtl_sram_bytes(cfg, counters) == {
        "input_sram_read": 96, "input_sram_write": 24, "weight_sram_read": 40,
        "weight_sram_write": 16, "output_sram_read": 56, "output_sram_write": 112}
    cost = sram_cost(4096, 64, 4)  # each scratchpad: 4 KiB, the Sram default ports
    only_input_reads = dict.fromkeys(rtl_sram_bytes(cfg, counters), 0) | {"input_sram_read": 96}
    assert sram_energy_pj(cfg, only_input_reads) == pytest.approx(96 * cost.read_pj_per_byte)
    assert sram_energy_pj(cfg, rtl_sram_bytes(cfg, counters)) == pytest.approx(
        (96 + 40 + 56) * cost.read_pj_per_byte + (24 + 16 + 112) * cost.write_pj_per_byte)
