"""Driver that runs a whole GEMM on a :class:`~peforge.hw.bitserial.top.BitserialArray` by tiling.

Tile order and padding (what the cycle model in :mod:`peforge.models.bitserial` assumes): for each
block of ``rows`` rows of A, for each block of ``cols`` columns of the weights, for each group
``g`` of K, ``group / lanes`` slot beats (``lanes`` weights of K each) carrying every column's
codes with that column's group type, selector and scale; ``group_last`` marks a group's last slot
and ``last`` the tile's. Then ``rows`` result rows come out.

Ragged edges are padded: rows of A and columns of weights beyond the matrix with zero activations
and zero codes, the padded columns of the fastest allowed type
(:attr:`~peforge.models.bitserial.BitserialConfig.pad_type`, so they never add cycles to a slot),
and K up to whole groups with zero codes and activations (code 0 is the value 0 in every type).
Padded results are dropped. Each group may use any allowed type, so a tile mixes types per group
and per column; each slot takes the most terms of its columns' types.
"""

from collections import deque

import numpy as np

from peforge.models.bitserial import BitserialConfig

from peforge.hw.bitserial.top import stream_layouts
from peforge.hw.common.beats import BeatCodec
from peforge.hw.common.driver import Ports, run_stream

__all__ = ["BitserialDriver"]


class BitserialDriver:
    """Tiles ``A @ W`` (W given as grouped BitMoD codes) onto an array of configuration
    ``config``."""

    def __init__(self, config: BitserialConfig):
        self.config = config
        self.in_layout, self.out_layout = stream_layouts(config)
        self.in_codec, self.out_codec = BeatCodec(self.in_layout), BeatCodec(self.out_layout)

    @classmethod
    def from_config(cls, config: BitserialConfig) -> "BitserialDriver":
        return cls(config)

    async def gemm(self, ports: Ports, a, codes, type_index, selector, scale_code
                   ) -> tuple[dict, int]:
        """Run the GEMM on the design behind ``ports``.

        Arguments are those of :func:`peforge.models.bitserial.golden_gemm`. Returns
        ``({"c_raw", "c_scaled"}, cycles)``, the results as M x N object arrays of ints.
        """
        a, codes = np.asarray(a), np.asarray(codes)
        (m, k), (k2, n) = a.shape, codes.shape
        if k != k2:
            raise ValueError(f"codes: needs {k} rows to match a's {k} columns, got {k2}")
        r, c = self.config.rows, self.config.cols
        tiles = [(mt, nt) for mt in range(0, m, r) for nt in range(0, n, c)]
        group_meta = [np.asarray(x) for x in (type_index, selector, scale_code)]
        beats = self._beats(a, codes, group_meta, tiles)
        rows_out = deque((mt + row, nt) for mt, nt in tiles for row in range(r))
        results = {name: np.zeros((m, n), dtype=object) for name in ("c_raw", "c_scaled")}

        def take(bits):
            row, nt = rows_out.popleft()
            if row < m:
                beat = self.out_codec.unpack(bits)
                width = min(c, n - nt)
                for name, result in results.items():
                    result[row, nt:nt + width] = beat[name][:width]

        cycles = await run_stream(ports, beats, len(rows_out), take)
        return results, cycles

    def _beats(self, a, codes, group_meta, tiles):
        config = self.config
        r, c, lanes, group = config.rows, config.cols, config.lanes, config.group
        k = a.shape[1]
        groups = -(-k // group)
        slots = group // lanes
        for mt, nt in tiles:
            a_tile = _padded(a[mt:mt + r], r, groups * group)
            w_tile = _padded(codes[:, nt:nt + c], groups * group, c)
            wtype, selector, scale = (_padded(x[:, nt:nt + c], groups, c, fill)
                                      for x, fill in zip(group_meta, (config.pad_type, 0, 0)))
            for g in range(groups):
                for s in range(slots):
                    k0 = g * group + s * lanes
                    yield self._pack(
                        a=a_tile[:, k0:k0 + lanes].tolist(),
                        code=w_tile[k0:k0 + lanes].T.tolist(),
                        wtype=wtype[g].tolist(), selector=selector[g].tolist(),
                        scale=scale[g].tolist(), group_last=int(s == slots - 1),
                        last=int(g == groups - 1 and s == slots - 1))

    def _pack(self, **fields) -> int:
        return self.in_codec.pack(fields)


def _padded(x: np.ndarray, rows: int, cols: int, fill: int = 0) -> np.ndarray:
    """``x`` as Python ints, padded with ``fill`` to ``rows x cols``."""
    out = np.full((rows, cols), fill, dtype=object)
    out[:x.shape[0], :x.shape[1]] = [[int(v) for v in row] for row in x]
    return out
