"""Sparse DSP chain family (FlightLLM): configuration, golden model and cycle model.

Micro-architecture (:class:`peforge.hw.sparse_dsp.top.SparseDspChain`)
    A chain of ``L = chain`` DSP48-like slices, ``P = A*B + PCIN`` cascaded PCOUT -> PCIN, each
    with ``areg`` A/B, ``mreg`` product and ``preg`` P register stages. One input beat carries a
    *window* of ``L`` INT8 activations (a row of ``A``, ``K`` cut into windows of ``L``), one
    weight and one index per slice, and the run's sparsity. The window holds ``B = L / G``
    blocks of ``G`` activations, where ``G`` (:attr:`SparseDspConfig.mux`) is the pattern's ``M``
    (``G = 1`` for a dense pattern whose ``M`` does not divide ``L``: no MUX is needed). Slice
    ``j`` belongs to block ``j mod B``; its *sparse MUX* picks that block's activation at the
    slice's ``log2(G)``-bit index.

    The slices form ``G`` *reduction groups* of ``B`` slices. Inside a group the cascade is
    fixed; after group ``k`` a reduction node either passes PCOUT on or breaks the chain (the next
    slice adds to 0 instead of PCIN) and emits a result. A run with ``N`` kept weights per block
    (``n_run``, ``N`` of the pattern on ``G``) breaks after every ``N`` groups, so the chain
    becomes ``S = G / N`` *segments* of ``N * B`` slices, each one output column: dense mode
    (``N = G``) is one dot product of length ``L`` per beat, an ``N:M`` mode ``M / N`` shorter
    dot products of length ``L * N / M`` over the same window. Which reduction nodes break is an
    input of the beat, so one circuit (one Verilog file per ``chain``, ``M`` and widths) runs
    every ``N`` dividing ``M``; the configuration's ``nm`` is the pattern the driver runs.

Slice order (what :func:`slice_operands` returns)
    Slice ``j = g * N * B + t * B + b`` of a beat holds slot ``t`` (``0..N-1``) of window block
    ``b`` of column ``g`` of the pass. With the compressed layout of :mod:`peforge.models.numerics.nm_sparse`
    that is row ``(w * B + b) * N + t`` for window ``w``; its index is the position inside the
    ``G``-block (the stored index, or 0 when ``G = 1``). Ordering slots before blocks keeps every
    slice on the same block in all modes, so each MUX has ``G`` candidates.

Protocol
    ``i_stream`` (valid/ready, always ready) takes one beat per cycle; the driver
    (:mod:`peforge.hw.sparse_dsp.driver`) sends, for every row ``r`` of ``A``, for every pass of
    ``S`` columns, the ``ceil(K / L)`` windows in order, ``last`` set on the final one. Padding
    (activations past ``K``, weights of columns past ``C``) is zero. After every reduction group
    an output accumulator adds the window sums; ``o_stream`` (valid only) carries the ``G``
    accumulators one cycle after the last window's sums are complete; segment ``g`` is
    accumulator ``(g + 1) * N - 1``.

Numerics
    Activations INT8, weights ``bits``-wide two's complement (INT8, INT4 or narrower); every
    adder (slice and output accumulator) is ``acc_bits`` wide. ``overflow="wrap"`` keeps the low
    ``acc_bits`` bits (the result is the exact ``A @ W`` modulo ``2**acc_bits``, in any order);
    ``"saturate"`` clamps after every addition, in hardware order: within a window, a segment's
    sum starts at 0 and adds its slices in slice order; the accumulator then adds the window sums
    in window order (the first one is taken as is).

Cycles (from the first accepted beat to the last output beat, inclusive)
    ``R * ceil(C / S) * ceil(K / L) + areg + mreg + L * preg + 1``: one beat per cycle for
    ``R`` rows, ``ceil(C / S)`` passes of ``S`` columns and ``ceil(K / L)`` windows; the last
    beat then fills the slice pipeline (``areg + mreg``), ripples down the chain (``preg`` per
    slice: earlier segments are deskewed to the chain's end) and drains through the output
    accumulator register (1).
"""

import math
from dataclasses import dataclass

import numpy as np

from peforge.models.integer import ceil_div, check_dims, int_range, wrap
from peforge.models.numerics.nm_sparse import M_CHOICES, OVERFLOW_POLICIES, NMPattern, validate_compressed
from peforge.models.params import param, validate_params

