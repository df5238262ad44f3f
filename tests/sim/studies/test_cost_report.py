"""The cross-family cost table (sim/cost_report.py): orderings our syntheses and energies give."""

import math

import pytest

from peforge.sim.eda import energy
from peforge.sim.studies.cost import SPARSE_MODES, cost_table


@pytest.fixture(scope="module")
def table():
    # Area only: synthesis of every design, cached on disk (cold: minutes, hence slow).
    return cost_table(energy_for=()).set_index("design")


@pytest.mark.slow
def test_cost_table_orders_the_designs_as_their_circuits_do(table):
    assert len(table) == 3 + 6 + 3 + len(SPARSE_MODES)
    lmul = table[table.comparison == "lmul"]
    assert (lmul.transistors_ratio < 0.5).all()  # one adder vs a multiplier with rounding
    lut = table[table.comparison == "lut"]
    # against the INT8 x INT8 array the LUT tile wins at every width, by less as W grows
    full = [lut.loc[f"lut tile W{w}A8"] for w in (1, 2, 4)]
    full = [rows[rows.baseline.str.startswith("mac_array_int8xint8")].iloc[0] for rows in full]
    assert full[0].area_ratio < full[1].area_ratio < full[2].area_ratio < 1
    bitserial = table[table.comparison == "bitserial"]
    # one term per cycle: fp4 (2 terms) is cheaper per MAC/cycle than int6 (3) and int8 (4)
    assert (bitserial.loc["bitserial_pe[fp4]", "area_ratio"]
            < bitserial.loc["bitserial_pe[int6]", "area_ratio"]
            < bitserial.loc["bitserial_pe[int8]", "area_ratio"])
    sparse = table[table.comparison == "sparse-dsp"]
    # sparser modes retire more dense-equivalent MACs per cycle on the same circuit; the
    # 16-input MUXes cost more than 8:16's doubled rate wins back, 2:4's 4-input ones less
    assert (sparse.loc["chain16 2:16", "transistors_ratio"]
            < sparse.loc["chain16 4:16", "transistors_ratio"]
            < sparse.loc["chain16 8:16", "transistors_ratio"])
    assert sparse.loc["chain16 8:16", "transistors_ratio"] > 1
    assert sparse.loc["chain16 2:4", "transistors_ratio"] < 1
    assert table.energy_ratio.isna().all()
    # every comparison carries its paper's figure and source
    for group in ("lmul", "bitserial", "sparse-dsp"):
        rows = table[table.comparison == group]
        assert rows.paper_ratio_min.notna().all() and (rows.paper_source != "").all()
    assert math.isclose(lut.paper_ratio_min.dropna().iloc[0], 1 / 6)
    assert math.isclose(sparse.paper_ratio_min.iloc[0], 1 / 1.6)


def test_cost_table_rejects_unknown_stats_and_comparisons():
    with pytest.raises(ValueError, match=rf"^stats: must be one of {', '.join(energy.STATS)}, "
                                         r"got 'laplace'$"):
        cost_table(stats="laplace")
    with pytest.raises(ValueError, match=r"^energy_for: must name comparisons among lmul, lut, "
                                         r"bitserial, sparse-dsp, got 'systolic'$"):
        cost_table(energy_for=("lmul", "systolic"))


@pytest.mark.slow
def test_cost_table_energy_ratios_follow_the_circuits():
    """Energy per MAC measured on each family's gate-level netlist (cached on disk)."""
    table = cost_table().set_index("design")
    lmul = table[table.comparison == "lmul"]
    assert (lmul.energy_ratio < 1).all()  # one integer add per product beats a multiplier
    lut = table[(table.comparison == "lut") & table.energy_ratio.notna()]
    assert len(lut) == 3  # the INT8 x INT8 baselines; the narrowed array has no family config
    assert table.energy_ratio.notna().sum() == 3 + 3 + 3 + len(SPARSE_MODES)
