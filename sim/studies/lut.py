"""Cost of the LUT tensor-core tile beside an integer MAC array of the same throughput.

For each weight width ``W`` (W1, W2, W4 by default; unsigned codes, INT8 activations) the table
(:func:`cost_table`) has three rows:

``lut_tile``
    The lut family's whole top, :class:`peforge.hw.lut.top.LutArray` of ``LutConfig(m, n, k,
    wbits=W)``: ``m`` table-precompute units and their table registers, ``m x n``
    lookup-accumulate cells, the activation-sum correction, the drain and the stream control.
    Flat synthesis.
``mac_array_int8xint8``
    The systolic family's whole top (output-stationary, ``bits=8``, signed): the PEs, the skew
    registers and the controller, composed from parts
    (:func:`peforge.sim.eda.synth.synth_family` with ``compose_parts=True``). The family has one
    operand width for both operands (``bits``), so 8 is the narrowest that keeps INT8 activations;
    the W-bit codes ride in INT8 weights. This is the MAC array the family can build for the
    mpGEMM.
``mac_array_int8xuint<W>``
    The same array with every PE's weight operand narrowed to ``W`` unsigned bits
    (:class:`WeightNarrowed`: ``b_in`` zero-extended into the PE, ``b_out`` truncated, so the
    multiplier is 8 x (W+1) bits signed and the forwarded weight register ``W`` bits) and the
    weight skew registers of the array beyond 8 x 8 ``W`` bits wide. It is what a mixed-precision
    MAC array would be: the fairer baseline, which setting ``bits=W`` cannot give (that would
    narrow the activations too and compute another product). The 8 x 8 core of the skew network
    and the input beat stay 8 bits per weight lane (at most ``28 * (8 - W)`` register bits over).

Same throughput: the LUT tile retires ``m*n*k`` weight-bit products per cycle, one bit-plane of
``k`` weights per cell, i.e. ``m*n*k / W`` MACs per cycle at ``W`` bits; the MAC arrays have
that many PEs (one MAC per PE per cycle), shaped ``rows x cols`` for the best effective rate on
the reference GEMM (:func:`mac_array_shape`). ``effective_macs_per_cycle`` is ``M*K*N`` over the
families' cycle models (:func:`peforge.models.lut.gemm_cycles`,
:func:`peforge.models.systolic.gemm_cycles`) on the reference GEMM ``M x K x N`` (default
256 x 4096 x 1024, a whole number of tiles for both): it includes the LUT tile's table
precompute and drain and the systolic array's wavefront fill and drain.

Same numbers: every design holds the exact ``A @ W`` for reductions up to ``k_max`` (4096): the
MAC arrays' accumulators are pinned to the LUT tile's result width (``acc_bits - 1`` of the LUT
configuration, 20/22/24 bits at W1/W2/W4) instead of the family's 28-bit INT8 default.

Not the same: the clock. ``logic_depth`` (gates on the longest register-to-register path) is in
the table; the designs are compared per cycle, not per nanosecond.

Ratios ``*_vs_lut`` are MAC array / LUT tile of the same ``W`` (above 1: the LUT tile is that
many times smaller), in transistors (``abc -g cmos2``, node-independent) and in Liberty area
(OSU 0.18 um by default), absolute and per effective MAC/cycle. The paper's claim (about 4-6x
less area than a MAC-based tensor core at W1, with FP16 activations in 28 nm) is in
``paper_area_vs_lut_min``/``_max`` on the W1 MAC rows.
"""

import math
from pathlib import Path

import pandas as pd
from amaranth import unsigned

from peforge.hw.common.delays import DelayLine
from peforge.hw.common.parts import WeightNarrowed, blackbox_module
from peforge.hw.common.verilog import to_verilog
from peforge.models.lut import LutConfig
from peforge.models.systolic import SystolicConfig

from peforge.sim.families import AreaPart, family
from peforge.sim.families.systolic import REST_MAX
from peforge.sim.eda.synth import AreaReport, compose, default_liberty, synth_family, synthesize
from peforge.sim.studies.tables import report_table

__all__ = ["cost_table", "claims", "mac_array_shape", "mac_config", "effective_macs_per_cycle",
           "WBITS", "REFERENCE_GEMM", "PAPER_AREA_RATIO", "PAPER_DP4_TFLOPS_MM2"]

#: Weight widths compared.
WBITS = (1, 2, 4)

#: ``(M, K, N)`` of the GEMM whose cycle counts give the effective throughput.
REFERENCE_GEMM = (256, 4096, 1024)

#: LUT Tensor Core (ISCA 2025): about 4-6x less power and area than a MAC-based tensor core at
#: W1 (shared/reference/lut_tensor_core.md).
PAPER_AREA_RATIO = (4.0, 6.0)

#: The paper's 4-element dot-product unit at W1, FP16 activations: LUT vs MAC, TFLOPs/mm2.
PAPER_DP4_TFLOPS_MM2 = (61.55, 3.39)


