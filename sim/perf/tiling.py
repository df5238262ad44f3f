"""The legal mappings of a GEMM on an accelerator's buffers, their traffic and a sound lower bound
of their simulated cycles.

A GEMM ``m x k x n`` is cut into buffer tiles ``tm x tk x tn`` (:class:`Mapping`) visited by a
loop nest in one of :data:`ORDERS`, outermost loop first:

- ``mnk``, ``nmk``: K innermost, the output tile stays in the output SRAM while K is reduced
  (outputs resident);
- ``mkn``, ``kmn``: N innermost, the A block stays while the W blocks stream past (A resident);
- ``nkm``, ``knm``: M innermost, the W block stays (W resident).

With K not innermost an output tile is left before its reduction ends: its partial sums are
written to DRAM (at the output width) and read back when the tile is next visited (a spill). The
candidate sizes of a dimension ``d`` are ``d`` itself and the powers of two from 16 up to below
``d``. A tiling is legal when its double-buffered blocks fit the three SRAMs: ``2*tm*tk``
elements of A in the input SRAM, ``2*tk*tn`` of W in the weight SRAM and ``2*tm*tn`` outputs in
the output SRAM, at the GEMM's widths (``a_bits / 8`` bytes per element, fractional for 4-bit).

Traffic (:func:`passes`): a block is loaded whenever the tile visited before used another one.
An operand indexed by the dimensions ``S`` (A: M, K; W: K, N; the output: M, N) is read in full
once per iteration of the loops outside the innermost loop over ``S`` that has more than one
block and not over ``S`` themselves (its *passes*); the output is written ``passes`` times and
read back ``passes - 1`` times (every visit but the first, which starts at K block 0).

The lower bound of a mapping (cycles, :func:`lower_bounds`) never exceeds its simulated cycles
(:mod:`peforge.sim.perf.pipeline`), so a search may drop every mapping whose bound exceeds the
best simulated so far (:mod:`peforge.sim.perf.mapper`). It is the larger of

- the busy cycles plus the first load and the last write-back: the array cannot start before the
  first tile's A and W blocks are in, and the GEMM ends with the last output tile's write-back.
  The busy cycles are all tiles back to back, each taking its array cycles (``tile_cycles(tm,
  tk, tn) - overlap``) or its SRAM port cycles (A block, W block, output tile written once; the
  pipeline also reads the tile back after the first K step, so this is a lower bound), summed
  per size class of M, then K, then N from ``overlap``;
- the DRAM cycles: every transfer (one load per tile, one write per visit of an output tile,
  each ``latency_cycles``) and every byte at ``dram.bytes_per_cycle`` (the channel serves one
  at a time; a write-back waits for its tile's overlapping last cycles, but no longer).

All of this runs on numpy arrays over every candidate tiling of a shape at once, cached per GEMM
shape (dimensions and widths), per shape and SRAM sizes (which tilings fit) and per shape, PE
array and SRAM ports (busy cycles). Shapes whose ``m * k * n`` reaches 2**62 are refused
(:class:`MappingError`): the int64 arithmetic of the grid could not represent them exactly.
"""

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from peforge.sim.perf.accelerator import Accelerator
from peforge.sim.perf.workloads import Gemm

__all__ = ["Mapping", "MappingError", "ORDERS", "passes", "legal_mappings", "legal_key",
           "fitting_mask", "lower_bounds", "grid_bounds", "LIMIT_MACS"]

#: Loop orders, outermost loop first, in the order :func:`legal_mappings` lists them.
ORDERS = ("mnk", "nmk", "mkn", "kmn", "nkm", "knm")

#: The largest ``m * k * n`` the grid represents exactly (int64 products of tile counts).
LIMIT_MACS = 2 ** 62

#: The operands and the dimensions that index them.
OPERAND_DIMS = {"a": "mk", "w": "kn", "out": "mn"}


class MappingError(ValueError):
    """No tiling of the GEMM fits the buffers, or the GEMM is too large to map exactly."""


@dataclass(frozen=True)
class Mapping:
    """Buffer tile sizes and the loop order (:data:`ORDERS`, outermost first)."""

    tm: int
    tk: int
    tn: int
    order: str

    def __post_init__(self):
        if self.order not in ORDERS:
            raise ValueError(f"order: must be one of {', '.join(ORDERS)}, got {self.order!r}")

    def __str__(self):
        return f"{self.tm}x{self.tk}x{self.tn}/{self.order}"


