"""Cost of the sparse DSP chain's N:M modes beside the dense chain, and of its sparse MUXes.

The circuits
    :class:`peforge.hw.sparse_dsp.top.SparseDspChain` takes ``N`` as an input of every beat
    (``n_log2``), so one circuit per chain length ``L`` and MUX width ``G`` (the pattern's ``M``)
    runs every ``N`` dividing ``G``: the dense mode ``G:G`` and the sparse modes ``N:G``. With
    ``G = 1`` (the dense chain of a pattern whose ``M`` does not divide ``L``) there is no MUX,
    no index input, one reduction group and one output accumulator: the *no-MUX dense baseline*.
    All circuits have the same ``L`` slices (``L`` multipliers: one MAC unit per slice, the
    family's ``pes``), weights, accumulator width, overflow policy and pipeline registers.

The rows (:func:`cost_table`), one per design and mode
    ``dense_nomux``: the ``G = 1`` circuit, dense.
    ``nm_chain``: the ``G`` circuit for ``G`` in ``2, 4, 8, 16`` dividing ``L``, one row per mode
    ``N:G`` (``N`` from ``G`` down to 1). The rows of one ``G`` share the circuit and its area;
    only the throughput differs.

How the MUX cost is isolated
    Every ``G`` circuit costs, over the baseline, its ``L`` sparse MUXes *and* its reduction
    network (``G - 1`` reduction nodes with their delayed break controls, ``G`` output
    accumulators instead of one, and the deskew registers that align each group's partial sum
    with the chain's end). Three syntheses per ``G`` separate them:

    * the ``G`` circuit itself (``circuit``);
    * the same circuit with every MUX select tied to a constant (:class:`MuxRemoved`: slice ``j``
      reads window activation ``(j mod B) * G + j // B``, a permutation, so every slice keeps its
      own activation and skew registers): synthesis folds each MUX into wires and keeps the
      rest, so ``mux_* = circuit - MuxRemoved`` is the MUXes' cost in place, and
      ``reduction_* = MuxRemoved - baseline`` the reduction network's;
    * one MUX alone (the generator's own :class:`peforge.hw.sparse_dsp.top.SparseMux`, ``G``
      INT8 candidates and a ``log2(G)``-bit select), times ``L``: ``mux_*_standalone``, a
      cross-check of the in-place figure.

    The MUX sits in front of the A register (or of the skew registers), so it is not on the
    multiplier's path with ``areg >= 1`` and synthesises alike in place and alone: in
    transistors the in-place figure is 70-100% of the standalone one (synthesis shares a
    little logic between neighbouring MUXes). The in-place Liberty difference of two ~10^5 um2
    mappings carries the mapper's noise (a few hundred um2), larger than the whole 2-input
    MUXes of a short chain; ``mux_area_um2_standalone`` is then the figure to read.

Throughput, from the family's cycle model (:func:`peforge.models.sparse_dsp.gemm_cycles`) on a
large GEMM ``R x K x C`` (default :data:`REFERENCE_GEMM`): every slice multiplies one stored
weight per cycle in every mode, so ``useful_macs_per_cycle`` (``R*K*C*N/M``, the products of
the non-zero weights, over the cycles) is about ``L`` in every row, while
``dense_equiv_macs_per_cycle`` (``R*K*C``, the dense GEMM the compressed weights stand for, over
the same cycles) is about ``L * M / N``. The no-MUX baseline's cycles are those of any dense
pattern (one output column per beat).

Compute efficiency: dense-equivalent MACs per cycle per transistor (and per um2 of Liberty area)
over the baseline's, ``efficiency_vs_dense_*``. The designs are compared per cycle: the MUX adds
gates in front of the A registers (``logic_depth`` is in the table), but the clock is not
modelled. FlightLLM's claim, "sparsity adds 1.6x compute efficiency"
(shared/reference/sparse_dsp_chain.md), is in ``paper_efficiency_gain`` on the sparse rows; it
is an end-to-end figure on an FPGA, where the DSP slices are hard blocks and only the MUXes and
reduction nodes cost LUTs, so it is not the same ratio as ours (every gate counted).
"""

