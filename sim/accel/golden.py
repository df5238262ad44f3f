"""The tile's golden model: C as the accelerator computes it under a tiling.

Integer PEs: the family's golden (sums wrap in the accumulator whatever the order). Float PEs:
the array sums each K block from ``+0`` in k order (its PEs' own arithmetic,
:func:`peforge.models.systolic.golden_gemm`), and the output scratchpad adds the blocks' partial
sums in K order, one fp32 RNE addition each (the first block written as is). A block is a K
tile of ``tk`` steps (``os``), or ``rows`` steps of one (``ws``: a ragged last block padded
with ``+0`` operands, as the feeder sends them).
"""

import numpy as np

from peforge.models.numerics.floatmac import add_patterns
from peforge.models.systolic import golden_gemm

__all__ = ["k_blocks", "tile_golden"]


def k_blocks(cfg, k: int, tk: int) -> list[tuple[int, int, int]]:
    """``(start, stop, padded)`` of each K block the tile's array sums on its own: ``padded``
    steps, of which ``start .. stop - 1`` are real."""
    blocks = []
    for tile in range(0, k, tk):
        end = min(tile + tk, k)
        if cfg.accel.pe.dataflow == "os":
            blocks.append((tile, end, end - tile))
            continue
        rows = cfg.rows
        blocks += [(start, min(start + rows, end), rows) for start in range(tile, end, rows)]
    return blocks


def tile_golden(cfg, a: np.ndarray, w: np.ndarray, tk: int) -> np.ndarray:
    """C (int64: integers, or fp32 patterns) of ``a @ w`` on the tile of ``cfg`` with K tiles
    of ``tk``."""
    pe = cfg.accel.pe
    if not cfg.float_pe:
        return golden_gemm(pe, a, w)
    a, w = np.asarray(a, dtype=np.int64), np.asarray(w, dtype=np.int64)
    c = None
    for start, stop, padded in k_blocks(cfg, a.shape[1], tk):
        pad = padded - (stop - start)
        part = golden_gemm(pe, np.pad(a[:, start:stop], ((0, 0), (0, pad))),
                           np.pad(w[start:stop], ((0, pad), (0, 0))))
        c = part if c is None else add_patterns(c, part)
    return c
