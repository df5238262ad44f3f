"""One table of what each family's trick costs on peforge's own flow, beside what its paper claims.

Four comparisons, one row per design and baseline (:func:`cost_table`). Every ratio is
*design / baseline*, so below 1 means the design is cheaper:

``lmul``
    The L-Mul multiplier vs the exact RNE multiplier of the same format (e4m3, e5m2, bf16), one
    multiplier each (:func:`peforge.sim.studies.lmul.area_table`). Basis: per multiplier. Paper
    (arXiv 2410.00907, from the 45 nm energy table): an element-wise float multiply costs about
    95% less energy (ratio 0.05).
``lut``
    The LUT tensor-core tile vs an INT8 MAC array of the same throughput, at W1, W2, W4 x A8,
    against the INT8 x INT8 array and the array with W-bit weights
    (:func:`peforge.sim.studies.lut.cost_table`). Basis: per effective MAC/cycle on the reference
    GEMM. Paper (LUT Tensor Core, ISCA 2025, FP16 activations, 28 nm): the MAC-based tensor core
    takes about 4-6x the area and power at W1 (ratio 1/6 to 1/4).
``bitserial``
    The bit-serial PE built for one weight type (int8, int6, fp4) vs the INT8 MAC PE
    (:func:`peforge.sim.studies.bitserial.cost_table`). Basis: per MAC/cycle at that type. Paper
    (BitMoD, HPCA 2025, 28 nm, FP16 activations): its PE's area per MAC/cycle vs its FP16 x INT8
    PE at the same type.
``sparse-dsp``
    The 16-slice DSP chain running an N:M sparse mode vs the no-MUX dense chain
    (:func:`peforge.sim.studies.sparse_dsp.cost_table`). Basis: per dense-equivalent MAC/cycle
    (the GEMM the compressed weights stand for). Paper (FlightLLM, FPGA 2024, end to end on an
    Alveo U280): sparsity adds 1.6x compute efficiency (ratio 1/1.6).

Columns: ``transistors_ratio`` (``abc -g cmos2``, node-independent), ``area_ratio`` (OSU 0.18 um
Liberty area, empty where that report has none: the L-Mul report counts transistors only),
``energy_ratio`` (dynamic pJ per MAC of :func:`peforge.sim.eda.energy.op_energy`, 45 nm, on
``stats`` operands, for the comparisons asked for; per dense-equivalent MAC for the sparse
chain, where the baseline is the dense mode of the same circuit, the family having no no-MUX
configuration; empty for the narrowed-weight MAC array, which no family configuration builds),
then the paper's ratio
(``paper_ratio_min``/``_max``, equal when it gives one figure), what it measures and where it is
from. The per-family reports (reports/lmul, lut, bitserial, sparse_dsp) hold the full tables.
"""

import math
from pathlib import Path

import pandas as pd

from peforge.models.bitserial import BitserialConfig
from peforge.models.lmul import MultiplierConfig
from peforge.models.lut import LutConfig
from peforge.models.sparse_dsp import SparseDspConfig
from peforge.models.systolic import SystolicConfig

from peforge.models.operand_stats import STATS
from peforge.sim.eda import energy
from peforge.sim.studies import bitserial as bitserial_cost
from peforge.sim.studies import lmul as lmul_report
from peforge.sim.studies import lut as lut_cost
from peforge.sim.studies import sparse_dsp as sparse_dsp_cost
from peforge.sim.studies.tables import report_table

__all__ = ["run", "cost_table", "COMPARISONS", "LMUL_FORMATS", "SPARSE_MODES",
           "LMUL_PAPER_ENERGY_RATIO", "BITSERIAL_TYPES"]

#: The comparisons, in the table's order.
COMPARISONS = ("lmul", "lut", "bitserial", "sparse-dsp")

#: Formats of the L-Mul rows (the fp8 formats and bf16).
LMUL_FORMATS = ("e4m3", "e5m2", "bf16")

#: L-Mul paper: "about 95% less energy for element-wise float multiplies"
#: (../shared/reference/lmul.md).
LMUL_PAPER_ENERGY_RATIO = 0.05

#: Weight types of the bit-serial rows (each on a PE built for that type alone).
BITSERIAL_TYPES = bitserial_cost.THROUGHPUT_TYPES

#: N:M modes of the sparse rows: the paper's 2:4 and its M = 16 modes.
SPARSE_MODES = ("2:4", "8:16", "4:16", "2:16")

#: The sparse chain's length (the sparse_dsp report's default).
CHAIN = 16


def _row(group, design, baseline, basis, transistors_ratio, area_ratio, energy_ratio,
         paper=(math.nan, math.nan), paper_metric="", paper_source="") -> dict:
    return {"comparison": group, "design": design, "baseline": baseline, "basis": basis,
            "transistors_ratio": transistors_ratio, "area_ratio": area_ratio,
            "energy_ratio": energy_ratio, "paper_ratio_min": paper[0],
            "paper_ratio_max": paper[1], "paper_metric": paper_metric,
            "paper_source": paper_source}


def _pj_per_mac(family_name: str, config, stats: str) -> float:
    return energy.op_energy(family_name, config, stats=stats).pj_per_mac


def _lmul_rows(stats, with_energy) -> list[dict]:
    area = lmul_report.area_table().set_index(["format", "multiplier"])
    rows = []
    for fmt in LMUL_FORMATS:
        ratio = (_pj_per_mac("lmul", MultiplierConfig(format=fmt), stats)
                 / _pj_per_mac("lmul", MultiplierConfig(format=fmt, exact=True), stats)
                 if with_energy else math.nan)
        rows.append(_row("lmul", f"lmul {fmt}", f"exact RNE {fmt}", "per multiplier",
                         area.loc[(fmt, "lmul"), "transistors_vs_exact"], math.nan, ratio,
                         (LMUL_PAPER_ENERGY_RATIO,) * 2, "energy per float multiply",
                         "L-Mul, arXiv 2410.00907 (45 nm table: 95% less)"))
    return rows


