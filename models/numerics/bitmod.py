"""BitMoD weight datatypes, group quantiser and bit-serial term decomposition (pure numpy).

Golden model of the weight side of a BitMoD-style bit-serial PE array ("BitMoD: Bit-serial
Mixture-of-Datatype LLM Acceleration", HPCA 2025): which values each weight type holds, which code
a weight stores, how a float matrix is quantised group by group, and how every stored value is
split into the terms the PE consumes one per cycle.

Weight types
------------
All values are integers; a float weight is ``value * group scale``.

``int8``, ``int6``, ``int4``, ``int3``
    Symmetric two's complement: values ``-(2**(b-1) - 1) .. 2**(b-1) - 1``, code
    ``value mod 2**b``. The code ``2**(b-1)`` (the value ``-2**(b-1)``) is unused, so that the
    quantiser stays symmetric.
``fp3``, ``fp4``
    Sign-magnitude floats: code ``s`` (most significant bit) then a magnitude index, magnitudes
    ``0, 1, 2, 4`` (fp3, 3-bit code, E2M0) and ``0, 1, 2, 3, 4, 6, 8, 12`` (fp4, 4-bit code, E2M1).
    These are the paper's E2M1/E2M0 values in fixed point with one fraction bit (OCP E2M1
    ``0, 0.5, ..., 6`` times 2), so they are integers. The "negative zero" code ``2**(b-1)``
    holds the group's special value, chosen by a 2-bit selector:

    ========  =====================  =====  =====
    selector  option                 fp3    fp4
    ========  =====================  =====  =====
    0         extra resolution, +    +3     +10
    1         extra resolution, -    -3     -10
    2         extra asymmetry, +     +6     +16
    3         extra asymmetry, -     -6     -16
    ========  =====================  =====  =====

Bit-serial terms
----------------
A value is the sum of its terms ``(-1)**sign * mantissa * 2**(exponent + bsig)`` with a 1-bit sign,
2-bit exponent, 1-bit mantissa and a bit significance ``bsig`` (see :data:`TERM_DTYPE`):

- intB: radix-4 Booth digits ``d_i = b[2i-1] + b[2i] - 2*b[2i+1]`` (``b[-1] = 0``) of the value
  sign-extended to ``2 * ceil(B/2)`` bits, one term per digit at ``bsig = 2i``; a digit of
  magnitude 2 is ``exponent = 1``, of magnitude 1 ``exponent = 0``, zero ``mantissa = 0``.
  int8 -> 4 terms, int6 -> 3, int4 and int3 -> 2.
- fp3/fp4: two terms at ``bsig = 0`` sharing the weight's sign, from a leading-one split of the
  magnitude: the first term is the leading one ``2**min(floor(log2 |v|), 3)`` (the exponent field is
  2 bits, so fp4's 16 splits as 8 + 8), the second is the remainder, which for every representable
  value is zero or a power of two up to 8.

A zero term has sign 0 and exponent 0.

Quantiser
---------
:func:`quantize` splits a ``K x N`` matrix into groups of ``group`` weights along K (one column
each), picks per group the ``(type, selector)`` with the lowest squared error and stores uint8 codes,
a 2-bit selector, an 8-bit scale code per group and one float64 scale per column; the rules are in
its docstring.
"""

import functools
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

__all__ = [
    "WeightType", "WEIGHT_TYPES", "weight_type", "terms_per_weight", "decode", "encode",
    "TERM_DTYPE", "decompose", "recombine", "QuantizedWeights", "quantize", "SCALE_CODE_MAX",
]

#: Largest 8-bit group scale code; a group scale is ``channel_scale * scale_code / SCALE_CODE_MAX``.
SCALE_CODE_MAX = 255

#: Weights the quantiser processes at a time (at least one row of groups), bounding its
#: temporaries to a few MB.
_CHUNK_WEIGHTS = 1 << 18

#: Largest value of a term's 2-bit exponent field.
_TERM_EXPONENT_MAX = 3

