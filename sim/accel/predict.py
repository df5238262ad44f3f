"""The performance model's prediction of one GEMM on the accelerator tile, under a given mapping.

:func:`rtl_view` is the one place where the model is told what the RTL is: the accelerator with
its DRAM as the tile sees it (:mod:`peforge.sim.accel.dram`): at most one AXI beat per cycle,
every block row moved in whole AXI beats (``dram.beat_bytes``), and each DMA command's fixed
cost (:data:`TRANSFER_OVERHEAD`, on top of the DRAM's latency) folded into the latency;
:data:`CONTROL_CYCLES` is the tile's fixed start and finish cost. :func:`predict` runs the
model on it under the tile's mapping (:func:`peforge.sim.perf.model.simulate_mapping`), its
SRAM traffic counted in the tile's scratchpad words.
"""

import math
from dataclasses import replace

from peforge.sim.perf.model import SRAMS, simulate_mapping
from peforge.sim.perf.tiling import Mapping
from peforge.sim.perf.workloads import Gemm

from peforge.hw.accelerator.config import C_BYTES, AccelConfig

__all__ = ["TRANSFER_OVERHEAD", "CONTROL_CYCLES", "rtl_view", "model_gemm", "predict"]

#: Cycles a DMA command of the tile costs beyond the DRAM's latency and its beats: 3 from the
#: event it waits for to its first address handshake, 2 of the RAM's own (RAM_CYCLES), 1 from
#: the last beat to done, and the controller's gap of DONE_GAP (3) after it
#: (:mod:`peforge.hw.accelerator.controller`). Measured on the RTL, derived in its docstrings.
TRANSFER_OVERHEAD = 8

#: The tile's cycles start to done less the model's: the first address handshake comes 2 cycles
#: after the start is checked, and done does not wait for the gap after the last write (6).
CONTROL_CYCLES = -4


def rtl_view(cfg: AccelConfig):
    """``cfg``'s accelerator with the DRAM the tile sees: ``min(rate, beat)`` bytes per cycle,
    rows in whole beats and the latency plus :data:`TRANSFER_OVERHEAD`."""
    dram = cfg.accel.dram
    rate = dram.bytes_per_cycle
    rate = cfg.beat_bytes if math.isinf(rate) or rate > cfg.beat_bytes else rate
    return replace(cfg.accel, dram=replace(dram, bytes_per_cycle=rate,
                                           beat_bytes=cfg.beat_bytes,
                                           latency_cycles=dram.latency_cycles
                                           + TRANSFER_OVERHEAD))


def model_gemm(cfg: AccelConfig, m: int, k: int, n: int) -> Gemm:
    bits = cfg.op_bits
    return Gemm("", m, k, n, 1, bits, bits, 8 * C_BYTES)


def predict(cfg: AccelConfig, m: int, k: int, n: int, mapping: Mapping,
            engine: str = "recurrence") -> dict:
    """Cycles, compute cycles, DRAM and SRAM bytes the model predicts for the tile: ``cycles``,
    ``compute_cycles``, ``dram_read``, ``dram_write`` and ``<sram>_sram_read``/``_write``, the
    last counted in the tile's scratchpad words (:attr:`AccelConfig.scratchpad_words`)."""
    result = simulate_mapping(rtl_view(cfg), model_gemm(cfg, m, k, n), mapping, engine=engine,
                              words=cfg.scratchpad_words)
    names = ["dram_read", "dram_write",
             *(f"{sram}_sram_{way}" for sram in SRAMS for way in ("read", "write"))]
    return {"cycles": result.cycles + CONTROL_CYCLES, "compute_cycles": result.compute_cycles,
            **{name: getattr(result, f"{name}_bytes") for name in names}}