def effective_macs_per_cycle(family_name: str, config, gemm=REFERENCE_GEMM) -> tuple[float, int]:
    """``(M*K*N / cycles, cycles)`` of the GEMM ``(M, K, N)`` on the family's cycle model."""
    m, k, n = gemm
    cycles = family(family_name).gemm_cycles(config, m, k, n)
    return m * k * n / cycles, cycles


def _triangle(n: int) -> int:
    return n * (n - 1) // 2


def mac_config(rows: int, cols: int, result_bits: int, k_max: int) -> SystolicConfig:
    """The INT8 output-stationary array, accumulators ``result_bits`` wide."""
    return SystolicConfig(rows=rows, cols=cols, dataflow="os", bits=8, signed=True, k_max=k_max,
                          acc_bits=result_bits)


def mac_array_shape(pes: int, gemm=REFERENCE_GEMM) -> tuple[int, int]:
    """``(rows, cols)`` with ``rows * cols == pes`` and the highest effective MACs/cycle on
    ``gemm``; ties go to the array with fewer skew stages (the squarer one)."""
    shapes = [(r, pes // r) for r in range(1, pes + 1) if pes % r == 0
              and r <= 256 and pes // r <= 256]
    if not shapes:
        raise ValueError(f"pes: no systolic shape of at most 256 x 256 has {pes} PEs")

    def key(shape):
        rate, _ = effective_macs_per_cycle("systolic", mac_config(*shape, 16, 4096), gemm)
        return (-rate, _triangle(shape[0]) + _triangle(shape[1]), shape)

    return min(shapes, key=key)


def _synth_parts(parts: list[AreaPart], prefix: str, liberty: Path | None) -> AreaReport:
    reports = []
    for part in parts:
        top = f"{prefix}_{part.name}"
        verilog = to_verilog(part.build(), top) + "".join(
            blackbox_module(signature, name) for name, signature in part.black_boxes)
        reports.append((part.name, part.count, synthesize(verilog, top, liberty=liberty)))
    return compose(reports, prefix)


def narrowed_parts(config: SystolicConfig, wbits: int) -> list[AreaPart]:
    """The systolic family's area parts of ``config`` with W-bit unsigned weights: PEs wrapped
    in :class:`WeightNarrowed`, the extra weight skew stages (beyond the 8 x 8 ``rest``) ``wbits``
    wide, the extra activation skew stages unchanged."""
    if config.dataflow != "os":
        raise ValueError("config: weight narrowing is written for the os dataflow")
    parts = []
    for part in family("systolic").area_parts(config):
        if part.name.startswith("pe"):
            parts.append(AreaPart(part.name, part.count,
                                  lambda build=part.build: WeightNarrowed(build(), wbits)))
        elif part.name == "skew_operand":
            rows, cols = config.rows, config.cols
            extra_a = _triangle(rows) - _triangle(min(rows, REST_MAX))
            extra_b = _triangle(cols) - _triangle(min(cols, REST_MAX))
            if extra_a + extra_b != part.count:
                raise AssertionError(f"skew stages: family counts {part.count}, "
                                     f"expected {extra_a} + {extra_b}")
            if extra_a:
                parts.append(AreaPart("skew_act", extra_a, part.build))
            if extra_b:
                parts.append(AreaPart(f"skew_weight{wbits}", extra_b,
                                      lambda: DelayLine(unsigned(wbits))))
        else:
            parts.append(part)
    return parts


def _row(design, fam, config, geometry, multiplier, wbits, result_bits, pes, peak, gemm,
         report: AreaReport, synthesis: str) -> dict:
    rate, cycles = effective_macs_per_cycle(fam, config, gemm)
    lib = report.liberty
    return {
        "design": design, "family": fam, "wbits": wbits, "geometry": geometry,
        "activations": "int8", "weights": f"uint{wbits}", "multiplier": multiplier,
        "result_bits": result_bits, "pes": pes, "peak_macs_per_cycle": peak,
        "gemm_m": gemm[0], "gemm_k": gemm[1], "gemm_n": gemm[2], "gemm_cycles": cycles,
        "effective_macs_per_cycle": rate, "synthesis": synthesis,
        "cells": sum(report.cells.values()), "transistors": report.transistors,
        "nand2_eq": report.nand2_eq, "flip_flops": report.flip_flops,
        "logic_depth": report.logic_depth,
        "area_um2": lib["area_um2"],
        "area_node": Path(lib["file"]).stem,
        "yosys_s": report.yosys_seconds,
    }


def cost_table(m: int = 2, n: int = 64, k: int = 4, *, wbits=WBITS, k_max: int = 4096,
               gemm=REFERENCE_GEMM, liberty: Path | None = None,
               narrowed: bool = True) -> pd.DataFrame:
    """Rows per weight width (module docstring): ``lut_tile``, ``mac_array_int8xint8`` and,
    with ``narrowed``, ``mac_array_int8xuint<W>``; then the ratios to the LUT tile.

    ``m``, ``n``, ``k`` shape the LUT tile (the lut family's defaults); each ``W`` of ``wbits``
    must divide ``m*n*k``. ``liberty`` defaults to :func:`~peforge.sim.eda.synth.default_liberty`.
    """
    liberty = default_liberty(liberty)
    rows = []
    for w in wbits:
        lut = LutConfig(m=m, n=n, k=k, wbits=w, wkind="unsigned", abits=8, k_max=k_max)
        products = m * n * k
        if products % w:
            raise ValueError(f"wbits: {w} does not divide the tile's {products} weight-bit "
                             f"products per cycle")
        pes, result_bits = products // w, lut.acc_bits - 1
        rows.append(_row("lut_tile", "lut", lut, f"{m}x{n} k{k}", "table lookup", w,
                         result_bits, family("lut").pes(lut), pes, gemm,
                         synth_family(family("lut"), lut, liberty=liberty, compose_parts=False),
                         "flat"))
        shape = mac_array_shape(pes, gemm)
        mac = mac_config(*shape, max(result_bits, 16), k_max)
        tag = f"{shape[0]}x{shape[1]} os"
        rows.append(_row("mac_array_int8xint8", "systolic", mac, tag, "int8 x int8", w,
                         mac.acc_bits, pes, pes, gemm,
                         synth_family(family("systolic"), mac, liberty=liberty,
                                      compose_parts=True), "composed"))
        if narrowed:
            report = _synth_parts(narrowed_parts(mac, w), f"systolic_u{w}", liberty)
            rows.append(_row(f"mac_array_int8xuint{w}", "systolic", mac, tag,
                             f"int8 x uint{w}", w, mac.acc_bits, pes, pes, gemm, report,
                             "composed"))
    table = pd.DataFrame(rows)
    lut_rows = table[table.design == "lut_tile"].set_index("wbits")
    ref = lut_rows.loc[table.wbits]
    table["transistors_per_mac_per_cycle"] = table.transistors / table.effective_macs_per_cycle
    table["area_um2_per_mac_per_cycle"] = table.area_um2 / table.effective_macs_per_cycle
    table["transistors_vs_lut"] = table.transistors.values / ref.transistors.values
    table["area_vs_lut"] = table.area_um2.values / ref.area_um2.values
    ref_rate = ref.effective_macs_per_cycle.values
    table["transistors_per_mac_per_cycle_vs_lut"] = (
        table.transistors_per_mac_per_cycle.values / (ref.transistors.values / ref_rate))
    table["area_per_mac_per_cycle_vs_lut"] = (
        table.area_um2_per_mac_per_cycle.values / (ref.area_um2.values / ref_rate))
    paper = (table.family == "systolic") & (table.wbits == 1)
    table["paper_area_vs_lut_min"] = [PAPER_AREA_RATIO[0] if p else math.nan for p in paper]
    table["paper_area_vs_lut_max"] = [PAPER_AREA_RATIO[1] if p else math.nan for p in paper]
    return table


def claims(table: pd.DataFrame) -> list[str]:
    """Lines setting our ratios beside the paper's (for the printout)."""
    low, high = PAPER_AREA_RATIO
    lut_density, mac_density = PAPER_DP4_TFLOPS_MM2
    lines = [f"paper (28 nm, FP16 activations, W1): MAC-based tensor core / LUT Tensor Core = "
             f"about {low:.0f}-{high:.0f}x in area and power; DP4 unit {lut_density} vs "
             f"{mac_density} TFLOPs/mm2 = {lut_density / mac_density:.1f}x compute density"]
    for _, row in table[table.family == "systolic"].iterrows():
        area = (f", {row.area_vs_lut:.2f}x in {row.area_node} area "
                f"({row.area_per_mac_per_cycle_vs_lut:.2f}x per effective MAC/cycle)")
        lines.append(f"ours (INT8 activations) W{row.wbits}: {row.design} ({row.geometry}, "
                     f"{row.effective_macs_per_cycle:.1f} MACs/cycle) / lut_tile = "
                     f"{row.transistors_vs_lut:.2f}x in transistors{area}")
    return lines


#: Columns of the printout (the CSV holds them all).
SHOWN = ["design", "wbits", "geometry", "multiplier", "result_bits", "pes", "peak_macs_per_cycle",
         "effective_macs_per_cycle", "cells", "transistors", "flip_flops", "logic_depth",
         "area_um2", "transistors_vs_lut", "area_vs_lut", "area_per_mac_per_cycle_vs_lut",
         "paper_area_vs_lut_min", "paper_area_vs_lut_max"]


def run(out_dir: Path) -> list[Path]:
    """``peforge report lut``: :func:`cost_table` of the lut family's default tile (2 x 64,
    k = 4) at W1, W2, W4 into ``out_dir/cost.csv`` (one row per design and weight width),
    printed with the paper's claim beside ours. Synthesis is cached; cold, about 5 minutes on
    one core (85 s per LUT tile), about 25 s cached."""
    table = cost_table()
    return report_table(table, Path(out_dir) / "cost.csv", SHOWN, claims(table))
