"""Whole-model-speed GEMMs bit-equal to the families' golden models.

The golden models state each PE's arithmetic plainly and are fast enough for verification jobs;
a transformer's forward pass runs thousands of larger GEMMs. These functions give the same bits
by other means, and tests/models/test_fast_gemm.py holds them equal to the goldens:

- :func:`float_mac_gemm` equals :meth:`peforge.models.numerics.floatmac.FloatMac.gemm`. It walks k
  in order, as the golden does, and for each k forms the (M, N) products of column k of A and row
  k of B at once (an array that stays in cache), widens them to fp32 and adds them with numpy's
  float32 adder (IEEE RNE with subnormals, as the golden's ``fp32_add``). The products come from
  one table lookup per product where the format allows: for 8-bit formats a table of all 65,536
  products, indexed by ``(x << 8) + y``; for 16-bit L-Mul a table indexed by the sum of two
  per-operand keys, since an L-Mul product depends on its operands only through the sum of their
  ``{exponent, fraction}`` fields, their signs and whether each is zero/subnormal or Inf/NaN.
  16-bit exact products are the float32 product (exact: 11- or 8-bit significands) rounded once
  to fp16 or bf16. NaNs become the canonical NaN at the end; a NaN stays NaN through any later
  add, so the result is the same as canonicalising after every step.
- :func:`wrapped_int_gemm` equals an integer MAC array's ``wrap(A @ W)``: the exact product by a
  float64 BLAS matmul where every partial sum is below 2**53 in magnitude, by int64 otherwise.
"""

from functools import lru_cache

import numpy as np

from peforge.models.integer import wrap
from peforge.models.numerics.floatfmt import FloatFormat, decode
from peforge.models.numerics.floatmac import CANONICAL_NAN, FloatMac
from peforge.models.numerics.lmul import lmul_constant

__all__ = ["float_mac_gemm", "wrapped_int_gemm", "exact_int_matmul"]


@lru_cache(maxsize=8)
def _widen_table(fmt: FloatFormat) -> np.ndarray:
    """fp32 value of every bit pattern of ``fmt``."""
    return decode(fmt, np.arange(1 << fmt.bits)).astype(np.float32)


@lru_cache(maxsize=8)
def _product_table(mac: FloatMac) -> np.ndarray:
    """fp32 value of the product of every pair of 8-bit patterns, index ``(x << 8) + y``."""
    codes = np.arange(1 << mac.fmt.bits)
    products = mac.multiply(codes[:, None], codes[None, :])
    return _widen_table(mac.fmt)[products.astype(np.int64)].ravel()


def _lmul_keys(fmt: FloatFormat, bits: np.ndarray) -> np.ndarray:
    """L-Mul keys of operand patterns; the sum of two keys indexes :func:`_lmul_table`.

    With ``E = 2**(bits-1)`` (every ``{exponent, fraction}`` field ``em`` is below it), a normal
    operand's key is ``em`` (at least ``2**m``), a zero or subnormal's ``2E`` and an Inf or NaN's
    ``3E``, plus ``8E`` for a negative sign. Magnitude sums then fall in disjoint ranges: below
    ``2E`` two normals; ``[2E, 3E)`` a normal and a flushed operand; ``4E`` two flushed; ``(3E,
    4E)``, ``5E`` and ``6E`` an Inf or NaN with anything. The sign part sums to 0, 8E or 16E.
    """
    e = 1 << (fmt.bits - 1)
    em = bits & (fmt.sign_mask - 1)
    key = np.where(em > fmt.max_finite, 3 * e, np.where(em >> fmt.man_bits == 0, 2 * e, em))
    return (key + np.where(bits & fmt.sign_mask, 8 * e, 0)).astype(np.int32)


@lru_cache(maxsize=8)
def _lmul_table(fmt: FloatFormat) -> np.ndarray:
    """fp32 L-Mul product for every sum of two :func:`_lmul_keys` (22E + 1 entries)."""
    e = 1 << (fmt.bits - 1)
    s = np.arange(7 * e)
    mag = np.clip(s - lmul_constant(fmt), 0, fmt.max_finite)
    values = np.where(s < 2 * e, _widen_table(fmt)[mag], 0.0)
    values = np.where((s > 3 * e) & (s != 4 * e), np.nan, values).astype(np.float32)
    # sign part 0 or 16E: positive; 8E: negative (the sign of zeros and NaNs kept as -).
    return np.concatenate([values, np.full(e, np.nan, np.float32), -values,
                           np.full(e, np.nan, np.float32), values[:6 * e + 1]])


