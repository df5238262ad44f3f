"""Cost table of the LUT tile vs MAC arrays of the same throughput (sim/lut_cost.py), on a
1 x 8 tile at W1 and W4 (32 and 8 MACs per cycle)."""

import gc
import math
import warnings

import pytest

from peforge.hw.common.parts import WeightNarrowed
from peforge.hw.systolic.top import OutputStationaryPE
from peforge.models.lut import LutConfig
from peforge.models.systolic import SystolicConfig
from peforge.sim.families import family
from peforge.sim.studies.lut import (PAPER_AREA_RATIO, REFERENCE_GEMM, claims,
                                  cost_table, effective_macs_per_cycle, mac_array_shape,
                                  narrowed_parts)


M, N, K = 1, 8, 4
WBITS = (1, 4)


@pytest.fixture(scope="module")
def table():
    return cost_table(M, N, K, wbits=WBITS).set_index(["wbits", "design"])


def test_one_row_per_design_and_width(table):
    assert list(table.index) == [(w, design) for w in WBITS for design in (
        "lut_tile", "mac_array_int8xint8", f"mac_array_int8xuint{w}")]


def test_same_throughput_from_the_cycle_models(table):
    big_m, big_k, big_n = REFERENCE_GEMM
    for w in WBITS:
        lut, mac = table.loc[(w, "lut_tile")], table.loc[(w, "mac_array_int8xint8")]
        # One bit-plane of k weights per cell per cycle: m*n*k/W MACs; one MAC per PE.
        assert lut.peak_macs_per_cycle == mac.peak_macs_per_cycle == mac.pes == M * N * K // w
        assert lut.pes == M * N * K
        rows, cols = map(int, mac.geometry.split()[0].split("x"))
        assert rows * cols == mac.pes
        # The closed forms of both families, on the reference GEMM.
        tiles = math.ceil(big_m / M) * math.ceil(big_n / N)
        assert lut.gemm_cycles == tiles * (math.ceil(big_k / K) * w + M - 1) + 2
        systolic_tiles = math.ceil(big_m / rows) * math.ceil(big_n / cols)
        assert mac.gemm_cycles == systolic_tiles * (big_k + 2 * rows + cols - 2)
        for row in (lut, mac):
            assert row.effective_macs_per_cycle == big_m * big_k * big_n / row.gemm_cycles
            assert 0.98 * row.peak_macs_per_cycle < row.effective_macs_per_cycle \
                <= row.peak_macs_per_cycle
        assert table.loc[(w, f"mac_array_int8xuint{w}"), "gemm_cycles"] == mac.gemm_cycles


def test_mac_shape_is_the_fastest_factorisation():
    for pes in (8, 32, 128, 256, 512):
        best = mac_array_shape(pes)
        assert best[0] * best[1] == pes
        rate = effective_macs_per_cycle("systolic", SystolicConfig(rows=best[0], cols=best[1]))[0]
        for rows in (r for r in range(1, pes + 1) if pes % r == 0 and r <= 256 and pes // r <= 256):
            other = SystolicConfig(rows=rows, cols=pes // rows)
            assert effective_macs_per_cycle("systolic", other)[0] <= rate
    assert mac_array_shape(512) == (16, 32)


def test_exact_widths_and_registers(table):
    for w in WBITS:
        lut = LutConfig(m=M, n=N, k=K, wbits=w)
        for design in ("mac_array_int8xint8", f"mac_array_int8xuint{w}"):
            mac = table.loc[(w, design)]
            assert mac.result_bits == table.loc[(w, "lut_tile"), "result_bits"] == lut.acc_bits - 1
            assert mac.flip_flops >= mac.pes * mac.result_bits
        # Narrowing removes (8 - W) forwarded weight bits in every PE above the bottom row (the
        # bottom row forwards nothing; arrays up to 8 x 8 have no extra skew parts).
        cols = int(table.loc[(w, "mac_array_int8xint8"), "geometry"].split()[0].split("x")[1])
        wide, narrow = (table.loc[(w, d), "flip_flops"]
                        for d in ("mac_array_int8xint8", f"mac_array_int8xuint{w}"))
        assert wide - narrow == (8 - w) * (table.loc[(w, "mac_array_int8xint8"), "pes"] - cols)


def test_ratios_and_orderings(table):
    for w in WBITS:
        lut = table.loc[(w, "lut_tile")]
        rows = table.loc[w]
        assert rows.transistors_vs_lut.tolist() == pytest.approx(
            (rows.transistors / lut.transistors).tolist())
        per = rows.transistors / rows.effective_macs_per_cycle
        assert rows.transistors_per_mac_per_cycle_vs_lut.tolist() == pytest.approx(
            (per / (lut.transistors / lut.effective_macs_per_cycle)).tolist())
        # A W-bit weight needs less multiplier than an INT8 one.
        assert rows.loc[f"mac_array_int8xuint{w}", "transistors"] \
            < rows.loc["mac_array_int8xint8", "transistors"]
    # At W1 the LUT tile beats both MAC arrays; its advantage shrinks with W (W planes per MAC).
    assert (table.loc[1].transistors_vs_lut.iloc[1:] > 1).all()
    assert table.loc[(4, "mac_array_int8xint8"), "transistors_vs_lut"] \
        < table.loc[(1, "mac_array_int8xint8"), "transistors_vs_lut"]
    paper = table.paper_area_vs_lut_min.dropna()
    assert list(paper.index) == [(1, "mac_array_int8xint8"), (1, "mac_array_int8xuint1")]
    assert set(paper) == {PAPER_AREA_RATIO[0]}
    lines = claims(table.reset_index())
    assert lines[0].startswith("paper (28 nm, FP16 activations, W1)") and "18.2x" in lines[0]
    assert any("W1: mac_array_int8xuint1 (4x8 os" in line for line in lines)


def test_narrowed_parts_keep_the_pe_count():
    config = SystolicConfig(rows=16, cols=32, bits=8, acc_bits=20)
    wide = family("systolic").area_parts(config)
    narrow = narrowed_parts(config, 2)
    pe_count = sum(p.count for p in narrow if p.name.startswith("pe"))
    assert pe_count == sum(p.count for p in wide if p.name.startswith("pe")) == 512
    skew = {p.name: p.count for p in narrow if p.name.startswith("skew_")}
    assert skew["skew_act"] == 16 * 15 // 2 - 28 and skew["skew_weight2"] == 32 * 31 // 2 - 28


def test_weight_narrowed_rejects_bad_widths():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the parts are never elaborated
        with pytest.raises(ValueError, match=r"wbits: must be in 1\.\.7 for a 8-bit signed "
                                             r"operand, got 8"):
            WeightNarrowed(OutputStationaryPE(SystolicConfig().mac), 8)
        narrowed = WeightNarrowed(OutputStationaryPE(SystolicConfig().mac), 3)
        assert len(narrowed.b_in) == len(narrowed.b_out) == 3 and len(narrowed.a_in) == 8
        del narrowed
        gc.collect()


def test_liberty_areas(table):
    assert (table.area_um2 > 0).all() and (table.area_node == "osu018_stdcells").all()
    for w in WBITS:
        rows = table.loc[w]
        assert rows.area_vs_lut.tolist() == pytest.approx(
            (rows.area_um2 / rows.loc["lut_tile", "area_um2"]).tolist())
    assert (table.loc[1].area_vs_lut.iloc[1:] > 1).all()