__all__ = ["ACT_BITS", "NM_CHOICES", "SparseDspConfig", "slice_operands", "window_activations",
           "golden_gemm", "gemm_cycles"]

#: Activation width (FlightLLM feeds INT8 activations to the DSPs).
ACT_BITS = 8

#: Every valid ``N:M`` text: ``M`` in :data:`~peforge.models.numerics.nm_sparse.M_CHOICES`, ``N`` dividing
#: ``M`` (``N == M`` is dense).
NM_CHOICES = tuple(f"{n}:{m}" for m in M_CHOICES for n in range(1, m + 1) if m % n == 0)


@dataclass(frozen=True)
class SparseDspConfig:
    """A sparse DSP chain: length, run pattern, widths, overflow policy and pipeline registers.

    A sparse pattern (``N < M``) needs ``chain`` to be a multiple of ``M`` (each window holds
    whole blocks); a dense one runs on any chain. ``acc_bits`` must hold one product,
    ``8 + bits`` bits; the default 48 is a DSP48's P register.
    """

    chain: int = param(16, "DSP slices in the cascade (the activation window length L)",
                       range=(1, 32))
    nm: str = param("2:4", "N:M weight sparsity the driver runs (N = M: dense)",
                    choices=NM_CHOICES)
    bits: int = param(8, "weight width in bits, two's complement (activations are INT8)",
                      range=(2, 8))
    acc_bits: int = param(48, "width of every adder and accumulator (DSP48 P: 48)",
                          range=(4, 48))
    overflow: str = param("wrap", "wrap: keep the low acc_bits bits; saturate: clamp every sum",
                          choices=OVERFLOW_POLICIES)
    areg: int = param(1, "A/B input register stages per slice", range=(0, 2))
    mreg: int = param(1, "product (M) register stages per slice", range=(0, 1))
    preg: int = param(1, "P register stages per slice (the cascade's skew per slice)",
                      range=(0, 1))

    def __post_init__(self):
        validate_params(self)
        pattern = self.pattern
        if not pattern.dense and self.chain % pattern.m:
            raise ValueError(
                f"chain: must be a multiple of {pattern.m} for the sparse pattern {self.nm} "
                f"(a window holds whole blocks of {pattern.m} indexed activations), "
                f"got {self.chain}")
        product_bits = ACT_BITS + self.bits
        if self.acc_bits < product_bits:
            raise ValueError(
                f"acc_bits: must be in {product_bits}..48 for INT8 activations and {self.bits}-bit "
                f"weights (a product needs {product_bits}), got {self.acc_bits}")

    @property
    def pattern(self) -> NMPattern:
        return NMPattern.parse(self.nm)

    @property
    def mux(self) -> int:
        """``G``: activations per hardware block, the inputs of each sparse MUX and the number of
        reduction groups (the pattern's ``M``, or 1 for a dense pattern that does not divide the
        chain)."""
        return self.pattern.m if self.chain % self.pattern.m == 0 else 1

    @property
    def blocks(self) -> int:
        """``B = L / G``: blocks per window, also slices per reduction group."""
        return self.chain // self.mux

    @property
    def n_run(self) -> int:
        """Kept weights per hardware block: the pattern's ``N`` (1 when ``G = 1``)."""
        return self.pattern.n * self.mux // self.pattern.m

    @property
    def segments(self) -> int:
        """``S``: output columns per beat (``M / N``; 1 in dense mode)."""
        return self.mux // self.n_run

    @property
    def latency(self) -> int:
        """Cycles from accepting a beat to emitting the output it completes."""
        return self.areg + self.mreg + self.chain * self.preg + 1


def gemm_cycles(config: SparseDspConfig, m: int, k: int, n: int) -> int:
    """Cycles of an ``m x k x n`` GEMM (``A``: m x k, ``W``: k x n), see the module docstring.
    ``m``, ``k``, ``n`` may be integer arrays that broadcast: the cycles of each shape."""
    check_dims("GEMM dimensions", m=m, k=k, n=n)
    beats = m * ceil_div(n, config.segments) * ceil_div(k, config.chain)
    return beats + config.latency


def window_activations(config: SparseDspConfig, a) -> np.ndarray:
    """``a`` (R x K) zero-padded to whole windows, as ``(R, ceil(K / L), L)`` int64."""
    a = np.asarray(a).astype(np.int64)
    windows = math.ceil(a.shape[1] / config.chain)
    padded = np.zeros((a.shape[0], windows * config.chain), dtype=np.int64)
    padded[:, :a.shape[1]] = a
    return padded.reshape(a.shape[0], windows, config.chain)


