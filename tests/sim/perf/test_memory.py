"""SRAM and DRAM energy and area models (sim/memory.py) against their published anchors."""

import pytest

from peforge.sim.perf.memory import (DRAM_TYPES, bank_area_mm2, bank_read_pj, bank_write_pj,
                                dram_type, sram_cost, sram_leakage_mw)

# Published figures, 45 nm. Horowitz ISSCC 2014: 64-bit read of an 8 KB / 32 KB / 1 MB SRAM.
HOROWITZ_READS = [(8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0)]
# Bit Fusion's CACTI sweep (45 nm itrs-hp, 32-bit port): bytes -> (read pJ, write pJ, mm2, mW).
CACTI = {128: (0.6837, 0.9253, 0.001499, 0.2496), 1024: (1.1332, 3.2960, 0.008824, 1.7893),
         16384: (9.9817, 8.4209, 0.1086, 27.127)}
# Stated fit errors (sim/memory.py docstring).
READ_ERROR, WRITE_ERROR, AREA_ERROR, LEAKAGE_ERROR = 0.47, 0.23, 0.29, 0.17


def close(model, published, error):
    return abs(model / published - 1) <= error


def test_sram_model_reproduces_its_anchors_within_the_fit_error():
    for size, read_pj in HOROWITZ_READS:
        assert close(bank_read_pj(size, 64), read_pj, 0.19)  # the tighter Horowitz bound
    for size, (read_pj, write_pj, area_mm2, leakage_mw) in CACTI.items():
        assert close(bank_read_pj(size, 32), read_pj, READ_ERROR)
        assert close(bank_write_pj(size, 32), write_pj, WRITE_ERROR)
        assert close(bank_area_mm2(size), area_mm2, AREA_ERROR)
        assert close(sram_leakage_mw(size), leakage_mw, LEAKAGE_ERROR)


def test_sram_costs_are_monotonic_in_size_width_and_banks():
    sizes = [1 << bits for bits in range(10, 23)]  # 1 KiB .. 4 MiB
    per_byte = [sram_cost(size, 16, 1).read_pj_per_byte for size in sizes]
    writes = [sram_cost(size, 16, 1).write_pj_per_byte for size in sizes]
    areas = [sram_cost(size, 16, 1).area_mm2 for size in sizes]
    leaks = [sram_cost(size, 16, 1).leakage_mw for size in sizes]
    for values in (per_byte, writes, areas, leaks):
        assert all(a < b for a, b in zip(values, values[1:]))
    widths = [1, 2, 4, 8, 16, 32, 64]
    accesses = [bank_read_pj(64 * 1024, 8 * width) for width in widths]
    assert all(a < b for a, b in zip(accesses, accesses[1:]))
    # Same capacity in more, smaller banks: every access touches a smaller bank.
    banked = [sram_cost(256 * 1024, 64, banks).read_pj_per_byte for banks in (1, 2, 4, 8)]
    assert all(a > b for a, b in zip(banked, banked[1:]))
    assert sram_cost(256 * 1024, 64, 4).leakage_mw == sram_cost(256 * 1024, 64, 1).leakage_mw


def test_dram_types_are_ordered_as_their_sources_say():
    per_bit = {name: kind.pj_per_bit for name, kind in DRAM_TYPES.items()}
    assert per_bit["hbm3"] < per_bit["hbm2"] < per_bit["lpddr4"] < per_bit["ddr4"]
    assert per_bit["ddr4"] == 1200 / 64  # BitMoD: 1200 pJ per 64 bits
    assert 1300 / 64 > per_bit["ddr4"]   # below Horowitz's DDR3 range, 1.3-2.6 nJ per 64 bits
    assert per_bit["hbm2"] == 3.9
    assert all(kind.source for kind in DRAM_TYPES.values())
    assert [dram_type(name) for name in ("ddr4-3200", "lpddr4-4266", "hbm2", "hbm3-6400")] == \
        ["ddr4", "lpddr4", "hbm2", "hbm3"]


@pytest.mark.parametrize("name", ["ddr5-4800", "DDR4-3200", "", "hbm", None])
def test_unknown_dram_type_names_the_key_and_the_known_types(name):
    with pytest.raises(ValueError, match=r"^dram.name: must be TYPE or TYPE-RATE with TYPE one "
                                         r"of ddr4, hbm2, hbm3, lpddr4 \(e.g. ddr4-3200\), got "
                                         rf"{name!r}$"):
        dram_type(name)
