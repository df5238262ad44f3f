"""Cycle-level performance model of an accelerator running GEMM workloads.

A GEMM is cut into buffer tiles ``tm x tk x tn`` (:class:`Mapping`) visited in one of six loop
orders (:data:`peforge.sim.perf.tiling.ORDERS`); the mapper (:mod:`peforge.sim.perf.mapper`)
simulates the legal mappings a sound bound cannot rule out and keeps the best for the objective
(cycles, energy or energy-delay). Three processes share one DRAM channel (:mod:`peforge.sim.perf.pipeline` gives their
event times exactly, by a simpy reference and by a fast recurrence that agree):

- DMA loads: a tile's A and W blocks are read from DRAM (unless the previous tile used the same
  block; and the partial sums of an output tile the loop order left before its last K step)
  into one of two input/weight buffer slots: the load of tile ``i + 1`` starts when tile
  ``i`` has its operands (double buffering), and tile ``i + 1`` waits for it;
- compute runs the tile on the array for the family's cycle model of a ``tm x tk x tn`` GEMM
  (the RTL's own count; consecutive tiles overlap by the family's ``pipeline_overlap``). Partial
  sums of a split K accumulate in the output (accumulator) SRAM, which has two slots: a new output
  tile waits for a free one. A tile also needs its SRAM ports (``width_bytes * banks`` per
  cycle per SRAM) to deliver its A and W blocks and to write (and after the first K step read
  back) its output tile: it takes the array cycles or the port cycles, whichever is longer;
- write-back writes each output tile to DRAM when the loop order leaves it (partial sums unless
  its reduction is done) and frees its slot.

Each DRAM transfer takes ``latency_cycles + bytes / bytes_per_cycle``, one at a time, in exact
arithmetic (with ``dram.beat_bytes``, each block row counts as whole beats of the DMA,
:func:`peforge.sim.perf.pipeline.block_bits`); a GEMM's cycles are rounded up to a whole cycle
once, at its end. :func:`simulate_mapping` simulates one given mapping without a search. Stalls are
whatever the simulation adds to the array's compute cycles (DRAM waits and SRAM port limits).
Events are per tile, not per cycle.

SRAM traffic, counted per tile (:func:`peforge.sim.perf.mapper.traffic`): A and W blocks are
written once per DRAM load and read once per use by the array; the output tile is written every K
step, read back every K step after the first (accumulation) and once per write-back. For the
generated tile (:func:`simulate_mapping` with ``words``) the reads and output writes are those of
its scratchpad words, per array block (:mod:`peforge.sim.perf.scratchpads`), which is what its
counters measure.

``timing="scalesim-<df>"``: compute cycles are SCALE-Sim 3.0's for the whole layer at once
(:func:`scalesim_compute_cycles` of the GEMM, whatever the memories); the stall estimate is that
of the tiled pipeline (its cycles less its tiles' compute cycles), added on top.

Roofline (:mod:`peforge.sim.perf.roofline`): every row carries its compute and DRAM bounds and the
ratio of its cycles to the larger; utilisation counts the MACs the array performs.

Energy (:mod:`peforge.sim.perf.costs` for the unit costs), at 45 nm: each useful MAC costs the
family's measured energy per MAC (idle PEs, in fill, drain, ragged tiles and stalls, only leak);
each SRAM byte read or written its SRAM's energy per byte; each DRAM byte 8 bits at the DRAM
type's energy per bit; leakage is the array's and SRAMs' leakage power over the cycles at
``clock_mhz``. ``energy_pj`` is the sum of the parts, ``power_mw`` the average over the time,
``tops_per_w`` and ``tops_per_mm2`` count 2 operations per MAC; ``area_mm2`` (PE array and the
three SRAMs, not the DMA engine, controller or wiring) is the same on every row.
"""

import itertools
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter

import pandas as pd