class _TableSteps:
    """Products of step k as ``table[key_a[:, k] + key_b[k]]``."""

    def __init__(self, table, key_a, key_b):
        self.table, self.key_a, self.key_b = table, np.ascontiguousarray(key_a.T), key_b
        self.index = np.empty((key_a.shape[0], key_b.shape[1]), np.int32)

    def __call__(self, k: int, out: np.ndarray) -> None:
        np.add(self.key_a[k][:, None], self.key_b[k][None, :], out=self.index)
        self.table.take(self.index, out=out)


class _ExactHalfSteps:
    """Exact fp16 or bf16 products of step k: the float32 product rounded once (RNE) to the
    format. It is exact wherever it is a float32 normal (all fp16 products are); bf16 products
    below that range, and NaNs (the golden's signed canonical NaN), take the golden's own path,
    checked per step only if the operands can give one."""

    def __init__(self, mac: FloatMac, a, b):
        table = _widen_table(mac.fmt)
        self.mac, self.a, self.b = mac, a, b
        self.x, self.y = np.ascontiguousarray(table[a].T), table[b]
        self.half = np.empty(self.x.shape[1:] + self.y.shape[1:], np.float16)
        self.carry = np.empty(self.half.shape, np.uint32)
        self.may_redo = not (np.isfinite(self.x).all() and np.isfinite(self.y).all())
        if mac.format == "bf16":
            smallest = [np.abs(v[v != 0]).min(initial=np.inf) for v in (self.x, self.y)]
            self.may_redo |= float(smallest[0]) * float(smallest[1]) < 2.0 ** -126

    def __call__(self, k: int, out: np.ndarray) -> None:
        np.multiply(self.x[k][:, None], self.y[k][None, :], out=out)
        if self.may_redo:
            exact = out.copy()
        if self.mac.format == "fp16":
            np.copyto(self.half, out, casting="same_kind")     # RNE, subnormals, overflow to Inf
            np.copyto(out, self.half)
        else:                       # bf16: RNE on the top 16 bits of the pattern
            bits = out.view(np.uint32)
            np.right_shift(bits, 16, out=self.carry)
            self.carry &= 1
            self.carry += 0x7FFF
            bits += self.carry
            bits &= np.uint32(0xFFFF0000)
        if self.may_redo:
            redo = np.isnan(out) | ((np.abs(exact) < 2.0 ** -126) & (exact != 0)
                                    if self.mac.format == "bf16" else False)
            rows, cols = np.nonzero(redo)
            golden = self.mac.multiply(self.a[rows, k], self.b[k, cols])
            out[rows, cols] = _widen_table(self.mac.fmt)[golden.astype(np.int64)]


def _steps(mac: FloatMac, a: np.ndarray, b: np.ndarray):
    if mac.fmt.bits <= 8:
        return _TableSteps(_product_table(mac), a << mac.fmt.bits, b)
    if not mac.exact:
        return _TableSteps(_lmul_table(mac.fmt), _lmul_keys(mac.fmt, a), _lmul_keys(mac.fmt, b))
    return _ExactHalfSteps(mac, a, b)


def float_mac_gemm(mac: FloatMac, a, b) -> np.ndarray:
    """``a @ b`` of operand bit patterns as the float MAC PE computes it: fp32 patterns (int64).

    Parameters
    ----------
    mac : FloatMac
        The PE's arithmetic (format; L-Mul or exact RNE products).
    a, b : array of int, shapes (M, K) and (K, N)
        Bit patterns of ``mac.format``.
    """
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    (m, k), (_, n) = a.shape, b.shape
    acc = np.zeros((m, n), np.float32)
    products = np.empty_like(acc)
    steps = _steps(mac, a, b)
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(k):
            steps(step, products)
            acc += products
    bits = acc.view(np.uint32).astype(np.int64)
    return np.where(np.isnan(acc), CANONICAL_NAN, bits)


def exact_int_matmul(a, w) -> np.ndarray:
    """``a @ w`` of integer matrices, exactly (int64).

    By float64 BLAS when ``K * max|a| * max|w| < 2**53`` (every partial sum is then an exact
    float64), by numpy's int64 matmul otherwise (exact modulo 2**64).
    """
    a, w = np.asarray(a, np.int64), np.asarray(w, np.int64)
    bound = a.shape[1] * int(np.abs(a).max(initial=0)) * int(np.abs(w).max(initial=0))
    if bound < 1 << 53:
        return np.rint(a.astype(np.float64) @ w.astype(np.float64)).astype(np.int64)
    return a @ w


def wrapped_int_gemm(a, w, acc_bits: int, signed: bool = True) -> np.ndarray:
    """``a @ w`` wrapped to an ``acc_bits`` accumulator, as an integer MAC array holds it."""
    return wrap(exact_int_matmul(a, w), acc_bits, signed)