def slice_operands(config: SparseDspConfig, values, indices, k: int):
    """The weight and MUX index each slice holds, for every pass and window.

    Parameters
    ----------
    values, indices : compressed weights of :mod:`peforge.models.numerics.nm_sparse`, shape
        ``(ceil(k / M) * N, C)``, for the configuration's pattern.
    k : int
        The GEMM's depth ``K`` (rows past it meet zero activations and are dropped).

    Returns
    -------
    weights, mux_indices : int64 arrays of shape ``(ceil(C / S), ceil(k / L), L)``
        Slice ``j`` of pass ``p`` and window ``w`` in the order of the module docstring; padding
        slots hold weight 0, index 0.
    """
    values = np.asarray(values).astype(np.int64)
    indices = np.asarray(indices).astype(np.int64)
    b, n, s = config.blocks, config.n_run, config.segments
    windows, columns = math.ceil(k / config.chain), values.shape[1]
    passes = math.ceil(columns / s)
    rows = windows * b * n
    # On G-blocks the row layout is unchanged: G = M keeps it, and G = 1 (dense) is one row per
    # position; the index inside a G-block is the stored index modulo G.
    shaped = []
    for x in (values, indices % config.mux):
        hw = np.zeros((rows, passes * s), dtype=np.int64)
        kept = x[:rows]
        hw[:kept.shape[0], :columns] = kept
        # rows (w, b, t), columns (p, g) -> (p, w, g, t, b): slice j = g*N*B + t*B + b.
        hw = hw.reshape(windows, b, n, passes, s).transpose(3, 0, 4, 2, 1)
        shaped.append(hw.reshape(passes, windows, config.chain))
    return tuple(shaped)


def golden_gemm(config: SparseDspConfig, a, values, indices) -> np.ndarray:
    """``A @ W`` as the chain computes it, ``W`` given compressed.

    Parameters
    ----------
    a : array of int, shape (R, K)
        INT8 activations, any ``K >= 1``.
    values, indices : compressed weights, shape ``(ceil(K / M) * N, C)``
        The layout of :mod:`peforge.models.numerics.nm_sparse` for the configuration's pattern, i.e. of
        ``W`` zero-padded to a multiple of ``M`` rows; values ``bits``-wide.

    Returns
    -------
    array of int64, shape (R, C)
        With ``overflow="wrap"``, the exact product of ``a`` and the decompressed weights modulo
        ``2**acc_bits`` (signed); with ``"saturate"``, the clamped sums in hardware order.

    Raises
    ------
    ValueError
        On an operand out of range, an invalid index stream or mismatched shapes.
    """
    a = np.asarray(a)
    values, indices = np.asarray(values), np.asarray(indices)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"a: must be a non-empty R x K matrix, got shape {a.shape}")
    pattern = config.pattern
    k = a.shape[1]
    validate_compressed(values, indices, pattern, k=math.ceil(k / pattern.m) * pattern.m)
    for name, x, bits in (("a", a, ACT_BITS), ("values", values, config.bits)):
        low, high = int_range(bits, signed=True)
        if x.size and (x.min() < low or x.max() > high):
            raise ValueError(f"{name}: must be in {low}..{high} ({bits}-bit), "
                             f"got {x.min()}..{x.max()}")
    acts = window_activations(config, a)
    weights, mux_indices = slice_operands(config, values, indices, k)
    passes, windows, chain = weights.shape
    # Candidate block of slice j is window block j mod B; the MUX adds the index.
    position = (np.arange(chain) % config.blocks) * config.mux + mux_indices
    selected = acts[:, np.arange(windows)[None, :, None], position]  # (R, P, W, L)
    products = selected * weights
    s = config.segments
    products = products.reshape(a.shape[0], passes, windows, s, chain // s)

    low, high = int_range(config.acc_bits, signed=True)

    def fit(x):
        if config.overflow == "wrap":
            return wrap(x, config.acc_bits, signed=True)
        return np.clip(x, low, high)

    window_sums = np.zeros(products.shape[:-1], dtype=np.int64)
    for slot in range(products.shape[-1]):
        window_sums = fit(window_sums + products[..., slot])
    acc = window_sums[:, :, 0]
    for w in range(1, windows):
        acc = fit(acc + window_sums[:, :, w])
    return acc.reshape(a.shape[0], passes * s)[:, :values.shape[1]]
