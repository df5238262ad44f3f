"""Arithmetic specifications: a family configuration's golden arithmetic as a float GEMM.

A spec reads ``family[:key=value[+key=value...]]``, the keys being the family's configuration
parameters (validated by the family's own configuration: a bad one raises ValueError naming it),
or ``fp32`` for the float32 reference. Examples: ``systolic:pe=lmul+format=e4m3``,
``systolic:bits=8``, ``bitserial:wtypes=fp4,int4+group=128``, ``lut:wkind=ternary+wbits=2``,
``sparse-dsp:nm=2:4``.

How real operands become the PE's operands (all scales float64, all rounding to nearest even):

- integer activations (every integer family): symmetric per tensor, ``s = max|x| / (2**(b-1) - 1)``,
  ``q = clip(rint(x / s))`` to the signed ``b``-bit range (``b`` = the family's activation bits);
- integer weights (systolic, sparse-dsp): symmetric per output column, the same rule; sparse-dsp
  magnitude-prunes to its N:M pattern first (:func:`~peforge.models.numerics.nm_sparse.prune`);
- BitMoD weights (bitserial): :func:`~peforge.models.numerics.bitmod_quant.quantize` (per group of
  ``group`` weights of a column, its types and 8-bit group scales);
- LUT weights: signed and unsigned codes per output column, symmetric (signed, ``max|w|`` to
  ``2**(b-1) - 1``) or min-max with an integer zero point (unsigned; the zero point's term
  ``z * sum(a)`` is subtracted exactly); ternary by BitNet's absmean (``s = mean|w|``, codes
  ``clip(rint(w / s), -1, 1)``);
- float PEs: operands rounded to the format; fp8 formats first scaled per tensor so that
  ``max|x|`` becomes the square root of half the format's largest finite value (the PE rounds
  each product to the operand format: with the operands' own rounding, every product then stays
  in range); fp16 and bf16 are not scaled.

The products and sums are the family's (bit-equal fast forms in
:mod:`peforge.models.numerics.fast_gemm`, tested against the goldens), and the result is scaled
back to float32.
"""

from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np

from peforge.models.integer import int_range
from peforge.models.numerics.bitmod_quant import quantize
from peforge.models.numerics.fast_gemm import float_mac_gemm, wrapped_int_gemm
from peforge.models.numerics.floatfmt import decode, encode
from peforge.models.numerics.lut_table import WeightFormat
from peforge.models.numerics.nm_sparse import prune
from peforge.models.systolic import split_k_gemm

__all__ = ["Arithmetic", "parse_arith", "ArithError"]

#: Families whose arithmetic a spec may name.
SUPPORTED = ("systolic", "bitserial", "lut", "sparse-dsp")


class ArithError(ValueError):
    """A spec that names an unknown family or parameter, or a setting numerics cannot run."""


