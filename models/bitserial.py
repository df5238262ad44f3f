"""Bit-serial mixture-of-datatype family (BitMoD-style, INT8 activations): configuration, golden
model and cycle model.

The array (:class:`peforge.hw.bitserial.top.BitserialArray`) is ``rows x cols`` output-stationary PEs.
Weights are BitMoD codes (:mod:`peforge.models.numerics.bitmod`) in groups of ``group`` consecutive weights
along K of one output column; each group has its own type (one of ``wtypes``), 2-bit special-value
selector and unsigned 8-bit scale code. Column-top decoders split every weight into its
bit-serial terms (:func:`peforge.models.numerics.bitmod.decompose`), which flow down the columns; INT8
activations are broadcast across the rows. The driver (:mod:`peforge.hw.bitserial.driver`) tiles
any GEMM onto the array.

What the array computes (the golden model, bit-exact)
-----------------------------------------------------
With ``A`` (M x K, int8), integer weight values ``W`` (K x N, decoded from the codes with each
group's type and selector) and scale codes ``s[g, n]`` (0..255), per output ``(m, n)``:

- group sum ``S[g] = sum_{k in group g} A[m, k] * W[k, n]`` (exact: the group accumulator has
  :attr:`BitserialConfig.group_bits` bits, enough for any group);
- ``c_raw = sum_g S[g]`` (= ``(A @ W)[m, n]``), the integer result before dequantisation;
- ``c_scaled = sum_g S[g] * s[g, n]``, the result after the bit-serial dequantiser;

both kept in two's-complement accumulators of :attr:`~BitserialConfig.raw_bits` and
:attr:`~BitserialConfig.scaled_bits` bits, which never overflow for ``K <= k_max`` and wrap beyond.
The float result is ``c_scaled * channel_scale[n] / 255`` times the activation scale; those float
scales are applied outside the array.

Micro-architecture and cycles
-----------------------------
One input beat carries one *slot*: ``lanes`` consecutive weights of K for every column (codes plus
the group's type, selector and scale) and the matching ``lanes`` activations of every row. A slot
takes ``T`` cycles, one per term index, where ``T`` is the most terms that the group types of the
slot's columns need (:func:`peforge.models.numerics.bitmod.terms_per_weight`: fp3/fp4/int3/int4 2, int6 3,
int8 4): every PE of a row and of a column moves in lock-step, so a column of a narrower type gets
zero terms in the extra cycles. The array derives ``T`` from the slot's ``wtype`` fields when it
takes the beat; columns beyond the matrix carry the fastest allowed type
(:attr:`BitserialConfig.pad_type`), so they never slow a slot. A group has one type per column
across all its slots, so all slots of a group (in one tile) take the same ``T``.

Each cycle a PE adds ``sum_lanes a * term`` shifted by the term's bit significance to its group
accumulator; at the end of a group the sum goes to the dequantiser, which multiplies it by the
scale code MSB first in 8 cycles while the next group accumulates. The dequantiser is never
stalled: a group must last at least 8 cycles even when all its columns hold the fastest allowed
type, so the configuration rejects groups with ``group / lanes * min_terms < 8`` (``min_terms``:
the fewest terms of any allowed type). K is processed in whole groups (the last group padded with
zero weights) and a tile is ``rows x cols`` outputs:

- cycle 0 accepts the tile's first slot; a slot accepted in cycle ``t`` is processed in cycles
  ``t + 1 .. t + T`` and the next slot is accepted in its last cycle, so slots follow back to back;
- the last group's dequantisation takes the 8 cycles after the last slot;
- the accumulators then drain one row per cycle (``rows`` output beats), and the next tile's first
  slot is accepted in the cycle after the last output beat.

So a tile takes ``(group/lanes) * sum_g T_g + 8 + rows + 1`` cycles, ``T_g`` the most terms of
group ``g``'s types over the tile's columns, and a GEMM is ``ceil(M/rows) * ceil(N/cols)`` tiles:
:func:`job_cycles` counts this for a job's type assignment. Cycles are counted from the clock edge
that accepts the first input beat to the edge that emits the last output beat, inclusive, with
inputs presented back to back and outputs always accepted. Lower precision is faster on the same
array in proportion to ``T``: a group whose columns all hold fp4 takes 2 cycles per slot, int6 3,
int8 4.

:func:`gemm_cycles` is the shape-level count used by the performance model, which knows a GEMM's
shape and weight width but not its groups' types: every group at the pace of one type, by default
the widest allowed type (the slowest case of any job of that shape).
"""

import math
from dataclasses import dataclass

import numpy as np

from peforge.models.numerics.bitmod import SCALE_CODE_MAX, WEIGHT_TYPES, WeightType, decode, terms_per_weight
from peforge.models.integer import ceil_div, check_dims, wrap
from peforge.models.params import param, validate_params

__all__ = ["BitserialConfig", "ACT_BITS", "SCALE_BITS", "DEQUANT_CYCLES", "weight_values",
           "golden_gemm", "gemm_cycles", "job_cycles", "width_terms"]

#: Activation width (signed two's complement).
ACT_BITS = 8