#: One bit-serial term: ``(-1)**sign * mantissa * 2**(exponent + bsig)``.
TERM_DTYPE = np.dtype([
    ("sign", np.uint8), ("exponent", np.uint8), ("mantissa", np.uint8), ("bsig", np.uint8),
])


@dataclass(frozen=True)
class WeightType:
    """A weight datatype: its code width and the value of each code under each selector.

    Attributes
    ----------
    name : str
        Lower-case name, e.g. ``"fp4"``.
    family : str
        ``"int"`` (two's complement, Booth terms) or ``"fp"`` (sign-magnitude float, leading-one
        terms).
    code_bits : int
        Width of the code each weight stores.
    codes : tuple of int
        The codes in use, in ascending order.
    values : tuple of tuple of int
        ``values[selector][i]`` is the value of ``codes[i]`` under that selector; int types have a
        single selector (0), fp types four (see the module docstring).
    """

    name: str
    family: str
    code_bits: int
    codes: tuple[int, ...]
    values: tuple[tuple[int, ...], ...]

    @property
    def n_selectors(self) -> int:
        """Number of per-group selector options (1 for int types, 4 for fp types)."""
        return len(self.values)

    @property
    def n_terms(self) -> int:
        """Bit-serial terms per weight: 2 for fp, ``ceil(code_bits / 2)`` Booth digits for int."""
        return 2 if self.family == "fp" else (self.code_bits + 1) // 2

    def max_magnitude(self, selector: int) -> int:
        """Largest ``|value|`` under ``selector``: a group scale maps the group's absmax onto it."""
        return max(abs(v) for v in self.values[selector])


def _int_type(bits: int) -> WeightType:
    largest = (1 << (bits - 1)) - 1
    values = tuple(range(-largest, largest + 1))
    pairs = sorted((v & ((1 << bits) - 1), v) for v in values)
    return WeightType(name=f"int{bits}", family="int", code_bits=bits,
                      codes=tuple(c for c, _ in pairs), values=(tuple(v for _, v in pairs),))


def _fp_type(name: str, magnitudes: tuple[int, ...], specials: tuple[int, ...]) -> WeightType:
    bits = len(magnitudes).bit_length()
    sign = 1 << (bits - 1)

    def value(code: int, special: int) -> int:
        if code == sign:
            return special
        magnitude = magnitudes[code & (sign - 1)]
        return -magnitude if code & sign else magnitude

    codes = tuple(range(1 << bits))
    return WeightType(name=name, family="fp", code_bits=bits, codes=codes,
                      values=tuple(tuple(value(c, s) for c in codes) for s in specials))


#: The six weight types by name.
WEIGHT_TYPES = MappingProxyType({t.name: t for t in (
    _int_type(8), _int_type(6), _int_type(4), _int_type(3),
    _fp_type("fp4", (0, 1, 2, 3, 4, 6, 8, 12), (10, -10, 16, -16)),
    _fp_type("fp3", (0, 1, 2, 4), (3, -3, 6, -6)),
)})


def weight_type(wtype: "str | WeightType") -> WeightType:
    """Look up a weight type by name (case-insensitive); a :class:`WeightType` passes through.

    Raises
    ------
    ValueError
        ``wtype: must be one of int8, int6, int4, int3, fp4, fp3, got ...`` for an unknown name.
    """
    if isinstance(wtype, WeightType):
        return wtype
    found = WEIGHT_TYPES.get(wtype.lower()) if isinstance(wtype, str) else None
    if found is None:
        raise ValueError(f"wtype: must be one of {', '.join(WEIGHT_TYPES)}, got {wtype!r}")
    return found


def terms_per_weight(wtype: "str | WeightType") -> int:
    """Bit-serial terms (PE cycles) per weight: fp3/fp4/int3/int4 2, int6 3, int8 4."""
    return weight_type(wtype).n_terms


def _int_array(x, field: str) -> np.ndarray:
    array = np.asarray(x)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{field}: must be integers, got dtype {array.dtype}")
    return array.astype(np.int64)