def _lut_rows(stats, with_energy) -> list[dict]:
    table = lut_cost.cost_table()
    low, high = lut_cost.PAPER_AREA_RATIO
    rows = []
    for _, mac in table[table.family == "systolic"].iterrows():
        w = int(mac.wbits)
        lut = LutConfig(wbits=w, wkind="unsigned", abits=8)
        ratio = math.nan
        if with_energy and mac.design == "mac_array_int8xint8":
            shape = lut_cost.mac_array_shape(int(mac.pes))
            ratio = (_pj_per_mac("lut", lut, stats) / _pj_per_mac(
                "systolic", lut_cost.mac_config(*shape, int(mac.result_bits), lut.k_max), stats))
        paper = (1 / high, 1 / low) if w == 1 else (math.nan, math.nan)
        rows.append(_row("lut", f"lut tile W{w}A8", f"{mac.design} ({mac.geometry})",
                         "per effective MAC/cycle", 1 / mac.transistors_per_mac_per_cycle_vs_lut,
                         1 / mac.area_per_mac_per_cycle_vs_lut, ratio, paper,
                         "area and power vs a MAC tensor core, W1 (FP16 activations, 28 nm)"
                         if w == 1 else "",
                         "LUT Tensor Core, ISCA 2025" if w == 1 else ""))
    return rows


def _bitserial_rows(stats, with_energy) -> list[dict]:
    table = bitserial_cost.cost_table().set_index("design")
    rows = []
    for t in BITSERIAL_TYPES:
        ratio = (_pj_per_mac("bitserial", BitserialConfig(wtypes=t), stats)
                 / _pj_per_mac("systolic", SystolicConfig(bits=8), stats)
                 if with_energy else math.nan)
        paper = table.loc["bitmod_pe", f"area_per_mac_cycle_vs_int8w_mac_{t}"]
        ours = table.loc[f"bitserial_pe[{t}]"]
        rows.append(_row("bitserial", f"bitserial_pe[{t}]", "int8_mac_pe",
                         f"per MAC/cycle at {t}",
                         ours[f"transistors_per_mac_cycle_vs_int8_mac_{t}"],
                         ours[f"area_per_mac_cycle_vs_int8w_mac_{t}"], ratio, (paper, paper),
                         f"BitMoD PE vs FP16 x INT8 PE, area per MAC/cycle at {t} (28 nm)",
                         "BitMoD, HPCA 2025"))
    return rows


def _sparse_rows(stats, with_energy) -> list[dict]:
    table = sparse_dsp_cost.cost_table(CHAIN).set_index("nm")
    gain = sparse_dsp_cost.PAPER_EFFICIENCY_GAIN
    rows = []
    for mode in SPARSE_MODES:
        m = mode.split(":")[1]
        row = table.loc[mode]
        # op_energy counts the dense-equivalent MACs of its GEMM (K is the dense reduction)
        ratio = (_pj_per_mac("sparse-dsp", SparseDspConfig(chain=CHAIN, nm=mode), stats)
                 / _pj_per_mac("sparse-dsp", SparseDspConfig(chain=CHAIN, nm=f"{m}:{m}"), stats)
                 if with_energy else math.nan)
        rows.append(_row("sparse-dsp", f"chain{CHAIN} {mode}", f"chain{CHAIN} dense, no MUX",
                         "per dense-equivalent MAC/cycle",
                         1 / row.efficiency_vs_dense_transistors,
                         1 / row.efficiency_vs_dense_area, ratio, (1 / gain,) * 2,
                         "inverse compute efficiency, end to end (FPGA)", "FlightLLM, FPGA 2024"))
    return rows


def cost_table(*, stats: str = "gaussian", energy_for=COMPARISONS) -> pd.DataFrame:
    """The comparisons of the module docstring, one row per design and baseline.

    ``stats`` are the operand statistics of the energy ratios
    (:data:`peforge.models.operand_stats.STATS`);
    ``energy_for`` names the comparisons whose energy ratios are measured (activity runs of
    their gate-level netlists, minutes each when not cached); the others' ``energy_ratio`` is
    empty. Synthesis and energy runs are cached on disk by the modules they come from.
    """
    if stats not in STATS:
        raise ValueError(f"stats: must be one of {', '.join(STATS)}, got {stats!r}")
    unknown = sorted(set(energy_for) - set(COMPARISONS))
    if unknown:
        raise ValueError(f"energy_for: must name comparisons among {', '.join(COMPARISONS)}, "
                         f"got {unknown[0]!r}")
    rows = []
    for name, rows_of in zip(COMPARISONS, (_lmul_rows, _lut_rows, _bitserial_rows,
                                           _sparse_rows)):
        rows += rows_of(stats, name in energy_for)
    return pd.DataFrame(rows)


def run(out_dir: Path, *, stats: str = "gaussian") -> list[Path]:
    """``peforge report cost``: :func:`cost_table` with every comparison's energy ratio on
    ``stats`` operands into ``out_dir/cost.csv``, printed. Everything is cached (the per-family
    studies share the cache); cold, on a 2-core machine shared with other jobs, about 12 minutes
    of synthesis and tens of minutes of gate-level energy runs; cached, about 3 minutes."""
    return report_table(cost_table(stats=stats), Path(out_dir) / "cost.csv")
