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
    at ``+0``. With ``adder="tree"`` a beat's products are summed in a balanced tree first
    (:func:`tree_gemm`), with ``tree_stages`` register stages: the result comes out that many
    cycles later, the additions are the same at any stage count; ``add_stages=1`` registers every
    fp32 adder halfway and so sums even and odd beats apart (:func:`tree_gemm`). A GEMM ``A @ B``
    (M x K, K x N) is ``M*N`` dot products in row-major order, each of ``ceil(K / lanes)`` beats,
    back to back: ``M * N * ceil(K / lanes) + latency`` cycles (:attr:`DotConfig.latency`).
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

from peforge.models.numerics.floatmac import OPERAND_FORMATS, FloatMac, fp32_add, widen
from peforge.models.integer import ceil_div, check_dims
from peforge.models.params import param, validate_params

__all__ = ["OPERAND_FORMATS", "MultiplierConfig", "DotConfig", "golden_products",
           "product_cycles", "golden_gemm", "tree_gemm", "gemm_cycles", "tree_levels"]

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


def tree_levels(lanes: int) -> int:
    """Adder levels of a balanced tree over ``lanes`` products: ``ceil(log2(lanes))``."""
    return (lanes - 1).bit_length()


@dataclass(frozen=True)
class DotConfig:
    """A ``lanes``-wide dot-product unit accumulating L-Mul or exact products in fp32.

    ``adder`` sets the order of the additions (the numerics); ``tree_stages`` only the latency:
    a tree of ``lanes`` has ``tree_levels(lanes) + 1`` levels (the multipliers, then the adder
    levels), and up to that many register stages, one after each of ``tree_stages`` of them.
    ``add_stages=1`` also registers every fp32 adder halfway (after the alignment): the
    accumulator then adds a beat to the sum of the beat two before it, which changes the order
    of the additions (:func:`tree_gemm`). A chain takes neither (its running sum feeds back
    every cycle).
    """

    format: str = param("e4m3", _FORMAT_HELP, choices=OPERAND_FORMATS)
    exact: bool = param(False, _EXACT_HELP)
    lanes: int = param(8, "operand pairs per beat (products summed per cycle)", range=(1, 64))
    adder: str = param("chain", "summation order: chain = running sum + lane 0 + lane 1 ... "
                       "(k order), tree = a balanced tree of the lanes, then + running sum",
                       choices=("chain", "tree"))
    tree_stages: int = param(0, "register stages in the adder tree (adder=tree): "
                             "0 .. ceil(log2(lanes)) + 1", range=(0, tree_levels(64) + 1))
    add_stages: int = param(0, "register stages inside each fp32 adder (adder=tree): 1 "
                            "splits the accumulator into even and odd beats' sums, added at the "
                            "end", range=(0, 1))

    def __post_init__(self):
        validate_params(self)
        if self.adder == "chain" and self.tree_stages:
            raise ValueError(f"tree_stages: must be 0 with adder=chain (its running sum feeds "
                             f"back every cycle), got {self.tree_stages!r}")
        if self.adder == "chain" and self.add_stages:
            raise ValueError(f"add_stages: must be 0 with adder=chain (its running sum feeds "
                             f"back every cycle), got {self.add_stages!r}")
        deepest = tree_levels(self.lanes) + 1
        if self.tree_stages > deepest:
            raise ValueError(f"tree_stages: must be an integer in 0..{deepest} for "
                             f"lanes={self.lanes}, got {self.tree_stages!r}")

    @property
    def mac(self) -> FloatMac:
        return FloatMac(self.format, self.exact)

    @property
    def latency(self) -> int:
        """Cycles from a ``last`` beat accepted to its result out: the output register, the
        tree's stages and, with ``add_stages``, one register in each of the tree's adder levels
        and in the accumulator adder, the partial sums' registers and one register in the adder
        of the two."""
        return 1 + self.tree_stages + self.add_stages * (tree_levels(self.lanes) + 3)


def golden_products(config: MultiplierConfig, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The multiplier bank: products of the operand patterns ``a`` and ``b`` (int64 patterns)."""
    return config.mac.multiply(a, b).astype(np.int64)


def product_cycles(config: MultiplierConfig, m: int, k: int, n: int) -> int:
    """The multiplier bank: cycles of ``m * k * n`` products (a job of ``P`` pairs is ``(P, 1, 1)``); ``m``, ``k``,
    ``n`` may be integer arrays that broadcast."""
    check_dims("dimensions", m=m, k=k, n=n)
    return ceil_div(m * k * n, config.lanes) + 1


def golden_gemm(config: DotConfig, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The dot-product unit: ``A @ B`` (fp32 patterns) as ``M*N`` dot products. ``chain``: each
    summed in k order with one fp32 RNE addition per product (:meth:`FloatMac.gemm`). ``tree``:
    :func:`tree_gemm`."""
    if config.adder == "chain":
        return config.mac.gemm(a, b)
    return tree_gemm(config, a, b)


def tree_gemm(config: DotConfig, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``A @ B`` as the tree adds it: K is cut into beats of ``lanes`` (the last padded with
    ``+0`` operands); a beat's products, widened to fp32 exactly, are added pairwise
    (``(p0 + p1), (p2 + p3), ...``, an odd last one passed up a level) down to one sum, which is
    added to the running sum from ``+0``; every ``+`` is one fp32 RNE addition. With
    ``add_stages=1`` there are two running sums from ``+0``, of the even and of the odd beats
    (the accumulator adder takes two cycles), and the result is ``even + odd``."""
    (m, k), (_, n) = a.shape, b.shape
    mac, lanes = config.mac, config.lanes
    padded = ceil_div(k, lanes) * lanes
    a = np.pad(np.asarray(a, np.int64), ((0, 0), (0, padded - k)))
    b = np.pad(np.asarray(b, np.int64), ((0, padded - k), (0, 0)))
    sums = [np.full((m, n), mac.zero, dtype=np.uint32).view(np.float32)
            for _ in range(1 + config.add_stages)]
    for beat, start in enumerate(range(0, padded, lanes)):
        level = [widen(mac.fmt, mac.multiply(a[:, step, None], b[None, step, :]))
                 for step in range(start, start + lanes)]
        while len(level) > 1:
            level = [fp32_add(*level[i:i + 2]).view(np.float32) if i + 1 < len(level)
                     else level[i] for i in range(0, len(level), 2)]
        part = beat % len(sums)
        sums[part] = fp32_add(sums[part], level[0]).view(np.float32)
    acc = sums[0] if len(sums) == 1 else fp32_add(*sums).view(np.float32)
    return acc.view(np.uint32).astype(np.int64)


def gemm_cycles(config: DotConfig, m: int, k: int, n: int) -> int:
    """The dot-product unit: cycles of an ``m x k x n`` GEMM as ``m * n`` dot products of length ``k``; ``m``, ``k``,
    ``n`` may be integer arrays that broadcast. Each register stage adds one cycle
    (:attr:`DotConfig.latency`)."""
    check_dims("dimensions", m=m, k=k, n=n)
    return m * n * ceil_div(k, config.lanes) + config.latency
