"""Driver that runs a whole GEMM on a :class:`~peforge.hw.systolic.top.SystolicArray` by tiling.

Tile order and padding (what the cycle model in :mod:`peforge.models.systolic` assumes):

- ``os``: for each block of ``rows`` rows of A, for each block of ``cols`` columns of B: ``K`` beats
  (column ``k`` of the A block, row ``k`` of the B block), then ``rows`` result rows come out.
- ``ws``: for each block of ``cols`` columns of B, for each block of ``rows`` rows of K: ``rows``
  weight beats (bottom row first), then ``M`` beats of A rows with the partial sums of the previous
  K block on ``d`` (zero for the first); the array's outputs are the new partial sums.

Ragged edges are padded with zero operands; padded results are dropped.
"""

from collections import deque

import numpy as np

from peforge.hw.common.beats import BeatCodec
from peforge.hw.common.driver import Ports, run_stream
from peforge.hw.systolic.top import stream_layouts

__all__ = ["SystolicDriver"]


class SystolicDriver:
    """Tiles ``C = A @ B`` onto an array of the given shape, dataflow and MAC numerics."""

    def __init__(self, rows: int, cols: int, dataflow: str, numerics):
        self.rows, self.cols, self.dataflow, self.numerics = rows, cols, dataflow, numerics
        self.in_layout, self.out_layout = stream_layouts(rows, cols, dataflow, numerics)
        self.in_codec, self.out_codec = BeatCodec(self.in_layout), BeatCodec(self.out_layout)

    @classmethod
    def from_config(cls, config) -> "SystolicDriver":
        return cls(config.rows, config.cols, config.dataflow, config.mac)

    async def gemm(self, ports: Ports, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
        """Run ``a @ b`` on the design behind ``ports``; return the result and the cycles taken."""
        (m, k), (k2, n) = a.shape, b.shape
        if k != k2:
            raise ValueError(f"b: needs {k} rows to match a's {k} columns, got {k2}")
        r, c = self.rows, self.cols
        result = np.zeros((m, n), dtype=object)
        if self.dataflow == "os":
            tiles = [(mt, nt) for mt in range(0, m, r) for nt in range(0, n, c)]
            beats = self._os_beats(a, b, tiles)
            rows_out = deque((mt + row, nt) for mt, nt in tiles for row in range(r))
            expected = len(rows_out)
        else:
            tiles = [(kt, nt) for nt in range(0, n, c) for kt in range(0, k, r)]
            beats = self._ws_beats(a, b, tiles, result)
            rows_out = deque((row, nt) for kt, nt in tiles for row in range(m))
            expected = len(rows_out)

        def take(bits):
            row, nt = rows_out.popleft()
            if row < m:
                values = self.out_codec.unpack(bits)["data"]
                result[row, nt:nt + c] = values[:min(c, n - nt)]

        cycles = await run_stream(ports, beats, expected, take)
        return result, cycles

    def _os_beats(self, a, b, tiles):
        r, c = self.rows, self.cols
        k = a.shape[1]
        for mt, nt in tiles:
            a_tile, b_tile = _padded(a[mt:mt + r], r, k), _padded(b[:, nt:nt + c], k, c)
            for step in range(k):
                yield self._pack(a=list(a_tile[:, step]), b=list(b_tile[step]),
                                 last=step == k - 1)

    def _ws_beats(self, a, b, tiles, partial):
        r, c = self.rows, self.cols
        m = a.shape[0]
        zero_row = [0] * r
        for kt, nt in tiles:
            w_tile = _padded(b[kt:kt + r, nt:nt + c], r, c)
            for row in reversed(range(r)):
                yield self._pack(load=1, a=zero_row, b=list(w_tile[row]),
                                 d=[self.numerics.zero] * c, last=0)
            a_tile = _padded(a[:, kt:kt + r], m, r)
            for row in range(m):
                # For kt > 0 these are the outputs of the previous K block, already received:
                # its row `row` left the array before this tile's weights were loaded.
                d = partial[row, nt:nt + c] if kt else np.zeros(0)
                d = list(d) + [self.numerics.zero] * (c - len(d))
                yield self._pack(load=0, a=list(a_tile[row]), b=[0] * c, d=d,
                                 last=row == m - 1)

    def _pack(self, **fields) -> int:
        return self.in_codec.pack(fields)


def _padded(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``x`` zero-padded (or cut) to ``rows x cols``."""
    out = np.zeros((rows, cols), dtype=object)
    x = x[:rows, :cols]
    out[:x.shape[0], :x.shape[1]] = x
    return out

