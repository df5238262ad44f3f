"""FloatFormat validation and the numpy codecs, against ml_dtypes/numpy and a table search.

Note: ml_dtypes converts float64 to its 8- and 16-bit types through float32, so a float64 that
float32 cannot hold exactly may be rounded twice there. The cast comparisons therefore use
float32-exact inputs (or numpy's direct float16/float32 casts); arbitrary float64 inputs are
checked against :func:`nearest_bits`, a table search written independently of the encoder.
"""

import ml_dtypes
import numpy as np
import pytest

from peforge.models.numerics.floatfmt import (BF16, E4M3, E5M2, FORMATS, FP16, FP32, FloatFormat,
                                     Specials, decode, encode, float_format)

from tests.float_reference import NUMPY_TYPES, reference_cast, reference_decode

SMALL = [E4M3, E5M2, FP16, BF16]


def positive_table(fmt):
    """Finite non-negative values of a format (ascending) and their patterns, from ml_dtypes."""
    patterns = np.arange(1 << (fmt.bits - 1), dtype=np.int64)
    values = reference_decode(fmt, patterns)
    finite = np.isfinite(values)
    return values[finite], patterns[finite]


def nearest_bits(fmt, values):
    """Round to nearest, ties to the even pattern, by searching the table of finite values.

    The pattern after the largest finite one (Inf, or NaN for e4m3) stands for the value one
    step above it, so values that round beyond the largest finite value land on it.
    """
    table, patterns = positive_table(fmt)
    table = np.append(table, 2 * table[-1] - table[-2])
    patterns = np.append(patterns, patterns[-1] + 1)
    magnitude = np.abs(values)
    hi = np.minimum(np.searchsorted(table, magnitude), len(table) - 1)
    lo = np.maximum(hi - 1, 0)
    d_lo, d_hi = magnitude - table[lo], table[hi] - magnitude
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (patterns[hi] % 2 == 0))
    result = np.where(pick_hi, patterns[hi], patterns[lo])
    result = np.where(magnitude > table[-1], patterns[-1], result)
    return np.where(np.signbit(values), 1 << (fmt.bits - 1), 0) | result


def float32_exact_samples(fmt, rng, n):
    """Random float32-exact values over the whole range of ``fmt``, ties, overflow, specials."""
    emin = 1 - fmt.bias - fmt.man_bits - 2
    values = rng.uniform(1, 2, n) * np.exp2(rng.integers(emin, fmt.bias + 2, n))
    table, _ = positive_table(fmt)
    ties = (table[:-1] + table[1:]) / 2
    over = table[-1] + (table[-1] - table[-2]) * np.array([0.25, 0.5, 0.75, 1, 3])
    specials = [0.0, np.inf, np.nan, 2.0 ** 100, 2.0 ** -100, 2.0 ** -149]
    with np.errstate(over="ignore"):
        samples = np.concatenate([values.astype(np.float32), ties, over, specials])
        exact = np.isnan(samples) | (samples.astype(np.float32) == samples)
    samples = samples[exact]                 # drops only bf16 values beyond float32's range
    return np.where(rng.random(samples.size) < 0.5, -samples, samples)


@pytest.mark.parametrize("kwargs, message", [
    ({"exp_bits": 1}, "exp_bits: must be an integer in 2..8, got 1"),
    ({"exp_bits": 9}, "exp_bits: must be an integer in 2..8, got 9"),
    ({"exp_bits": True}, "exp_bits: must be an integer in 2..8, got True"),
    ({"man_bits": 0}, "man_bits: must be an integer in 1..23, got 0"),
    ({"man_bits": 24}, "man_bits: must be an integer in 1..23, got 24"),
    ({"man_bits": 3.0}, "man_bits: must be an integer in 1..23, got 3.0"),
    ({"name": ""}, "name: must be a non-empty string, got ''"),
    ({"specials": "fn"}, "specials: must be one of Specials.IEEE, Specials.FN, got 'fn'"),
])
def test_rejects_bad_fields(kwargs, message):
    fields = {"name": "x", "exp_bits": 4, "man_bits": 3, "specials": Specials.IEEE, **kwargs}
    with pytest.raises(ValueError) as info:
        FloatFormat(**fields)
    assert str(info.value) == message


def test_lookup_by_name():
    assert [float_format(name) for name in ("e4m3", "e5m2", "fp16", "bf16", "fp32")] == [
        E4M3, E5M2, FP16, BF16, FP32]
    assert list(FORMATS) == ["e4m3", "e5m2", "fp16", "bf16", "fp32"]
    with pytest.raises(ValueError, match=r"^name: must be one of e4m3, e5m2, fp16, bf16, fp32, "
                                         r"got 'fp8'$"):
        float_format("fp8")