#: Bits of a group scale code (unsigned, 0..255).
SCALE_BITS = SCALE_CODE_MAX.bit_length()

#: Cycles of the MSB-first bit-serial dequantiser: one per scale bit.
DEQUANT_CYCLES = SCALE_BITS


@dataclass(frozen=True)
class BitserialConfig:
    """A bit-serial mixture-of-datatype PE array: shape, lanes, weight types and group size."""

    rows: int = param(8, "PE rows (outputs of M per tile)", range=(1, 64))
    cols: int = param(8, "PE columns (outputs of N per tile)", range=(1, 64))
    lanes: int = param(4, "weights of K each PE takes per slot (parallel activations)",
                       range=(1, 16))
    wtypes: str = param("fp4,int4,int8", "weight types a group may use",
                        choices=tuple(WEIGHT_TYPES), multiple=True)
    group: int = param(128, "weights per group along K (one 8-bit scale each)", range=(1, 4096))
    k_max: int = param(4096, "largest K the accumulators sum without overflow",
                       range=(1, 1 << 24))

    def __post_init__(self):
        validate_params(self)
        if self.group % self.lanes:
            raise ValueError(f"group: must be a multiple of lanes={self.lanes}, got {self.group}")
        shortest = self.lanes * math.ceil(DEQUANT_CYCLES / self.min_terms)
        if self.group < shortest:
            fastest = self.weight_types[self.pad_type].name
            raise ValueError(
                f"group: must be at least {shortest} with lanes={self.lanes} and "
                f"{self.min_terms} terms per weight ({fastest}, the fastest type of "
                f"{self.wtypes}), "
                f"so that a group lasts the dequantiser's {DEQUANT_CYCLES} cycles, got "
                f"{self.group}")

    @property
    def weight_types(self) -> tuple[WeightType, ...]:
        """The allowed types; a group's type index counts in this order."""
        return tuple(WEIGHT_TYPES[name] for name in self.wtypes.split(","))

    @property
    def terms(self) -> int:
        """Most cycles a slot takes: the most bit-serial terms any allowed type needs."""
        return max(terms_per_weight(t) for t in self.weight_types)

    @property
    def min_terms(self) -> int:
        """Fewest cycles a slot takes: the fewest bit-serial terms of any allowed type."""
        return min(terms_per_weight(t) for t in self.weight_types)

    @property
    def pad_type(self) -> int:
        """Type index of the first allowed type with :attr:`min_terms` terms: the type of the
        columns beyond the matrix in a ragged tile, so that they never slow a slot."""
        return [terms_per_weight(t) for t in self.weight_types].index(self.min_terms)

    @property
    def code_bits(self) -> int:
        """Width of a weight code on the input stream (the widest allowed type's)."""
        return max(t.code_bits for t in self.weight_types)

    @property
    def max_weight(self) -> int:
        """Largest ``|value|`` any allowed type holds under any selector."""
        return max(t.max_magnitude(s) for t in self.weight_types for s in range(t.n_selectors))

    def _sum_bits(self, count: int, factor: int = 1) -> int:
        """Signed width that holds ``count`` products ``a * w`` times ``factor``."""
        return (count * (1 << (ACT_BITS - 1)) * self.max_weight * factor).bit_length() + 1

    @property
    def group_bits(self) -> int:
        """Group accumulator width: any group sum fits (with int8, group 128: 22 bits)."""
        return self._sum_bits(self.group)

    @property
    def raw_bits(self) -> int:
        """``c_raw`` width: exact for ``K <= k_max`` (with int8, k_max 4096: 27 bits)."""
        return self._sum_bits(self.k_max)

    @property
    def scaled_bits(self) -> int:
        """``c_scaled`` width: exact for ``K <= k_max`` (with int8, k_max 4096: 35 bits)."""
        return self._sum_bits(self.k_max, SCALE_CODE_MAX)


def _int_matrix(x, name: str, shape: tuple[int, int], low: int, high: int) -> np.ndarray:
    array = np.asarray(x)
    if array.shape != shape:
        raise ValueError(f"{name}: must have shape {shape}, got {array.shape}")
    array = array.astype(np.int64)
    bad = (array < low) | (array > high)
    if bad.any():
        raise ValueError(f"{name}: must be integers in {low}..{high}, got {array[bad][0]}")
    return array


