"""Energy per MAC from gate-level switching activity (peforge.sim.eda.energy, .activity,
.liberty) and the operand statistics of the activity runs (peforge.models.operand_stats).

The Verilator tests share one gate-level build per configuration (cached on disk): the int8
systolic anchor serves the calibration, activity, all-zero and cache tests.
"""

import json
from dataclasses import replace

import numpy as np
import pytest

from peforge.hw.common.verilog import to_verilog
from peforge.models.numerics.floatfmt import decode, float_format
from peforge.models.operand_stats import STATS, VERIFY, operand_stats
from peforge.models.params import config_hash
from peforge.sim.eda import activity, energy
from peforge.sim.eda.liberty import read_liberty
from peforge.sim.cli import main
from peforge.sim.families import family
from peforge.sim.eda.synth import default_liberty, synth_family
from peforge.sim.rtl.backends.verilator import build


SYSTOLIC = family("systolic")
INT8 = SYSTOLIC.make_config()  # 8 x 8 int8 signed os array: measured as 2 x 2


# -- operand statistics (numpy only) ---------------------------------------------------------------

def test_gaussian_ints_have_the_documented_spread_and_zero_fraction():
    rng = np.random.default_rng(1)
    values = operand_stats("gaussian").ints(rng, 200_000, -128, 127)
    assert values.dtype == np.int64 and values.min() >= -128 and values.max() <= 127
    assert values.std() == pytest.approx(128 / 4, rel=0.02)
    small = operand_stats("gaussian-small").ints(rng, 200_000, -128, 127)
    assert small.std() == pytest.approx(128 / 32, rel=0.03)
    zeros = operand_stats("gaussian-zero50").ints(rng, 200_000, -128, 127)
    # 50% forced zeros plus the Gaussian's own (round(N(0, 32)) == 0 about 1.2% of the time).
    assert np.mean(zeros == 0) == pytest.approx(0.5 + 0.5 * 0.0125, abs=0.005)
    unsigned = operand_stats("gaussian").ints(rng, 1000, 0, 15)
    assert unsigned.min() == 0 and unsigned.max() <= 15
    assert not operand_stats("zeros").ints(rng, 10, -8, 7).any()


def test_uniform_floats_are_finite_and_cover_the_format():
    fmt = float_format("e4m3")
    codes = operand_stats("uniform").floats(fmt, np.random.default_rng(2), 50_000, None)
    assert np.isfinite(decode(fmt, codes)).all()
    # e4m3 (FN) has 254 finite patterns: all but the two NaNs.
    assert len(np.unique(codes)) == 254
    normal = operand_stats("gaussian").floats(fmt, np.random.default_rng(3), 50_000, None)
    assert decode(fmt, normal).std() == pytest.approx(1.0, rel=0.03)


def test_verify_stats_keep_the_family_patterns_and_unknown_stats_are_refused():
    rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
    fmt = float_format("bf16")
    assert np.array_equal(VERIFY.floats(fmt, rng_a, 7, lambda f, r, s: r.integers(0, 9, s)),
                          rng_b.integers(0, 9, 7))
    assert "gaussian-zero50" in STATS and "uniform" in STATS
    with pytest.raises(ValueError, match=r"^stats: must be one of uniform, gaussian, "
                                         r".*, got 'normal'$"):
        operand_stats("normal")
    with pytest.raises(ValueError, match=r"^stats: real-valued operands need"):
        operand_stats("uniform").reals(rng_a, 3)


def test_energy_configs_keep_the_pe_datapath():
    small = SYSTOLIC.energy_config(SYSTOLIC.make_config(rows=128, cols=64, bits=4))
    # 2 * bits + log2(k_max): 8 + 12 bits, as for the 128 x 64 array.
    assert (small.rows, small.cols, small.bits, small.acc_bits) == (2, 2, 4, 20)
    dsp = family("sparse-dsp")
    assert dsp.energy_config(dsp.make_config(chain=32, nm="1:16")).chain == 16
    assert dsp.energy_config(dsp.make_config()).chain == 4


