"""Golden models of the L-Mul approximate multiplier and of the exact float multiplier.

L-Mul ("Addition is All You Need for Energy-efficient Language Models", arXiv 2410.00907)
replaces the mantissa product ``xm * ym`` of ``(1 + xm)(1 + ym)`` by a constant ``2**-l(m)``.
peforge implements its bit-level form, one integer adder over the ``{exponent, fraction}``
fields (``EM``, ``e + m`` bits) of a :class:`~peforge.models.numerics.floatfmt.FloatFormat`::

    R = EM_x + EM_y - C,   C = (bias << m) - 2**(m - l(m))
    p = {sign_x ^ sign_y, R}

A fraction carry ripples into the exponent field, so when ``s = xm + ym + 2**-l(m) >= 1`` the
result is ``2 s 2**(xe+ye)`` rather than ``(1 + s) 2**(xe+ye)``. Nothing is rounded.

Special-value policy, shared by :func:`lmul_multiply` and ``peforge.hw.common.floatmul.LMulMultiplier``
(checked in this order; the result sign is always ``sign_x ^ sign_y``, NaN included):

1. an Inf or NaN operand gives the canonical NaN, so ``0 * Inf`` is NaN as in IEEE 754;
2. an operand with exponent field 0 (zero or subnormal) gives zero: subnormals are flushed;
3. ``R < 0`` (underflow) gives zero; ``0 <= R < 2**m`` is returned as it is, a subnormal pattern,
   which continues the adder's piecewise-linear value map down to zero;
4. ``R`` above the largest finite pattern (overflow) gives the largest finite value
   (e4m3: 0x7E = 448; fp16: 65504): L-Mul never produces Inf.

:func:`exact_multiply` is the reference multiplier: the exact product rounded to nearest, ties
to even, with subnormal inputs and results, then the output format's own policy (IEEE: overflow
to Inf, ``0 * Inf`` NaN; OCP e4m3 "fn", which has no Inf: overflow to NaN, like
``ml_dtypes.float8_e4m3fn``). NaN results are the canonical NaN with sign ``sign_x ^ sign_y``.
"""

import numpy as np

from peforge.models.numerics.floatfmt import FloatFormat, as_bits, decode, encode

__all__ = ["lmul_offset", "lmul_constant", "lmul_multiply", "exact_multiply", "operand_pairs"]


def lmul_offset(man_bits: int) -> int:
    """The L-Mul offset exponent ``l(m)``: ``m`` for ``m <= 3``, 3 for ``m = 4``, else 4."""
    if not (isinstance(man_bits, int) and man_bits >= 1):
        raise ValueError(f"man_bits: must be an integer >= 1, got {man_bits!r}")
    if man_bits <= 3:
        return man_bits
    return 3 if man_bits == 4 else 4


def lmul_constant(fmt: FloatFormat) -> int:
    """The constant ``C = (bias << m) - 2**(m - l(m))`` subtracted by the L-Mul adder."""
    m = fmt.man_bits
    return (fmt.bias << m) - (1 << (m - lmul_offset(m)))


def lmul_multiply(fmt: FloatFormat, x_bits, y_bits) -> np.ndarray:
    """L-Mul product of the bit patterns ``x_bits`` and ``y_bits`` of ``fmt`` (broadcast).

    Returns bit patterns of ``fmt`` (array of ``fmt.dtype``); see the module docstring for the
    formula and the special-value policy.
    """
    x = as_bits(fmt, x_bits)
    y = as_bits(fmt, y_bits)
    em_mask = fmt.sign_mask - 1
    em_x, em_y = x & em_mask, y & em_mask
    sign = (x ^ y) & fmt.sign_mask
    mag = np.clip(em_x + em_y - lmul_constant(fmt), 0, fmt.max_finite)
    flushed = ((em_x >> fmt.man_bits) == 0) | ((em_y >> fmt.man_bits) == 0)
    mag = np.where(flushed, 0, mag)
    # Patterns above the largest finite one are exactly the Inf and NaN patterns.
    nonfinite = (em_x > fmt.max_finite) | (em_y > fmt.max_finite)
    mag = np.where(nonfinite, fmt.nan, mag)
    return (sign | mag).astype(fmt.dtype)


def exact_multiply(fmt: FloatFormat, x_bits, y_bits, out_fmt: FloatFormat | None = None
                   ) -> np.ndarray:
    """Exact product of the bit patterns ``x_bits`` and ``y_bits`` of ``fmt``, rounded.

    The product is rounded to nearest, ties to even, into ``out_fmt`` (default ``fmt``).
    Returns bit patterns of ``out_fmt`` (array of ``out_fmt.dtype``).
    """
    out = fmt if out_fmt is None else out_fmt
    x = as_bits(fmt, x_bits)
    y = as_bits(fmt, y_bits)
    # Exact in float64: at most 2 * 24 significant bits, exponents within 2**-298..2**256.
    with np.errstate(invalid="ignore"):     # 0 * Inf is NaN, as intended
        product = decode(fmt, x) * decode(fmt, y)
    sign = np.where((x ^ y) & fmt.sign_mask, out.sign_mask, 0)
    return np.where(np.isnan(product), sign | out.nan, encode(out, product)).astype(out.dtype)


def operand_pairs(fmt: FloatFormat, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Operand bit patterns ``(x, y)`` for conformance tests of a multiplier of ``fmt``.

    Every pair of corner patterns (zero, smallest and largest subnormal, smallest normal, one,
    one plus an ulp, largest finite, the patterns above it, each with both signs), then ``count``
    random pairs: half uniform over all patterns, half with exponents summing to near the
    underflow or the overflow boundary of the product. Arrays of ``fmt.dtype``.
    """
    rng = np.random.default_rng(seed)
    m, top = fmt.man_bits, (1 << fmt.exp_bits) - 1
    one = fmt.bias << m
    corners = np.unique([0, 1, (1 << m) - 1, 1 << m, one, one | 1, fmt.max_finite,
                         fmt.max_finite + 1, fmt.nan])
    corners = np.concatenate([corners, corners | fmt.sign_mask])
    cx, cy = np.meshgrid(corners, corners)
    uniform = rng.integers(0, 1 << fmt.bits, (2, count // 2))
    n = count - count // 2
    ex = rng.integers(1, top, n)
    target = np.where(rng.random(n) < 0.5, fmt.bias, fmt.bias + top - 1)
    ey = np.clip(target - ex + rng.integers(-3, 4, n), 0, top)
    boundary = [(rng.integers(0, 2, n) * fmt.sign_mask) | (exp << m) | rng.integers(0, 1 << m, n)
                for exp in (ex, ey)]
    return tuple(np.concatenate([c.ravel(), u, b]).astype(fmt.dtype)
                 for c, u, b in zip((cx, cy), uniform, boundary))