def weight_values(config: BitserialConfig, codes, type_index, selector) -> np.ndarray:
    """Integer values of a ``K x N`` code matrix whose groups carry their type and selector.

    ``type_index``, ``selector``: ``ceil(K/group) x N``; group ``g`` of column ``n`` is
    ``codes[g*group:(g+1)*group, n]`` (the last group may be shorter). Raises ValueError naming the
    array for a type index, selector or code out of range.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.size == 0:
        raise ValueError(f"codes: must be a non-empty 2-D (K, N) array, got shape {codes.shape}")
    k, n = codes.shape
    groups = math.ceil(k / config.group)
    types = config.weight_types
    type_index = _int_matrix(type_index, "type_index", (groups, n), 0, len(types) - 1)
    selector = _int_matrix(selector, "selector", (groups, n), 0, 3)
    codes = _int_matrix(codes, "codes", (k, n), 0, (1 << config.code_bits) - 1)
    per_weight = np.repeat(np.arange(groups), config.group)[:k]
    values = np.zeros((k, n), dtype=np.int64)
    for index, wtype in enumerate(types):
        mine = type_index[per_weight] == index
        values[mine] = decode(codes[mine], wtype, selector[per_weight][mine])
    return values


def golden_gemm(config: BitserialConfig, a, codes, type_index, selector, scale_code) -> dict:
    """``{"c_raw", "c_scaled"}`` (M x N each) exactly as the array computes them (module doc).

    Parameters
    ----------
    a : array_like of int, shape (M, K)
        INT8 activations, -128..127.
    codes : array_like of int, shape (K, N)
        Weight codes, read with their group's type and selector.
    type_index, selector, scale_code : array_like of int, shape (ceil(K/group), N)
        Per group: index into ``config.wtypes``, special-value selector (0 for int types),
        8-bit scale code.
    """
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"a: must be a 2-D (M, K) array, got shape {a.shape}")
    values = weight_values(config, codes, type_index, selector)
    a = _int_matrix(a, "a", (a.shape[0], values.shape[0]), -(1 << (ACT_BITS - 1)),
                    (1 << (ACT_BITS - 1)) - 1)
    scale = _int_matrix(scale_code, "scale_code", np.shape(type_index), 0, SCALE_CODE_MAX)
    c_raw = np.zeros((a.shape[0], values.shape[1]), dtype=np.int64)
    c_scaled = np.zeros_like(c_raw)
    for g in range(scale.shape[0]):
        part = slice(g * config.group, (g + 1) * config.group)
        group_sum = a[:, part] @ values[part]
        c_raw += group_sum
        c_scaled += group_sum * scale[g]
    return {"c_raw": wrap(c_raw, config.raw_bits, True),
            "c_scaled": wrap(c_scaled, config.scaled_bits, True)}


def width_terms(config: BitserialConfig, w_bits: int | None = None) -> int:
    """Cycles per slot of weights ``w_bits`` wide: the fewest terms of the allowed types whose
    codes are at least ``w_bits`` wide, or :attr:`~BitserialConfig.terms` (the widest allowed
    type) when ``w_bits`` is None or no allowed type is that wide (the weights are then quantised
    to the allowed types, whose widest sets the pace of the worst case).

    E.g. on ``fp4,int4,int8``: 2 for ``w_bits`` 2..4 (BitNet's ternary weights are 2 bits),
    4 for 5..8; on ``int6,int8``: 3 for 1..6.
    """
    if w_bits is None:
        return config.terms
    if not isinstance(w_bits, int) or w_bits < 1:
        raise ValueError(f"w_bits: must be a positive integer, got {w_bits!r}")
    wide_enough = [terms_per_weight(t) for t in config.weight_types if t.code_bits >= w_bits]
    return min(wide_enough) if wide_enough else config.terms


def _tile_cycles(config: BitserialConfig, group_terms: int) -> int:
    """Cycles of one tile whose groups' slot cycles ``T_g`` add up to ``group_terms``."""
    return (config.group // config.lanes) * group_terms + DEQUANT_CYCLES + config.rows + 1


def gemm_cycles(config: BitserialConfig, m: int, k: int, n: int, w_bits: int | None = None
                ) -> int:
    """Cycles from the first input beat to the last output beat of an ``m x k x n`` GEMM whose
    groups all take :func:`width_terms` ``(config, w_bits)`` cycles per slot: with ``w_bits``
    None, every group at the pace of the widest allowed type, the most any job of this shape
    takes. :func:`job_cycles` counts a given job's types exactly. ``m``, ``k``, ``n`` may be
    integer arrays that broadcast: the cycles of each shape."""
    check_dims("GEMM dimensions", m=m, k=k, n=n)
    tiles = ceil_div(m, config.rows) * ceil_div(n, config.cols)
    groups = ceil_div(k, config.group)
    return tiles * _tile_cycles(config, groups * width_terms(config, w_bits))


def job_cycles(config: BitserialConfig, m: int, type_index) -> int:
    """Cycles of a GEMM with ``m`` rows of A and group types ``type_index``
    (``ceil(K/group) x N`` indices into ``config.wtypes``), as the array takes them: in each tile,
    each group ``g`` takes ``group/lanes`` slots of ``T_g`` cycles, ``T_g`` the most terms of the
    group's types over the tile's columns (module docstring)."""
    check_dims("GEMM dimensions", m=m)
    shape = np.shape(type_index)
    if len(shape) != 2 or 0 in shape:
        raise ValueError(f"type_index: must be a non-empty 2-D (groups, N) array, got shape "
                         f"{shape}")
    type_index = _int_matrix(type_index, "type_index", shape, 0, len(config.weight_types) - 1)
    terms = np.array([terms_per_weight(t) for t in config.weight_types])[type_index]
    blocks = range(0, shape[1], config.cols)
    return ceil_div(m, config.rows) * sum(
        _tile_cycles(config, int(terms[:, start:start + config.cols].max(axis=1).sum()))
        for start in blocks)
