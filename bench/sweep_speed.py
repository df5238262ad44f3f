"""Model-only sweep throughput: points per minute on the local process pool and on a dask
LocalCluster, the two pipeline engines side by side, and where a point's time goes.

The sweep is the shipped ``sweeps/large.yaml`` (24,840 points: every family, array shapes, buffer
sizes and DRAM bandwidths; each point on LLaMA-2-7B decode and prefill of 256 tokens), run from an
empty results database each time with ``--workers`` processes (default 2), so every point is
evaluated and stored. ``points_per_min`` is points over the wall time of
:func:`peforge.sim.explore.search.run_sweep` (pool or cluster start-up included); the target of issue 9 is
100,000 on 2 cores. The CPU time of the parent (building the points, storing their rows) and,
for the local pool, of its workers is given per point, with the machine's load average at the
end of the run: other jobs on the same cores slow the sweep down. Before the first run, one point
of each PE configuration is evaluated here, so the reduced tops' Verilog that the energy look-up
keys on is on disk (a fresh machine generates it once, a few tenths of a second each).

Engines: ``--engine-points`` points spread over the sweep are evaluated one after the other in
this process with each pipeline engine (:data:`peforge.sim.perf.pipeline.ENGINES`), every model cache
emptied first, and their totals must be equal; the table gives milliseconds per point and the
ratio, and the recurrence once more with the caches of the accelerators emptied before each
point (those of the GEMM shapes and tilings kept): the cost of a sweep whose points share no PE
array, no SRAM ports, no DRAM and no set of fitting tilings.

The profile evaluates every ``--profile-stride``-th point of the sweep in grid order in this
process under cProfile and splits the time into bounding every mapping of a shape's grid (once
per shape, PE array, SRAM ports and DRAM, ``peforge.sim.perf.tiling._grid_bounds``), the
recurrence (``peforge.sim.perf.pipeline._recurrence``, with how many of its
calls its cache answered), the unit costs (:func:`peforge.sim.perf.costs.accelerator_costs`)
and the rest; the parent's own work per point
(building and hashing the configuration, storing the rows in one transaction, as a sweep stores a
chunk) is timed separately.

Writes ``reports/bench/sweep_speed.csv``, ``sweep_engines.csv`` and ``sweep_profile.csv`` and
prints them. Run: ``.venv/bin/python bench/sweep_speed.py [--workers 2]``.
"""

import argparse
import cProfile
import os
import pstats
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from peforge.sweeps import shipped_sweep
from peforge.sim.perf import model as perf, pipeline
from peforge.sim.explore.results import ResultStore
from peforge.sim.explore.points import evaluate_points, make_task
from peforge.sim.explore.search import run_sweep
from peforge.sim.explore.spec import load_sweep
from peforge.sim.studies.tables import write_table
from peforge.sim.perf.workloads import workload_gemms

SWEEP = shipped_sweep("large")
TARGET_POINTS_PER_MIN = 100_000

#: Profiled functions: label -> (file suffix, function name) as pstats names them.
PROFILED = {
    "bounds of every mapping of a grid (tiling._grid_bounds)": ("tiling.py", "_grid_bounds"),
    "the recurrence of the mappings not pruned (pipeline._recurrence)":
        ("pipeline.py", "_recurrence"),
    "unit costs: PE energy look-up, SRAMs, DRAM (perf.accelerator_costs)":
        ("costs.py", "accelerator_costs"),
}


def warm_energy(sweep) -> None:
    """Evaluate one point of each PE configuration, so its reduced top's Verilog is on disk."""
    seen = {}
    for values in sweep.points():
        seen.setdefault(tuple(sorted((key, value) for key, value in values.items()
                                     if key == "family" or key.startswith("pe."))), values)
    evaluate_points([make_task(values, sweep.workloads, "model") for values in seen.values()])


def throughput(sweep, executor: str, workers: int) -> dict:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    parent = time.process_time()
    with tempfile.TemporaryDirectory() as folder:
        run = run_sweep(sweep, Path(folder) / "speed.db", executor=executor, workers=workers,
                        quiet=True)
    parent = time.process_time() - parent
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker = (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime)
    points = run.points_evaluated
    return {"executor": executor, "workers": workers, "points": points,
            "failed": run.points_failed, "rows": points * len(sweep.workloads),
            "seconds": run.seconds, "points_per_min": points / run.seconds * 60,
            "target_points_per_min": TARGET_POINTS_PER_MIN,
            "parent_cpu_us_per_point": parent / points * 1e6,
            # dask's worker processes are not this process's children once the cluster is
            # closed the way LocalCluster does it, so their CPU is not counted.
            "worker_cpu_us_per_point": worker / points * 1e6 if executor == "local" else None,
            "load_average_1min": os.getloadavg()[0]}