def passes(order: str, blocks: dict, dims: str, where=None):
    """How many times the operand indexed by ``dims`` is read in full under ``order`` with
    ``blocks`` per dimension (``{"m": nm, "k": nk, "n": nn}``, ints or broadcasting integer
    arrays; ``where``: :func:`numpy.where` for arrays, None for exact ints). Module docstring."""
    result = 1
    for position, dim in enumerate(order):
        if dim in dims:
            continue
        inner = [blocks[d] > 1 for d in order[position + 1:] if d in dims]
        if where is None:
            result *= blocks[dim] if any(inner) else 1
        elif inner:
            result = result * where(functools.reduce(np.logical_or, inner), blocks[dim], 1)
    return result


def _candidates(dim: int) -> list[int]:
    sizes = {dim}
    size = 16
    while size < dim:
        sizes.add(size)
        size *= 2
    return sorted(sizes)


class _Dimension(NamedTuple):
    """One dimension's candidate tile sizes and their size classes: first the full blocks of
    every candidate, then the remainder blocks of the candidates that leave one (a contiguous
    range of candidates, ``remainder``)."""

    sizes: tuple[int, ...]
    class_sizes: np.ndarray  # (classes,) block sizes
    class_counts: np.ndarray  # (classes,) blocks of that size
    remainder: slice  # the candidates with a remainder block, in candidate order
    blocks: np.ndarray  # (candidates,) blocks in all, ceil(dim / size)
    last: np.ndarray  # (candidates,) size of the last block

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
                      full + (rest > 0), np.where(rest > 0, rest, sizes))


class _Grid(NamedTuple):
    """Every candidate tiling of one GEMM shape as arrays that broadcast over the axes ``(tm,
    tn, tk)`` (the order of :func:`legal_mappings`), one entry per candidate size, or per size
    class (:class:`_Dimension`) where said; flat arrays are over the flattened grid."""

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
    #: of the sum of the busy cycles (M class, then K, then N; full blocks first).
    combinations: tuple[tuple[tuple[slice, ...], tuple[slice, ...]], ...]
    a_buffer: np.ndarray  # bytes of the double-buffered A blocks, (tm, 1, tk)
    w_buffer: np.ndarray  # of the W blocks, (1, tn, tk)
    o_buffer: np.ndarray  # of the output tiles, (tm, tn, 1)
    dram_bytes: np.ndarray  # DRAM bytes read and written, flat (tilings, ORDERS)
    transfers: np.ndarray  # DRAM transfers (a load per tile, a write per visit), likewise
    edge_bytes: np.ndarray  # the first tile's load plus the last write-back, (tilings, 1)
    #: True where an order visits the same tiles in the same sequence as an earlier order of
    #: :data:`ORDERS` (a loop over a single block drops out), (tilings, ORDERS)
    repeats: np.ndarray
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


def _repeated_orders() -> np.ndarray:
    """``(8, ORDERS)``: per pattern of which dimensions have more than one block (bit 0: M, 1:
    K, 2: N), whether each order's loops over several blocks, in sequence, are an earlier
    order's."""
    table = np.zeros((8, len(ORDERS)), dtype=bool)
    for pattern in range(8):
        several = {dim for bit, dim in enumerate("mkn") if pattern >> bit & 1}
        seen = set()
        for index, order in enumerate(ORDERS):
            reduced = "".join(dim for dim in order if dim in several)
            table[pattern, index] = reduced in seen
            seen.add(reduced)
    return table


_REPEATED = _repeated_orders()


def check_size(m: int, k: int, n: int) -> None:
    """Refuse a GEMM the grid cannot represent exactly (:data:`LIMIT_MACS`)."""
    if m * k * n >= LIMIT_MACS:
        raise MappingError(f"gemm: {m}x{k}x{n} is {m * k * n:.3g} MACs, at or above the "
                           f"2**62 the mapper represents exactly")