def test_switching_energy_reads_escaped_names_and_names_a_net_without_toggles():
    # An inverter driving a NAND2's A pin; yosys's JSON writes the public net "$5" as "\\$5".
    netlist = {"modules": {"t": {"ports": {"clk": {"bits": [9]}}, "netnames": {
        "a": {"bits": [2]}, "\\$5": {"bits": [3]}, "y": {"bits": [4]}, "clk": {"bits": [9]}},
        "cells": {"u0": {"type": "INVX1", "connections": {"A": [2], "Y": [3]}},
                  "u1": {"type": "NAND2X1", "connections": {"A": [3], "B": ["1"], "Y": [4]}}}}}}
    lib = read_liberty(default_liberty())
    toggles = {("a", 0): 6, ("$5", 0): 6, ("y", 0): 6, ("clk", 0): 0}
    run = activity.switching_energy(netlist, toggles, lib, "t")
    # a drives INVX1.A (0.00932456 pF), $5 drives NAND2X1.A (0.0125 pF); y drives nothing.
    assert run.switching_pj == pytest.approx(0.5 * 1.8 ** 2 * 6 * (0.00932456 + 0.0125))
    assert run.data_toggles == 18 and run.area_um2 == 16 + 24
    del toggles[("$5", 0)]
    with pytest.raises(activity.EnergyError, match=r"^net \$5\[0\] of t has no toggle count$"):
        activity.switching_energy(netlist, toggles, lib, "t")


# -- gate-level activity (Verilator) ---------------------------------------------------------------

TINY = """module reg4(input clk, input [3:0] d, output reg [3:0] q);
  always @(posedge clk) q <= d;
endmodule
"""


@pytest.mark.verilator
def test_toggles_and_energy_of_a_register_match_a_hand_count(tmp_path):
    from cocotb_tools.runner import get_runner

    values = [5, 5, 10, 15, 0, 3, 3, 12, 1, 8]
    folder = activity.gate_netlist(TINY, "reg4", default_liberty())
    netlist = json.loads((folder / "netlist.json").read_text())
    assert sorted(c["type"] for c in netlist["modules"]["reg4"]["cells"].values()) == \
        ["DFFPOSX1"] * 4
    build_dir = build((folder / "netlist.v").read_text() + (folder / "cells.v").read_text(),
                      "reg4", extra_args=activity.COVERAGE_ARGS)
    get_runner("verilator").test(
        test_module="tests.toggle_bench", hdl_toplevel="reg4", hdl_toplevel_lang="verilog",
        build_dir=build_dir,
        test_dir=tmp_path, extra_env={"PEFORGE_TOGGLE_SEQ": json.dumps(values)},
        results_xml=str(tmp_path / "results.xml"), log_file=tmp_path / "sim.log")
    toggles = activity.toggle_counts(tmp_path / "coverage.dat", "reg4")
    # d and q change bit i whenever consecutive values (from 0) differ in bit i.
    previous = [0] + values[:-1]
    for bit in range(4):
        changes = sum(((a ^ b) >> bit) & 1 for a, b in zip(previous, values))
        assert toggles[("d", bit)] == changes
        assert toggles[("q", bit)] == changes
    edges = len(values) + 1
    assert toggles[("clk", 0)] in (2 * edges - 1, 2 * edges)
    run = activity.switching_energy(netlist, toggles, read_liberty(default_liberty()),
                                  "reg4")
    # By hand from osu018_stdcells.lib, DFFPOSX1: CLK 0.0279235 pF, D 0.00882947 pF; internal
    # energy per CLK toggle (0.006865 + 0.11034) / 2, per D toggle (0.045424 + 0.08841) / 2, per
    # Q toggle at no load (0.040752 + 0.064773) / 2 pJ; 1.8 V.
    data = sum(toggles[("d", bit)] for bit in range(4))
    clock = toggles[("clk", 0)]
    hand_pj = (0.5 * 1.8 ** 2 * (4 * 0.0279235 * clock + 0.00882947 * data)
               + 4 * clock * (0.006865 + 0.11034) / 2 + data * (0.045424 + 0.08841) / 2
               + data * (0.040752 + 0.064773) / 2)
    assert run.dynamic_pj == pytest.approx(hand_pj, rel=1e-9)
    assert run.clock_toggles == clock and run.data_toggles == 2 * data
    assert run.area_um2 == 4 * 96 and run.leakage_nw == pytest.approx(4 * 0.160725)