def engines(sweep, points: int) -> pd.DataFrame:
    every = list(sweep.points())
    chosen = [every[index] for index in range(0, len(every), len(every) // points)][:points]
    tasks = [make_task(values, sweep.workloads, "model") for values in chosen]
    gemms = [workload_gemms(w.workload, phase=w.phase, seq=w.seq) for w in sweep.workloads]
    rows, totals = [], {}
    for engine in ("simpy", "recurrence"):
        perf.clear_caches()
        started = time.perf_counter()
        totals[engine] = [perf.workload_totals(task.accel, workload, engine=engine)
                          for task in tasks for workload in gemms]
        rows.append({"engine": engine, "points": len(tasks),
                     "ms_per_point": (time.perf_counter() - started) / len(tasks) * 1e3})
    assert totals["recurrence"] == totals["simpy"], "the engines disagree"
    # No sharing between points: the accelerator caches emptied before each point (the shapes'
    # grids and loop nests stay, as the recurrence run left them).
    started = time.perf_counter()
    for task in tasks:
        perf.clear_caches(shapes=False)
        for workload in gemms:
            perf.workload_totals(task.accel, workload)
    rows.append({"engine": "recurrence, no point sharing anything with another",
                 "points": len(tasks),
                 "ms_per_point": (time.perf_counter() - started) / len(tasks) * 1e3})
    frame = pd.DataFrame(rows)
    simpy = frame.set_index("engine")["ms_per_point"]["simpy"]
    frame["simpy_over_this"] = simpy / frame["ms_per_point"]
    frame["totals_equal"] = True
    return frame


def profile(sweep, stride: int) -> pd.DataFrame:
    chosen = list(sweep.points())[::stride]
    tasks = [make_task(values, sweep.workloads, "model") for values in chosen]
    perf.clear_caches()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    rows = evaluate_points(tasks)
    profiler.disable()
    total = time.perf_counter() - started
    recurrence = pipeline._recurrence.cache_info()
    stats = pstats.Stats(profiler).stats
    cumulative = {label: sum(entry[3] for (path, _line, name), entry in stats.items()
                             if path.endswith(suffix) and name == function)
                  for label, (suffix, function) in PROFILED.items()}
    table = [{"part": label, "seconds": seconds} for label, seconds in cumulative.items()]
    table.append({"part": "rest of evaluating a point (workload sums, energy rows, results)",
                  "seconds": total - sum(cumulative.values())})
    with tempfile.TemporaryDirectory() as folder, ResultStore(Path(folder) / "p.db") as store:
        started = time.perf_counter()
        for values in chosen:
            make_task(values, sweep.workloads, "model")
        store.write_points(rows)
        parent = time.perf_counter() - started
    table.append({"part": "parent: configuration, hashes, the points' rows in one transaction "
                  "(as one chunk)", "seconds": parent})
    frame = pd.DataFrame(table)
    frame["ms_per_point"] = frame["seconds"] / len(tasks) * 1e3
    frame["share_of_point"] = frame["seconds"] / (total + parent)
    frame.insert(0, "points", len(tasks))
    frame["recurrence_calls"] = recurrence.hits + recurrence.misses
    frame["recurrence_cache_hits"] = recurrence.hits
    return frame


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--engine-points", type=int, default=24)
    parser.add_argument("--profile-stride", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    args = parser.parse_args()
    sweep = load_sweep(SWEEP)
    warm_energy(sweep)
    speed = pd.DataFrame([throughput(sweep, executor, args.workers)
                          for executor in ("local", "dask")])
    write_table(speed, args.out / "sweep_speed.csv")
    print()
    write_table(engines(sweep, args.engine_points), args.out / "sweep_engines.csv")
    print()
    write_table(profile(sweep, args.profile_stride), args.out / "sweep_profile.csv")


if __name__ == "__main__":
    main()
