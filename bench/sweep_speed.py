"""Model-only sweep throughput: points per minute on the local process pool and on a dask
LocalCluster, and where a point's time goes.

The sweep is the shipped ``sweeps/demo.yaml`` (every family, each point on LLaMA-2-7B
decode and prefill of 256 tokens), run from an empty results database each time with
``--workers`` processes (default 2), so every point is simulated. ``points_per_min`` is points
over the wall time of :func:`peforge.sim.sweep.run_sweep` (pool or cluster start-up included);
the target of issue 9 is 100,000. The load average of the machine at the end of each run is
recorded: other jobs on the same cores slow the sweep down.

The profile evaluates ``--profile-points`` points spread evenly over the same sweep one after
the other in this process under cProfile and splits their time into the simpy simulation of the chosen mappings
(``perf._simulate``), the ranking of every legal tiling by its bound
(``tiling.ranked_mappings``), the PE array's energy per MAC (``perf._op_energy``: the reduced top's Verilog and the disk cache of
:mod:`peforge.sim.energy`, once per configuration and process; the gate-level runs themselves are
done before the profile by the throughput runs), the workload's GEMM list, the pandas table of ``simulate_workload`` and the rest; the parent's own
work per point (building and hashing the configuration, storing its rows: the points go in one
transaction, as a sweep stores a chunk) is timed separately.

Writes ``reports/bench/sweep_speed.csv`` and ``reports/bench/sweep_profile.csv`` and prints
both. Run: ``.venv/bin/python bench/sweep_speed.py [--workers 2] [--profile-points 40]``.
"""

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path

import pandas as pd

from peforge.sim import perf
from peforge.sim.demo import DEMO_SWEEP
from peforge.sim.results import ResultStore
from peforge.sim.sweep import _task, evaluate_point, load_sweep, run_sweep
from peforge.sim.tables import write_table

TARGET_POINTS_PER_MIN = 100_000

#: Profiled functions: label -> (file suffix, function name) as pstats names them.
PROFILED = {
    "simpy simulation of the chosen mappings (perf._simulate)": ("perf.py", "_simulate"),
    "ranking the legal tilings by their bound (tiling.ranked_mappings)":
        ("tiling.py", "ranked_mappings"),
    "energy per MAC of the PE array (perf._op_energy: reduced top, disk cache)":
        ("perf.py", "_op_energy"),
    "GEMM lists of the workloads (workload_gemms)": ("workloads.py", "workload_gemms"),
    "the whole of simulate_workload": ("perf.py", "simulate_workload"),
}


def throughput(sweep, executor: str, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        run = run_sweep(sweep, Path(folder) / "speed.db", executor=executor, workers=workers,
                        quiet=True)
    return {"executor": executor, "workers": workers, "points": run.points_evaluated,
            "rows": run.points_evaluated * len(sweep.workloads), "seconds": run.seconds,
            "points_per_min": run.points_evaluated / run.seconds * 60,
            "target_points_per_min": TARGET_POINTS_PER_MIN,
            "load_average_1min": os.getloadavg()[0]}


def profile(sweep, points: int) -> pd.DataFrame:
    every = list(sweep.points())
    chosen = every[::max(1, len(every) // points)][:points]
    tasks = [_task(values, sweep.workloads, "model") for values in chosen]
    perf._simulate_shape.cache_clear()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    rows = [evaluate_point(task) for task in tasks]
    profiler.disable()
    total = time.perf_counter() - started
    stats = pstats.Stats(profiler).stats
    cumulative = {label: sum(entry[3] for (path, _line, name), entry in stats.items()
                             if path.endswith(suffix) and name == function)
                  for label, (suffix, function) in PROFILED.items()}
    whole = cumulative.pop("the whole of simulate_workload")
    simulated = sum(seconds for label, seconds in cumulative.items()
                    if "perf." in label or "tiling." in label)
    gemm_lists = cumulative["GEMM lists of the workloads (workload_gemms)"]
    table = [{"part": label, "seconds": seconds} for label, seconds in cumulative.items()]
    table += [{"part": "rest of simulate_workload (per-GEMM loop, pandas table)",
               "seconds": whole - simulated},
              {"part": "rest of evaluate_point", "seconds": total - whole - gemm_lists}]
    with tempfile.TemporaryDirectory() as folder, ResultStore(Path(folder) / "p.db") as store:
        started = time.perf_counter()
        for values in chosen:
            _task(values, sweep.workloads, "model")
        store.write_points(rows)
        parent = time.perf_counter() - started
    table.append({"part": "parent: configuration, hashes, the points' rows in one transaction "
                  "(as one chunk)", "seconds": parent})
    frame = pd.DataFrame(table)
    frame["ms_per_point"] = frame["seconds"] / points * 1e3
    frame["share_of_point"] = frame["seconds"] / (total + parent)
    frame.insert(0, "points", points)
    return frame


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile-points", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    args = parser.parse_args()
    sweep = load_sweep(DEMO_SWEEP)
    speed = pd.DataFrame([throughput(sweep, executor, args.workers)
                          for executor in ("local", "dask")])
    write_table(speed, args.out / "sweep_speed.csv")
    print()
    write_table(profile(sweep, args.profile_points), args.out / "sweep_profile.csv")


if __name__ == "__main__":
    main()