@pytest.fixture(scope="module")
def int8_runs():
    """The int8 anchor on every statistic (one gate-level build, one run each; the disk cache
    or a measurement, never the shipped table)."""
    return {stats: energy.op_energy("systolic", INT8, stats=stats, shipped=False)
            for stats in STATS}


@pytest.mark.verilator
def test_calibration_anchor_and_reported_fields(int8_runs):
    uniform = int8_runs["uniform"]
    assert uniform.pj_per_mac == pytest.approx(energy.ANCHOR_PJ_PER_MAC, rel=1e-3)
    assert uniform.ops == 2 * 128 * 2 and uniform.pes == 4
    # The run is the GEMM's 132 cycles (the cycle model of a 2 x 2 array) plus reset and start.
    assert SYSTOLIC.gemm_cycles(SYSTOLIC.energy_config(INT8), 2, 128, 2) == 132
    assert 132 <= uniform.cycles <= 140
    assert uniform.config_hash != uniform.reduced_config_hash
    # The same mapping as `peforge synth` of the 2 x 2 array, scaled by the NAND2 areas.
    area = synth_family(SYSTOLIC, SYSTOLIC.energy_config(INT8), liberty=default_liberty())
    assert uniform.area_um2 == pytest.approx(area.liberty["area_um2"] * 0.798 / 24)
    assert uniform.leakage_uw > 0


@pytest.mark.verilator
def test_energy_follows_operand_activity(int8_runs):
    pj = {stats: run.pj_per_mac for stats, run in int8_runs.items()}
    assert pj["zeros"] < pj["gaussian-zero90"] < pj["gaussian-zero50"] < pj["gaussian"] \
        < pj["uniform"]
    assert pj["gaussian-small"] < pj["gaussian"]


@pytest.mark.verilator
def test_all_zero_operands_toggle_little_but_the_clock(int8_runs):
    zeros, uniform = int8_runs["zeros"], int8_runs["uniform"]
    assert zeros.clock_toggles == uniform.clock_toggles
    assert zeros.clock_toggles in (2 * zeros.cycles, 2 * zeros.cycles + 1)
    # Control (valid, last, drain) toggles; operands and accumulators stay at zero.
    assert zeros.data_toggles < 0.02 * uniform.data_toggles
    assert zeros.clock_pj > 0.9 * zeros.dynamic_pj
    assert zeros.clock_pj == pytest.approx(uniform.clock_pj)


