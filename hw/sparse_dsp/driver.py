"""Driver that runs a whole GEMM with N:M-compressed weights on a
:class:`~peforge.hw.sparse_dsp.top.SparseDspChain`.

Beat order (what the cycle model in :mod:`peforge.models.sparse_dsp` assumes): for each row ``r``
of ``A``, for each pass of ``S`` output columns, the ``ceil(K / L)`` windows in order, back to
back; the last window of a pass sets ``last`` and its output beat carries the pass's ``S``
results. Activations past ``K`` and weights of columns past ``C`` are zero; the slice order and
the padding come from :func:`peforge.models.sparse_dsp.slice_operands`.
"""

from collections import deque

import numpy as np

from peforge.models.sparse_dsp import SparseDspConfig, slice_operands, window_activations

from peforge.hw.common.beats import BeatCodec
from peforge.hw.common.driver import Ports, run_stream
from peforge.hw.sparse_dsp.top import stream_layouts

__all__ = ["SparseDspDriver"]


class SparseDspDriver:
    """Streams ``A @ W`` (``W`` as ``values`` and ``indices``) through a chain configured as
    ``config``, running the configuration's N:M pattern."""

    def __init__(self, config: SparseDspConfig):
        self.config = config
        self.in_layout, self.out_layout = stream_layouts(config.chain, config.mux, config.bits,
                                                         config.acc_bits)
        self.in_codec, self.out_codec = BeatCodec(self.in_layout), BeatCodec(self.out_layout)

    async def gemm(self, ports: Ports, a, values, indices) -> tuple[np.ndarray, int]:
        """Run the GEMM on the design behind ``ports``; return ``(C, cycles)``, ``C`` of shape
        ``(R, columns of values)``."""
        config = self.config
        acts = window_activations(config, a)
        rows, k = np.shape(a)
        weights, mux_indices = slice_operands(config, values, indices, k)
        passes, windows = weights.shape[:2]
        columns, s, n = np.shape(values)[1], config.segments, config.n_run
        n_log2 = n.bit_length() - 1
        result = np.zeros((rows, columns), dtype=object)
        pending = deque((r, p) for r in range(rows) for p in range(passes))

        def beats():
            for r, p, w in np.ndindex(rows, passes, windows):
                fields = {"a": _ints(acts[r, w]), "w": _ints(weights[p, w]),
                          "last": w == windows - 1}
                if config.mux > 1:
                    fields.update(idx=_ints(mux_indices[p, w]), n_log2=n_log2)
                yield self.in_codec.pack(fields)

        def take(bits):
            r, p = pending.popleft()
            data = self.out_codec.unpack(bits)["data"]
            for g in range(min(s, columns - p * s)):
                result[r, p * s + g] = data[(g + 1) * n - 1]

        cycles = await run_stream(ports, beats(), len(pending), take)
        return result, cycles


def _ints(values) -> list[int]:
    return [int(v) for v in values]
