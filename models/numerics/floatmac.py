"""Float multiply-accumulate numerics: an L-Mul or exact product accumulated in fp32.

:class:`FloatMac` is a MAC numerics object (the contract of :mod:`peforge.models.numerics.mac`) whose
operands are bit patterns of a small format (e4m3, e5m2, fp16, bf16) and whose accumulator is an
fp32 bit pattern. One step ``acc' = acc + a * b`` is, bit for bit:

1. **product** in the operand format: :func:`~peforge.models.numerics.lmul.lmul_multiply` (L-Mul) or
   :func:`~peforge.models.numerics.lmul.exact_multiply` (exact product rounded to the operand format, RNE),
   with their special-value policies;
2. **widening** to fp32, exactly (every value of these formats is an fp32 value; subnormals of
   e4m3, e5m2 and fp16 become fp32 normals, those of bf16 stay subnormal), signed zeros and
   infinities kept;
3. **one IEEE 754 fp32 addition**, round to nearest, ties to even, subnormals kept (no flushing):
   ``x + (-x)`` is ``+0``, ``(-0) + (-0)`` is ``-0``, overflow gives ``Inf`` of the sum's sign,
   ``Inf + (-Inf)`` and any NaN operand give NaN.

Every NaN result is the canonical quiet NaN ``0x7FC00000`` (sign 0), whatever the NaN operand, so
results compare by bit pattern. numpy's float32 addition is correctly rounded RNE, so the golden
model adds in float32 and canonicalises NaN afterwards.

The accumulator starts at ``+0`` (:attr:`FloatMac.zero`) and never becomes ``-0`` (``+0 + -0`` is
``+0``), so adding the ``+0`` products of zero padding leaves every accumulator unchanged.
"""

from dataclasses import dataclass

import numpy as np

from peforge.models.numerics.floatfmt import FP32, FloatFormat, decode, float_format
from peforge.models.numerics.lmul import exact_multiply, lmul_multiply

__all__ = ["FloatMac", "OPERAND_FORMATS", "ACC_FORMAT", "CANONICAL_NAN", "widen", "fp32_add", "add_patterns",
           "random_operands",
           "cancelling_job"]

#: Format of the accumulator.
ACC_FORMAT = FP32

#: The fp32 NaN every NaN result is replaced by.
CANONICAL_NAN = ACC_FORMAT.nan


def widen(fmt: FloatFormat, bits) -> np.ndarray:
    """Bit patterns of ``fmt`` as float32 values, exactly (NaN stays NaN)."""
    return decode(fmt, bits).astype(np.float32)


def fp32_add(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x + y`` of float32 arrays, RNE, as uint32 fp32 patterns with NaN canonical."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.asarray(x, np.float32) + np.asarray(y, np.float32)
    bits = total.view(np.uint32)
    return np.where(np.isnan(total), np.uint32(CANONICAL_NAN), bits).astype(np.uint32)


def add_patterns(x, y) -> np.ndarray:
    """``x + y`` of fp32 bit patterns (integer arrays), RNE, NaN canonical: int64 patterns."""
    values = (np.asarray(v, dtype=np.int64).astype(np.uint32).view(np.float32) for v in (x, y))
    return fp32_add(*values).astype(np.int64)


#: Operand formats of the float MACs.
OPERAND_FORMATS = ("e4m3", "e5m2", "fp16", "bf16")


@dataclass(frozen=True)
class FloatMac:
    """Float MAC: ``acc' = fp32(acc) + widen(a * b)``, see the module docstring.

    Parameters
    ----------
    format : str
        Operand format: e4m3, e5m2, fp16 or bf16.
    exact : bool
        Exact products (rounded to ``format``) when true, L-Mul products otherwise.
    """

    format: str
    exact: bool

    zero = 0

    def __post_init__(self):
        if self.format not in OPERAND_FORMATS:
            raise ValueError(f"format: must be one of {', '.join(OPERAND_FORMATS)}, "
                             f"got {self.format!r}")

    @property
    def fmt(self) -> FloatFormat:
        return float_format(self.format)

    @property
    def operand_format(self) -> tuple[int, bool]:
        """``(width, signed)`` of each operand's encoding: a bit pattern."""
        return self.fmt.bits, False

    @property
    def acc_format(self) -> tuple[int, bool]:
        """``(width, signed)`` of the accumulator's encoding: an fp32 bit pattern."""
        return ACC_FORMAT.bits, False

    def multiply(self, a, b) -> np.ndarray:
        """Products of the operand patterns, as patterns of the operand format."""
        return (exact_multiply if self.exact else lmul_multiply)(self.fmt, a, b)

    def mac(self, acc, a, b) -> np.ndarray:
        """One accumulation step, element-wise: fp32 patterns ``acc + a * b``."""
        acc = np.asarray(acc, dtype=np.int64).astype(np.uint32).view(np.float32)
        return fp32_add(acc, widen(self.fmt, self.multiply(a, b)))

    def gemm(self, a: np.ndarray, b: np.ndarray, d: np.ndarray | None = None) -> np.ndarray:
        """``d + a @ b`` accumulated in k order, ``k = 0, 1, ..., K-1`` (fp32 patterns, int64).

        ``d`` (fp32 patterns) defaults to :attr:`zero`.
        """
        (m, k), (_, n) = a.shape, b.shape
        acc = np.full((m, n), self.zero, dtype=np.int64) if d is None else np.asarray(d)
        for step in range(k):
            acc = self.mac(acc, a[:, step, None], b[None, step, :])
        return acc.astype(np.int64)


def random_operands(fmt: FloatFormat, rng: np.random.Generator, shape,
                    special_fraction: float = 0.02) -> np.ndarray:
    """Operand patterns: normals of either sign with exponents within 3 of the bias (so sums
    cancel and round), and a ``special_fraction`` of patterns uniform over the whole format
    (zeros, subnormals, extremes, Inf and NaN)."""
    exp = fmt.bias + rng.integers(-3, 4, shape)
    normal = ((rng.integers(0, 2, shape) * fmt.sign_mask) | (exp << fmt.man_bits)
              | rng.integers(0, 1 << fmt.man_bits, shape))
    anything = rng.integers(0, 1 << fmt.bits, shape)
    return np.where(rng.random(shape) < special_fraction, anything, normal).astype(np.int64)


def cancelling_job(fmt: FloatFormat, rng: np.random.Generator, m: int, k: int, n: int) -> dict:
    """Random finite operands where column ``2i+1`` of A is column ``2i`` negated and row
    ``2i+1`` of B repeats row ``2i``: products cancel in pairs, exactly, in k order."""
    a = random_operands(fmt, rng, (m, k), special_fraction=0)
    b = random_operands(fmt, rng, (k, n), special_fraction=0)
    a[:, 1::2] = a[:, 0:k - k % 2:2] ^ fmt.sign_mask
    b[1::2] = b[0:k - k % 2:2]
    return {"a": a, "b": b}
