"""Cost table of the bit-serial PE vs the INT8 MAC PE (sim/bitserial_cost.py), on a small shape."""

import math

import pytest

from peforge.models.bitserial import BitserialConfig
from peforge.models.systolic import SystolicConfig
from peforge.sim.studies.bitserial import (PAPER_AREA_UM2, THROUGHPUT_TYPES, claims, cost_table,
                                        holds, steady_macs_per_cycle)


BASE = BitserialConfig(rows=4, cols=4, lanes=2, group=16, k_max=64)
SETS = ("int8", "fp4", "fp4,int8")
MIXED = "bitserial_pe[fp4,int8]"


@pytest.fixture(scope="module")
def table():
    return cost_table(BASE, wtype_sets=SETS).set_index("design")


def test_one_row_per_design(table):
    assert list(table.index) == ["int8_mac_pe", "bitserial_pe[int8]", "bitserial_pe[fp4]", MIXED,
                                 MIXED + "_scaled_only", MIXED + "_raw_only", "bitmod_pe",
                                 "fp16_mac_pe", "fp16xint8_pe"]
    assert set(table.source) == {"peforge", "paper"}


def test_throughput_is_lanes_per_term_from_the_cycle_model(table):
    assert table.loc["int8_mac_pe", [f"macs_per_cycle_{t}" for t in THROUGHPUT_TYPES]].tolist() \
        == [1.0, 1.0, 1.0]
    assert table.loc["bitserial_pe[int8]", "macs_per_cycle_int8"] == BASE.lanes / 4
    assert table.loc["bitserial_pe[int8]", "macs_per_cycle_int6"] == BASE.lanes / 4
    assert table.loc["bitserial_pe[fp4]", "macs_per_cycle_fp4"] == BASE.lanes / 2
    # fp4-only hardware cannot hold int8 or int6 values; a mixed array runs fp4 groups at fp4's
    # 2 terms and int6 ones, held as int8, at 4.
    assert math.isnan(table.loc["bitserial_pe[fp4]", "macs_per_cycle_int8"])
    assert math.isnan(table.loc["bitserial_pe[fp4]", "macs_per_cycle_int6"])
    assert table.loc[MIXED, "macs_per_cycle_fp4"] == BASE.lanes / 2
    assert table.loc[MIXED, "macs_per_cycle_int6"] == BASE.lanes / 4
    assert table.loc[MIXED, "macs_per_cycle_int8"] == BASE.lanes / 4
    assert table.loc[MIXED, "terms_per_slot"] == 4
    # The paper's PE: 4 lanes, 2/3/4 terms.
    assert table.loc["bitmod_pe", [f"macs_per_cycle_{t}" for t in THROUGHPUT_TYPES]].tolist() \
        == pytest.approx([1.0, 4 / 3, 2.0])


@pytest.mark.parametrize("span", [1, 7, 64])
def test_steady_rate_does_not_depend_on_the_span(span):
    assert steady_macs_per_cycle("systolic", SystolicConfig(rows=3, cols=5), span) == 1.0
    assert steady_macs_per_cycle("systolic", SystolicConfig(rows=3, cols=5), span, 4) == 1.0
    config = BitserialConfig(rows=3, cols=5, lanes=4, wtypes="int6", group=16)
    assert steady_macs_per_cycle("bitserial", config, span * config.group) == pytest.approx(4 / 3)
    mixed = BitserialConfig(rows=3, cols=5, lanes=4, wtypes="fp3,int6,int8", group=16)
    rates = [steady_macs_per_cycle("bitserial", mixed, span * mixed.group, w_bits)
             for w_bits in (None, 3, 6, 8)]
    assert rates == pytest.approx([1.0, 2.0, 4 / 3, 1.0])


def test_holds():
    assert holds("fp4", ["int6"]) and holds("int6", ["int8"]) and holds("int8", None)
    assert not holds("fp4", ["int4"])           # +-16 and +-10 need more than int4's +-7
    assert not holds("int6", ["fp4"]) and not holds("int8", ["int6"])
    assert holds("fp3", ["fp4"])                 # fp3's specials +-3 and +-6 are fp4 values