def _selector_array(selector, wtype: WeightType) -> np.ndarray:
    selector = _int_array(selector, "selector")
    bad = (selector < 0) | (selector >= wtype.n_selectors)
    if bad.any():
        raise ValueError(f"selector: must be an integer in 0..{wtype.n_selectors - 1} for "
                         f"{wtype.name}, got {np.unique(selector[bad]).tolist()}")
    return selector


def _first_bad(array: np.ndarray, bad: np.ndarray) -> int:
    return int(np.broadcast_to(array, bad.shape)[bad].flat[0])


@functools.cache
def _decode_table(wtype: WeightType) -> tuple[np.ndarray, np.ndarray]:
    """``(value[selector, code], used[code])`` over all ``2**code_bits`` codes."""
    table = np.zeros((wtype.n_selectors, 1 << wtype.code_bits), dtype=np.int64)
    table[:, list(wtype.codes)] = wtype.values
    used = np.zeros(1 << wtype.code_bits, dtype=bool)
    used[list(wtype.codes)] = True
    return table, used


@functools.cache
def _encode_table(wtype: WeightType) -> tuple[np.ndarray, int]:
    """``(code[selector, value + offset], offset)``, -1 where the value is not representable."""
    offset = max(wtype.max_magnitude(s) for s in range(wtype.n_selectors))
    table = np.full((wtype.n_selectors, 2 * offset + 1), -1, dtype=np.int64)
    for selector, values in enumerate(wtype.values):
        table[selector, np.add(values, offset)] = wtype.codes
    return table, offset


def decode(codes, wtype: "str | WeightType", selector=0) -> np.ndarray:
    """Values of stored codes.

    Parameters
    ----------
    codes : array_like of int
        ``wtype.code_bits``-wide codes.
    wtype : str or WeightType
    selector : array_like of int
        Group option(s), broadcast against ``codes``; ``0`` for int types.

    Returns
    -------
    numpy.ndarray of int64
        The values, shape of ``codes`` broadcast with ``selector``.

    Raises
    ------
    ValueError
        For a code outside the type's used codes or a selector out of range.
    """
    wtype = weight_type(wtype)
    codes = _int_array(codes, "codes")
    selector = _selector_array(selector, wtype)
    table, used = _decode_table(wtype)
    size = 1 << wtype.code_bits
    in_range = (codes >= 0) & (codes < size)
    bad = ~in_range | ~used[np.where(in_range, codes, 0)]
    if bad.any():
        unused = sorted(set(range(size)) - set(wtype.codes))
        allowed = f"0..{size - 1}" + (f" except {unused}" if unused else "")
        raise ValueError(f"codes: must be {wtype.name} codes ({allowed}), "
                         f"got {_first_bad(codes, bad)}")
    return table[selector, codes]


def encode(values, wtype: "str | WeightType", selector=0) -> np.ndarray:
    """Codes that store ``values`` (inverse of :func:`decode`).

    Parameters
    ----------
    values : array_like of int
    wtype : str or WeightType
    selector : array_like of int
        Group option(s), broadcast against ``values``; ``0`` for int types.

    Returns
    -------
    numpy.ndarray of uint8
        The codes, shape of ``values`` broadcast with ``selector``.

    Raises
    ------
    ValueError
        For a value the type cannot hold under its selector, or a selector out of range.
    """
    wtype = weight_type(wtype)
    values = _int_array(values, "values")
    selector = _selector_array(selector, wtype)
    table, offset = _encode_table(wtype)
    index = np.clip(values + offset, 0, table.shape[1] - 1)
    codes = np.where(np.abs(values) <= offset, table[selector, index], -1)
    bad = codes < 0
    if bad.any():
        raise ValueError(f"values: must be representable in {wtype.name} under the selector, "
                         f"got {_first_bad(values, bad)}")
    return codes.astype(np.uint8)


def _check_representable(values: np.ndarray, wtype: WeightType) -> None:
    allowed = np.unique(wtype.values)
    bad = ~np.isin(values, allowed)
    if bad.any():
        raise ValueError(f"values: must be {wtype.name} values ({allowed.tolist()}), "
                         f"got {_first_bad(values, bad)}")