def _symmetric(x: np.ndarray, bits: int, axis=None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric ``bits``-bit codes of ``x`` and their scale (per tensor, or per ``axis``)."""
    top = (1 << (bits - 1)) - 1
    peak = np.abs(x).max(axis=axis, keepdims=axis is not None).astype(np.float64)
    scale = np.where(peak > 0, peak / top, 1.0)
    low, high = int_range(bits, signed=True)
    return np.clip(np.rint(x / scale), low, high).astype(np.int64), scale


@dataclass(frozen=True)
class Arithmetic:
    """One parsed spec: ``gemm(x, w, weight)`` computes ``x @ w`` (float32) on its arithmetic;
    ``weight`` says whether ``w`` is a weight matrix (False: an activation, e.g. K in Q K^T)."""

    spec: str
    family: str | None
    config: object | None

    def gemm(self, x: np.ndarray, w: np.ndarray, weight: bool) -> np.ndarray:
        if self.family is None:
            return (x @ w).astype(np.float32)
        return getattr(self, "_" + self.family.replace("-", "_"))(x, w, weight).astype(np.float32)

    @property
    def weights_only(self) -> bool:
        """True where the arithmetic quantises weights only (its second operand must be one)."""
        return self.family in ("bitserial", "lut", "sparse-dsp")

    @cached_property
    def bits_per_weight(self) -> float:
        """Stored bits per weight, with group scales and sparse indices counted."""
        c = self.config
        if self.family is None:
            return 32.0
        if self.family == "systolic":
            return float(c.bits if c.pe == "int" else c.mac.fmt.bits)
        if self.family == "bitserial":
            return float(c.code_bits) + 8 / c.group
        if self.family == "lut":
            return float(np.log2(3)) if c.wkind == "ternary" else float(c.wbits)
        pattern = c.pattern
        return (c.bits + np.log2(pattern.m)) * pattern.n / pattern.m

    def weight_error(self, w: np.ndarray) -> float:
        """Relative MSE of the dequantised weights, ``mean((w - w_q)^2) / mean(w^2)``."""
        deq = self._dequantized(w)
        return float(np.mean((w - deq) ** 2) / np.mean(w.astype(np.float64) ** 2))

    # --- per family ------------------------------------------------------------------------

    def _systolic(self, x, w, weight):
        c = self.config
        if c.pe == "int":
            a, sa = _symmetric(x, c.bits)
            b, sb = _symmetric(w, c.bits, axis=0 if weight else None)
            return wrapped_int_gemm(a, b, c.acc_bits, True) * sa * sb
        fmt = c.mac.fmt
        (a, sa), (b, sb) = self._float_codes(x), self._float_codes(w)
        gemm = partial(float_mac_gemm, c.mac)
        patterns = split_k_gemm(gemm, a, b) if c.add_stages else gemm(a, b)
        out = patterns.astype(np.uint32).view(np.float32)
        return out.astype(np.float64) * sa * sb if fmt.bits <= 8 else out

    def _float_codes(self, x):
        fmt = self.config.mac.fmt
        scale = 1.0
        if fmt.bits <= 8:
            peak = float(np.abs(x).max())
            scale = peak / np.sqrt(float(decode(fmt, fmt.max_finite)) / 2) if peak > 0 else 1.0
        return encode(fmt, x / scale).astype(np.int64), scale

    def _bitserial(self, x, w, weight):
        from peforge.models.bitserial import golden_gemm

        c = self.config
        a, sa = _symmetric(x, 8)
        q = quantize(w, c.wtypes.split(","), c.group)
        scaled = golden_gemm(c, a, q.codes, q.type_index, q.selector, q.scale_code)["c_scaled"]
        return scaled * (q.channel_scale / 255.0) * sa

    def _lut(self, x, w, weight):
        c = self.config
        a, sa = _symmetric(x, c.abits)
        codes, scale, zero = self._lut_codes(w)
        exact = wrapped_int_gemm(a, codes, c.acc_bits - 1, True) - zero * a.sum(axis=1)[:, None]
        return exact * scale * sa

    def _lut_codes(self, w):
        c = self.config
        low, high = WeightFormat(c.wkind, c.wbits).code_range
        if c.wkind == "ternary":
            scale = np.abs(w).mean(axis=0, keepdims=True).astype(np.float64)
            scale = np.where(scale > 0, scale, 1.0)
            return np.clip(np.rint(w / scale), -1, 1).astype(np.int64), scale, 0
        if c.wkind == "signed":
            codes, scale = _symmetric(w, c.wbits, axis=0)
            return np.clip(codes, low, high), scale, 0
        w_low, w_high = w.min(axis=0, keepdims=True), w.max(axis=0, keepdims=True)
        scale = np.where(w_high > w_low, (w_high - w_low) / high, 1.0).astype(np.float64)
        zero = np.rint(-w_low / scale).astype(np.int64)
        return np.clip(np.rint(w / scale) + zero, low, high).astype(np.int64), scale, zero

    def _sparse_dsp(self, x, w, weight):
        c = self.config
        a, sa = _symmetric(x, 8)
        b, sb = self._sparse_codes(w)
        return wrapped_int_gemm(a, b, c.acc_bits, True) * sa * sb

    def _sparse_codes(self, w):
        """Weight codes per column, then magnitude-pruned to the N:M pattern (zero-padded K)."""
        c = self.config
        codes, scale = _symmetric(w, c.bits, axis=0)
        pad = -w.shape[0] % c.pattern.m
        return prune(np.pad(codes, ((0, pad), (0, 0))), c.pattern)[:w.shape[0]], scale

    def _dequantized(self, w):
        c = self.config
        if self.family == "systolic":
            if c.pe == "int":
                codes, scale = _symmetric(w, c.bits, axis=0)
                return codes * scale
            codes, scale = self._float_codes(w)
            return decode(c.mac.fmt, codes) * scale
        if self.family == "bitserial":
            return quantize(w, c.wtypes.split(","), c.group).dequantize()
        if self.family == "lut":
            codes, scale, zero = self._lut_codes(w)
            return (codes - zero) * scale
        if self.family == "sparse-dsp":
            codes, scale = self._sparse_codes(w)
            return codes * scale
        return w


def parse_arith(spec: str) -> Arithmetic:
    """The :class:`Arithmetic` of ``spec``; :class:`ArithError` names what is wrong."""
    from peforge.sim.families import UnknownFamily, family

    text = spec.strip()
    if text == "fp32":
        return Arithmetic(text, None, None)
    name, _, rest = text.partition(":")
    if name not in SUPPORTED:
        try:
            family(name)
        except UnknownFamily:
            raise ArithError(f"arith {spec!r}: family must be fp32 or one of "
                             f"{', '.join(SUPPORTED)}, got {name!r}") from None
        raise ArithError(f"arith {spec!r}: family {name} computes no whole GEMM in numerics "
                         f"(use one of {', '.join(SUPPORTED)}; L-Mul PEs: "
                         f"systolic:pe=lmul+format=...)")
    values = {}
    for item in filter(None, rest.split("+")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ArithError(f"arith {spec!r}: expected key=value, got {item!r}")
        values[key] = _typed(family(name), key, value)
    try:
        config = family(name).make_config(**values)
    except ValueError as error:
        raise ArithError(f"arith {spec!r}: {error}") from None
    if name == "systolic" and not config.signed:
        raise ArithError(f"arith {spec!r}: signed: must be true (activations are signed)")
    if name == "sparse-dsp" and config.overflow != "wrap":
        raise ArithError(f"arith {spec!r}: overflow: must be wrap in numerics (saturation "
                         f"depends on the chain's order of additions)")
    return Arithmetic(text, name, config)


def _typed(fam, key: str, value: str):
    """``value`` as the type of parameter ``key``'s default (unknown keys pass through to the
    configuration, which names them)."""
    default = fam.parameters().get(key, (None, None))[1]
    if isinstance(default, bool):
        if value not in ("true", "false"):
            raise ArithError(f"{key}: must be true or false, got {value!r}")
        return value == "true"
    if isinstance(default, int) or (default is None and value.lstrip("-").isdigit()):
        try:
            return int(value)
        except ValueError:
            raise ArithError(f"{key}: must be an integer, got {value!r}") from None
    return value
