"""Energy of a GEMM on the accelerator tile, its SRAM part from the RTL's own access counters.

The tile counts its scratchpad accesses in words (:data:`peforge.hw.accelerator.regs.COUNTERS`):
an input lane word and a weight bank word are one AXI beat, a weight row read reads every bank,
an output word is ``cols`` accumulators. :func:`rtl_sram_bytes` turns the counts into bytes
read and written per scratchpad; :func:`sram_energy_pj` charges bytes at the unit costs the
performance model uses for the same SRAMs (:func:`peforge.sim.perf.memory.sram_cost`: 45 nm, the
accelerator's sizes, port widths and banks), so the RTL's counts and the model's predicted bytes
(:func:`peforge.sim.accel.predict.predict`) are charged alike.

:func:`tile_energy` is the whole GEMM as ``peforge sim`` charges it (PE array per MAC, each
SRAM byte, each DRAM byte, leakage over the cycles: :mod:`peforge.sim.perf.costs`), from the
RTL's counters (cycles, DRAM bytes, scratchpad words) when a measurement is given, else from the
model's prediction of the same mapping (``peforge energy accelerator``).
"""

from peforge.hw.accelerator.config import AccelConfig
from peforge.sim.perf.costs import SRAMS, accelerator_costs
from peforge.sim.perf.memory import sram_cost
from peforge.sim.perf.model import _sums
from peforge.sim.perf.tiling import Mapping

from peforge.sim.accel.predict import predict

__all__ = ["rtl_sram_bytes", "sram_energy_pj", "tile_energy"]


def rtl_sram_bytes(cfg: AccelConfig, counters: dict) -> dict[str, float]:
    """Bytes read and written per scratchpad (``input_sram_read`` ...) from the tile's word
    counters (an output word of ``cols * acc_bits`` bits may be a fractional number of bytes)."""
    words, beat = cfg.scratchpad_words, cfg.beat_bytes
    return {"input_sram_read": counters["input_sram_reads"] * words.input_word_bytes,
            "input_sram_write": counters["input_sram_writes"] * beat,
            "weight_sram_read": counters["weight_sram_reads"] * words.weight_word_bytes,
            "weight_sram_write": counters["weight_sram_writes"] * beat,
            "output_sram_read": float(counters["output_sram_reads"] * words.output_word_bytes),
            "output_sram_write": float(counters["output_sram_writes"]
                                       * words.output_word_bytes)}


def sram_energy_pj(cfg: AccelConfig, sram_bytes: dict) -> float:
    """pJ of the scratchpad traffic ``sram_bytes`` (keys as :func:`rtl_sram_bytes`) at the
    model's per-byte read and write energies of the accelerator's SRAMs."""
    total = 0.0
    for name in SRAMS:
        sram = getattr(cfg.accel, f"{name}_sram")
        cost = sram_cost(sram.size_bytes, sram.width_bytes, sram.banks)
        total += (sram_bytes[f"{name}_sram_read"] * cost.read_pj_per_byte
                  + sram_bytes[f"{name}_sram_write"] * cost.write_pj_per_byte)
    return total


def tile_energy(cfg: AccelConfig, m: int, k: int, n: int, mapping: Mapping,
                counters: dict | None = None) -> dict:
    """The ``m x k x n`` GEMM under ``mapping`` on the tile: ``source`` (``rtl``: ``counters``
    given, the tile's measurement; ``model``: the prediction), ``cycles``, DRAM bytes, bytes
    read and written per scratchpad (``<sram>_sram_read_bytes`` ...) and the energy columns of
    :data:`peforge.sim.perf.model.METRIC_COLUMNS` (``energy_pe_pj`` ... ``energy_pj``)."""
    if counters is not None:
        counted = {"cycles": counters["cycles"], "compute_cycles": counters["busy_cycles"],
                   "dram_read_bytes": counters["dram_read_bytes"],
                   "dram_write_bytes": counters["dram_write_bytes"]}
        sram = rtl_sram_bytes(cfg, counters)
    else:
        model = predict(cfg, m, k, n, mapping)
        counted = {"cycles": model["cycles"], "compute_cycles": model["compute_cycles"],
                   "dram_read_bytes": model["dram_read"], "dram_write_bytes": model["dram_write"]}
        sram = {f"{name}_sram_{way}": model[f"{name}_sram_{way}"] for name in SRAMS
                for way in ("read", "write")}
    counted.update({f"{name}_bytes": value for name, value in sram.items()})
    row = _sums(accelerator_costs(cfg.accel), m * k * n, counted, cfg.accel.clock_mhz)
    return {"source": "rtl" if counters is not None else "model", **counted,
            **{name: value for name, value in row.items() if name.startswith("energy_")}}
