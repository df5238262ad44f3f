"""Systolic array family: configuration, golden model and cycle model.

The array (:class:`peforge.hw.systolic.top.SystolicArray`) is ``rows x cols`` PEs with one of two
dataflows; a GEMM ``C = A @ B`` (``A``: M x K, ``B``: K x N) is cut into tiles by a driver
(:mod:`peforge.hw.systolic.driver`) that streams them back to back.

Output-stationary (``os``)
    A tile is ``rows x cols`` outputs; ``A`` columns and ``B`` rows stream in for ``K`` beats, PEs
    accumulate, then the accumulators drain one row per cycle. Tiles: ``ceil(M/rows) *
    ceil(N/cols)``, each taking ``K + 2*rows + cols - 2 + mul_stages + 3*add_stages`` cycles
    (``K`` beats in, ``rows + cols - 2`` for the skewed wavefront to reach the far corner,
    ``mul_stages`` for its product to pass the PE's product registers, with ``add_stages`` one
    for its sum to pass the adder's register and two for the two partial sums to be added,
    ``rows`` to drain).
Weight-stationary (``ws``)
    A tile is a ``rows x cols`` block of ``B`` held in the PEs; it is shifted in over ``rows`` beats,
    then all ``M`` rows of ``A`` stream through with partial sums flowing down the columns. Partial
    sums of the previous K-tile re-enter at the top (the ``d`` input), so the accumulation over K
    happens in the array, in order. Tiles: ``ceil(K/rows) * ceil(N/cols)``, each taking
    ``2*rows + M + cols - 2`` cycles before the next may start, plus one cycle at the very end.

Cycles are counted from the clock edge that accepts the first input beat to the edge that emits the
last output beat, inclusive, with inputs presented back to back and outputs always accepted.
"""

import math
from dataclasses import dataclass

import numpy as np

from peforge.models.numerics.floatmac import OPERAND_FORMATS, FloatMac, add_patterns
from peforge.models.integer import ceil_div, check_dims
from peforge.models.numerics.mac import IntMac
from peforge.models.params import param, validate_params

__all__ = ["SystolicConfig", "golden_gemm", "split_k_gemm", "gemm_cycles", "tile_count",
           "default_acc_bits"]


def default_acc_bits(bits: int, k_max: int) -> int:
    """Accumulator width that holds any sum of ``k_max`` products of ``bits``-wide operands.

    A product of two ``bits``-wide operands needs ``2*bits`` bits (signed: ``(-2**(bits-1))**2 =
    2**(2*bits-2)`` needs ``2*bits`` with its sign; unsigned: ``< 2**(2*bits)``), and a sum of
    ``k_max`` of them ``ceil(log2(k_max))`` more.
    """
    return 2 * bits + math.ceil(math.log2(k_max)) if k_max > 1 else 2 * bits


_INT_FIELDS = {"bits": 8, "signed": True, "k_max": 4096, "acc_bits": None}


