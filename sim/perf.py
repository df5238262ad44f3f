"""Cycle-level performance model of an accelerator running GEMM workloads (simpy).

A GEMM is cut into buffer tiles ``tm x tk x tn`` (:class:`Mapping`) visited in a loop order with
K innermost. Three simpy processes share one DRAM channel:

- DMA loads: a tile's A and W blocks are read from DRAM (unless the previous tile used the same
  block) into one of two input/weight buffer slots: the load of tile ``i + 1`` starts when tile
  ``i`` starts computing (double buffering), and tile ``i + 1`` waits for it;
- compute runs the tile on the array for the family's cycle model of a ``tm x tk x tn`` GEMM
  (the RTL's own count; consecutive tiles overlap by the family's ``pipeline_overlap``). Partial
  sums of a split K accumulate in the output (accumulator) SRAM, which has two slots: a new output
  tile waits for a free one. A tile also needs its SRAM ports (``width_bytes * banks`` per
  cycle per SRAM) to deliver its A and W blocks and to write (and after the first K step read
  back) its output tile: it takes the array cycles or the port cycles, whichever is longer;
- write-back writes each finished output tile to DRAM and frees its slot.

Each DRAM transfer takes ``latency_cycles + bytes / bytes_per_cycle``, one at a time. Stalls are
whatever the simulation adds to the array's compute cycles (DRAM waits and SRAM port limits).
Events are per tile, not per cycle.

SRAM traffic, counted per tile: A and W blocks are written once per DRAM load and read once per
use by the array; the output tile is written every K step, read back every K step after the
first (accumulation) and once for write-back.

Energy, power and area (:func:`simulate_workload`, :func:`accelerator_costs`), at 45 nm:

- PE array: each MAC costs the family's dynamic energy per MAC, measured on its own RTL under
  the accelerator's operand ``stats`` (:func:`peforge.sim.energy.op_energy`, looked up once per
  family, configuration and statistics in this process). Only useful MACs cost dynamic energy:
  idle PEs (fill, drain, ragged tiles, stalls) cost only leakage. The array's leakage and area
  are the measured top's times ``pes / measured pes``;
- SRAMs: each byte read or written costs its SRAM's energy per byte
  (:func:`peforge.sim.memory.sram_cost`: size, port width and banks); leakage and area from the
  same model;
- DRAM: each byte read or written costs 8 bits at the DRAM type's energy per bit
  (:data:`peforge.sim.memory.DRAM_TYPES`, from ``dram.name``);
- leakage energy: array and SRAM leakage power over the GEMM's cycles at ``clock_mhz``.
  ``energy_pj`` is the sum of the parts, ``power_mw`` the average over the time,
  ``tops_per_w`` and ``tops_per_mm2`` count 2 operations per MAC; ``area_mm2`` (PE array and the
  three SRAMs, not the DMA engine, controller or wiring) is the same on every row.
"""

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import pandas as pd
import simpy

from peforge.models.integer import ceil_div

from . import energy
from .accelerator import Accelerator
from .families import family
from .memory import DRAM_TYPES, SramCost, dram_type, sram_cost
from .tiling import Mapping, MappingError, legal_mappings, ranked_mappings
from .workloads import Gemm

__all__ = ["Mapping", "GemmResult", "AcceleratorCosts", "simulate_gemm", "simulate_workload",
           "accelerator_costs", "legal_mappings", "scalesim_compute_cycles", "MappingError",
           "METRIC_COLUMNS", "SRAMS"]

#: The numeric columns of :func:`simulate_workload`'s table (per GEMM and in its ``total`` row),
#: with their units: what sweeps may constrain, optimise and plot.
METRIC_COLUMNS = {
    "macs": "multiply-accumulates",
    "cycles": "cycles",
    "compute_cycles": "cycles",
    "stall_cycles": "cycles",
    "utilisation": "MACs / (PEs x cycles)",
    "dram_read_bytes": "bytes",
    "dram_write_bytes": "bytes",
    "sram_read_bytes": "bytes",
    "sram_write_bytes": "bytes",
    "time_ms": "ms",
    "energy_pe_pj": "pJ",
    "energy_input_sram_pj": "pJ",
    "energy_weight_sram_pj": "pJ",
    "energy_output_sram_pj": "pJ",
    "energy_dram_pj": "pJ",
    "energy_leakage_pj": "pJ",
    "energy_pj": "pJ",
    "power_mw": "mW",
    "area_mm2": "mm2",
    "tops_per_w": "TOPS/W (2 operations per MAC)",
    "tops_per_mm2": "TOPS/mm2 (2 operations per MAC)",
}