def test_transistor_accounting(table):
    ours = table[table.source == "peforge"]
    shared = ours.pe_transistors + ours.decoder_transistors / ours.pes_per_decoder.clip(lower=1)
    assert ours.transistors.tolist() == pytest.approx(shared.tolist())
    assert (ours.decoder_transistors.iloc[1:] > 0).all()
    assert (ours.pes_per_decoder.iloc[1:] == BASE.rows).all()
    mac = table.loc["int8_mac_pe"]
    assert mac.flip_flops == 8 + 8 + 1 + SystolicConfig(k_max=BASE.k_max).acc_bits
    assert ours.transistors_vs_int8_mac.tolist() == pytest.approx(
        (ours.transistors / mac.transistors).tolist())
    # Trimming removes exactly what it says: raw_only keeps the c_raw register alone.
    mixed_config = BitserialConfig(rows=4, cols=4, lanes=2, wtypes="fp4,int8", group=16, k_max=64)
    assert table.loc[MIXED + "_raw_only", "flip_flops"] == mixed_config.raw_bits
    assert (table.loc[MIXED + "_raw_only", "pe_transistors"]
            < table.loc[MIXED + "_scaled_only", "pe_transistors"]
            < table.loc[MIXED, "pe_transistors"])
    # Fewer, narrower terms: the fp4 PE is smaller than the int8 one; any full PE (dequantiser,
    # two output accumulators) is larger than the INT8 MAC PE.
    assert table.loc["bitserial_pe[fp4]", "transistors"] < table.loc["bitserial_pe[int8]",
                                                                     "transistors"]
    assert (ours.transistors.iloc[1:4] > mac.transistors).all()
    for t in THROUGHPUT_TYPES:
        per = ours.transistors / ours[f"macs_per_cycle_{t}"]
        assert ours[f"transistors_per_mac_cycle_{t}"].tolist() == pytest.approx(
            per.tolist(), nan_ok=True)


def test_paper_ratios(table):
    bitmod = table.loc["bitmod_pe"]
    assert bitmod.area_vs_fp16_mac == pytest.approx(1793.7 / 1968.7)
    assert bitmod.area_vs_int8w_mac == pytest.approx(1793.7 / 1318.6)
    assert bitmod.area_per_mac_cycle_vs_int8w_mac_fp4 == pytest.approx(1793.7 / 2 / 1318.6)
    assert bitmod.area_per_mac_cycle_vs_fp16_mac_int6 == pytest.approx(1793.7 * 3 / 4 / 1968.7)
    assert table.loc["fp16xint8_pe", "area_um2"] == PAPER_AREA_UM2["fp16xint8_pe"]
    lines = claims(table.reset_index())
    assert lines[0].startswith("paper (28 nm, FP16 activations): BitMoD PE = 0.911 x FP16 MAC PE")
    assert any(MIXED + "_raw_only" in line for line in lines)


def test_liberty_areas(table):
    ours = table[table.source == "peforge"]
    assert (ours.area_um2 > 0).all() and (ours.area_node == "osu018_stdcells").all()
    mac = table.loc["int8_mac_pe"]
    assert ours.area_vs_int8w_mac.tolist() == pytest.approx((ours.area_um2 / mac.area_um2).tolist())
    # Area per MAC/cycle falls with the terms on single-type hardware: fp4 (2) beats int8 (4).
    assert (table.loc["bitserial_pe[fp4]", "area_um2_per_mac_cycle_fp4"]
            < table.loc["bitserial_pe[int8]", "area_um2_per_mac_cycle_fp4"])
    fp4 = table.loc["bitserial_pe[fp4]"]
    assert fp4.area_per_mac_cycle_vs_int8w_mac_fp4 == pytest.approx(
        fp4.area_um2 / fp4.macs_per_cycle_fp4 / mac.area_um2)
