"""Cost table of the sparse DSP chain's N:M modes vs the no-MUX dense chain
(peforge.sim.studies.sparse_dsp), on a chain of 4 slices: MUX widths 2 and 4."""

import gc
import math
import warnings

import pytest

from peforge.hw.sparse_dsp.top import SparseDspChain, SparseMux
from peforge.sim.studies.sparse_dsp import PAPER_EFFICIENCY_GAIN, MuxRemoved, claims, cost_table


CHAIN, ACC_BITS = 4, 48
GEMM = (64, 1024, 256)


@pytest.fixture(scope="module")
def table():
    return cost_table(CHAIN, gemm=GEMM)


def test_one_row_per_mode_of_each_circuit(table):
    assert list(zip(table.design, table.circuit, table.nm)) == [
        ("dense_nomux", "chain4_mux1", "dense"),
        ("nm_chain", "chain4_mux2", "2:2"), ("nm_chain", "chain4_mux2", "1:2"),
        ("nm_chain", "chain4_mux4", "4:4"), ("nm_chain", "chain4_mux4", "2:4"),
        ("nm_chain", "chain4_mux4", "1:4")]
    # N is a run-time input: every mode of one M is the same circuit.
    for _, rows in table.groupby("circuit"):
        for column in ("cells", "transistors", "flip_flops", "mux_transistors"):
            assert rows[column].nunique() == 1


def test_throughput_from_the_cycle_model(table):
    r, k, c = GEMM
    for row in table.itertuples():
        segments = row.m // row.n
        assert row.segments == segments and row.pes == CHAIN
        # Closed form: R * ceil(C/S) * ceil(K/L) beats + areg + mreg + L*preg + 1.
        cycles = r * math.ceil(c / segments) * math.ceil(k / CHAIN) + 1 + 1 + CHAIN + 1
        assert row.gemm_cycles == cycles
        assert row.dense_equiv_macs_per_cycle == r * k * c / cycles
        assert row.useful_macs_per_cycle == pytest.approx(
            row.dense_equiv_macs_per_cycle * row.n / row.m)
        # Every slice does one useful MAC per cycle in every mode, bar the pipeline fill.
        assert 0.99 * CHAIN < row.useful_macs_per_cycle < CHAIN
    assert table.dense_equiv_vs_dense.tolist() == pytest.approx(
        (table.dense_equiv_macs_per_cycle / table.dense_equiv_macs_per_cycle[0]).tolist())


def test_mux_and_reduction_isolated(table):
    base = table.iloc[0]
    assert base.mux_transistors == base.reduction_transistors == 0
    circuits = table.drop_duplicates("circuit").set_index("mux_inputs")
    for g in (2, 4):
        row = circuits.loc[g]
        # The MUX is combinational: the circuit's extra registers are all the reduction
        # network's, at least the G - 1 extra accumulators.
        assert row.flip_flops - base.flip_flops == row.reduction_flip_flops \
            >= (g - 1) * ACC_BITS
        assert row.transistors - base.transistors \
            == row.mux_transistors + row.reduction_transistors
        # In place, synthesis shares a little of the L separate MUXes' logic.
        assert 0.5 * row.mux_transistors_standalone <= row.mux_transistors \
            <= row.mux_transistors_standalone
        assert row.mux_share_transistors == pytest.approx(row.mux_transistors / row.transistors)
        assert 0 < row.mux_share_transistors < 0.1
    assert circuits.loc[4, "mux_transistors"] > circuits.loc[2, "mux_transistors"]
    assert circuits.loc[4, "mux_logic_depth"] > circuits.loc[2, "mux_logic_depth"] > 0
    assert circuits.loc[4, "reduction_transistors"] > circuits.loc[2, "reduction_transistors"]


def test_efficiency_ratios(table):
    base = table.iloc[0]
    assert table.transistors_vs_dense.tolist() == pytest.approx(
        (table.transistors / base.transistors).tolist())
    assert table.efficiency_vs_dense_transistors.tolist() == pytest.approx(
        (table.dense_equiv_vs_dense / table.transistors_vs_dense).tolist())
    assert (table.transistors.iloc[1:] > base.transistors).all()
    dense = table[(table.n == table.m) & (table.m > 1)]
    assert (dense.efficiency_vs_dense_transistors < 1).all()
    assert list(table.paper_efficiency_gain.dropna().index) == [2, 4, 5]
    assert set(table.paper_efficiency_gain.dropna()) == {PAPER_EFFICIENCY_GAIN}
    lines = claims(table)
    assert "1.6x compute efficiency" in lines[0]
    assert any(line.strip().startswith("1:4 on chain4_mux4: 4.00x throughput") for line in lines)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"muxes: each must be one of \(2, 4, 8, 16\) dividing "
                                         r"chain=4, got 8"):
        cost_table(CHAIN, muxes=(8,))
    with pytest.raises(ValueError, match=r"mux: must be a power of two >= 2, got 3"):
        SparseMux(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the chain is never elaborated
        with pytest.raises(ValueError, match=r"chain: has no MUX to remove \(mux = 1\)"):
            MuxRemoved(SparseDspChain(CHAIN, 1, 8, ACC_BITS, "wrap", 1, 1, 1))
        gc.collect()


def test_liberty_areas(table):
    assert (table.area_um2 > 0).all() and (table.area_node == "osu018_stdcells").all()
    assert table.efficiency_vs_dense_area.tolist() == pytest.approx(
        (table.dense_equiv_vs_dense / (table.area_um2 / table.area_um2[0])).tolist())
    sparse = table[table.m > 1]
    assert (sparse.mux_area_um2_standalone > 0).all()
    assert (sparse.reduction_area_um2 > 0).all()