#: The SRAMs of an accelerator, as named in its fields (``<name>_sram``) and in the energy columns.
SRAMS = ("input", "weight", "output")


@dataclass(frozen=True)
class GemmResult:
    """One simulated GEMM (already multiplied by its ``count``): cycles and bytes moved, per
    SRAM (:data:`SRAMS`)."""

    gemm: Gemm
    mapping: Mapping
    cycles: int
    compute_cycles: int
    dram_read_bytes: int
    dram_write_bytes: int
    input_sram_read_bytes: int
    input_sram_write_bytes: int
    weight_sram_read_bytes: int
    weight_sram_write_bytes: int
    output_sram_read_bytes: int
    output_sram_write_bytes: int

    @property
    def sram_read_bytes(self) -> int:
        return sum(getattr(self, f"{name}_sram_read_bytes") for name in SRAMS)

    @property
    def sram_write_bytes(self) -> int:
        return sum(getattr(self, f"{name}_sram_write_bytes") for name in SRAMS)


#: The fields of a :class:`GemmResult` that a GEMM's ``count`` multiplies.
_COUNTED = ("cycles", "compute_cycles", "dram_read_bytes", "dram_write_bytes",
            *(f"{name}_sram_{way}_bytes" for name in SRAMS for way in ("read", "write")))


def scalesim_compute_cycles(dataflow: str, rows: int, cols: int, m: int, k: int, n: int) -> int:
    """SCALE-Sim 3.0's compute cycles of an ``m x k x n`` GEMM on a ``rows x cols`` array.

    SCALE-Sim folds the GEMM onto the array and counts ``folds * fold_cycles - 1``: output-
    stationary folds over M and N with ``rows + cols + k - 2`` cycles each; weight-stationary
    over K and N with ``2*rows + cols + m - 2``; input-stationary over K and M with
    ``2*rows + cols + n - 2``. ``m``, ``k``, ``n`` may be integer arrays that broadcast: the
    cycles of each shape.
    """
    if dataflow == "os":
        folds, fold = ceil_div(m, rows) * ceil_div(n, cols), rows + cols + k - 2
    elif dataflow == "ws":
        folds, fold = ceil_div(k, rows) * ceil_div(n, cols), 2 * rows + cols + m - 2
    elif dataflow == "is":
        folds, fold = ceil_div(k, rows) * ceil_div(m, cols), 2 * rows + cols + n - 2
    else:
        raise ValueError(f"dataflow: must be one of os, ws, is, got {dataflow!r}")
    return folds * fold - 1


def _tile_timing(accel: Accelerator, gemm: Gemm):
    """``(cycles(m, k, n), overlap)`` of the array for ``gemm``'s tiles under the accelerator's
    timing mode (``cycles`` of ints, or of integer arrays that broadcast). ``rtl``: the family's
    cycle model for weights ``gemm.w_bits`` wide
    (:meth:`~peforge.sim.families.Family.gemm_cycles`; only a family whose pace depends on the
    weight width uses it: a bit-serial array runs a GEMM of 4-bit or narrower weights at 2 terms
    per slot when it allows a type that wide)."""
    if accel.timing == "rtl":
        fam = family(accel.family)
        return ((lambda m, k, n: fam.gemm_cycles(accel.pe, m, k, n, gemm.w_bits)),
                fam.pipeline_overlap(accel.pe))
    # SCALE-Sim's "- 1" is once per run, so it is the (negative) overlap of the stream.
    dataflow = accel.timing.removeprefix("scalesim-")
    return (lambda m, k, n: scalesim_compute_cycles(dataflow, accel.pe.rows, accel.pe.cols,
                                                    m, k, n)), -1


