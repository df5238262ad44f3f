"""The RTL's own counts of GEMMs run on an accelerator tile, kept on disk.

``peforge verify accelerator`` (:func:`peforge.sim.accel.verify.verify_accelerator`) records the
counters of every legal GEMM it ran (:data:`peforge.hw.accelerator.regs.COUNTERS`) under
``$PEFORGE_CACHE/accelerator/runs``, keyed by the tile's Verilog, the DRAM it ran against
(bytes per cycle and latency: they set the cycles, not the counts of accesses) and the
descriptor (shape, tiling, order, layout); ``peforge energy accelerator`` charges a GEMM from
them when they exist (:func:`lookup`).
"""

import json
from dataclasses import asdict

from peforge.hw.accelerator.config import AccelConfig
from peforge.hw.accelerator.layout import Descriptor
from peforge.sim.cache import cached_json, content_key, entry_path

__all__ = ["record", "lookup"]


def _path(cfg: AccelConfig, verilog: str, descriptor: Descriptor):
    dram = cfg.accel.dram
    key = content_key(verilog, json.dumps([str(dram.bytes_per_cycle), dram.latency_cycles]),
                      json.dumps(asdict(descriptor), sort_keys=True))
    return entry_path("accelerator/runs", "gemm", key, ".json")


def record(cfg: AccelConfig, verilog: str, descriptor: Descriptor, counters: dict) -> None:
    """Keep ``counters`` of ``descriptor`` run on the tile of Verilog ``verilog`` (a GEMM run
    again keeps the first record: the tile is deterministic)."""
    cached_json(_path(cfg, verilog, descriptor), lambda: dict(counters))


def lookup(cfg: AccelConfig, verilog: str, descriptor: Descriptor) -> dict | None:
    """The recorded counters of ``descriptor`` on that tile, or None."""
    path = _path(cfg, verilog, descriptor)
    return json.loads(path.read_text()) if path.is_file() else None