def _floor_log2(magnitude: np.ndarray) -> np.ndarray:
    """``floor(log2 m)`` of positive integers, 0 where ``m == 0``."""
    return np.maximum(np.frexp(magnitude.astype(np.float64))[1] - 1, 0)


def decompose(values, wtype: "str | WeightType") -> np.ndarray:
    """Split each value into its bit-serial terms (rules in the module docstring).

    Parameters
    ----------
    values : array_like of int
        Values representable in ``wtype`` under any selector.
    wtype : str or WeightType

    Returns
    -------
    numpy.ndarray of TERM_DTYPE
        Shape ``values.shape + (terms_per_weight(wtype),)``, terms in PE order (Booth digits least
        significant first; fp leading one first).

    Raises
    ------
    ValueError
        For a value that ``wtype`` cannot hold.
    """
    wtype = weight_type(wtype)
    values = _int_array(values, "values")
    _check_representable(values, wtype)
    terms = np.zeros(values.shape + (wtype.n_terms,), dtype=TERM_DTYPE)
    if wtype.family == "int":
        bits = 2 * wtype.n_terms
        pattern = values & ((1 << bits) - 1)
        below = np.zeros_like(pattern)
        for i in range(wtype.n_terms):
            low = (pattern >> (2 * i)) & 1
            high = (pattern >> (2 * i + 1)) & 1
            digit = below + low - 2 * high
            below = high
            terms["sign"][..., i] = digit < 0
            terms["exponent"][..., i] = np.abs(digit) == 2
            terms["mantissa"][..., i] = digit != 0
            terms["bsig"][..., i] = 2 * i
    else:
        magnitude = np.abs(values)
        lead = np.minimum(_floor_log2(magnitude), _TERM_EXPONENT_MAX)
        rest = magnitude - np.where(magnitude > 0, 1 << lead, 0)
        for i, part, exponent in ((0, magnitude, lead), (1, rest, _floor_log2(rest))):
            terms["sign"][..., i] = (values < 0) & (part > 0)
            terms["exponent"][..., i] = exponent
            terms["mantissa"][..., i] = part > 0
    return terms


def recombine(terms) -> np.ndarray:
    """Sum terms back into values: ``sum((-1)**sign * mantissa * 2**(exponent + bsig))``.

    Parameters
    ----------
    terms : numpy.ndarray of TERM_DTYPE
        Terms along the last axis, as returned by :func:`decompose`.

    Returns
    -------
    numpy.ndarray of int64
        Shape ``terms.shape[:-1]``.
    """
    magnitude = terms["mantissa"].astype(np.int64) << (
        terms["exponent"].astype(np.int64) + terms["bsig"].astype(np.int64))
    return np.where(terms["sign"] != 0, -magnitude, magnitude).sum(axis=-1)


def _group_scale(channel_scale: np.ndarray, scale_code: np.ndarray) -> np.ndarray:
    """``channel_scale * scale_code / SCALE_CODE_MAX``, evaluated in this order (float64)."""
    return channel_scale * scale_code.astype(np.float64) / SCALE_CODE_MAX


