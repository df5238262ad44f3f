"""Small binary floating-point formats and exact numpy codecs for their bit patterns.

A :class:`FloatFormat` is a sign bit, ``exp_bits`` exponent bits with bias ``2**(exp_bits-1) - 1``
and ``man_bits`` fraction bits, laid out ``{sign, exponent, fraction}`` from MSB to LSB. An
exponent field of 0 holds zero and the subnormals. The all-ones exponent field depends on the
format's :class:`Specials` policy:

``Specials.IEEE`` (e5m2, fp16, bf16, fp32)
    IEEE 754: fraction 0 is infinity, any other fraction is NaN.
``Specials.FN`` (OCP fp8 e4m3, "finite + NaN")
    No infinity: only ``S.1...1.1...1`` is NaN, every other pattern is finite (e4m3 max 448).

:func:`decode` maps bit patterns to float64 exactly (every format here fits in float64).
:func:`encode` rounds float64 values to the nearest pattern, ties to even, with subnormals and
signed zero. A value whose rounded magnitude exceeds the largest finite one becomes infinity
under ``IEEE`` and NaN under ``FN`` (no saturation, as ``ml_dtypes.float8_e4m3fn`` does); NaN
becomes the canonical quiet NaN (``IEEE``: top fraction bit set; ``FN``: all ones) with the
input's sign. Bit patterns travel as unsigned integer arrays of :attr:`FloatFormat.dtype`.
"""

import enum
from dataclasses import dataclass

import numpy as np

__all__ = ["Specials", "FloatFormat", "E4M3", "E5M2", "FP16", "BF16", "FP32", "FORMATS",
           "float_format", "as_bits", "decode", "encode"]


class Specials(enum.Enum):
    """How a format uses its all-ones exponent field."""

    IEEE = "ieee"
    FN = "fn"


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format of ``1 + exp_bits + man_bits`` bits.

    Parameters
    ----------
    name : str
        Short name, e.g. ``"e4m3"``.
    exp_bits : int
        Exponent field width, 2..8.
    man_bits : int
        Fraction (stored mantissa) field width, 1..23.
    specials : Specials
        Meaning of the all-ones exponent field (see the module docstring).

    Raises
    ------
    ValueError
        Naming the first offending field and its allowed values.
    """

    name: str
    exp_bits: int
    man_bits: int
    specials: Specials = Specials.IEEE

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name: must be a non-empty string, got {self.name!r}")
        for field, (low, high) in (("exp_bits", (2, 8)), ("man_bits", (1, 23))):
            value = getattr(self, field)
            if not (isinstance(value, int) and not isinstance(value, bool)
                    and low <= value <= high):
                raise ValueError(f"{field}: must be an integer in {low}..{high}, got {value!r}")
        if not isinstance(self.specials, Specials):
            allowed = ", ".join(f"Specials.{s.name}" for s in Specials)
            raise ValueError(f"specials: must be one of {allowed}, got {self.specials!r}")

    @property
    def bits(self) -> int:
        """Total width in bits."""
        return 1 + self.exp_bits + self.man_bits

    @property
    def bias(self) -> int:
        """Exponent bias ``2**(exp_bits-1) - 1``."""
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def dtype(self) -> np.dtype:
        """Smallest unsigned numpy integer type holding a bit pattern."""
        return np.dtype(np.uint8 if self.bits <= 8 else np.uint16 if self.bits <= 16
                        else np.uint32)

    @property
    def sign_mask(self) -> int:
        """The sign bit, ``1 << (exp_bits + man_bits)``."""
        return 1 << (self.exp_bits + self.man_bits)

    @property
    def max_finite(self) -> int:
        """Magnitude pattern (sign 0) of the largest finite value (e4m3: 0x7E = 448)."""
        if self.specials is Specials.FN:
            return self.sign_mask - 2
        return ((1 << self.exp_bits) - 1 << self.man_bits) - 1

    @property
    def nan(self) -> int:
        """Magnitude pattern of the canonical quiet NaN (e5m2: 0x7E, e4m3: 0x7F)."""
        if self.specials is Specials.FN:
            return self.sign_mask - 1
        return ((1 << self.exp_bits) - 1 << self.man_bits) | (1 << (self.man_bits - 1))

    @property
    def inf(self) -> int | None:
        """Magnitude pattern of infinity, ``None`` if the format has none."""
        if self.specials is Specials.FN:
            return None
        return (1 << self.exp_bits) - 1 << self.man_bits


E4M3 = FloatFormat("e4m3", 4, 3, Specials.FN)
E5M2 = FloatFormat("e5m2", 5, 2)
FP16 = FloatFormat("fp16", 5, 10)
BF16 = FloatFormat("bf16", 8, 7)
FP32 = FloatFormat("fp32", 8, 23)

FORMATS = {fmt.name: fmt for fmt in (E4M3, E5M2, FP16, BF16, FP32)}


def float_format(name: str) -> FloatFormat:
    """The predefined format called ``name`` (one of :data:`FORMATS`)."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"name: must be one of {', '.join(FORMATS)}, got {name!r}") from None


