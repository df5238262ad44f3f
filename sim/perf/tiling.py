"""Candidate tilings of a GEMM, their legality on an accelerator's buffers and their bound.

A GEMM ``m x k x n`` is cut into buffer tiles ``tm x tk x tn`` (:class:`Mapping`) visited with K
innermost and the two outer loops in order ``mn`` (M outermost) or ``nm``. The candidate sizes
of a dimension ``d`` are ``d`` itself and the powers of two from 16 up to below ``d``. A tiling
is legal when its double-buffered blocks fit the three SRAMs: ``2*tm*tk`` elements of A in the
input SRAM, ``2*tk*tn`` of W in the weight SRAM and ``2*tm*tn`` outputs in the output SRAM, at
the GEMM's widths (``a_bits / 8`` bytes per element and so on, fractional for 4-bit operands).

The bound of a tiling (cycles; :func:`mapping_bounds`) is a quick lower bound of its simulated
cycles that ranks the tilings (:func:`ranked_mappings`). It is the larger of

- the busy cycles: all tiles back to back with no DRAM stall, each taking its array cycles
  (``tile_cycles(tm, tk, tn) - overlap``) or its SRAM port cycles, whichever is longer. The port
  cycles of a tile are the longest of its A block read from the input SRAM, its W block from the
  weight SRAM and its output tile written once into the output SRAM, each SRAM at its
  ``bytes_per_cycle``. Each dimension cuts into size classes, its full blocks and a remainder
  block; the sum starts from ``overlap`` and adds, per class of M, then of K, then of N (full
  blocks first, M outermost), the class's tile count times its tile's cycles;
- the DRAM cycles: the bytes read and written (:func:`peforge.sim.perf.model._traffic`'s rule: A and
  W are each loaded once per block of the other outer dimension, except that with a single K
  block the operand indexed by the outer loop stays, and both stay when the inner outer loop
  has a single block too; the output is written once) over ``dram.bytes_per_cycle``.

The tilings are ranked by bound, ties going to the larger tile volume ``tm*tk*tn`` and then to
the order of :func:`legal_mappings` (``tm``, then ``tn``, then ``tk`` ascending, ``mn`` before
``nm``). All of this runs on numpy arrays over every candidate tiling of a shape at once: the
candidate grid, its size classes, block bytes and DRAM bytes are built once per GEMM shape
(dimensions and element widths); the tilings that fit are kept per shape and SRAM sizes, and the
busy cycles per shape, PE array (the family's cycle model on arrays) and SRAM ports, so per
accelerator only the DRAM cycles and the ranking of the close tilings are left. The
floating-point operations are those of the formulas above for one tiling, in the same order, so
every bound is bit-identical to evaluating them one tiling at a time.
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from peforge.sim.perf.accelerator import Accelerator
from peforge.sim.perf.workloads import Gemm

__all__ = ["Mapping", "MappingError", "legal_mappings", "legal_key", "mapping_bounds",
           "ranked_mappings"]

#: Loop orders in the order :func:`legal_mappings` lists them.
ORDERS = ("mn", "nm")

#: A runner-up is simulated when its bound is within this factor of the best bound.
CLOSE = 1.02


class MappingError(ValueError):
    """No tiling of the GEMM fits the buffers."""


@dataclass(frozen=True)
class Mapping:
    """Buffer tile sizes and the order of the two outer loops (``mn``: M outermost)."""

    tm: int
    tk: int
    tn: int
    order: str

    def __str__(self):
        return f"{self.tm}x{self.tk}x{self.tn}/{self.order}k"


def _candidates(dim: int) -> list[int]:
    sizes = {dim}
    size = 16
    while size < dim:
        sizes.add(size)
        size *= 2
    return sorted(sizes)


class _Dimension(NamedTuple):
    """One dimension's candidate tile sizes and their size classes: first the full blocks of
    every candidate, then the remainder blocks of the candidates that leave one (candidates
    ``remainder``: the powers of two above the largest that divides the dimension, all below
    the dimension itself, so a contiguous range)."""

    sizes: tuple[int, ...]
    class_sizes: np.ndarray  # (classes,) block sizes
    class_counts: np.ndarray  # (classes,) blocks of that size
    remainder: slice  # the candidates with a remainder block, in candidate order
    blocks: np.ndarray  # (candidates,) blocks in all, ceil(dim / size)

    def classes(self, remainder: bool) -> tuple[slice, slice]:
        """``(candidates, classes)``: which candidates have a class of this kind (full blocks:
        all) and where those classes are among :attr:`class_sizes`."""
        count = len(self.sizes)
        if remainder:
            return self.remainder, slice(count, len(self.class_sizes))
        return slice(None), slice(0, count)


def _dimension(dim: int) -> _Dimension:
    sizes = np.array(_candidates(dim), dtype=np.int64)
    full, rest = np.divmod(dim, sizes)
    ragged = np.flatnonzero(rest)
    remainder = slice(int(ragged[0]), int(ragged[-1]) + 1) if ragged.size else slice(0, 0)
    assert ragged.size == remainder.stop - remainder.start, "remainders not contiguous"
    return _Dimension(tuple(int(size) for size in sizes), np.concatenate([sizes, rest[ragged]]),
                      np.concatenate([full, np.ones(ragged.size, dtype=np.int64)]), remainder,
                      full + (rest > 0))


class _Grid(NamedTuple):
    """Every candidate tiling of one GEMM shape (dimensions and element widths) as arrays that
    broadcast over the axes ``(tm, tn, tk)`` (the order of :func:`legal_mappings`), one entry
    per candidate size, or per size class (:class:`_Dimension`) where said."""

    m: _Dimension
    k: _Dimension
    n: _Dimension
    sm: np.ndarray  # block sizes of the M classes, (M classes, 1, 1)
    sk: np.ndarray  # (1, 1, K classes)
    sn: np.ndarray  # (1, N classes, 1)
    tiles: np.ndarray  # tiles of each class combination, (M, N, K classes)
    a_block: np.ndarray  # bytes of an A block per class combination, (M, 1, K classes)
    w_block: np.ndarray  # bytes of a W block, (1, N, K classes)
    o_block: np.ndarray  # bytes of an output tile, (M, N classes, 1)
    #: ``(tilings, classes)`` index pairs of the class combinations that occur, in the order
    #: of the sum of the busy cycles (M class, then K, then N; full blocks first): the tilings
    #: (``tm, tn, tk`` grid) that have the combination, and its entries of the class grid.
    combinations: tuple[tuple[tuple[slice, ...], tuple[slice, ...]], ...]
    a_buffer: np.ndarray  # bytes of the double-buffered A blocks, (tm, 1, tk)
    w_buffer: np.ndarray  # of the W blocks, (1, tn, tk)
    o_buffer: np.ndarray  # of the output tiles, (tm, tn, 1)
    dram_bytes: np.ndarray  # DRAM bytes read and written, flat (tm, tn, tk) by ORDERS
    neg_volume: np.ndarray  # -tm*tk*tn, flat (ties rank the larger first)
    key: tuple[int, ...]  # the arguments of :func:`_grid`

    def mapping(self, tiling: int, order: int) -> Mapping:
        """The tiling at index ``tiling`` of the flattened ``(tm, tn, tk)`` grid, visited in
        ``ORDERS[order]``."""
        return _mapping(self.key, int(tiling), int(order))


@lru_cache(maxsize=65536)
def _mapping(shape: tuple[int, ...], tiling: int, order: int) -> Mapping:
    grid = _grid(*shape)
    i, rest = divmod(tiling, len(grid.n.sizes) * len(grid.k.sizes))
    j, l = divmod(rest, len(grid.k.sizes))
    return Mapping(grid.m.sizes[i], grid.k.sizes[l], grid.n.sizes[j], ORDERS[order])


def _frozen(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for array in arrays:
        array.flags.writeable = False
    return arrays


def _combinations(dm: _Dimension, dk: _Dimension, dn: _Dimension):
    """:attr:`_Grid.combinations` of the three dimensions."""
    found = []
    for m_rest, k_rest, n_rest in itertools.product((False, True), repeat=3):
        (mi, mc), (ki, kc), (ni, nc) = dm.classes(m_rest), dk.classes(k_rest), dn.classes(n_rest)
        if all(part.stop != part.start for part in (mc, kc, nc)):
            found.append(((mi, ni, ki), (mc, nc, kc)))
    return tuple(found)


@lru_cache(maxsize=1024)
def _grid(m: int, k: int, n: int, a_bits: int, w_bits: int, out_bits: int) -> _Grid:
    """The candidate grid of an ``m x k x n`` GEMM with elements of A, W and the output
    ``a_bits``, ``w_bits`` and ``out_bits`` wide (shared by every accelerator, read-only)."""
    dm, dk, dn = _dimension(m), _dimension(k), _dimension(n)
    sm, sn, sk = (dm.class_sizes[:, None, None], dn.class_sizes[None, :, None],
                  dk.class_sizes[None, None, :])
    tiles = (dm.class_counts[:, None, None] * dn.class_counts[None, :, None]
             * dk.class_counts[None, None, :])
    tm, tk, tn = (np.array(dim.sizes, dtype=np.int64) for dim in (dm, dk, dn))
    tm, tn, tk = tm[:, None, None], tn[None, :, None], tk[None, None, :]
    nm, nk, nn = dm.blocks[:, None, None], dk.blocks[None, None, :], dn.blocks[None, :, None]
    single_k = nk == 1
    # Order mn: A stays with a single K block; W stays when N has a single block too.
    # Order nm: the same with the roles of A and W (and of M and N) swapped.
    a_loads = np.stack(np.broadcast_arrays(np.where(single_k, 1, nn),
                                           np.where(single_k & (nm == 1), 1, nn)), axis=-1)
    w_loads = np.stack(np.broadcast_arrays(np.where(single_k & (nn == 1), 1, nm),
                                           np.where(single_k, 1, nm)), axis=-1)
    dram_bytes = (m * k * a_bits / 8 * a_loads + k * n * w_bits / 8 * w_loads
                  + m * n * out_bits / 8)
    return _Grid(dm, dk, dn, *_frozen(sm, sk, sn, tiles, sm * sk * a_bits / 8,
                                      sk * sn * w_bits / 8, sm * sn * out_bits / 8),
                 _combinations(dm, dk, dn),
                 *_frozen(2 * tm * tk * (a_bits / 8), 2 * tk * tn * (w_bits / 8),
                          2 * tm * tn * (out_bits / 8), dram_bytes.reshape(-1, len(ORDERS)),
                          -(tm * tk * tn).ravel()), (m, k, n, a_bits, w_bits, out_bits))


def _grid_of(gemm: Gemm) -> _Grid:
    return _grid(*gemm.shape)


def _fitting(accel: Accelerator, grid: _Grid) -> np.ndarray:
    """Indices (ascending) of the tilings of the flattened ``(tm, tn, tk)`` grid that fit the
    SRAMs (read-only)."""
    return _fitting_sizes(grid.key, accel.input_sram.size_bytes, accel.weight_sram.size_bytes,
                          accel.output_sram.size_bytes)


@lru_cache(maxsize=4096)
def _fitting_sizes(shape: tuple[int, ...], input_bytes: int, weight_bytes: int,
                   output_bytes: int) -> np.ndarray:
    grid = _grid(*shape)
    fits = ((grid.o_buffer <= output_bytes) & (grid.a_buffer <= input_bytes)
            & (grid.w_buffer <= weight_bytes))
    return _frozen(np.flatnonzero(fits))[0]


def legal_key(accel: Accelerator, gemm: Gemm) -> int:
    """A number for the set of tilings of ``gemm``'s shape that fit ``accel``'s SRAMs: the same
    for every accelerator whose SRAM sizes admit the same tilings (the bound of a tiling does not
    depend on the sizes, so neither does the ranking)."""
    return _legal_key(_grid_of(gemm).key, accel.input_sram.size_bytes,
                      accel.weight_sram.size_bytes, accel.output_sram.size_bytes)


#: The distinct sets of fitting tilings seen, by shape and indices: their :func:`legal_key`.
_legal_sets: dict[tuple[tuple[int, ...], bytes], int] = {}


@lru_cache(maxsize=4096)
def _legal_key(shape: tuple[int, ...], input_bytes: int, weight_bytes: int,
               output_bytes: int) -> int:
    fitting = _fitting_sizes(shape, input_bytes, weight_bytes, output_bytes).tobytes()
    return _legal_sets.setdefault((shape, fitting), len(_legal_sets))


def legal_mappings(accel: Accelerator, gemm: Gemm) -> list[Mapping]:
    """Every candidate tiling whose double-buffered blocks fit the three SRAMs, in the order
    ``tm``, ``tn``, ``tk`` ascending, ``mn`` before ``nm``."""
    grid = _grid_of(gemm)
    return [grid.mapping(tiling, order) for tiling in _fitting(accel, grid)
            for order in range(len(ORDERS))]


def _port_cycles(ports: tuple[int, int, int], grid: _Grid) -> np.ndarray:
    """SRAM port cycles of the tile of each class combination, ``(M, N, K classes)``: the
    longest of the A block read, the W block read and the output tile written once, at the
    input, weight and output SRAMs' ``ports`` bytes per cycle."""
    return np.maximum(np.maximum(grid.a_block / ports[0], grid.w_block / ports[1]),
                      grid.o_block / ports[2])


