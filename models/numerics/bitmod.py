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

The group quantiser that picks a type per group is :mod:`peforge.models.numerics.bitmod_quant`.
"""

import functools
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

__all__ = [
    "WeightType", "WEIGHT_TYPES", "weight_type", "terms_per_weight", "decode", "encode",
    "TERM_DTYPE", "decompose", "recombine", "SCALE_CODE_MAX",
]

#: Largest 8-bit group scale code; a group scale is ``channel_scale * scale_code / SCALE_CODE_MAX``.
SCALE_CODE_MAX = 255

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
