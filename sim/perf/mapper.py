"""The mapper: the best legal mapping of a GEMM by exact simulation, pruned by a sound bound.

Every legal mapping (:func:`peforge.sim.perf.tiling.legal_mappings`: tile sizes and all six
loop orders) has a lower bound of its cycles (:func:`peforge.sim.perf.tiling.lower_bounds`) and,
for the energy objectives, of its energy: the PE array's energy, the DRAM energy of its exact
traffic and the leakage over its bound cycles (SRAM energy, never negative, left out). The mapper
simulates the mapping of the smallest bound, then every mapping whose bound is not above the best
score simulated so far, in ascending order of bound (branch and bound); the rest cannot win and
are counted as pruned, as are the orders that visit the same tiles in the same sequence as an
order listed before them (a loop over a single block drops out: ``mnk`` is ``mkn`` with one K
block), which tie it exactly. The choice is therefore the optimum of the objective over the legal space
(:data:`OBJECTIVES`): ``cycles``; ``energy`` (pJ); ``edp`` (energy times cycles). Equal scores go
to the mapping listed first by :func:`~peforge.sim.perf.tiling.legal_mappings`.

Because the choice is optimal, growing an SRAM (more mappings legal) can never increase the
chosen cycles; nor can a faster DRAM, since every event time of the pipeline is a maximum of
sums of transfer times (:mod:`peforge.sim.perf.pipeline`), monotone in each of them.

Bounds are float64 sums of at most a few dozen terms: a mapping is pruned only when its bound
exceeds the best score by more than :data:`MARGIN` (relative), far above their rounding error.
"""

from dataclasses import dataclass

import numpy as np

from peforge.sim.perf.accelerator import Accelerator
from peforge.sim.perf.pipeline import block_bits, simulator, size_classes
from peforge.sim.perf.tiling import (ORDERS, OPERAND_DIMS, Mapping, _grid_of, lower_bounds,
                                     no_fit_error, passes)
from peforge.sim.perf.workloads import Gemm

__all__ = ["OBJECTIVES", "MARGIN", "Choice", "choose_mapping", "traffic"]

#: What the mapper minimises.
OBJECTIVES = ("cycles", "energy", "edp")

#: Relative slack of the pruning test (bounds are floats, scores exact).
MARGIN = 1e-9


@dataclass(frozen=True)
class Choice:
    """The mapping chosen for one GEMM shape, its exact cycles, and how the search went:
    ``simulated`` mappings run through the pipeline, ``pruned`` dropped by their bound."""

    mapping: Mapping
    cycles: int
    compute_cycles: int
    simulated: int
    pruned: int


def _row_bytes(rows: int, total: int, size: int, bits: int, beat_bits: int) -> float:
    """Bytes the DMA moves for ``rows`` rows of ``total`` elements cut into blocks of ``size``
    (:func:`peforge.sim.perf.pipeline.block_bits` of each block)."""
    return sum(count * block_bits(rows, cols, bits, beat_bits)
               for cols, count in size_classes(total, size)) / 8


def traffic(shape: tuple[int, ...], mapping: Mapping, beat_bits: int = 0) -> dict[str, float]:
    """DRAM bytes (``dram_read``, ``dram_write``) and the bytes read and written in each SRAM
    (``input_sram_read`` ...) of one GEMM of ``shape`` (:attr:`Gemm.shape`) under ``mapping``,
    exact (fractional for narrow operands).

    Each operand's DRAM loads are its passes (:func:`peforge.sim.perf.tiling.passes`); the array
    reads its A block on every tile (``nn`` times A in all) and W likewise (``nm`` times); the
    output tile is written every K step and read back every K step after the first, plus once
    per write-back, and a spilled tile is written again by its read from DRAM. With
    ``beat_bits`` (a DMA of whole beats, :class:`~peforge.sim.perf.accelerator.Dram`), what
    is read from DRAM, and written into the SRAMs by those reads, is each block row rounded up
    to whole beats; writes to DRAM are strobed: their bytes exactly."""
    m, k, n, a_bits, w_bits, out_bits = shape
    blocks = {"m": -(-m // mapping.tm), "k": -(-k // mapping.tk), "n": -(-n // mapping.tn)}
    count = {operand: passes(mapping.order, blocks, dims) for operand, dims in OPERAND_DIMS.items()}
    a_total, w_total, o_total = m * k * a_bits / 8, k * n * w_bits / 8, m * n * out_bits / 8
    a_loads = _row_bytes(m, k, mapping.tk, a_bits, beat_bits) * count["a"]
    w_loads = _row_bytes(k, n, mapping.tn, w_bits, beat_bits) * count["w"]
    spills = _row_bytes(m, n, mapping.tn, out_bits, beat_bits) * (count["out"] - 1)
    return {"dram_read": a_loads + w_loads + spills, "dram_write": o_total * count["out"],
            "input_sram_write": a_loads, "input_sram_read": blocks["n"] * a_total,
            "weight_sram_write": w_loads, "weight_sram_read": blocks["m"] * w_total,
            "output_sram_write": blocks["k"] * o_total + spills,
            "output_sram_read": (blocks["k"] - 1) * o_total + o_total * count["out"]}


def choose_mapping(accel: Accelerator, gemm: Gemm, tile_cycles, overlap: int, engine: str,
                   objective: str = "cycles", energy=None) -> Choice:
    """The optimal mapping of ``gemm`` (``count`` ignored) for ``objective`` (module docstring).

    ``energy``: for the energy objectives, ``(fixed_pj, dram_pj_per_byte, leakage_pj_per_cycle,
    score)`` with ``score(mapping, cycles) -> pJ`` the exact energy of a simulated mapping.
    Raises :class:`~peforge.sim.perf.tiling.MappingError` when no tiling fits the buffers."""
    fitting, bounds, repeats = lower_bounds(accel, gemm, tile_cycles, overlap)
    if not fitting.size:
        raise no_fit_error(gemm)
    grid = _grid_of(gemm)
    cycle_bounds = bounds.ravel()
    if objective == "cycles":
        keys = cycle_bounds
    else:
        fixed_pj, dram_pj, leakage_pj, score_pj = energy
        energies = fixed_pj + grid.dram_bytes[fitting].ravel() * dram_pj + leakage_pj * cycle_bounds
        keys = energies if objective == "energy" else energies * cycle_bounds
    # An order that repeats an earlier one's tile sequence ties it and is listed after it.
    keys = np.where(repeats.ravel(), np.inf, keys)
    simulate = simulator(engine, accel, gemm, tile_cycles, overlap)
    orders = len(ORDERS)

    def run(index):
        mapping = grid.mapping(fitting[index // orders], index % orders)
        cycles, compute = simulate(mapping)
        if objective == "cycles":
            score = cycles
        else:
            score = score_pj(mapping, cycles)
            score = score if objective == "energy" else score * cycles
        # Ties: the first listed (tilings ascending, then ORDERS).
        return (score, int(fitting[index // orders]) * orders + index % orders), mapping, cycles, \
            compute

    first = int(np.argmin(keys))
    best = run(first)
    candidates = np.flatnonzero(keys * (1 - MARGIN) <= best[0][0])
    candidates = candidates[np.argsort(keys[candidates], kind="stable")]
    simulated = 1
    for index in candidates.tolist():
        if index == first:
            continue
        if keys[index] * (1 - MARGIN) > best[0][0]:
            break
        found = run(index)
        simulated += 1
        if found[0] < best[0]:
            best = found
    _key, mapping, cycles, compute = best
    return Choice(mapping, cycles, compute, simulated, keys.size - simulated)