@lru_cache(maxsize=4096)
def _busy(shape: tuple[int, ...], tile_cycles, overlap: int, ports: tuple[int, int, int]
          ) -> np.ndarray:
    """The busy cycles of every tiling of the flattened grid of ``shape`` (:func:`_grid`'s
    arguments), ``(tilings, 1)`` (read-only). Kept per shape, tile cycles (the same function
    object for the same PE array, see :func:`peforge.sim.perf.model._tile_timing`), overlap and SRAM
    port widths: a sweep over the buffers' sizes or the DRAM of one array computes it once."""
    grid = _grid(*shape)
    terms = grid.tiles * np.maximum(tile_cycles(grid.sm, grid.sk, grid.sn) - overlap,
                                    _port_cycles(ports, grid))
    (_, full), *others = grid.combinations
    busy = overlap + terms[full]
    for tilings, classes in others:  # in the order of the sum
        busy[tilings] += terms[classes]
    return _frozen(busy.reshape(-1, 1))[0]


def _legal_bounds(accel, gemm, tile_cycles, overlap) -> tuple[_Grid, np.ndarray, np.ndarray]:
    """``(grid, fitting, bounds)``: the indices of the tilings that fit (:func:`_fitting`) and
    the bounds of :func:`legal_mappings`, in that order."""
    grid = _grid_of(gemm)
    ports = (accel.input_sram.bytes_per_cycle, accel.weight_sram.bytes_per_cycle,
             accel.output_sram.bytes_per_cycle)
    sizes = (accel.input_sram.size_bytes, accel.weight_sram.size_bytes,
             accel.output_sram.size_bytes)
    fitting, busy, dram_bytes = _fitting_parts(grid.key, tile_cycles, overlap, ports, sizes)
    return grid, fitting, np.maximum(busy, dram_bytes / accel.dram.bytes_per_cycle).ravel()