def as_bits(fmt: FloatFormat, bits) -> np.ndarray:
    """``bits`` as an int64 array, checked to be bit patterns of ``fmt``.

    Raises
    ------
    TypeError
        If ``bits`` is not of an integer dtype.
    ValueError
        If a value is outside ``0..2**fmt.bits - 1``.
    """
    bits = np.asarray(bits)
    if not np.issubdtype(bits.dtype, np.integer):
        raise TypeError(f"bit patterns must be integers, got dtype {bits.dtype}")
    bits = bits.astype(np.int64)
    if np.any((bits < 0) | (bits >= 1 << fmt.bits)):
        raise ValueError(f"bit patterns of {fmt.name} must be in 0..{(1 << fmt.bits) - 1}")
    return bits


def decode(fmt: FloatFormat, bits) -> np.ndarray:
    """Values of the bit patterns ``bits`` of format ``fmt``, exactly, as float64.

    Subnormals, signed zeros, infinities and NaNs (sign kept) are decoded per ``fmt.specials``.
    """
    bits = as_bits(fmt, bits)
    m = fmt.man_bits
    mag = bits & (fmt.sign_mask - 1)
    exp = mag >> m
    frac = mag & ((1 << m) - 1)
    significand = np.where(exp == 0, frac, frac | (1 << m)).astype(np.float64)
    value = np.ldexp(significand, np.maximum(exp, 1) - fmt.bias - m)
    if fmt.specials is Specials.FN:
        value = np.where(mag == fmt.nan, np.nan, value)
    else:
        special = np.where(frac == 0, np.inf, np.nan)
        value = np.where(exp == (1 << fmt.exp_bits) - 1, special, value)
    return np.where(bits & fmt.sign_mask, -value, value)


def encode(fmt: FloatFormat, values) -> np.ndarray:
    """Round float64 ``values`` to the nearest bit patterns of ``fmt``, ties to even.

    Returns an array of ``fmt.dtype``. Overflow gives infinity (``IEEE``) or NaN (``FN``);
    NaN gives the canonical quiet NaN; the sign is always kept (see the module docstring).
    """
    values = np.asarray(values, dtype=np.float64)
    m = fmt.man_bits
    emin = 1 - fmt.bias                      # exponent of the smallest normal
    magnitude = np.abs(values)
    finite = np.isfinite(magnitude)
    safe = np.where(finite, magnitude, 0.0)
    _, e = np.frexp(safe)                    # safe = f * 2**e, 0.5 <= f < 1 (or 0, e = 0)
    # Exponent of the result's leading bit; zero and subnormals sit at emin.
    scale = np.where(safe == 0, emin, np.maximum(e.astype(np.int64) - 1, emin))
    # Multiples of the result quantum 2**(scale - m): exact scaling, then RNE by rint.
    quanta = np.rint(np.ldexp(safe, m - scale)).astype(np.int64)
    # quanta holds the hidden bit for normals, so adding it to (scale - emin) << m puts the
    # biased exponent in place, and a rounding carry ripples into the exponent by itself.
    mag = ((scale - emin) << m) + quanta
    overflow = fmt.nan if fmt.inf is None else fmt.inf
    mag = np.where(mag > fmt.max_finite, overflow, mag)
    mag = np.where(np.isinf(values), overflow, mag)
    mag = np.where(np.isnan(values), fmt.nan, mag)
    return (np.where(np.signbit(values), fmt.sign_mask, 0) | mag).astype(fmt.dtype)
