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
from peforge.sim.perf.scratchpads import ScratchpadWords, word_traffic
from peforge.sim.perf.tiling import (ORDERS, OPERAND_DIMS, Mapping, _grid_of, fitting_mask,
                                     grid_bounds, no_fit_error, passes)
from peforge.sim.perf.workloads import Gemm

__all__ = ["OBJECTIVES", "MARGIN", "Choice", "choose_mapping", "clear_searches", "traffic"]

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


def traffic(shape: tuple[int, ...], mapping: Mapping, beat_bits: int = 0,
            words: ScratchpadWords | None = None) -> dict[str, float]:
    """DRAM bytes (``dram_read``, ``dram_write``) and the bytes read and written in each SRAM
    (``input_sram_read`` ...) of one GEMM of ``shape`` (:attr:`Gemm.shape`) under ``mapping``,
    exact (fractional for narrow operands).

    Each operand's DRAM loads are its passes (:func:`peforge.sim.perf.tiling.passes`); the array
    reads its A block on every tile (``nn`` times A in all) and W likewise (``nm`` times); the
    output tile is written every K step and read back every K step after the first, plus once
    per write-back, and a spilled tile is written again by its read from DRAM. With
    ``beat_bits`` (a DMA of whole beats, :class:`~peforge.sim.perf.accelerator.Dram`), what
    is read from DRAM, and written into the SRAMs by those reads, is each block row rounded up
    to whole beats; writes to DRAM are strobed: their bytes exactly.

    ``words`` (with ``beat_bits``): the array's reads and its output writes counted word by
    word, per array block, as the generated tile makes them
    (:func:`peforge.sim.perf.scratchpads.word_traffic`), instead of once per tile in
    elements; spilled partial sums read from DRAM are still written at their bytes."""
    m, k, n, a_bits, w_bits, out_bits = shape
    blocks = {"m": -(-m // mapping.tm), "k": -(-k // mapping.tk), "n": -(-n // mapping.tn)}
    count = {operand: passes(mapping.order, blocks, dims) for operand, dims in OPERAND_DIMS.items()}
    a_total, w_total, o_total = m * k * a_bits / 8, k * n * w_bits / 8, m * n * out_bits / 8
    a_loads = _row_bytes(m, k, mapping.tk, a_bits, beat_bits) * count["a"]
    w_loads = _row_bytes(k, n, mapping.tn, w_bits, beat_bits) * count["w"]
    spills = _row_bytes(m, n, mapping.tn, out_bits, beat_bits) * (count["out"] - 1)
    if words is None:
        array = {"input_sram_read": blocks["n"] * a_total,
                 "weight_sram_read": blocks["m"] * w_total,
                 "output_sram_write": blocks["k"] * o_total,
                 "output_sram_read": (blocks["k"] - 1) * o_total + o_total * count["out"]}
    elif not beat_bits:
        raise ValueError("words: counting scratchpad words needs the DMA's beat "
                         "(dram.beat_bytes)")
    else:
        array = word_traffic(words, m, k, n, mapping.tm, mapping.tk, mapping.tn, out_bits,
                             count["out"], beat_bits // 8)
    return {"dram_read": a_loads + w_loads + spills, "dram_write": o_total * count["out"],
            "input_sram_write": a_loads, "input_sram_read": array["input_sram_read"],
            "weight_sram_write": w_loads, "weight_sram_read": array["weight_sram_read"],
            "output_sram_write": array["output_sram_write"] + spills,
            "output_sram_read": array["output_sram_read"]}


class _Search:
    """The ranking of every mapping of one GEMM shape's grid, fitting the SRAMs or not, by its
    key (the bound of the objective, an order that repeats an earlier one's tiles at infinity),
    and the scores of the mappings simulated so far: what :func:`choose_mapping` shares between
    accelerators that differ only in their SRAM sizes (which decide which entries it may take).

    ``entries``: flat indices ``tiling * len(ORDERS) + order``, ascending by key and then by
    index (the listing order: ties go to the mapping listed first); ``tilings``: the tiling of
    each; ``scaled``: their keys times ``1 - MARGIN``, the pruning test's left-hand side."""

    def __init__(self, keys: np.ndarray, repeats: np.ndarray, score):
        keys = np.where(repeats, np.inf, keys).ravel()
        self.entries = np.argsort(keys, kind="stable").astype(np.int32)
        self.tilings = self.entries // len(ORDERS)
        self.scaled = keys[self.entries] * (1 - MARGIN)
        self._score = score
        self._known: dict[int, tuple] = {}

    def score(self, entry: int) -> tuple:
        """``((score, entry), cycles, compute_cycles)`` of the mapping at flat index ``entry``,
        simulated once."""
        known = self._known.get(entry)
        if known is None:
            known = self._known[entry] = self._score(entry)
        return known


#: How many searches :func:`choose_mapping` keeps (a few tens of kB each): more than a sweep's
#: PE arrays times DRAMs times GEMM shapes in one family, the set a sweep over SRAM sizes
#: revisits (``sweeps/large.yaml``: 75 x 4 x 5).
SEARCHES_KEPT = 4096

#: The searches of the ``cycles`` objective by all their ranking and scores depend on.
_searches: dict[tuple, _Search] = {}


def clear_searches() -> None:
    """Forget the shared searches (:class:`_Search`)."""
    _searches.clear()


def choose_mapping(accel: Accelerator, gemm: Gemm, tile_cycles, overlap: int, engine: str,
                   objective: str = "cycles", energy=None) -> Choice:
    """The optimal mapping of ``gemm`` (``count`` ignored) for ``objective`` (module docstring).

    ``energy``: for the energy objectives, ``(fixed_pj, dram_pj_per_byte, leakage_pj_per_cycle,
    score)`` with ``score(mapping, cycles) -> pJ`` the exact energy of a simulated mapping.
    Raises :class:`~peforge.sim.perf.tiling.MappingError` when no tiling fits the buffers.

    For ``cycles`` the ranking and the simulated mappings are kept per GEMM shape, tile cycles,
    SRAM ports and DRAM, so accelerators that differ in their SRAM sizes rank once and simulate
    a mapping once; which mappings are simulated and pruned is the same as searching alone."""
    fits = fitting_mask(accel, gemm)
    search = _search(accel, gemm, tile_cycles, overlap, engine, objective, energy)
    selected = fits[search.tilings]
    start = int(selected.argmax())
    if not selected[start]:
        raise no_fit_error(gemm)
    best = search.score(int(search.entries[start]))
    simulated = 1
    # The fitting mappings whose bound may beat the first, best bound first; the best only
    # improves.
    end = int(np.searchsorted(search.scaled, best[0][0], side="right"))
    following = start + 1 + np.flatnonzero(selected[start + 1:end])
    for entry, bound in zip(search.entries[following].tolist(),
                            search.scaled[following].tolist()):
        if bound > best[0][0]:
            break
        found = search.score(entry)
        simulated += 1
        if found[0] < best[0]:
            best = found
    (_score, entry), cycles, compute = best
    mapping = _grid_of(gemm).mapping(entry // len(ORDERS), entry % len(ORDERS))
    return Choice(mapping, cycles, compute, simulated,
                  len(ORDERS) * int(np.count_nonzero(fits)) - simulated)


def _search(accel: Accelerator, gemm: Gemm, tile_cycles, overlap: int, engine: str,
            objective: str, energy) -> _Search:
    """The :class:`_Search` of ``gemm`` on ``accel``: shared for ``cycles``, else its own."""
    key = None
    if objective == "cycles":
        key = (gemm.shape, engine, tile_cycles, overlap, accel.input_sram.bytes_per_cycle,
               accel.weight_sram.bytes_per_cycle, accel.output_sram.bytes_per_cycle,
               accel.dram.bytes_per_cycle, accel.dram.latency_cycles, accel.dram.beat_bytes)
        search = _searches.get(key)
        if search is not None:
            return search
    grid = _grid_of(gemm)
    bounds = grid_bounds(accel, gemm, tile_cycles, overlap)
    if objective == "cycles":
        keys = bounds
    else:
        fixed_pj, dram_pj, leakage_pj, score_pj = energy
        energies = fixed_pj + grid.dram_bytes * dram_pj + leakage_pj * bounds
        keys = energies if objective == "energy" else energies * bounds
    simulate = simulator(engine, accel, gemm, tile_cycles, overlap)
    orders = len(ORDERS)

    def score(entry):
        mapping = grid.mapping(entry // orders, entry % orders)
        cycles, compute = simulate(mapping)
        if objective == "cycles":
            value = cycles
        else:
            value = score_pj(mapping, cycles)
            value = value if objective == "energy" else value * cycles
        return (value, entry), cycles, compute

    search = _Search(keys, grid.repeats, score)
    if key is not None:
        if len(_searches) >= SEARCHES_KEPT:
            _searches.clear()
        _searches[key] = search
    return search