def _blocks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def _steps(gemm: Gemm, mapping: Mapping):
    """Tiles in visiting order: ``(m_block, k_block, n_block, sizes, first_k, last_k)``."""
    m_sizes, k_sizes, n_sizes = (_blocks(gemm.m, mapping.tm), _blocks(gemm.k, mapping.tk),
                                 _blocks(gemm.n, mapping.tn))
    outer = ([(i, j) for i in range(len(m_sizes)) for j in range(len(n_sizes))]
             if mapping.order == "mn" else
             [(i, j) for j in range(len(n_sizes)) for i in range(len(m_sizes))])
    for i, j in outer:
        for kk in range(len(k_sizes)):
            yield i, kk, j, (m_sizes[i], k_sizes[kk], n_sizes[j]), kk == 0, kk == len(k_sizes) - 1


def _block_counts(gemm: Gemm, mapping: Mapping) -> tuple[int, int, int]:
    return (math.ceil(gemm.m / mapping.tm), math.ceil(gemm.k / mapping.tk),
            math.ceil(gemm.n / mapping.tn))


def _sram_port_cycles(accel: Accelerator, gemm: Gemm, sizes, first_k: bool) -> float:
    """Cycles the SRAM ports need to feed one tile: the A and W blocks read once, the output
    tile written (and, after the first K step, read back to accumulate), each SRAM at
    ``width_bytes * banks`` per cycle."""
    tm, tk, tn = sizes
    out_passes = 1 if first_k else 2
    return max(tm * tk * gemm.a_bits / 8 / accel.input_sram.bytes_per_cycle,
               tk * tn * gemm.w_bits / 8 / accel.weight_sram.bytes_per_cycle,
               out_passes * tm * tn * gemm.out_bits / 8 / accel.output_sram.bytes_per_cycle)


def _traffic(gemm: Gemm, mapping: Mapping) -> dict[str, float]:
    """DRAM bytes (``dram_read``, ``dram_write``) and the bytes read and written in each SRAM
    (``input_sram_read`` ...) of the whole GEMM under ``mapping``.

    A block is loaded again unless the previous tile used the same one: with a single K block,
    the operand indexed by the outer loop stays (A for order ``mn``, W for ``nm``), and both stay
    when the inner outer-loop has a single block too.
    """
    nm, nk, nn = _block_counts(gemm, mapping)
    a_total = gemm.m * gemm.k * gemm.a_bits / 8
    w_total = gemm.k * gemm.n * gemm.w_bits / 8
    o_total = gemm.m * gemm.n * gemm.out_bits / 8
    if mapping.order == "mn":
        a_loads = a_total * (1 if nk == 1 else nn)
        w_loads = w_total * (1 if nk == 1 and nn == 1 else nm)
    else:
        w_loads = w_total * (1 if nk == 1 else nm)
        a_loads = a_total * (1 if nk == 1 and nm == 1 else nn)
    return {"dram_read": a_loads + w_loads, "dram_write": o_total,
            "input_sram_write": a_loads, "input_sram_read": nn * a_total,
            "weight_sram_write": w_loads, "weight_sram_read": nm * w_total,
            "output_sram_write": nk * o_total, "output_sram_read": nk * o_total}


def _step_loads(gemm: Gemm, mapping: Mapping, steps) -> list[float]:
    """DRAM bytes each tile loads before it can run (the rule of :func:`_traffic`)."""
    loads = []
    previous_a = previous_w = None
    for i, kk, j, (tm, tk, tn), _first_k, _last_k in steps:
        load = 0.0
        if (i, kk) != previous_a:
            load += tm * tk * gemm.a_bits / 8
            previous_a = (i, kk)
        if (kk, j) != previous_w:
            load += tk * tn * gemm.w_bits / 8
            previous_w = (kk, j)
        loads.append(load)
    return loads