@pytest.mark.parametrize("fmt", list(FORMATS.values()), ids=lambda f: f.name)
def test_format_constants(fmt):
    """Width, largest finite value, NaN and Inf patterns agree with ml_dtypes' view of them."""
    assert fmt.bits == 8 * np.dtype(NUMPY_TYPES[fmt.name]).itemsize
    assert fmt.dtype.itemsize == np.dtype(NUMPY_TYPES[fmt.name]).itemsize
    finfo = ml_dtypes.finfo(NUMPY_TYPES[fmt.name])
    assert reference_decode(fmt, fmt.max_finite) == float(finfo.max)
    assert np.isnan(reference_decode(fmt, fmt.nan))
    if fmt is E4M3:
        assert fmt.inf is None and fmt.nan == 0x7F and fmt.max_finite == 0x7E
    else:
        assert reference_decode(fmt, fmt.inf) == np.inf


def test_bad_patterns_rejected():
    with pytest.raises(ValueError, match="^bit patterns of e4m3 must be in 0..255$"):
        decode(E4M3, [0, 256])
    with pytest.raises(ValueError, match="^bit patterns of e4m3 must be in 0..255$"):
        decode(E4M3, -1)
    with pytest.raises(TypeError, match="^bit patterns must be integers, got dtype float64$"):
        decode(E4M3, [1.0])


@pytest.mark.parametrize("fmt", SMALL, ids=lambda f: f.name)
def test_decode_every_pattern(fmt):
    bits = np.arange(1 << fmt.bits)
    got, want = decode(fmt, bits), reference_decode(fmt, bits)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)        # NaN positions must agree too
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_decode_fp32_random():
    bits = np.random.default_rng(1).integers(0, 1 << 32, 1 << 20, dtype=np.uint32)
    got, want = decode(FP32, bits), reference_decode(FP32, bits)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("fmt", SMALL, ids=lambda f: f.name)
def test_encode_every_value(fmt):
    """Every value comes back as its own pattern; every NaN as the signed canonical NaN."""
    bits = np.arange(1 << fmt.bits)
    values = reference_decode(fmt, bits)
    got = encode(fmt, values)
    assert got.dtype == fmt.dtype
    nan = np.isnan(values)
    np.testing.assert_array_equal(got[~nan], bits[~nan])
    # A fresh NaN carries no payload, so the cast gives the canonical pattern.
    np.testing.assert_array_equal(got[nan], reference_cast(fmt, np.copysign(np.nan, values[nan])))


@pytest.mark.parametrize("fmt", SMALL, ids=lambda f: f.name)
def test_encode_matches_casts(fmt):
    """Random, tie, overflow and special float32-exact values, as ml_dtypes/numpy cast them."""
    values = float32_exact_samples(fmt, np.random.default_rng(2), 200_000)
    np.testing.assert_array_equal(encode(fmt, values), reference_cast(fmt, values))


@pytest.mark.parametrize("fmt", [FP16, FP32], ids=lambda f: f.name)
def test_encode_matches_direct_casts(fmt):
    """numpy casts float64 to float16/float32 directly: any float64, ties included."""
    rng = np.random.default_rng(3)
    values = rng.standard_normal(300_000) * np.exp2(rng.uniform(-160, 160, 300_000))
    numpy_type = NUMPY_TYPES[fmt.name]
    below = reference_decode(fmt, rng.integers(0, fmt.max_finite, 100_000))
    above = np.nextafter(below.astype(numpy_type), numpy_type(np.inf)).astype(np.float64)
    ties = (below + above) / 2
    values = np.concatenate([values, ties, np.nextafter(ties, 0), np.nextafter(ties, np.inf)])
    values = np.where(rng.random(values.size) < 0.5, -values, values)
    np.testing.assert_array_equal(encode(fmt, values), reference_cast(fmt, values))


@pytest.mark.parametrize("fmt", SMALL, ids=lambda f: f.name)
def test_encode_rounds_float64_to_nearest_even(fmt):
    """Arbitrary float64, ties and values one float64 ulp either side of ties."""
    rng = np.random.default_rng(4)
    n = 200_000
    emin = 1 - fmt.bias - fmt.man_bits - 2
    values = rng.uniform(1, 2, n) * np.exp2(rng.integers(emin, fmt.bias + 2, n))
    table, _ = positive_table(fmt)
    table = np.append(table, 2 * table[-1] - table[-2])
    ties = (table[:-1] + table[1:]) / 2
    near = np.concatenate([ties, np.nextafter(ties, 0), np.nextafter(ties, np.inf), [0.0]])
    values = np.concatenate([values, near, np.nextafter(table[-1], np.inf) * np.array([1.0, 4.0])])
    values = np.where(rng.random(values.size) < 0.5, -values, values)
    np.testing.assert_array_equal(encode(fmt, values), nearest_bits(fmt, values))


def test_encode_specials_follow_the_format():
    """OCP e4m3 has no Inf: Inf and overflow give NaN (0x7F/0xFF); IEEE formats give Inf."""
    np.testing.assert_array_equal(encode(E4M3, [np.inf, -np.inf, 500.0, -1e9, -0.0, np.nan]),
                                  [0x7F, 0xFF, 0x7F, 0xFF, 0x80, 0x7F])
    np.testing.assert_array_equal(encode(E5M2, [np.inf, -1e9, np.nan, -np.nan]),
                                  [0x7C, 0xFC, 0x7E, 0xFE])
    np.testing.assert_array_equal(encode(BF16, [-np.inf, np.nan]), [0xFF80, 0x7FC0])
