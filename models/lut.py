"""LUT tensor-core family: configuration, golden model and cycle model.

The tile (:class:`peforge.hw.lut.top.LutArray`) holds ``m x n`` lookup-accumulate cells: ``m``
activation rows (small) by ``n`` weight columns (large). A GEMM ``C = A @ W`` (``A``: M x K
signed ``abits``-bit activations, ``W``: K x N low-bit weight codes) is cut into tiles of ``m``
rows by ``n`` columns by a driver (:mod:`peforge.hw.lut.driver`); inside a tile the reduction
runs over ``G = ceil(K / k)`` groups of ``k`` activations (K zero-padded), each group's weights
as ``wbits`` bit-planes (the maths is in :mod:`peforge.models.numerics.lut_table`).

Protocol (one tile)
    ``G * wbits`` input beats, back to back; beat ``g * wbits + b`` carries bit-plane ``b`` of
    group ``g``: the ``n`` folded indices ``(j, negate)`` of that plane and, when ``b = 0``, the
    ``m x k`` activations of the group (ignored on the other beats); ``last`` marks the tile's
    final beat. The beat that carries the activations also builds the ``m`` symmetrised tables
    (``2**(k-1)`` entries each) into the table registers: this is the table precompute, one
    pipeline stage ahead of the lookups, so it overlaps the previous group's last plane. The
    next cycle every cell looks its column's index up in its row's table, negates, shifts by the
    plane weight and accumulates. After the last lookup the ``m`` result rows leave one per cycle,
    row 0 first, with the activation-sum correction added and the doubled sum halved.

Cycles (counted from the edge that accepts the first input beat to the edge that emits the last
output beat, inclusive; inputs back to back, outputs always taken)
    One tile alone takes ``1 + G*wbits + m``: one cycle of table precompute, ``G*wbits``
    bit-serial passes (one lookup cycle per plane) and ``m`` drain cycles. ``ready`` drops for
    ``m - 1`` cycles after a tile's last beat, so the next tile's first beat (its precompute)
    is accepted in the cycle in which the previous tile emits its row ``m - 2`` (for ``m = 1``:
    performs its last lookup); tiles therefore start ``G*wbits + m - 1`` cycles apart and a GEMM
    of ``T = ceil(M/m) * ceil(N/n)`` tiles takes ``T * (G*wbits + m - 1) + 2`` cycles.

Numerics
    Table entries are exact in :func:`~peforge.models.numerics.lut_table.table_entry_bits` bits. The
    accumulators (and the per-row activation sums) are signed ``acc_bits`` registers that hold
    the doubled result ``2 * (A @ W)`` modulo ``2**acc_bits``; the output drops its low bit, so
    a result is ``A @ W`` wrapped to ``acc_bits - 1`` bits (two's complement). ``acc_bits``
    defaults to :func:`~peforge.models.numerics.lut_table.accumulator_bits` of ``k_max``, where nothing
    wraps.
"""

from dataclasses import dataclass

import numpy as np

from peforge.models.integer import ceil_div, check_dims, int_range, wrap
from peforge.models.numerics.lut_table import K_GROUP_RANGE, WEIGHT_KINDS, WeightFormat, accumulator_bits, lut_matmul
from peforge.models.params import param, validate_params

__all__ = ["LutConfig", "MAX_BEAT_BITS", "golden_gemm", "gemm_cycles", "tile_count"]

#: The widest stream beat a tile may have, in bits. The input beat is at most 2049 bits within
#: the parameter ranges; the output beat, ``n`` results of ``acc_bits - 1`` bits plus ``last``,
#: is what this limit bounds.
MAX_BEAT_BITS = 4096


