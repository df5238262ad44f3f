"""FloatMac numerics: products, exact widening and the fp32 RNE adder, against plain Python.

The reference adds in Python floats (binary64) and rounds the sum to fp32: double rounding
through binary64 is innocuous for addition of fp32 values (53 >= 2*24 + 2 bits), so this is the
correctly rounded fp32 sum, computed without numpy's float32 addition.
"""

import struct

import pytest

from peforge.models.numerics.floatfmt import FORMATS, decode
from peforge.models.numerics.floatmac import FloatMac
from peforge.models.numerics.lmul import exact_multiply, lmul_multiply
from peforge.sim.families.lmul import cancelling_job, random_operands

NAN = 0x7FC00000


def f32_bits(value: float) -> int:
    """fp32 pattern of ``value`` rounded to nearest even (Python's float -> C float), NaN
    canonical; overflow to Inf."""
    if value != value:
        return NAN
    try:
        return struct.unpack("<I", struct.pack("<f", value))[0]
    except OverflowError:                       # beyond the largest finite fp32 after rounding
        return 0x7F800000 | (0x80000000 if value < 0 else 0)


def f32_value(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def reference_dot(fmt_name, exact, a_row, b_col):
    """Plain-Python k-order fold of the products (from the multiplier models) into fp32."""
    fmt = FORMATS[fmt_name]
    multiply = exact_multiply if exact else lmul_multiply
    acc = 0
    for x, y in zip(a_row, b_col):
        product = float(decode(fmt, multiply(fmt, int(x), int(y))))
        acc = f32_bits(f32_value(acc) + product)
    return acc


@pytest.mark.parametrize("fmt_name", ["e4m3", "e5m2", "fp16", "bf16"])
@pytest.mark.parametrize("exact", [False, True])
def test_gemm_equals_python_fold(fmt_name, exact, rng):
    numerics = FloatMac(fmt_name, exact)
    fmt = FORMATS[fmt_name]
    jobs = [{"a": random_operands(fmt, rng, (4, 37), 0.1),
             "b": random_operands(fmt, rng, (37, 3), 0.1)},
            cancelling_job(fmt, rng, 3, 12, 2)]
    for job in jobs:
        got = numerics.gemm(job["a"], job["b"])
        want = [[reference_dot(fmt_name, exact, job["a"][i], job["b"][:, j])
                 for j in range(got.shape[1])] for i in range(got.shape[0])]
        assert got.tolist() == want


def test_cancelling_job_sums_to_positive_zero(rng):
    """Products cancelling in pairs leave +0 (not -0) in every output."""
    fmt = FORMATS["bf16"]
    job = cancelling_job(fmt, rng, 3, 8, 2)
    assert (FloatMac("bf16", False).gemm(job["a"], job["b"]) == 0).all()


ONE_BF16, ONE_E4M3 = 0x3F80, 0x38


@pytest.mark.parametrize("acc, a, b, want", [
    (0x3F800000, ONE_BF16, 0x3380, 0x3F800000),          # 1 + 2**-24: tie, to even (1)
    (0x3F800001, ONE_BF16, 0x3380, 0x3F800002),          # 1+ulp + 2**-24: tie, to even (up)
    (0x3F800000, 0xBF80, ONE_BF16, 0x00000000),          # 1 + (-1) = +0
    (0x80000000, 0x8000, ONE_BF16, 0x80000000),          # -0 + -0 = -0
    (0x7F7FFFFF, 0x7F7F, ONE_BF16, 0x7F800000),          # overflow to Inf
    (0xFF800000, 0x7F80, ONE_BF16, NAN),                 # -Inf + Inf = NaN
    (0xFF800000, 0x7F80, 0xBF80, 0xFF800000),            # -Inf + -Inf = -Inf
    (0x00000001, 0x0001, ONE_BF16, 0x00010001),          # subnormals add exactly
    (0x00000001, 0x0000, ONE_BF16, 0x00000001),          # subnormal accumulator kept
])
def test_adder_corners_exact_bf16(acc, a, b, want):
    assert int(FloatMac("bf16", True).mac(acc, a, b)) == want


@pytest.mark.parametrize("acc, a, b, want", [
    (0x3F800000, ONE_BF16, ONE_BF16, 0x40040000),        # 1 + (1 + 2**-4) = 2.0625
    (0x00000001, 0x0001, ONE_BF16, 0x00000001),          # subnormal operand flushed: + (+0)
    (0x3F800000, 0x7F80, 0x0000, NAN),                   # Inf operand: NaN product
])
def test_adder_corners_lmul_bf16(acc, a, b, want):
    assert int(FloatMac("bf16", False).mac(acc, a, b)) == want


def test_exact_subnormal_products_widen_exactly():
    """bf16 subnormal 2**-133 stays an fp32 subnormal (0x00010000); fp16 subnormal 2**-24
    becomes the fp32 normal 0x33800000."""
    assert int(FloatMac("bf16", True).mac(0, 0x0001, ONE_BF16)) == 0x00010000
    assert int(FloatMac("fp16", True).mac(0, 0x0001, 0x3C00)) == 0x33800000


def test_e4m3_nan_product_is_canonical_nan():
    assert int(FloatMac("e4m3", True).mac(0x3F800000, 0xFF, ONE_E4M3)) == NAN


def test_format_is_checked():
    message = r"^format: must be one of e4m3, e5m2, fp16, bf16, got 'fp32'$"
    with pytest.raises(ValueError, match=message):
        FloatMac("fp32", False)