@lru_cache(maxsize=1024)
def _grid(m: int, k: int, n: int, a_bits: int, w_bits: int, out_bits: int) -> _Grid:
    """The candidate grid of an ``m x k x n`` GEMM with elements of A, W and the output
    ``a_bits``, ``w_bits`` and ``out_bits`` wide (shared by every accelerator, read-only)."""
    check_size(m, k, n)
    dm, dk, dn = _dimension(m), _dimension(k), _dimension(n)
    sm, sn, sk = (dm.class_sizes[:, None, None], dn.class_sizes[None, :, None],
                  dk.class_sizes[None, None, :])
    tiles = (dm.class_counts[:, None, None] * dn.class_counts[None, :, None]
             * dk.class_counts[None, None, :])
    tm, tk, tn = (np.array(dim.sizes, dtype=np.int64) for dim in (dm, dk, dn))
    tm, tn, tk = tm[:, None, None], tn[None, :, None], tk[None, None, :]
    blocks = {"m": dm.blocks[:, None, None], "k": dk.blocks[None, None, :],
              "n": dn.blocks[None, :, None]}
    shape = (len(dm.sizes), len(dn.sizes), len(dk.sizes))
    totals = {"a": m * k * a_bits / 8, "w": k * n * w_bits / 8, "out": m * n * out_bits / 8}
    all_tiles = blocks["m"] * blocks["k"] * blocks["n"]
    dram_bytes, transfers = [], []
    for order in ORDERS:
        count = {operand: np.broadcast_to(passes(order, blocks, dims, np.where), shape)
                 for operand, dims in OPERAND_DIMS.items()}
        dram_bytes.append(totals["a"] * count["a"] + totals["w"] * count["w"]
                          + totals["out"] * (2 * count["out"] - 1))
        transfers.append(all_tiles + blocks["m"] * blocks["n"] * count["out"])
    pattern = ((blocks["m"] > 1) * 1 + (blocks["k"] > 1) * 2 + (blocks["n"] > 1) * 4)
    repeats = _REPEATED[np.broadcast_to(pattern, shape).reshape(-1)]
    last_out = (dm.last[:, None, None] * dn.last[None, :, None] * out_bits / 8)
    edge = tm * tk * a_bits / 8 + tk * tn * w_bits / 8 + last_out
    return _Grid(dm, dk, dn, *_frozen(sm, sk, sn, tiles, sm * sk * a_bits / 8,
                                      sk * sn * w_bits / 8, sm * sn * out_bits / 8),
                 _combinations(dm, dk, dn),
                 *_frozen(2 * tm * tk * (a_bits / 8), 2 * tk * tn * (w_bits / 8),
                          2 * tm * tn * (out_bits / 8),
                          np.stack(dram_bytes, axis=-1).reshape(-1, len(ORDERS)),
                          np.stack(np.broadcast_arrays(*transfers), axis=-1).reshape(
                              -1, len(ORDERS)),
                          np.broadcast_to(edge, shape).reshape(-1, 1), repeats),
                 (m, k, n, a_bits, w_bits, out_bits))


def _grid_of(gemm: Gemm) -> _Grid:
    return _grid(*gemm.shape)


def _sizes(accel: Accelerator) -> tuple[int, int, int]:
    return (accel.input_sram.size_bytes, accel.weight_sram.size_bytes,
            accel.output_sram.size_bytes)


@lru_cache(maxsize=4096)
def _fits(shape: tuple[int, ...], input_bytes: int, weight_bytes: int, output_bytes: int
          ) -> np.ndarray:
    """Per tiling of the flattened ``(tm, tn, tk)`` grid, whether its double-buffered blocks
    fit SRAMs of these sizes (bool, read-only)."""
    grid = _grid(*shape)
    fits = ((grid.o_buffer <= output_bytes) & (grid.a_buffer <= input_bytes)
            & (grid.w_buffer <= weight_bytes))
    return _frozen(fits.reshape(-1))[0]


@lru_cache(maxsize=4096)
def _fitting_sizes(shape: tuple[int, ...], input_bytes: int, weight_bytes: int,
                   output_bytes: int) -> np.ndarray:
    """Indices (ascending) of the tilings of the flattened ``(tm, tn, tk)`` grid that fit SRAMs
    of these sizes (read-only)."""
    return _frozen(np.flatnonzero(_fits(shape, input_bytes, weight_bytes, output_bytes)))[0]


def fitting_mask(accel: Accelerator, gemm: Gemm) -> np.ndarray:
    """Per tiling of ``gemm``'s flattened grid, whether it fits ``accel``'s SRAMs (read-only)."""
    return _fits(_grid_of(gemm).key, *_sizes(accel))


def legal_key(accel: Accelerator, gemm: Gemm) -> int:
    """A number for the set of tilings of ``gemm``'s shape that fit ``accel``'s SRAMs: the same
    for every accelerator whose SRAM sizes admit the same tilings (nothing else about a mapping
    depends on the sizes)."""
    return _legal_key(_grid_of(gemm).key, *_sizes(accel))


#: The distinct sets of fitting tilings seen, by shape and indices: their :func:`legal_key`.
_legal_sets: dict[tuple[tuple[int, ...], bytes], int] = {}


@lru_cache(maxsize=4096)
def _legal_key(shape: tuple[int, ...], input_bytes: int, weight_bytes: int,
               output_bytes: int) -> int:
    fitting = _fitting_sizes(shape, input_bytes, weight_bytes, output_bytes).tobytes()
    return _legal_sets.setdefault((shape, fitting), len(_legal_sets))


