"""Driver that runs a whole GEMM on a :class:`~peforge.hw.lut.top.LutArray` by tiling.

Tile order and padding (what the cycle model in :mod:`peforge.models.lut` assumes): for each
block of ``m`` rows of A, for each block of ``n`` columns of W, ``G = ceil(K / k)`` groups of
``wbits`` beats, then ``m`` result rows come out. The weights go through the offline transform
of :mod:`peforge.models.numerics.lut_table` (bit-planes, group indices, negate-bit folding) once per GEMM.
Ragged edges are padded with zero activations and zero index bits; padded results are dropped.
"""

from collections import deque

import numpy as np

from peforge.models.lut import LutConfig
from peforge.models.numerics.lut_table import fold_index

from peforge.hw.common.beats import BeatCodec
from peforge.hw.common.driver import Ports, run_stream
from peforge.hw.lut.top import stream_layouts

__all__ = ["LutDriver"]


class LutDriver:
    """Tiles ``C = A @ W`` onto a LUT tile of the given configuration."""

    def __init__(self, config: LutConfig):
        self.config = config
        self.in_layout, self.out_layout = stream_layouts(config.m, config.n, config.k,
                                                         config.abits, config.acc_bits)
        self.in_codec, self.out_codec = BeatCodec(self.in_layout), BeatCodec(self.out_layout)

    async def gemm(self, ports: Ports, a, w) -> tuple[np.ndarray, int]:
        """Run ``a @ w`` (activations, weight codes) on the design behind ``ports``; return the
        result and the cycles taken."""
        a, w = np.asarray(a, dtype=np.int64), np.asarray(w, dtype=np.int64)
        (rows, depth), (depth_w, cols) = a.shape, w.shape
        if depth != depth_w:
            raise ValueError(f"w: needs {depth} rows to match a's {depth} columns, got {depth_w}")
        tm, tn, kg = self.config.m, self.config.n, self.config.k
        j, negate = fold_index(self.config.weight_format.group_indices(w, kg), kg)  # (B, G, N)
        groups = j.shape[1]
        a = np.pad(a, ((0, -rows % tm), (0, groups * kg - depth))).reshape(-1, groups, kg)
        j, negate = (np.pad(x, ((0, 0), (0, 0), (0, -cols % tn))) for x in (j, negate))
        tiles = [(mt, nt) for mt in range(0, rows, tm) for nt in range(0, cols, tn)]
        rows_out = deque((mt + r, nt) for mt, nt in tiles for r in range(tm))
        result = np.zeros((rows, cols), dtype=object)

        def take(bits):
            row, nt = rows_out.popleft()
            if row < rows:
                values = self.out_codec.unpack(bits)["data"]
                result[row, nt:nt + tn] = values[:min(tn, cols - nt)]

        beats = self._beats(a, j, negate, tiles)
        cycles = await run_stream(ports, beats, len(rows_out), take)
        return result, cycles

    def _beats(self, a, j, negate, tiles):
        tm, tn = self.config.m, self.config.n
        planes, groups = j.shape[:2]
        idle = [[0] * self.config.k] * tm
        for mt, nt in tiles:
            for g in range(groups):
                for b in range(planes):
                    yield self._pack(
                        a=a[mt:mt + tm, g].tolist() if b == 0 else idle,
                        idx=[{"j": int(jc), "negate": int(nc)}
                             for jc, nc in zip(j[b, g, nt:nt + tn], negate[b, g, nt:nt + tn])],
                        last=int(g == groups - 1 and b == planes - 1))

    def _pack(self, **fields) -> int:
        return self.in_codec.pack(fields)