@dataclass(frozen=True, eq=False)
class QuantizedWeights:
    """A quantised ``K x N`` weight matrix (read-only arrays); see :func:`quantize`.

    Groups are ``group`` consecutive rows of one column: group ``(g, n)`` holds
    ``w[g*group:(g+1)*group, n]``, and ``G = K // group``.

    Attributes
    ----------
    wtypes : tuple of WeightType
        The allowed types, in the order given to :func:`quantize`.
    group : int
        Weights per group.
    codes : numpy.ndarray of uint8, shape (K, N)
        Stored code of each weight, read with its group's type and selector.
    values : numpy.ndarray of int16, shape (K, N)
        Integer value of each weight (``decode(codes, type, selector)``).
    type_index : numpy.ndarray of uint8, shape (G, N)
        Index into ``wtypes`` of each group's type.
    selector : numpy.ndarray of uint8, shape (G, N)
        Each group's 2-bit special-value option (0 for int groups).
    scale_code : numpy.ndarray of uint8, shape (G, N)
        8-bit group scale codes, 1..255 (0 only for an all-zero group).
    channel_scale : numpy.ndarray of float64, shape (N,)
        Per-column float scale.
    """

    wtypes: tuple[WeightType, ...]
    group: int
    codes: np.ndarray
    values: np.ndarray
    type_index: np.ndarray
    selector: np.ndarray
    scale_code: np.ndarray
    channel_scale: np.ndarray

    @property
    def group_scale(self) -> np.ndarray:
        """Float scale of each group, ``channel_scale * scale_code / 255``, shape (G, N)."""
        return _group_scale(self.channel_scale, self.scale_code)

    def dequantize(self) -> np.ndarray:
        """Float weights ``values * group_scale`` (float64, shape (K, N))."""
        return self.values * np.repeat(self.group_scale, self.group, axis=0)


def _weight_types(wtypes) -> tuple[WeightType, ...]:
    names = [wtypes] if isinstance(wtypes, (str, WeightType)) else list(wtypes)
    types = tuple(weight_type(name) for name in names)
    if not types:
        raise ValueError(f"wtypes: must name at least one of {', '.join(WEIGHT_TYPES)}, got none")
    if len(set(types)) != len(types):
        raise ValueError(f"wtypes: must not repeat a type, got {[t.name for t in types]}")
    return types