def legal_mappings(accel: Accelerator, gemm: Gemm) -> list[Mapping]:
    """Every candidate tiling whose double-buffered blocks fit the three SRAMs, in every order:
    ``tm``, ``tn``, ``tk`` ascending, then :data:`ORDERS`."""
    grid = _grid_of(gemm)
    return [grid.mapping(tiling, order) for tiling in _fitting_sizes(grid.key, *_sizes(accel))
            for order in range(len(ORDERS))]


def _port_cycles(ports: tuple[int, int, int], grid: _Grid) -> np.ndarray:
    """SRAM port cycles of the tile of each class combination, ``(M, N, K classes)``: the
    longest of the A block read, the W block read and the output tile written once."""
    return np.maximum(np.maximum(grid.a_block / ports[0], grid.w_block / ports[1]),
                      grid.o_block / ports[2])


@lru_cache(maxsize=4096)
def _busy(shape: tuple[int, ...], tile_cycles, overlap: int, ports: tuple[int, int, int]
          ) -> np.ndarray:
    """The busy cycles of every tiling of the flattened grid of ``shape``, ``(tilings, 1)``
    (read-only), per shape, tile cycles (one function object per PE array), overlap and SRAM
    ports: a sweep over the buffers' sizes or the DRAM of one array computes it once."""
    grid = _grid(*shape)
    terms = grid.tiles * np.maximum(tile_cycles(grid.sm, grid.sk, grid.sn) - overlap,
                                    _port_cycles(ports, grid))
    (_, full), *others = grid.combinations
    busy = overlap + terms[full]
    for tilings, classes in others:  # in the order of the sum
        busy[tilings] += terms[classes]
    return _frozen(busy.reshape(-1, 1))[0]


def lower_bounds(accel: Accelerator, gemm: Gemm, tile_cycles: Callable, overlap: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fitting, bounds, repeats)``: the indices of the tilings that fit the SRAMs, the lower
    bound (cycles, float64, module docstring) of each in every order, ``(fitting, ORDERS)``, and
    which of those orders repeat an earlier one's tile sequence (:attr:`_Grid.repeats`: the same
    cycles and traffic, never better in the listing order).
    ``tile_cycles(m, k, n)`` is the array's cycles of one tile, called with integer arrays that
    broadcast; ``overlap`` the cycles by which consecutive tiles overlap."""
    grid = _grid_of(gemm)
    fitting = _fitting_sizes(grid.key, *_sizes(accel))
    return (fitting, grid_bounds(accel, gemm, tile_cycles, overlap)[fitting],
            grid.repeats[fitting])


def grid_bounds(accel: Accelerator, gemm: Gemm, tile_cycles: Callable, overlap: int
                ) -> np.ndarray:
    """The lower bound (:func:`lower_bounds`) of every tiling of ``gemm``'s grid, fitting the
    SRAMs or not, in every order, ``(tilings, ORDERS)`` (read-only): it depends on the SRAM
    ports and the DRAM, not on the SRAM sizes, so a sweep over the sizes computes it once."""
    ports = (accel.input_sram.bytes_per_cycle, accel.weight_sram.bytes_per_cycle,
             accel.output_sram.bytes_per_cycle)
    return _grid_bounds(_grid_of(gemm).key, tile_cycles, overlap, ports,
                        accel.dram.bytes_per_cycle, accel.dram.latency_cycles)


@lru_cache(maxsize=256)
def _grid_bounds(shape: tuple[int, ...], tile_cycles, overlap: int,
                 ports: tuple[int, int, int], bandwidth: float, latency: int) -> np.ndarray:
    grid = _grid(*shape)
    edges = 2 * latency + grid.edge_bytes / bandwidth
    dram = latency * grid.transfers + grid.dram_bytes / bandwidth
    return _frozen(np.maximum(_busy(shape, tile_cycles, overlap, ports) + edges, dram))[0]


def no_fit_error(gemm: Gemm) -> MappingError:
    """The error of a GEMM no tiling of which fits the buffers: what its smallest tile needs."""
    tm, tk, tn = (min(16, dim) for dim in (gemm.m, gemm.k, gemm.n))
    return MappingError(
        f"buffers: no tile of a {gemm.m}x{gemm.k}x{gemm.n} GEMM fits; a {tm}x{tk}x{tn} tile "
        f"needs {math.ceil(2 * tm * tk * gemm.a_bits / 8)} B input, "
        f"{math.ceil(2 * tk * tn * gemm.w_bits / 8)} B weight and "
        f"{math.ceil(2 * tm * tn * gemm.out_bits / 8)} B output SRAM (double-buffered)")