def _simulate(accel: Accelerator, gemm: Gemm, mapping: Mapping, tile_cycles, overlap):
    """Simulate one GEMM (``count`` 1) under ``mapping``: ``(cycles, compute_cycles)``."""
    env = simpy.Environment()
    output_slots = simpy.Container(env, capacity=2, init=2)
    steps = list(_steps(gemm, mapping))
    loads = _step_loads(gemm, mapping, steps)
    bandwidth, latency = accel.dram.bytes_per_cycle, accel.dram.latency_cycles
    out_bytes = gemm.out_bits / 8
    compute_total = 0
    dram_free = 0.0

    def transfer(nbytes):
        # One DRAM channel, first come first served: a transfer starts when the previous one
        # has finished (requests are made in simulated-time order, so this is a FIFO queue).
        nonlocal dram_free
        dram_free = max(env.now, dram_free) + latency + nbytes / bandwidth
        yield env.timeout(dram_free - env.now)

    def write_back(nbytes):
        yield from transfer(nbytes)
        yield output_slots.put(1)

    def compute():
        # Double buffering: tile i + 1 loads into the slot tile i - 1 freed while tile i runs.
        nonlocal compute_total
        loading = env.process(transfer(loads[0])) if loads[0] else None
        for index, (*_, sizes, first_k, last_k) in enumerate(steps):
            if loading is not None:
                yield loading
            following = index + 1
            loading = (env.process(transfer(loads[following]))
                       if following < len(steps) and loads[following] else None)
            if first_k:
                yield output_slots.get(1)
            cycles = tile_cycles(*sizes) - overlap
            compute_total += cycles
            yield env.timeout(max(cycles, _sram_port_cycles(accel, gemm, sizes, first_k)))
            if last_k:
                env.process(write_back(sizes[0] * sizes[2] * out_bytes))

    env.process(compute())
    env.run()
    return math.ceil(env.now) + overlap, compute_total + overlap


def simulate_gemm(accel: Accelerator, gemm: Gemm, *, candidates: int = 2) -> GemmResult:
    """Simulate ``gemm`` under the fastest of the ``candidates`` best-ranked legal mappings
    (:func:`peforge.sim.tiling.ranked_mappings`).

    Raises :class:`MappingError` when no tiling fits the buffers. Results are cached per
    accelerator and GEMM shape (the name does not matter).
    """
    shape = replace(gemm, name="", count=1)
    result = _simulate_shape(accel, shape, candidates)
    return replace(result, gemm=gemm,
                   **{name: getattr(result, name) * gemm.count for name in _COUNTED})


@lru_cache(maxsize=4096)
def _simulate_shape(accel: Accelerator, gemm: Gemm, candidates: int) -> GemmResult:
    tile_cycles, overlap = _tile_timing(accel, gemm)
    best = None
    # Simulate the best-ranked mapping and any runner-up whose bound is within 2% of it.
    for mapping in ranked_mappings(accel, gemm, tile_cycles, overlap, candidates):
        cycles, compute_cycles = _simulate(accel, gemm, mapping, tile_cycles, overlap)
        if best is None or cycles < best[1]:
            best = (mapping, cycles, compute_cycles)
    mapping, cycles, compute_cycles = best
    return GemmResult(gemm, mapping, cycles, compute_cycles,
                      **{f"{name}_bytes": round(value)
                         for name, value in _traffic(gemm, mapping).items()})


@dataclass(frozen=True)
class AcceleratorCosts:
    """What one MAC, one SRAM or DRAM byte and one second cost on an accelerator (45 nm).

    Attributes
    ----------
    pj_per_mac : float
        Dynamic energy of the PE array per useful MAC (pJ).
    srams : dict of str to SramCost
        Per SRAM of :data:`SRAMS`: energy per byte read and written, leakage, area.
    dram_pj_per_byte : float
        Energy per byte read from or written to DRAM (pJ).
    array_leakage_mw, array_area_mm2 : float
        Leakage (mW) and area (mm2) of the whole PE array.
    """

    pj_per_mac: float
    srams: dict
    dram_pj_per_byte: float
    array_leakage_mw: float
    array_area_mm2: float

    @property
    def leakage_mw(self) -> float:
        """PE array and SRAM leakage (mW)."""
        return self.array_leakage_mw + sum(cost.leakage_mw for cost in self.srams.values())

    @property
    def area_mm2(self) -> float:
        """PE array and SRAM area (mm2)."""
        return self.array_area_mm2 + sum(cost.area_mm2 for cost in self.srams.values())


@lru_cache(maxsize=256)
def _op_energy(family_name: str, config, stats: str) -> "energy.OpEnergy":
    """The family's energy per MAC (cached on disk by :mod:`peforge.sim.energy`, and here per
    process: sweeps ask for the same array thousands of times). ``config`` is the family's
    reduced configuration (``energy_config``, what :func:`peforge.sim.energy.op_energy`
    measures), so arrays that differ only in size share one look-up."""
    return energy.op_energy(family_name, config, stats=stats)