@pytest.mark.verilator
def test_second_call_reads_the_cache(int8_runs, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the cache was missed")

    for name in ("run_yosys", "build", "run_jobs_verilator", "gate_netlist"):
        monkeypatch.setattr(activity, name, refuse)
    assert energy.op_energy("systolic", INT8, stats="gaussian", shipped=False) \
        == int8_runs["gaussian"]
    # A 128 x 128 array reduces to the same 2 x 2 top: the same measurement, its own hash.
    big = SYSTOLIC.make_config(rows=128, cols=128)
    result = energy.op_energy("systolic", big, stats="gaussian", shipped=False)
    assert result.pj_per_mac == int8_runs["gaussian"].pj_per_mac and result.pes == 4
    assert result.config_hash == config_hash("systolic", big) != int8_runs["gaussian"].config_hash


@pytest.mark.verilator
def test_int4_mac_costs_less_than_int8(int8_runs):
    int4 = energy.op_energy("systolic", SYSTOLIC.make_config(bits=4), stats="uniform",
                            shipped=False)
    assert int4.pj_per_mac < int8_runs["uniform"].pj_per_mac


@pytest.mark.slow  # the int16 array's gate-level build takes minutes
@pytest.mark.verilator
def test_int16_mac_costs_more_than_int8(int8_runs):
    int16 = energy.op_energy("systolic", SYSTOLIC.make_config(bits=16), stats="uniform",
                             shipped=False)
    assert int16.pj_per_mac > int8_runs["uniform"].pj_per_mac


@pytest.mark.verilator
def test_lmul_costs_less_than_the_exact_multiplier():
    lmul = family("lmul")
    approx, exact = (energy.op_energy("lmul", lmul.make_config(exact=flag), shipped=False)
                     for flag in (False, True))
    assert approx.pj_per_mac < exact.pj_per_mac
    assert approx.area_um2 < exact.area_um2


@pytest.mark.verilator
def test_cli_prints_the_energy_and_writes_json(int8_runs, tmp_path, capsys):
    path = tmp_path / "e.json"
    assert main(["energy", "systolic", "--stats", "uniform", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"energy per MAC  {int8_runs['uniform'].pj_per_mac:.4f} pJ" in out
    data = json.loads(path.read_text())
    assert data["pj_per_mac"] == int8_runs["uniform"].pj_per_mac and data["parameters"]["rows"] == 8


@pytest.mark.verilator
def test_shipped_entry_equals_the_measurement(int8_runs):
    # The int8 anchor on uniform operands, as measured here (disk cache or gate-level run).
    _small, shape, verilog = energy.reduced_top(SYSTOLIC, INT8)
    shipped = energy.shipped_table()[energy.shipped_key(verilog, "uniform", 0, shape)]
    # The entry is keyed by the reduced top's Verilog; the configuration hashes it was stored
    # with are those of its day (op_energy reports today's: a parameter added since, such as
    # mul_stages, changes them, not the Verilog at its default).
    reduced = config_hash("systolic", SYSTOLIC.energy_config(INT8))
    assert replace(energy.OpEnergy.from_dict(shipped), config_hash=reduced,
                   reduced_config_hash=reduced) == replace(int8_runs["uniform"],
                                                           config_hash=reduced)


def test_shipped_table_serves_an_empty_cache_and_misses_a_changed_generator(fresh_machine,
                                                                           monkeypatch):
    result = energy.op_energy("systolic", INT8, stats="uniform")
    assert result.pj_per_mac == pytest.approx(energy.ANCHOR_PJ_PER_MAC, rel=1e-3)
    assert result.config_hash == config_hash("systolic", INT8)
    assert result.reduced_config_hash == config_hash("systolic", SYSTOLIC.energy_config(INT8))
    # The reduced top's Verilog is kept (and is what the generator writes); nothing measured.
    kept = list((fresh_machine / "energy" / "verilog").glob("*.json"))
    assert len(kept) == 1
    assert json.loads(kept[0].read_text())["verilog"] == to_verilog(
        SYSTOLIC.generator(SYSTOLIC.energy_config(INT8)), SYSTOLIC.top_name)
    # The generator's source changes and it now writes other Verilog: the kept Verilog and the
    # shipped entry are stale, so op_energy has to measure (which fresh_machine refuses).
    original = energy.to_verilog
    monkeypatch.setattr(energy, "to_verilog",
                        lambda module, top: original(module, top) + "// changed generator\n")
    monkeypatch.setattr(energy, "generator_fingerprint", lambda: "changed")
    with pytest.raises(energy.EnergyError, match=r"^energy: a gate-level measurement was "
                                                 r"started"):
        energy.op_energy("systolic", INT8, stats="uniform")
    assert len(list((fresh_machine / "energy" / "verilog").glob("*.json"))) == 2
    assert not list((fresh_machine / "energy").glob("*.json"))


def test_cli_refuses_unknown_stats(capsys):
    assert main(["energy", "systolic", "--stats", "normal"]) == 2
    assert capsys.readouterr().err == ("peforge: error: stats: must be one of "
                                       f"{', '.join(STATS)}, got 'normal'\n")