import math
from pathlib import Path

import pandas as pd
from amaranth import Module
from amaranth.lib import wiring

from peforge.hw.common.verilog import to_verilog
from peforge.hw.sparse_dsp.top import SparseDspChain, SparseMux
from peforge.models.numerics.nm_sparse import M_CHOICES
from peforge.models.sparse_dsp import SparseDspConfig

from peforge.sim.families import family
from peforge.sim.eda.synth import AreaReport, default_liberty, synthesize
from peforge.sim.studies.tables import report_table

__all__ = ["run", "cost_table", "claims", "circuit_reports", "MuxRemoved",
           "REFERENCE_GEMM", "PAPER_EFFICIENCY_GAIN", "FAMILY"]

FAMILY = "sparse-dsp"

#: ``(R, K, C)`` of the GEMM whose cycle counts give the throughput: an LLM projection layer,
#: a whole number of windows and passes for every chain up to 32 and every ``M / N``.
REFERENCE_GEMM = (256, 4096, 4096)

#: FlightLLM (FPGA 2024): "sparsity adds 1.6x compute efficiency".
PAPER_EFFICIENCY_GAIN = 1.6


class MuxRemoved(wiring.Component):
    """A :class:`SparseDspChain` with every MUX select tied to a constant, so synthesis turns
    the MUXes into wires and keeps everything else.

    Slice ``j`` (block ``b = j mod B``, group ``j // B``) reads window activation
    ``b * G + j // B``: every activation goes to exactly one slice, as in dense mode. The
    ports are the chain's; ``i_stream.payload.idx`` is ignored.
    """

    def __init__(self, chain: SparseDspChain):
        if chain.mux < 2:
            raise ValueError(f"chain: has no MUX to remove (mux = {chain.mux})")
        self._chain = chain
        super().__init__(chain.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.chain = chain = self._chain
        blocks = chain.chain // chain.mux
        m.d.comb += [chain.i_stream.valid.eq(self.i_stream.valid),
                     self.i_stream.ready.eq(chain.i_stream.ready),
                     chain.i_stream.payload.eq(self.i_stream.payload),
                     self.o_stream.valid.eq(chain.o_stream.valid),
                     self.o_stream.payload.eq(chain.o_stream.payload)]
        # Later assignments win: the selects become constants.
        m.d.comb += [chain.i_stream.payload.idx[j].eq(j // blocks) for j in range(chain.chain)]
        return m


def _chain(config: SparseDspConfig, mux: int) -> SparseDspChain:
    return SparseDspChain(config.chain, mux, config.bits, config.acc_bits, config.overflow,
                          config.areg, config.mreg, config.preg)


def _config(chain: int, nm: str, **fields) -> SparseDspConfig:
    return SparseDspConfig(chain=chain, nm=nm, **fields)


def circuit_reports(chain: int, muxes, fields: dict, liberty: Path | None) -> dict:
    """Synthesis reports by ``(kind, G)``: ``("circuit", 1)`` the baseline, and for each ``G`` of
    ``muxes`` ``("circuit", G)``, ``("mux_removed", G)`` and ``("mux", G)`` (one MUX alone)."""
    top = family(FAMILY).top_name
    base = _config(chain, f"{M_CHOICES[0]}:{M_CHOICES[0]}", **fields)
    reports = {("circuit", 1): synthesize(to_verilog(_chain(base, 1), top), top,
                                          liberty=liberty)}
    for g in muxes:
        config = _config(chain, f"1:{g}", **fields)
        if config.mux != g:
            raise AssertionError(f"config {config.nm} on chain {chain} has G = {config.mux}")
        circuit = family(FAMILY).generator(config)
        reports["circuit", g] = synthesize(to_verilog(circuit, top), top, liberty=liberty)
        reports["mux_removed", g] = synthesize(
            to_verilog(MuxRemoved(_chain(config, g)), f"{top}_mux_removed"),
            f"{top}_mux_removed", liberty=liberty)
        reports["mux", g] = synthesize(to_verilog(SparseMux(g), "sparse_mux"), "sparse_mux",
                                       liberty=liberty)
    return reports


def _area(report: AreaReport) -> float:
    return report.liberty["area_um2"]


def cost_table(chain: int = 16, *, muxes=None, bits: int = 8, acc_bits: int = 48,
               overflow: str = "wrap", areg: int = 1, mreg: int = 1, preg: int = 1,
               gemm=REFERENCE_GEMM, liberty: Path | None = None) -> pd.DataFrame:
    """The rows of the module docstring for a chain of ``chain`` slices.

    ``muxes`` are the MUX widths ``G`` compared (default: every ``M`` of
    :data:`~peforge.models.numerics.nm_sparse.M_CHOICES` dividing ``chain``); the other keywords are the
    :class:`~peforge.models.sparse_dsp.SparseDspConfig` fields every circuit shares. ``liberty``
    defaults to :func:`~peforge.sim.eda.synth.default_liberty`.
    """
    fields = dict(bits=bits, acc_bits=acc_bits, overflow=overflow, areg=areg, mreg=mreg,
                  preg=preg)
    muxes = tuple(g for g in M_CHOICES if chain % g == 0) if muxes is None else tuple(muxes)
    for g in muxes:
        if g not in M_CHOICES or chain % g:
            raise ValueError(f"muxes: each must be one of {M_CHOICES} dividing chain={chain}, "
                             f"got {g}")
    liberty = default_liberty(liberty)
    reports = circuit_reports(chain, muxes, fields, liberty)
    big_r, big_k, big_c = gemm
    cycles_of = family(FAMILY).gemm_cycles
    base = reports["circuit", 1]

    modes = [("dense_nomux", 1, 1, _config(chain, f"{M_CHOICES[0]}:{M_CHOICES[0]}", **fields))]
    for g in muxes:
        n = g
        while n >= 1:
            modes.append(("nm_chain", n, g, _config(chain, f"{n}:{g}", **fields)))
            n //= 2
    rows = []
    for design, n, g, config in modes:
        if config.segments != g // n:
            raise AssertionError(f"{config.nm}: {config.segments} segments, expected {g // n}")
        report = reports["circuit", g]
        cycles = cycles_of(config, big_r, big_k, big_c)
        dense_macs = big_r * big_k * big_c
        row = {
            "design": design, "circuit": f"chain{chain}_mux{g}", "chain": chain,
            "mux_inputs": g, "nm": f"{n}:{g}" if g > 1 else "dense", "n": n, "m": g,
            "density": n / g, "segments": config.segments, "bits": bits, "acc_bits": acc_bits,
            "pes": family(FAMILY).pes(config),
            "gemm_r": big_r, "gemm_k": big_k, "gemm_c": big_c, "gemm_cycles": cycles,
            "useful_macs_per_cycle": dense_macs * n / g / cycles,
            "dense_equiv_macs_per_cycle": dense_macs / cycles,
            "cells": sum(report.cells.values()), "transistors": report.transistors,
            "nand2_eq": report.nand2_eq, "flip_flops": report.flip_flops,
            "logic_depth": report.logic_depth, "area_um2": _area(report),
            "area_node": Path(report.liberty["file"]).stem,
        }
        if g > 1:
            removed, one = reports["mux_removed", g], reports["mux", g]
            row.update(
                mux_transistors=report.transistors - removed.transistors,
                mux_area_um2=_area(report) - _area(removed),
                mux_transistors_standalone=chain * one.transistors,
                mux_area_um2_standalone=chain * _area(one),
                mux_logic_depth=one.logic_depth,
                reduction_transistors=removed.transistors - base.transistors,
                reduction_flip_flops=removed.flip_flops - base.flip_flops,
                reduction_area_um2=_area(removed) - _area(base))
        else:
            row.update(mux_transistors=0, mux_area_um2=0.0, mux_transistors_standalone=0,
                       mux_area_um2_standalone=0.0, mux_logic_depth=0, reduction_transistors=0,
                       reduction_flip_flops=0, reduction_area_um2=0.0)
        row["yosys_s"] = round(sum(r.yosys_seconds for (kind, width), r in reports.items()
                                   if width == g), 2)
        rows.append(row)
    table = pd.DataFrame(rows)
    ref = table.iloc[0]
    table["mux_share_transistors"] = table.mux_transistors / table.transistors
    table["mux_share_area"] = table.mux_area_um2 / table.area_um2
    table["transistors_vs_dense"] = table.transistors / ref.transistors
    table["area_vs_dense"] = table.area_um2 / ref.area_um2
    table["useful_vs_dense"] = table.useful_macs_per_cycle / ref.useful_macs_per_cycle
    table["dense_equiv_vs_dense"] = (table.dense_equiv_macs_per_cycle
                                     / ref.dense_equiv_macs_per_cycle)
    table["efficiency_vs_dense_transistors"] = (table.dense_equiv_vs_dense
                                                / table.transistors_vs_dense)
    table["efficiency_vs_dense_area"] = table.dense_equiv_vs_dense / table.area_vs_dense
    table["paper_efficiency_gain"] = [PAPER_EFFICIENCY_GAIN if n < m else math.nan
                                      for n, m in zip(table.n, table.m)]
    return table


def claims(table: pd.DataFrame) -> list[str]:
    """Lines setting our efficiency gains beside the paper's (for the printout)."""
    base = table.iloc[0]
    lines = [f"paper (FlightLLM, Alveo U280, end to end): sparsity adds "
             f"{PAPER_EFFICIENCY_GAIN}x compute efficiency",
             f"ours: dense-equivalent MACs/cycle per transistor (per um2) over the no-MUX dense "
             f"chain of {base.chain} slices ({base.transistors} transistors, "
             f"{base.dense_equiv_macs_per_cycle:.2f} MACs/cycle):"]
    for _, row in table[table.n < table.m].iterrows():
        area = f" ({row.efficiency_vs_dense_area:.2f}x by area)"
        lines.append(f"  {row.nm:>5} on {row.circuit}: {row.dense_equiv_vs_dense:.2f}x "
                     f"throughput / {row.transistors_vs_dense:.2f}x transistors = "
                     f"{row.efficiency_vs_dense_transistors:.2f}x{area}; MUXes "
                     f"{100 * row.mux_share_transistors:.1f}% of the circuit")
    return lines


#: Columns of the printout (the CSV holds them all).
SHOWN = ["circuit", "nm", "segments", "useful_macs_per_cycle", "dense_equiv_macs_per_cycle",
         "cells", "transistors", "flip_flops", "logic_depth", "area_um2", "mux_transistors",
         "mux_transistors_standalone", "mux_area_um2_standalone", "reduction_transistors",
         "mux_share_transistors", "transistors_vs_dense", "area_vs_dense",
         "efficiency_vs_dense_transistors", "efficiency_vs_dense_area", "paper_efficiency_gain"]


def run(out_dir: Path) -> list[Path]:
    """``peforge report sparse-dsp``: :func:`cost_table` of a 16-slice chain (INT8 x INT8,
    48-bit accumulators, one register stage each on A/B, M and P) into ``out_dir/cost.csv`` (one
    row per design and mode), printed with FlightLLM's claim beside ours. Synthesis is cached;
    cold, about 3 minutes on one core."""
    table = cost_table(16)
    return report_table(table, Path(out_dir) / "cost.csv", SHOWN, claims(table))