@dataclass(frozen=True)
class SystolicConfig:
    """A systolic MAC array: shape, dataflow and the arithmetic of its PEs.

    ``pe="int"``: integer MACs of ``bits``-wide operands; ``acc_bits`` left unset becomes
    :func:`default_acc_bits` of ``bits`` and ``k_max`` (28 bits for int8 with K up to 4096); sums
    beyond its range wrap in two's complement (unsigned: modulo).
    ``pe="lmul"`` or ``"fp"``: float MACs (:class:`peforge.models.numerics.floatmac.FloatMac`) of
    ``format`` operands, L-Mul or exact RNE products, accumulated in fp32 with one RNE add per
    step; the integer fields do not apply and must keep their defaults.
    """

    rows: int = param(8, "PE rows (OS: outputs of M per tile; WS: K per tile)", range=(1, 256))
    cols: int = param(8, "PE columns (outputs of N per tile)", range=(1, 256))
    dataflow: str = param("os", "os = output-stationary, ws = weight-stationary",
                          choices=("os", "ws"))
    bits: int = param(8, "operand width in bits", range=(2, 16))
    signed: bool = param(True, "two's-complement operands (else unsigned)")
    k_max: int = param(4096, "largest K summed without overflow by the default accumulator",
                       range=(1, 1 << 24))
    acc_bits: int | None = param(None, "accumulator width (default: enough for k_max)",
                                 range=(4, 64), optional=True)
    pe: str = param("int", "PE arithmetic: int MAC, lmul (L-Mul product) or fp (exact float "
                    "product), float PEs accumulating in fp32", choices=("int", "lmul", "fp"))
    format: str = param("bf16", "operand format of lmul and fp PEs", choices=OPERAND_FORMATS)
    mul_stages: int = param(0, "register stages between each PE's multiplier and its adder "
                            "(dataflow=os; the same sums, each tile mul_stages cycles longer)",
                            range=(0, 1))
    add_stages: int = param(0, "register stages inside each PE's fp32 adder (pe=lmul or fp, "
                            "dataflow=os): even and odd K steps summed apart and added at the "
                            "tile's end, each tile 3 cycles longer", range=(0, 1))

    def __post_init__(self):
        validate_params(self)
        if self.mul_stages and self.dataflow != "os":
            raise ValueError(f"mul_stages: must be 0 with dataflow={self.dataflow} (the "
                             f"partial sums would need re-timing), got {self.mul_stages!r}")
        if self.add_stages and (self.pe == "int" or self.dataflow != "os"):
            raise ValueError(f"add_stages: needs pe=lmul or fp and dataflow=os (an integer adder "
                             f"is fast; ws partial sums pass every cycle), got pe={self.pe} "
                             f"dataflow={self.dataflow}")
        if self.pe != "int":
            for name, default in _INT_FIELDS.items():
                if getattr(self, name) != default:
                    raise ValueError(f"{name}: applies to pe=int only (pe={self.pe} uses format)")
            return
        if self.format != "bf16":
            raise ValueError(f"format: applies to pe=lmul or pe=fp only, got pe={self.pe}")
        if self.acc_bits is None:
            object.__setattr__(self, "acc_bits", min(64, default_acc_bits(self.bits, self.k_max)))
        if self.acc_bits < 2 * self.bits:
            raise ValueError(f"acc_bits: must be in {2 * self.bits}..64 for {self.bits}-bit "
                             f"operands (a product needs {2 * self.bits}), got {self.acc_bits}")

    @property
    def mac(self) -> IntMac | FloatMac:
        """The numerics of one PE."""
        if self.pe == "int":
            return IntMac(self.bits, self.signed, self.acc_bits)
        return FloatMac(self.format, exact=self.pe == "fp")


def golden_gemm(config: SystolicConfig, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``C = A @ B`` exactly as the array computes it (integer accumulator width and wrap; float
    PEs: operand and result bit patterns, products added in k order; with ``add_stages=1`` the
    even and the odd k steps each in k order from ``+0``, then the two sums added, RNE)."""
    if not config.add_stages:
        return config.mac.gemm(a, b)
    return split_k_gemm(config.mac.gemm, a, b)


def split_k_gemm(gemm, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The PE order of ``add_stages=1``: ``gemm`` (operand patterns to fp32 patterns, k order
    from ``+0``) of the even and of the odd k steps, the two added (RNE, NaN canonical)."""
    return add_patterns(*(gemm(a[:, first::2], b[first::2]) for first in (0, 1)))


def tile_count(config: SystolicConfig, m: int, k: int, n: int) -> int:
    """Tiles the driver issues for an ``m x k x n`` GEMM (ints, or integer arrays that
    broadcast)."""
    streamed_tiles = ceil_div(m if config.dataflow == "os" else k, config.rows)
    return streamed_tiles * ceil_div(n, config.cols)


def gemm_cycles(config: SystolicConfig, m: int, k: int, n: int) -> int:
    """Cycles from the first input beat to the last output beat of an ``m x k x n`` GEMM.
    ``m``, ``k``, ``n`` may be integer arrays that broadcast: the cycles of each shape."""
    check_dims("GEMM dimensions", m=m, k=k, n=n)
    r, c = config.rows, config.cols
    if config.dataflow == "os":
        return tile_count(config, m, k, n) * (k + 2 * r + c - 2 + config.mul_stages
                                              + 3 * config.add_stages)
    return tile_count(config, m, k, n) * (2 * r + m + c - 2) + 1