def _weight_matrix(w) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or w.size == 0:
        raise ValueError(f"w: must be a non-empty 2-D (K, N) array, got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("w: must be finite, got NaN or infinity")
    return w


def _check_group(group, k: int) -> None:
    if (not isinstance(group, (int, np.integer)) or isinstance(group, bool)
            or not 1 <= group <= k or k % group):
        raise ValueError(f"group: must be an integer in 1..{k} that divides K={k}, got {group!r}")


class _Rounder:
    """Nearest value of one ``(type, selector)`` table, ties to the lower magnitude.

    Every table holds integers, so every midpoint between neighbours is a multiple of 1/2 and the
    nearest value is constant on each open half-unit cell. ``x`` is mapped to the cell index
    ``c = sign(x) * ceil(|2x|)`` (a midpoint joins the cell on its zero side, which is what ties to
    the lower magnitude need), clipped to ``|c| <= 2 * max|table|`` (values beyond the range
    saturate), and looked up in a table built by brute force at each cell's centre.
    """

    def __init__(self, wtype: WeightType, selector: int):
        self.max_magnitude = wtype.max_magnitude(selector)
        self.reach = 2 * self.max_magnitude
        cells = np.arange(-self.reach, self.reach + 1)
        centres = (cells - 0.5 * np.sign(cells)) / 2
        values = np.asarray(wtype.values[selector])
        nearest = np.abs(centres[:, None] - values[None, :]).argmin(axis=1)
        self.values = values[nearest].astype(np.int16)
        self.codes = np.asarray(wtype.codes, dtype=np.uint8)[nearest]

    def cell(self, x: np.ndarray) -> np.ndarray:
        """Lookup index of each ``x``: index into :attr:`values` and :attr:`codes`."""
        c = np.minimum(np.ceil(np.abs(2 * x)), self.reach)
        return (np.copysign(c, x) + self.reach).astype(np.intp)


def quantize(w, wtypes="fp4", group: int = 128) -> QuantizedWeights:
    """Quantise a ``K x N`` weight matrix in groups of ``group`` weights along K.

    K is the input (reduction) dimension and N the output channels, so a group is a slice of one
    column, as a GEMM PE array streams it. Every candidate ``(type, selector)`` (types in the order
    given, selectors 0, 1, ... within a type) is tried on every group:

    1. ``m_c`` is the candidate's largest magnitude (:meth:`WeightType.max_magnitude`) and
       ``m_min`` the smallest ``m_c`` over all candidates.
    2. Per column, ``channel_scale = max|w[:, n]| / m_min``: no group of any candidate needs more.
    3. Per group, ``scale_code = min(255, ceil(255 * (a_g / a_n) * (m_min / m_c)))`` with ``a_g``
       the group absmax and ``a_n`` the column absmax, i.e. the smallest 8-bit code whose scale
       ``channel_scale * scale_code / 255`` is at least ``a_g / m_c`` (rounded up so that nothing
       clips; the cap at 255 only absorbs float rounding). All-zero groups get code 0.
    4. Each weight takes the candidate's value nearest to ``w / group_scale``, ties to the lower
       magnitude (values beyond the range saturate to its end).
    5. The group keeps the candidate with the smallest sum of squared errors
       ``sum((w - value * group_scale)**2)`` (i.e. the lowest MSE); exact ties keep the earlier
       candidate, so list cheaper types first.

    A candidate's scale codes span at most ``255 * m_min / m_c`` steps, so mixing types of very
    different ranges (int3 with int8) coarsens the group scales of the wider type.

    Parameters
    ----------
    w : array_like of float, shape (K, N)
        Finite weights.
    wtypes : str, WeightType or sequence of them
        Allowed types, e.g. ``"fp4"`` or ``["fp4", "int4", "int8"]`` (chosen per group).
    group : int
        Weights per group; must divide K (no ragged last group).

    Returns
    -------
    QuantizedWeights

    Raises
    ------
    ValueError
        For an unknown, repeated or empty ``wtypes``, a ``w`` that is not a finite non-empty 2-D
        array, or a ``group`` that is not a divisor of K in 1..K.
    """
    types = _weight_types(wtypes)
    w = _weight_matrix(w)
    k, n = w.shape
    _check_group(group, k)
    blocks = w.reshape(k // group, group, n)
    group_absmax = np.abs(blocks).max(axis=1)
    column_absmax = group_absmax.max(axis=0)
    candidates = [(t, s) for t in range(len(types)) for s in range(types[t].n_selectors)]
    m_min = min(types[t].max_magnitude(s) for t, s in candidates)
    channel_scale = column_absmax / m_min
    ratio = np.divide(group_absmax, column_absmax, out=np.zeros_like(group_absmax),
                      where=column_absmax > 0)

    rounders = [_Rounder(types[t], s) for t, s in candidates]
    candidate_codes = [
        np.minimum(np.ceil(SCALE_CODE_MAX * ratio * (m_min / r.max_magnitude)), SCALE_CODE_MAX)
        for r in rounders]

    codes = np.zeros(blocks.shape, dtype=np.uint8)
    values = np.zeros(blocks.shape, dtype=np.int16)
    type_index = np.zeros(group_absmax.shape, dtype=np.uint8)
    selector = np.zeros(group_absmax.shape, dtype=np.uint8)
    scale_code = np.zeros(group_absmax.shape, dtype=np.uint8)
    rows = max(1, _CHUNK_WEIGHTS // (group * n))
    for part in (slice(g, g + rows) for g in range(0, k // group, rows)):
        chunk = blocks[part]
        best_sse = np.full(chunk[:, 0, :].shape, np.inf)
        for (t, s), rounder, candidate_code in zip(candidates, rounders, candidate_codes):
            code = candidate_code[part]
            scale = _group_scale(channel_scale, code)[:, None, :]
            cell = rounder.cell(chunk / np.where(scale > 0, scale, 1.0))
            value = rounder.values[cell]
            sse = np.square(chunk - value * scale).sum(axis=1)
            better = sse < best_sse
            best_sse[better] = sse[better]
            type_index[part][better] = t
            selector[part][better] = s
            scale_code[part][better] = code[better]
            np.copyto(values[part], value, where=better[:, None, :])
            np.copyto(codes[part], rounder.codes[cell], where=better[:, None, :])

    arrays = dict(codes=codes.reshape(k, n), values=values.reshape(k, n), type_index=type_index,
                  selector=selector, scale_code=scale_code, channel_scale=channel_scale)
    for array in arrays.values():
        array.setflags(write=False)
    return QuantizedWeights(wtypes=types, group=group, **arrays)
