"""How close optuna's NSGA-II search comes to the grid's Pareto front, against random sampling of
the same number of points, on the shipped space ``sweeps/search.yaml`` (558 points).

The grid runs first and stores every point; each NSGA-II run (``--budgets`` x ``--seeds``,
population ``--population``) then runs on the same database, so it finds its points' results
there instead of simulating them again: the sampler sees exactly the values it would have
computed, and ``points_used`` counts the distinct points it asked for (its budget). A random run
is ``points_used`` distinct points drawn uniformly from the grid. For each run,
:func:`peforge.sim.explore.report.search_quality` gives ``front_share`` (the share of the grid's
Pareto-optimal points among the run's points) and ``hypervolume_ratio`` (the hypervolume of the
run's own front over the grid front's, objectives normalised over the grid).

Writes ``reports/bench/sweep_search.csv`` (one row per run) and prints the means per method and
budget. Run: ``.venv/bin/python bench/sweep_search.py [--budgets 28 56 112] [--seeds 0 1 2]``.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from peforge.sweeps import shipped_sweep
from peforge.sim.explore.results import ResultStore
from peforge.sim.explore.search import run_sweep
from peforge.sim.explore.spec import load_sweep
from peforge.sim.explore.report import search_quality, sweep_rows
from peforge.sim.studies.tables import print_table, write_table

SEARCH_SWEEP = shipped_sweep("search")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[28, 56, 112])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--population", type=int, default=14)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("reports/bench/sweep_search.csv"))
    args = parser.parse_args()
    sweep = load_sweep(SEARCH_SWEEP)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "search.db"
        grid = run_sweep(sweep, db, workers=args.workers, quiet=True)
        print(f"grid: {grid.points_evaluated} points in {grid.seconds:.1f} s")
        for budget in args.budgets:
            for seed in args.seeds:
                run_sweep(sweep, db, search="optuna", budget=budget, seed=seed,
                          population=args.population, workers=args.workers, quiet=True)
        with ResultStore(db) as store:
            rows = sweep_rows(store, sweep.name)
            spec = store.sweeps()[sweep.name]
            runs = store.runs()
            points = store.run_points()
    optuna_runs = runs[runs["search"] == "optuna"].copy()
    optuna_runs["budget"] = [budget for budget in args.budgets for _ in args.seeds]
    optuna_runs["seed"] = [seed for _ in args.budgets for seed in args.seeds]
    # Random baselines: the same budgets and seeds, distinct points drawn uniformly.
    random_runs, random_points = [], []
    every = rows["point"].unique()
    for index, (budget, seed) in enumerate(
            [(budget, seed) for budget in args.budgets for seed in args.seeds]):
        run = -(index + 1)
        chosen = np.random.default_rng(seed).choice(every, size=budget, replace=False)
        random_points += [{"run": run, "point": point} for point in chosen]
        random_runs.append({"id": run, "sweep": sweep.name, "search": "random",
                            "points_asked": budget, "budget": budget, "seed": seed})
    all_runs = pd.concat([runs[runs["search"] == "grid"], optuna_runs,
                          pd.DataFrame(random_runs)], ignore_index=True)
    quality = search_quality(rows, pd.concat([points, pd.DataFrame(random_points)]), all_runs,
                             spec)
    quality["budget"] = quality["budget"].fillna(quality["points_asked"]).astype(int)
    quality = quality.rename(columns={"points_asked": "points_used"})
    columns = ["search", "budget", "seed", "points_used", "front_share", "hypervolume_ratio"]
    write_table(quality[columns], args.out)
    print()
    print_table(quality.groupby(["search", "budget"], sort=False)[
        ["points_used", "front_share", "hypervolume_ratio"]].mean().reset_index())


if __name__ == "__main__":
    main()