from peforge.sim.perf import mapper, pipeline, roofline, tiling
from peforge.sim.perf.accelerator import Accelerator
from peforge.sim.perf.costs import SRAMS, AcceleratorCosts, _array_energy, accelerator_costs
from peforge.sim.perf.mapper import OBJECTIVES, choose_mapping
from peforge.sim.perf.pipeline import ENGINES
from peforge.sim.perf.scratchpads import ScratchpadWords
from peforge.sim.perf.timing import (_tile_cycles, run_pe, scalesim_compute_cycles,
                                    weight_columns)
from peforge.sim.perf.timing import tile_timing as _tile_timing
from peforge.sim.perf.tiling import Mapping, MappingError, legal_mappings
from peforge.sim.perf.workloads import Gemm

__all__ = ["Mapping", "GemmResult", "AcceleratorCosts", "simulate_gemm", "simulate_mapping",
           "simulate_workload",
           "workload_rows", "workload_totals", "clear_caches", "OBJECTIVES",
           "accelerator_costs", "legal_mappings", "scalesim_compute_cycles", "MappingError",
           "METRIC_COLUMNS", "ENERGY_COLUMNS", "SRAMS"]

#: The numeric columns of :func:`simulate_workload`'s table (per GEMM and in its ``total`` row),
#: with their units: what sweeps may constrain, optimise and plot.
METRIC_COLUMNS = {
    "macs": "multiply-accumulates (dense m*k*n)",
    "cycles": "cycles",
    "compute_cycles": "cycles",
    "stall_cycles": "cycles",
    "utilisation": "performed MACs / (PEs x cycles)",
    "performed_macs": "multiply-accumulates the array performs (N:M sparse: N/M of macs)",
    "compute_bound_cycles": "cycles (performed MACs / PEs)",
    "dram_bound_cycles": "cycles (A, W read and outputs written once, over the DRAM bandwidth)",
    "roofline_ratio": "cycles / max(compute bound, DRAM bound)",
    "mappings_simulated": "mappings",
    "mappings_pruned": "mappings",
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

#: The columns that need the PE array's energy per MAC (NaN in a cycles-only table).
ENERGY_COLUMNS = ("energy_pe_pj", "energy_input_sram_pj", "energy_weight_sram_pj",
                  "energy_output_sram_pj", "energy_dram_pj", "energy_leakage_pj", "energy_pj",
                  "power_mw", "area_mm2", "tops_per_w", "tops_per_mm2")

@dataclass(frozen=True)
class GemmResult:
    """One simulated GEMM (already multiplied by its ``count``): the mapping chosen, how many
    mappings the mapper simulated and pruned (for the shape, once), cycles and bytes moved, per
    SRAM (:data:`SRAMS`)."""

    gemm: Gemm
    mapping: Mapping
    simulated: int
    pruned: int
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
_counted_values = attrgetter(*_COUNTED)


def simulate_gemm(accel: Accelerator, gemm: Gemm, *, engine: str = "recurrence",
                  objective: str = "cycles") -> GemmResult:
    """Simulate ``gemm`` under the mapping the mapper finds optimal for ``objective`` (one of
    :data:`OBJECTIVES`; :func:`peforge.sim.perf.mapper.choose_mapping`).

    ``engine``: one of :data:`peforge.sim.perf.pipeline.ENGINES`, ``recurrence`` (the default) or
    ``simpy`` (the per-tile reference); both give the same results. Raises
    :class:`MappingError` when no tiling fits the buffers. Results are cached per GEMM shape (the
    name does not matter) and, for the ``cycles`` objective, per the accelerator's timing: its
    clock, operand statistics and DRAM type (which set energy, not cycles) do not count, so a
    sweep over them simulates once; nor do its SRAM sizes beyond which tilings they admit
    (:func:`peforge.sim.perf.tiling.legal_key`)."""
    _check(engine, objective)
    return _counted(_simulate_shape(accel, gemm.shape, objective, engine, run_pe(accel, gemm)),
                    gemm)


def simulate_mapping(accel: Accelerator, gemm: Gemm, mapping: Mapping, *,
                     engine: str = "recurrence",
                     words: ScratchpadWords | None = None) -> GemmResult:
    """Simulate ``gemm`` under the given ``mapping``, no search (``simulated`` 1, ``pruned``
    0): what a fixed schedule, such as the generated accelerator tile's, takes. The mapping is
    not checked against the SRAM sizes. ``engine`` as :func:`simulate_gemm`; ``words``: count
    the SRAM traffic word by word per array block (:mod:`peforge.sim.perf.scratchpads`, with
    ``dram.beat_bytes``) rather than once per tile; the times do not depend on it."""
    _check(engine, "cycles")
    shape_gemm = _shape_gemm(gemm.shape)
    tile_cycles, overlap = _tile_timing(accel, gemm)
    cycles, compute = ENGINES[engine](accel, shape_gemm, mapping, tile_cycles, overlap)
    cycles, compute = _layer_timing(accel, shape_gemm, cycles, compute)
    result = GemmResult(shape_gemm, mapping, 1, 0, cycles, compute,
                        *_traffic_bytes(gemm.shape, mapping, accel.dram.beat_bytes, words))
    return _counted(result, gemm)


def _check(engine: str, objective: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"engine: must be one of {', '.join(ENGINES)}, got {engine!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: must be one of {', '.join(OBJECTIVES)}, got {objective!r}")


def _counted(result: GemmResult, gemm: Gemm) -> GemmResult:
    """The result of one ``gemm``'s shape for the GEMM itself: times its ``count``."""
    return GemmResult(gemm, result.mapping, result.simulated, result.pruned,
                      *(getattr(result, name) * gemm.count for name in _COUNTED))


def _simulate_shape(accel: Accelerator, shape: tuple[int, ...], objective: str, engine: str,
                    pe) -> GemmResult:
    """The result of one GEMM (``count`` 1) of ``shape`` on ``accel``'s array run in
    configuration ``pe`` (:func:`peforge.sim.perf.timing.run_pe`), kept by all it depends on:
    the PE array's tile cycles (one object per array configuration, timing and weight width),
    the SRAM ports, the DRAM's bandwidth and latency, which tilings fit the SRAMs (not the sizes
    themselves) and, for the energy objectives, the whole accelerator (its unit costs)."""
    gemm = _shape_gemm(shape)
    tile_cycles, overlap = _tile_cycles(accel.family, pe, accel.timing, gemm.w_bits)
    key = (shape, objective, engine, tile_cycles, overlap, accel.input_sram.bytes_per_cycle,
           accel.weight_sram.bytes_per_cycle, accel.output_sram.bytes_per_cycle,
           accel.dram.bytes_per_cycle, accel.dram.latency_cycles, accel.dram.beat_bytes,
           tiling._legal_key(shape, accel.input_sram.size_bytes, accel.weight_sram.size_bytes,
                             accel.output_sram.size_bytes),
           None if objective == "cycles" else accel)
    result = _results_by_inputs.get(key)
    if result is None:
        if len(_results_by_inputs) >= RESULTS_KEPT:
            for old in list(itertools.islice(_results_by_inputs, RESULTS_KEPT // 2)):
                del _results_by_inputs[old]
        result = _results_by_inputs[key] = _simulate_mappings(
            accel, gemm, tile_cycles, overlap, objective, engine)
    return result


#: How many shapes' results :func:`_simulate_shape` keeps; when full it forgets the older half.
RESULTS_KEPT = 65536

#: :func:`_simulate_shape`'s results by all they depend on (its ``key``): accelerators whose
#: SRAM sizes differ but admit the same tilings share them.
_results_by_inputs: dict[tuple, GemmResult] = {}


def clear_caches(*, shapes: bool = True) -> None:
    """Forget the cycles, traffic and unit costs the model keeps (for benchmarks: the next call
    computes them again); the PE arrays' measured energies per MAC stay (:func:`peforge.sim.perf.costs._op_energy` and
    the disk cache of :mod:`peforge.sim.eda.energy`). ``shapes=False`` keeps what depends only on
    GEMM shapes and tilings (their candidate grids and loop nests, which every point of a sweep
    shares) and forgets what depends on an accelerator."""
    for cached in (_tile_cycles, _array_energy, _accelerator_costs,
                   pipeline._recurrence, tiling._busy, tiling._grid_bounds, tiling._fits,
                   tiling._fitting_sizes, tiling._legal_key):
        cached.cache_clear()
    _results_by_inputs.clear()
    mapper.clear_searches()
    if shapes:
        for cached in (_shape_gemm, _traffic_bytes, pipeline._loop_nest, pipeline._tile_classes,
                       tiling._grid, tiling._mapping):
            cached.cache_clear()


def _energy_terms(accel: Accelerator, gemm: Gemm):
    """The mapper's energy inputs (:func:`peforge.sim.perf.mapper.choose_mapping`) for one
    GEMM: the PE energy, DRAM pJ per byte, leakage pJ per cycle, and the exact energy."""
    costs = accelerator_costs(accel)

    def score(mapping, cycles):
        counted = dict(zip(_COUNTED, (cycles, 0, *_traffic_bytes(gemm.shape, mapping,
                                                                  accel.dram.beat_bytes))))
        return _sums(costs, gemm.macs, counted, accel.clock_mhz)["energy_pj"]

    return (gemm.macs * costs.pj_per_mac, costs.dram_pj_per_byte,
            costs.leakage_mw * 1e3 / accel.clock_mhz, score)


def _simulate_mappings(accel: Accelerator, gemm: Gemm, tile_cycles, overlap: int,
                       objective: str, engine: str) -> GemmResult:
    terms = None if objective == "cycles" else _energy_terms(accel, gemm)
    choice = choose_mapping(accel, gemm, tile_cycles, overlap, engine, objective, terms)
    cycles, compute = _layer_timing(accel, gemm, choice.cycles, choice.compute_cycles)
    return GemmResult(gemm, choice.mapping, choice.simulated, choice.pruned, cycles, compute,
                      *_traffic_bytes(gemm.shape, choice.mapping, accel.dram.beat_bytes))


def _layer_timing(accel: Accelerator, gemm: Gemm, cycles: int, compute: int) -> tuple[int, int]:
    """``(cycles, compute_cycles)`` of the tiled pipeline under the accelerator's timing mode:
    as they are (``rtl``), or SCALE-Sim's layer at once with the pipeline's stalls on top."""
    if accel.timing == "rtl":
        return cycles, compute
    layer = scalesim_compute_cycles(accel.timing.removeprefix("scalesim-"), accel.pe.rows,
                                    accel.pe.cols, gemm.m, gemm.k, gemm.n)
    return layer + cycles - compute, layer


@lru_cache(maxsize=1024)
def _shape_gemm(shape: tuple[int, ...]) -> Gemm:
    """The GEMM (``count`` 1, no name) of a shape (:attr:`Gemm.shape`)."""
    m, k, n, a_bits, w_bits, out_bits = shape
    return Gemm("", m, k, n, 1, a_bits, w_bits, out_bits)


@lru_cache(maxsize=16384)
def _traffic_bytes(shape: tuple[int, ...], mapping: Mapping, beat_bytes: int | None = None,
                   words: ScratchpadWords | None = None) -> tuple[int, ...]:
    """:func:`peforge.sim.perf.mapper.traffic` in whole bytes (rows in whole DMA beats of
    ``beat_bytes``, :class:`~peforge.sim.perf.accelerator.Dram`; SRAM words of ``words``), in
    the order of :class:`GemmResult`'s fields."""
    traffic = mapper.traffic(shape, mapping, 8 * (beat_bytes or 0), words)
    return tuple(round(traffic[name.removesuffix("_bytes")]) for name in _COUNTED[2:])


def _sums(costs: AcceleratorCosts | None, macs: int, counted: dict, clock_mhz: float,
          charged_macs=None) -> dict:
    """The summable metrics of one GEMM or of a workload from its MACs and its counted cycles and
    bytes (:data:`_COUNTED`): cycles, traffic, and energy by component (pJ; NaN without
    ``costs``, a cycles-only table). The PE array's energy is ``charged_macs`` (default
    ``macs``, :func:`peforge.sim.perf.roofline.charged_macs`) at its energy per MAC."""
    row = {"macs": macs, "cycles": counted["cycles"], "compute_cycles": counted["compute_cycles"],
           "stall_cycles": counted["cycles"] - counted["compute_cycles"],
           "dram_read_bytes": counted["dram_read_bytes"],
           "dram_write_bytes": counted["dram_write_bytes"],
           "sram_read_bytes": sum(counted[f"{name}_sram_read_bytes"] for name in SRAMS),
           "sram_write_bytes": sum(counted[f"{name}_sram_write_bytes"] for name in SRAMS)}
    if costs is None:
        return {**row, **dict.fromkeys(ENERGY_COLUMNS[:7], float("nan"))}
    energy = {"energy_pe_pj": (macs if charged_macs is None else charged_macs)
              * costs.pj_per_mac}
    for name, cost in costs.srams.items():
        energy[f"energy_{name}_sram_pj"] = (
            counted[f"{name}_sram_read_bytes"] * cost.read_pj_per_byte
            + counted[f"{name}_sram_write_bytes"] * cost.write_pj_per_byte)
    energy["energy_dram_pj"] = ((counted["dram_read_bytes"] + counted["dram_write_bytes"])
                                * costs.dram_pj_per_byte)
    # mW over seconds: 1 mW for 1 s is 1e9 pJ.
    energy["energy_leakage_pj"] = costs.leakage_mw * 1e9 * counted["cycles"] / (clock_mhz * 1e6)
    energy["energy_pj"] = sum(energy.values())
    return {**row, **energy}


def _derived(row: dict, accel: Accelerator, costs: AcceleratorCosts | None) -> dict:
    """The metrics that follow from a row's sums and roofline bounds: utilisation, roofline
    ratio, time, power, area, TOPS/W and TOPS/mm2 (the last four NaN without ``costs``)."""
    time_ms = row["cycles"] / (accel.clock_mhz * 1e3)
    derived = {"utilisation": row["performed_macs"] / (accel.pes * row["cycles"]),
               "roofline_ratio": roofline.ratio(row["cycles"], row), "time_ms": time_ms}
    if costs is None:
        return {**derived, **dict.fromkeys(ENERGY_COLUMNS[7:], float("nan"))}
    # pJ over ms: 1 pJ per ms is 1e-6 mW.
    return {**derived, "power_mw": row["energy_pj"] * 1e-6 / time_ms, "area_mm2": costs.area_mm2,
            "tops_per_w": 2 * row["macs"] / row["energy_pj"],
            "tops_per_mm2": 2 * row["macs"] / (time_ms * 1e9) / costs.area_mm2}


def _workload_counted(accel: Accelerator, gemms, engine: str, objective: str) -> dict:
    """The counted cycles and bytes (:data:`_COUNTED`) of all ``gemms`` on ``accel``, each shape
    and array mode (:func:`peforge.sim.perf.timing.run_pe`) simulated once, times the GEMMs'
    counts of that shape and mode; and the mappings simulated and pruned, summed over them."""
    groups: dict[tuple, list] = {}  # (shape, weight sparsity) -> [a GEMM of it, count]
    for gemm in gemms:
        group = groups.setdefault((gemm.shape, gemm.w_sparsity), [gemm, 0])
        group[1] += gemm.count
    counts: dict[tuple, int] = {}
    for (shape, _), (gemm, count) in groups.items():
        key = shape, run_pe(accel, gemm)
        counts[key] = counts.get(key, 0) + count
    totals = [0] * len(_COUNTED)
    simulated = pruned = 0
    for (shape, pe), count in counts.items():
        result = _simulate_shape(accel, shape, objective, engine, pe)
        totals = [total + value * count
                  for total, value in zip(totals, _counted_values(result))]
        simulated, pruned = simulated + result.simulated, pruned + result.pruned
    return {**dict(zip(_COUNTED, totals)), "mappings_simulated": simulated,
            "mappings_pruned": pruned}


def _total(accel: Accelerator, costs, gemms, counted: dict) -> dict:
    charged = None if all(gemm.w_sparsity is None for gemm in gemms) else sum(
        roofline.charged_macs(accel, gemm) for gemm in gemms)
    total = {**_sums(costs, sum(gemm.macs for gemm in gemms), counted, accel.clock_mhz, charged),
             **roofline.workload_bounds(accel, gemms),
             "mappings_simulated": counted["mappings_simulated"],
             "mappings_pruned": counted["mappings_pruned"]}
    return {**total, **_derived(total, accel, costs)}


def _costs(accel: Accelerator, energy: bool) -> AcceleratorCosts | None:
    return _accelerator_costs(accel) if energy else None


@lru_cache(maxsize=256)
def _accelerator_costs(accel: Accelerator) -> AcceleratorCosts:
    """:func:`accelerator_costs`, once per accelerator (a sweep's point asks per workload)."""
    return accelerator_costs(accel)


def workload_totals(accel: Accelerator, gemms: list[Gemm], *, engine: str = "recurrence",
                    objective: str = "cycles", energy: bool = True) -> dict:
    """The ``total`` row of :func:`simulate_workload`: its metrics (:data:`METRIC_COLUMNS`), what
    a sweep stores. The energies are those of the whole workload's MACs, traffic and cycles."""
    _check(engine, objective)
    counted = _workload_counted(accel, gemms, engine, objective)
    return _total(accel, _costs(accel, energy), gemms, counted)


def workload_rows(accel: Accelerator, gemms: list[Gemm], *, engine: str = "recurrence",
                  objective: str = "cycles", energy: bool = True) -> tuple[list[dict], dict]:
    """The rows of :func:`simulate_workload` as dicts: one per GEMM, and the ``total`` row's
    metrics (:func:`workload_totals`)."""
    _check(engine, objective)
    costs = _costs(accel, energy)
    rows = []
    for gemm in gemms:
        pe = run_pe(accel, gemm)
        result = _counted(_simulate_shape(accel, gemm.shape, objective, engine, pe), gemm)
        row = {"layer": gemm.name, "m": gemm.m, "k": gemm.k, "n": gemm.n, "count": gemm.count,
               **_sums(costs, gemm.macs, {name: getattr(result, name) for name in _COUNTED},
                       accel.clock_mhz, roofline.charged_macs(accel, gemm)),
               **roofline.gemm_bounds(accel, gemm), "mappings_simulated": result.simulated,
               "mappings_pruned": result.pruned, "mapping": str(result.mapping),
               **weight_columns(accel, gemm, pe)}
        rows.append({**row, **_derived(row, accel, costs)})
    totals = _total(accel, costs, gemms, _workload_counted(accel, gemms, engine, objective))
    return rows, totals


def simulate_workload(accel: Accelerator, gemms: list[Gemm], *, engine: str = "recurrence",
                      objective: str = "cycles", energy: bool = True) -> pd.DataFrame:
    """One row per GEMM and a ``total`` row: cycles (compute and stall), utilisation, roofline
    bounds and ratio, the mapping chosen and how many mappings were simulated and pruned, memory
    traffic, time at the accelerator clock, energy by component, average power, area, TOPS/W
    and TOPS/mm2 (units in :data:`METRIC_COLUMNS`); per GEMM of measured weights, their zero
    fraction and N:M pattern, and a note where the array runs it in another mode than
    configured (:func:`~peforge.sim.perf.timing.weight_columns`). ``engine`` and ``objective`` as
    :func:`simulate_gemm`; ``energy=False``: cycles only, the energy columns NaN (no energy per
    MAC is looked up, so no gate-level flow is ever needed; not with an energy objective)."""
    if objective != "cycles" and not energy:
        raise ValueError(f"objective: {objective} needs the energy model (energy=False given)")
    rows, total = workload_rows(accel, gemms, engine=engine, objective=objective, energy=energy)
    table = pd.DataFrame([*rows, {"layer": "total", **total, "mapping": ""}])
    table[["m", "k", "n", "count"]] = table[["m", "k", "n", "count"]].astype("Int64")
    return table