@dataclass(frozen=True)
class LutConfig:
    """A LUT tensor-core tile: shape, activation group, weight format and integer widths.

    ``acc_bits`` left unset becomes :func:`~peforge.models.numerics.lut_table.accumulator_bits` for
    reductions up to ``k_max`` deep (23 bits for INT8, W2 unsigned, ``k_max`` 4096); results are
    ``acc_bits - 1`` bits wide and wrap in two's complement beyond that.
    """

    m: int = param(2, "tile rows: activation rows that share each weight column's indices",
                   range=(1, 8))
    n: int = param(64, "tile columns: weight columns that share each row's tables",
                   range=(1, 128))
    k: int = param(4, "activations per table group; a table holds 2**(k-1) entries",
                   range=K_GROUP_RANGE)
    wbits: int = param(2, "weight bits: bit-planes, i.e. lookup cycles, per group",
                       range=(1, 4))
    wkind: str = param("unsigned", "weight codes: unsigned, signed (two's complement) or "
                       "ternary (-1, 0, +1; wbits 2)", choices=WEIGHT_KINDS)
    abits: int = param(8, "signed activation width (8: INT8, 16: INT16)", range=(2, 16))
    k_max: int = param(4096, "deepest reduction the default accumulator holds exactly",
                       range=(1, 1 << 24))
    acc_bits: int | None = param(None, "accumulator width; results have acc_bits - 1 bits "
                                 "(default: exact up to k_max)", range=(4, 64), optional=True)

    def __post_init__(self):
        validate_params(self)
        fmt = self.weight_format
        if self.acc_bits is None:
            object.__setattr__(self, "acc_bits",
                               accumulator_bits(self.abits, fmt.wbits, fmt.kind, self.k_max))
        out_bits = self.n * (self.acc_bits - 1) + 1
        if out_bits > MAX_BEAT_BITS:
            raise ValueError(
                f"n: {self.n} columns of {self.acc_bits - 1}-bit results make a {out_bits}-bit "
                f"output beat, over the {MAX_BEAT_BITS}-bit limit; use n <= "
                f"{(MAX_BEAT_BITS - 1) // (self.acc_bits - 1)} or a narrower accumulator")

    @property
    def weight_format(self) -> WeightFormat:
        """The weight codes' bit-plane format (raises ValueError for a bad ``wbits``)."""
        return WeightFormat(self.wkind, self.wbits)


def golden_gemm(config: LutConfig, a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``C = A @ W`` exactly as the tile computes it.

    The tile accumulates ``2 * (A @ W)`` through tables, bit-planes and the activation-sum
    correction (:func:`~peforge.models.numerics.lut_table.lut_matmul`, exact) modulo ``2**acc_bits`` and
    drops the low bit, which is always zero; since ``2x mod 2**acc_bits = 2 * (x mod
    2**(acc_bits-1))``, the output is ``A @ W`` wrapped to ``acc_bits - 1`` bits.

    Raises
    ------
    ValueError
        If an activation is outside the signed ``abits`` range, a code outside the weight
        format's range, or the shapes do not chain.
    """
    low, high = int_range(config.abits, signed=True)
    a = np.asarray(a, dtype=np.int64)
    if a.size and (a.min() < low or a.max() > high):
        raise ValueError(f"a: activations must be in {low}..{high}")
    exact = lut_matmul(a, np.asarray(w, dtype=np.int64), config.wbits, config.wkind, config.k)
    return wrap(exact, config.acc_bits - 1, signed=True)


def tile_count(config: LutConfig, m: int, n: int) -> int:
    """Tiles the driver issues for a GEMM with ``m`` rows and ``n`` columns (ints, or integer
    arrays that broadcast)."""
    return ceil_div(m, config.m) * ceil_div(n, config.n)


def gemm_cycles(config: LutConfig, m: int, k: int, n: int) -> int:
    """Cycles from the first input beat to the last output beat of an ``m x k x n`` GEMM.

    ``T * (G*wbits + config.m - 1) + 2`` with ``T`` tiles and ``G = ceil(k / config.k)``
    activation groups per tile (derivation in the module docstring). ``m``, ``k``, ``n`` may be
    integer arrays that broadcast: the cycles of each shape.
    """
    check_dims("GEMM dimensions", m=m, k=k, n=n)
    passes = ceil_div(k, config.k) * config.wbits
    return tile_count(config, m, n) * (passes + config.m - 1) + 2
