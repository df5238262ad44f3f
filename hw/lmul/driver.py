"""Drivers of the ``lmul`` and ``lmul-dot`` stream tops (:mod:`peforge.hw.lmul.top`).

Operands travel as bit patterns; a ragged last beat is padded with zero operands (``+0``), whose
products are dropped (``lmul``) or leave the accumulator unchanged (``lmul-dot``: the
accumulator is never ``-0``, see :mod:`peforge.models.numerics.floatmac`).
"""

from collections import deque

import numpy as np

from peforge.hw.common.beats import BeatCodec
from peforge.hw.common.driver import Ports, run_stream
from peforge.hw.lmul.top import dot_layouts, multiplier_layouts

__all__ = ["MultiplierDriver", "DotDriver"]


def _chunks(values: np.ndarray, lanes: int):
    """``values`` (1-D) in slices of ``lanes`` Python ints, the last one zero-padded."""
    padded = np.zeros(-(-len(values) // lanes) * lanes, dtype=object)
    padded[:len(values)] = values
    return [[int(v) for v in padded[i:i + lanes]] for i in range(0, len(padded), lanes)]


class MultiplierDriver:
    """Streams operand pairs through a :class:`~peforge.hw.lmul.top.MultiplierStream`."""

    def __init__(self, config):
        self.lanes = config.lanes
        self.in_layout, self.out_layout = multiplier_layouts(config)
        self.in_codec, self.out_codec = BeatCodec(self.in_layout), BeatCodec(self.out_layout)

    async def multiply(self, ports: Ports, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
        """Products of the 1-D pattern arrays ``a`` and ``b``, and the cycles taken."""
        if a.shape != b.shape or a.ndim != 1:
            raise ValueError(f"b: must have a's shape {a.shape} (1-D), got {b.shape}")
        beats = [self.in_codec.pack({"a": xa, "b": xb})
                 for xa, xb in zip(_chunks(a, self.lanes), _chunks(b, self.lanes))]
        products = []

        def take(bits):
            products.extend(self.out_codec.unpack(bits)["p"])

        cycles = await run_stream(ports, iter(beats), len(beats), take)
        return np.array(products[:len(a)], dtype=object), cycles


class DotDriver:
    """Runs ``A @ B`` on a :class:`~peforge.hw.lmul.top.DotProductUnit` as ``M*N`` dot products
    in row-major order."""

    def __init__(self, config):
        self.lanes = config.lanes
        self.in_layout, self.out_layout = dot_layouts(config)
        self.in_codec, self.out_codec = BeatCodec(self.in_layout), BeatCodec(self.out_layout)

    async def gemm(self, ports: Ports, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
        """fp32 patterns of ``a @ b`` (operand patterns) and the cycles taken."""
        (m, k), (k2, n) = a.shape, b.shape
        if k != k2:
            raise ValueError(f"b: needs {k} rows to match a's {k} columns, got {k2}")

        def beats():
            for i in range(m):
                for j in range(n):
                    pairs = list(zip(_chunks(a[i], self.lanes), _chunks(b[:, j], self.lanes)))
                    for step, (xa, xb) in enumerate(pairs):
                        yield self.in_codec.pack(
                            {"a": xa, "b": xb, "last": step == len(pairs) - 1})

        results = deque()
        cycles = await run_stream(ports, beats(), m * n,
                                  lambda bits: results.append(
                                      self.out_codec.unpack(bits)["data"]))
        return np.array(results, dtype=object).reshape(m, n), cycles
