"""The whole-model-speed GEMMs give the golden models' bits (models/numerics/fast_gemm.py)."""

import numpy as np
import pytest

from peforge.models.integer import wrap
from peforge.models.lut import LutConfig, golden_gemm as lut_golden
from peforge.models.numerics.fast_gemm import exact_int_matmul, float_mac_gemm, wrapped_int_gemm
from peforge.models.numerics.floatmac import FloatMac, cancelling_job
from peforge.models.numerics.nm_sparse import compress, decompress
from peforge.models.sparse_dsp import SparseDspConfig, golden_gemm as sparse_golden
from peforge.models.systolic import SystolicConfig, golden_gemm

MACS = [FloatMac(fmt, exact) for fmt in ("e4m3", "e5m2", "fp16", "bf16") for exact in (False, True)]


@pytest.mark.parametrize("mac", MACS, ids=lambda m: f"{m.format}-{'exact' if m.exact else 'lmul'}")
def test_float_mac_gemm_equals_golden_on_random_patterns(mac):
    rng = np.random.default_rng(7)
    bits = mac.fmt.bits
    for m, k, n in ((1, 1, 1), (5, 37, 3), (3, 300, 4)):
        a, b = rng.integers(0, 1 << bits, (m, k)), rng.integers(0, 1 << bits, (k, n))
        assert np.array_equal(float_mac_gemm(mac, a, b), mac.gemm(a, b))


@pytest.mark.parametrize("mac", MACS, ids=lambda m: f"{m.format}-{'exact' if m.exact else 'lmul'}")
def test_float_mac_gemm_equals_golden_on_cancelling_sums(mac):
    """Sums that cancel to zero, subnormal and signed-zero results (the golden's own corner job)."""
    rng = np.random.default_rng(3)
    job = cancelling_job(mac.fmt, rng, 4, 24, 5)
    assert np.array_equal(float_mac_gemm(mac, job["a"], job["b"]), mac.gemm(job["a"], job["b"]))


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
@pytest.mark.parametrize("exact", [False, True])
def test_every_8bit_product_exhaustively(fmt, exact):
    """K = 1: each output is one product, so an all-codes column times an all-codes row checks
    all 65,536 products (and their widening) against the golden."""
    mac = FloatMac(fmt, exact)
    codes = np.arange(256)
    assert np.array_equal(float_mac_gemm(mac, codes[:, None], codes[None, :]),
                          mac.gemm(codes[:, None], codes[None, :]))


@pytest.mark.parametrize("fmt", ["fp16", "bf16"])
@pytest.mark.parametrize("exact", [False, True])
def test_every_16bit_pattern_against_corner_patterns(fmt, exact):
    """K = 1: all 65,536 patterns of A's column times a row of corner and random patterns (zeros,
    subnormals, one, the largest finite, Inf, NaN, both signs) checks every product kind of the
    L-Mul key table and of the exact rounding (ties, subnormals, overflow) against the golden."""
    from peforge.models.numerics.lmul import operand_pairs

    mac = FloatMac(fmt, exact)
    corners = np.unique(np.concatenate(operand_pairs(mac.fmt, 24, seed=5)).astype(np.int64))
    codes = np.arange(1 << 16)
    assert np.array_equal(float_mac_gemm(mac, codes[:, None], corners[None, :]),
                          mac.gemm(codes[:, None], corners[None, :]))


@pytest.mark.parametrize("fmt", ["fp16", "bf16"])
def test_exact_16bit_products_near_the_range_ends(fmt):
    """bf16 products below float32's normal range and fp16/bf16 products that overflow, where a
    float32 shortcut would round twice: equal to the golden."""
    mac = FloatMac(fmt, True)
    fmt_ = mac.fmt
    first_normal = 1 << fmt_.man_bits
    tiny = np.concatenate([np.arange(1, 64), np.arange(first_normal - 64, first_normal + 64)])
    huge = np.arange(fmt_.max_finite - 100, fmt_.max_finite + 1)
    a = np.concatenate([tiny, huge, tiny | fmt_.sign_mask])
    for b in (a[::-1].copy(), np.full_like(a, (fmt_.bias << fmt_.man_bits) | 5)):
        assert np.array_equal(float_mac_gemm(mac, a[:, None], b[None, :]),
                              mac.gemm(a[:, None], b[None, :]))


@pytest.mark.parametrize("bits,signed", [(4, True), (8, True), (16, True), (8, False)])
def test_wrapped_int_gemm_equals_the_systolic_golden(bits, signed):
    config = SystolicConfig(bits=bits, signed=signed, acc_bits=2 * bits + 2)     # wraps often
    low, high = (-(1 << bits - 1), (1 << bits - 1) - 1) if signed else (0, (1 << bits) - 1)
    rng = np.random.default_rng(bits)
    a, b = rng.integers(low, high + 1, (6, 300)), rng.integers(low, high + 1, (300, 5))
    assert np.array_equal(wrapped_int_gemm(a, b, config.acc_bits, signed),
                          golden_gemm(config, a, b))


def test_exact_int_matmul_takes_int64_past_float64():
    """Operands whose partial sums pass 2**53 (float64 would round): the int64 path, exact."""
    a = np.full((2, 4), 2 ** 30, np.int64)
    w = np.full((4, 3), 2 ** 30 - 1, np.int64)
    assert exact_int_matmul(a, w).tolist() == [[4 * 2 ** 30 * (2 ** 30 - 1)] * 3] * 2


@pytest.mark.parametrize("kind,wbits", [("unsigned", 2), ("signed", 4), ("ternary", 2)])
def test_lut_tile_is_a_wrapped_matmul(kind, wbits):
    config = LutConfig(wkind=kind, wbits=wbits, acc_bits=12)      # narrow: the result wraps
    rng = np.random.default_rng(1)
    low, high = {"unsigned": (0, 3), "signed": (-8, 7), "ternary": (-1, 1)}[kind]
    a, w = rng.integers(-128, 128, (5, 70)), rng.integers(low, high + 1, (70, 9))
    assert np.array_equal(wrapped_int_gemm(a, w, config.acc_bits - 1),
                          lut_golden(config, a, w))


@pytest.mark.parametrize("nm", ["2:4", "1:8", "4:16"])
def test_sparse_chain_is_a_wrapped_matmul_of_the_kept_weights(nm):
    config = SparseDspConfig(nm=nm, bits=8, acc_bits=20)
    rng = np.random.default_rng(2)
    a, w = rng.integers(-128, 128, (4, 64)), rng.integers(-128, 128, (64, 7))
    values, indices = compress(w, config.pattern)
    dense = decompress(values, indices, config.pattern)
    assert np.array_equal(wrapped_int_gemm(a, dense, config.acc_bits),
                          sparse_golden(config, a, values, indices))
    assert np.array_equal(wrap(a @ dense, 20, True), wrapped_int_gemm(a, dense, 20))