def accelerator_costs(accel: Accelerator) -> AcceleratorCosts:
    """The unit costs of ``accel``'s PE array (measured on a reduced top of the same PE and
    scaled by ``pes``), SRAMs and DRAM (module docstring)."""
    op = _op_energy(accel.family, family(accel.family).energy_config(accel.pe), accel.stats)
    scale = accel.pes / op.pes
    srams: dict[str, SramCost] = {}
    for name in SRAMS:
        sram = getattr(accel, f"{name}_sram")
        srams[name] = sram_cost(sram.size_bytes, sram.width_bytes, sram.banks)
    return AcceleratorCosts(op.pj_per_mac, srams,
                            8 * DRAM_TYPES[dram_type(accel.dram.name)].pj_per_bit,
                            op.leakage_uw * scale / 1e3, op.area_um2 * scale / 1e6)


def _energy_row(costs: AcceleratorCosts, result: GemmResult, clock_mhz: float) -> dict:
    """Energy of one simulated GEMM by component (pJ)."""
    row = {"energy_pe_pj": result.gemm.macs * costs.pj_per_mac}
    for name, cost in costs.srams.items():
        row[f"energy_{name}_sram_pj"] = (
            getattr(result, f"{name}_sram_read_bytes") * cost.read_pj_per_byte
            + getattr(result, f"{name}_sram_write_bytes") * cost.write_pj_per_byte)
    row["energy_dram_pj"] = ((result.dram_read_bytes + result.dram_write_bytes)
                             * costs.dram_pj_per_byte)
    # mW over seconds: 1 mW for 1 s is 1e9 pJ.
    row["energy_leakage_pj"] = costs.leakage_mw * 1e9 * result.cycles / (clock_mhz * 1e6)
    row["energy_pj"] = sum(row.values())
    return row


def simulate_workload(accel: Accelerator, gemms: list[Gemm]) -> pd.DataFrame:
    """One row per GEMM and a ``total`` row: cycles (compute and stall), utilisation, memory
    traffic, time at the accelerator clock, energy by component, average power, area, TOPS/W
    and TOPS/mm2 (units in :data:`METRIC_COLUMNS`) and the mapping chosen."""
    pes = accel.pes
    results = [simulate_gemm(accel, gemm) for gemm in gemms]
    costs = accelerator_costs(accel)
    rows = []
    for gemm, result in zip(gemms, results):
        rows.append({
            "layer": gemm.name, "m": gemm.m, "k": gemm.k, "n": gemm.n, "count": gemm.count,
            "macs": gemm.macs, "cycles": result.cycles, "compute_cycles": result.compute_cycles,
            "stall_cycles": result.cycles - result.compute_cycles,
            "dram_read_bytes": result.dram_read_bytes,
            "dram_write_bytes": result.dram_write_bytes,
            "sram_read_bytes": result.sram_read_bytes,
            "sram_write_bytes": result.sram_write_bytes,
            **_energy_row(costs, result, accel.clock_mhz),
            "mapping": str(result.mapping),
        })
    table = pd.DataFrame(rows)
    total = table.drop(columns=["layer", "m", "k", "n", "count", "mapping"]).sum()
    table = pd.concat([table, pd.DataFrame([{"layer": "total", **total.to_dict(),
                                             "mapping": ""}])], ignore_index=True)
    table[["m", "k", "n", "count"]] = table[["m", "k", "n", "count"]].astype("Int64")
    table["utilisation"] = table["macs"] / (pes * table["cycles"])
    table["time_ms"] = table["cycles"] / (accel.clock_mhz * 1e3)
    # pJ over ms: 1 pJ per ms is 1e-6 mW.
    table["power_mw"] = table["energy_pj"] * 1e-6 / table["time_ms"]
    table["area_mm2"] = costs.area_mm2
    table["tops_per_w"] = 2 * table["macs"] / table["energy_pj"]
    table["tops_per_mm2"] = 2 * table["macs"] / (table["time_ms"] * 1e9) / costs.area_mm2
    return table
