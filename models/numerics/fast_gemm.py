"""Whole-model-speed GEMMs bit-equal to the families' golden models.

The golden models state each PE's arithmetic plainly and are fast enough for verification jobs;
a transformer's forward pass runs thousands of larger GEMMs. These functions give the same bits
by other means, and tests/models/test_fast_gemm.py holds them equal to the goldens:

- :func:`float_mac_gemm` equals :meth:`peforge.models.numerics.floatmac.FloatMac.gemm`: products
  of a k-slab at once (a table of every product for 8-bit formats, the multiplier itself on whole
  slabs otherwise), widened to fp32 through a table, then added in k order by numpy's float32
  adder (IEEE RNE with subnormals, as the golden's ``fp32_add``). NaNs become the canonical NaN at
  the end; a NaN stays NaN through any later add, so the result is the same as canonicalising
  after every step.
- :func:`wrapped_int_gemm` equals an integer MAC array's ``wrap(A @ W)``: the exact product by a
  float64 BLAS matmul where every partial sum is below 2**53 in magnitude, by int64 otherwise.
"""

from functools import lru_cache

import numpy as np

from peforge.models.integer import wrap
from peforge.models.numerics.floatfmt import decode
from peforge.models.numerics.floatmac import CANONICAL_NAN, FloatMac

__all__ = ["float_mac_gemm", "wrapped_int_gemm", "exact_int_matmul"]

#: Elements of one slab of products (m x k-slab x n) held at once.
_SLAB_ELEMENTS = 1 << 22


@lru_cache(maxsize=8)
def _widen_table(mac: FloatMac) -> np.ndarray:
    """fp32 value of every bit pattern of the operand format."""
    fmt = mac.fmt
    return decode(fmt, np.arange(1 << fmt.bits)).astype(np.float32)


@lru_cache(maxsize=8)
def _product_table(mac: FloatMac) -> np.ndarray:
    """fp32 value of the product of every pair of 8-bit patterns, index ``(x << 8) | y``."""
    codes = np.arange(1 << mac.fmt.bits)
    products = mac.multiply(codes[:, None], codes[None, :])
    return _widen_table(mac)[products.astype(np.int64)].ravel()


def _products(mac: FloatMac, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """fp32 products ``a[:, s, None] * b[None, s, :]`` of a slab, shape (m, slab, n)."""
    if mac.fmt.bits <= 8:
        return _product_table(mac)[(a[:, :, None] << mac.fmt.bits) | b[None, :, :]]
    if mac.exact and mac.format in _HALF_ROUNDING:
        return _exact_half_products(mac, a, b)
    return _widen_table(mac)[mac.multiply(a[:, :, None], b[None, :, :]).astype(np.int64)]


def _round_fp16(p32: np.ndarray) -> np.ndarray:
    """fp16 of float32 values (numpy's cast: RNE, subnormals, overflow to Inf), as fp32."""
    with np.errstate(over="ignore"):
        return p32.astype(np.float16).astype(np.float32)


def _round_bf16(p32: np.ndarray) -> np.ndarray:
    """bf16 of finite float32 values by RNE on the pattern's top 16 bits, as fp32."""
    bits = p32.view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return rounded.view(np.float32)


#: 16-bit formats whose exact products round from float32 in one step, and the smallest float32
#: magnitude for which that holds (below it the float32 product was itself rounded).
_HALF_ROUNDING = {"fp16": (_round_fp16, 0.0), "bf16": (_round_bf16, 2.0 ** -126)}


def _exact_half_products(mac: FloatMac, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact-multiply products of fp16 or bf16 patterns, as the multiplier rounds them.

    The product of two 11- or 8-bit significands fits float32's 24 bits, so the float32 product
    is exact wherever it is a normal number (all fp16 products are); rounding it to the format
    then rounds once, as the golden does from float64. The few bf16 products in float32's
    subnormal range, and NaNs (the golden's signed canonical NaN), take the golden's own path.
    """
    round_half, tiny = _HALF_ROUNDING[mac.format]
    table = _widen_table(mac)
    x, y = table[a][:, :, None], table[b][None, :, :]
    with np.errstate(over="ignore", invalid="ignore"):
        products = round_half(x * y)
    redo = np.isnan(products) | ((np.abs(x * y) < tiny) & (x * y != 0))
    if redo.any():
        where = np.nonzero(redo)
        golden = mac.multiply(a[where[0], where[1]], b[where[1], where[2]])
        products[where] = table[golden.astype(np.int64)]
    return products


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
    slab = max(1, _SLAB_ELEMENTS // max(1, m * n))
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, k, slab):
            products = _products(mac, a[:, start:start + slab], b[start:start + slab])
            for step in range(products.shape[1]):
                acc += products[:, step, :]
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