@lru_cache(maxsize=4096)
def _fitting_parts(shape: tuple[int, ...], tile_cycles, overlap: int,
                   ports: tuple[int, int, int], sizes: tuple[int, int, int]):
    """``(fitting, busy, dram_bytes)`` of the tilings that fit SRAMs of ``sizes`` bytes: their
    indices, busy cycles (``(fitting, 1)``) and DRAM bytes (``(fitting, ORDERS)``), read-only."""
    grid = _grid(*shape)
    fitting = _fitting_sizes(shape, *sizes)
    return _frozen(fitting, _busy(shape, tile_cycles, overlap, ports)[fitting],
                   grid.dram_bytes[fitting])


def mapping_bounds(accel: Accelerator, gemm: Gemm, tile_cycles: Callable, overlap: int
                   ) -> np.ndarray:
    """The bound (cycles, float64; module docstring) of each of :func:`legal_mappings`, in that
    order. ``tile_cycles(m, k, n)`` is the array's cycles of one tile, called with integer
    arrays that broadcast; ``overlap`` the cycles by which consecutive tiles overlap."""
    return _legal_bounds(accel, gemm, tile_cycles, overlap)[2]


def ranked_mappings(accel: Accelerator, gemm: Gemm, tile_cycles: Callable, overlap: int,
                    candidates: int = 2) -> list[Mapping]:
    """The legal tilings worth simulating, best first: of the ``candidates`` best-ranked, the
    best and any runner-up whose bound is within 2% (:data:`CLOSE`) of the best's. Arguments as
    for :func:`mapping_bounds`.

    Raises :class:`MappingError` when no tiling fits the buffers.
    """
    grid, fitting, bounds = _legal_bounds(accel, gemm, tile_cycles, overlap)
    if not fitting.size:
        tm, tk, tn = (min(16, dim) for dim in (gemm.m, gemm.k, gemm.n))
        raise MappingError(
            f"buffers: no tile of a {gemm.m}x{gemm.k}x{gemm.n} GEMM fits; a {tm}x{tk}x{tn} tile "
            f"needs {2 * tm * tk * gemm.a_bits // 8} B input, {2 * tk * tn * gemm.w_bits // 8} B "
            f"weight and {2 * tm * tn * gemm.out_bits // 8} B output SRAM (double-buffered)")
    # Only tilings within 2% of the best can be among the close ones: rank just those. By
    # bound, then volume, then legal order (lexsort's last key is its first).
    close = np.flatnonzero(bounds <= CLOSE * bounds.min())
    order = np.lexsort((close, grid.neg_volume[fitting[close // len(ORDERS)]], bounds[close]))
    return [grid.mapping(fitting[index // len(ORDERS)], index % len(ORDERS))
            for index in close[order[:candidates]].tolist()]
