"""L-Mul families: configurations, golden models and cycle models.

Two families share the float numerics of :mod:`peforge.models.numerics.lmul` and
:mod:`peforge.models.numerics.floatmac` (``format``: e4m3, e5m2, fp16, bf16; ``exact``: the exact RNE
multiplier instead of L-Mul):

``lmul`` (:class:`MultiplierConfig`, :class:`peforge.hw.lmul.top.MultiplierStream`)
    ``lanes`` multipliers side by side. A beat carries ``lanes`` operand pairs; the products come
    out one cycle later (registered), one beat per input beat. A job of ``P`` pairs takes
    ``ceil(P / lanes)`` beats (the last one zero-padded), so ``ceil(P / lanes) + 1`` cycles.
``lmul-dot`` (:class:`DotConfig`, :class:`peforge.hw.lmul.top.DotProductUnit`)
    A ``lanes``-wide dot-product unit with an fp32 accumulator register. A beat carries ``lanes``
    pairs and ``last``; the sum is ``(((acc + p_0) + p_1) + ...) + p_{lanes-1}`` (lanes left to
    right after the running sum, each ``+`` one fp32 RNE addition: exactly the k order of
    :meth:`FloatMac.gemm`); on ``last`` the result is registered out and the accumulator restarts
    at ``+0``. A GEMM ``A @ B`` (M x K, K x N) is ``M*N`` dot products in row-major order, each of
    ``ceil(K / lanes)`` beats, back to back: ``M * N * ceil(K / lanes) + 1`` cycles.
The systolic array with the :class:`FloatMac` PE is the ``systolic`` family with ``pe="lmul"``
or ``"fp"`` (:mod:`peforge.models.systolic`): the same array, driver and cycle model.

The module's names follow the other families' for the dot-product unit (:class:`DotConfig`,
:func:`golden_gemm`, :func:`gemm_cycles`); the multiplier bank, which computes independent products
rather than a GEMM, has :class:`MultiplierConfig`, :func:`golden_products` and
:func:`product_cycles`.

Cycles are counted as in every family: from the edge accepting the first input beat to the edge
carrying the last output beat, inclusive, inputs back to back, outputs always taken.
"""

from dataclasses import dataclass

import numpy as np

from peforge.models.numerics.floatmac import OPERAND_FORMATS, FloatMac
from peforge.models.integer import ceil_div, check_dims
from peforge.models.params import param, validate_params

__all__ = ["OPERAND_FORMATS", "MultiplierConfig", "DotConfig", "golden_products",
           "product_cycles", "golden_gemm", "gemm_cycles"]

_FORMAT_HELP = "operand format"
_EXACT_HELP = "exact multiplier, rounded to nearest even (else L-Mul)"


@dataclass(frozen=True)
class MultiplierConfig:
    """``lanes`` L-Mul or exact multipliers of one format behind a stream."""

    format: str = param("e4m3", _FORMAT_HELP, choices=OPERAND_FORMATS)
    exact: bool = param(False, _EXACT_HELP)
    lanes: int = param(16, "multipliers, operand pairs per beat", range=(1, 64))

    def __post_init__(self):
        validate_params(self)

    @property
    def mac(self) -> FloatMac:
        """The numerics (its :meth:`FloatMac.multiply` is the multiplier)."""
        return FloatMac(self.format, self.exact)


@dataclass(frozen=True)
class DotConfig:
    """A ``lanes``-wide dot-product unit accumulating L-Mul or exact products in fp32."""

    format: str = param("e4m3", _FORMAT_HELP, choices=OPERAND_FORMATS)
    exact: bool = param(False, _EXACT_HELP)
    lanes: int = param(8, "operand pairs per beat (products summed per cycle)", range=(1, 64))

    def __post_init__(self):
        validate_params(self)

    @property
    def mac(self) -> FloatMac:
        return FloatMac(self.format, self.exact)


def golden_products(config: MultiplierConfig, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The multiplier bank: products of the operand patterns ``a`` and ``b`` (int64 patterns)."""
    return config.mac.multiply(a, b).astype(np.int64)


def product_cycles(config: MultiplierConfig, m: int, k: int, n: int) -> int:
    """The multiplier bank: cycles of ``m * k * n`` products (a job of ``P`` pairs is ``(P, 1, 1)``); ``m``, ``k``,
    ``n`` may be integer arrays that broadcast."""
    check_dims("dimensions", m=m, k=k, n=n)
    return ceil_div(m * k * n, config.lanes) + 1


def golden_gemm(config: DotConfig, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The dot-product unit: ``A @ B`` (fp32 patterns) as ``M*N`` dot products, each summed
    in k order with one fp32 RNE addition per product (:meth:`FloatMac.gemm`)."""
    return config.mac.gemm(a, b)


def gemm_cycles(config: DotConfig, m: int, k: int, n: int) -> int:
    """The dot-product unit: cycles of an ``m x k x n`` GEMM as ``m * n`` dot products of length ``k``; ``m``, ``k``,
    ``n`` may be integer arrays that broadcast."""
    check_dims("dimensions", m=m, k=k, n=n)
    return m * n * ceil_div(k, config.lanes) + 1
