"""Searching a sweep's space: every point of the grid, or optuna's NSGA-II; :func:`run_sweep`.

Searches
    ``grid``: every point. ``optuna``: optuna's NSGA-II sampler (multi-objective, with the
    constraints as its ``constraints_func``), asking for generations of ``population`` points
    until ``budget`` points have been used (evaluated, or found in the database); each constraint
    is a trial constraint (``Trial.set_constraint``, the worst workload's violation), so feasible
    points dominate infeasible ones. Its search space is fixed: the family is a
    categorical choice and every axis of every family an integer index into the axis's values,
    so crossover and mutation act on the whole vector; a trial whose family lacks an axis ignores
    that index, and a point seen before is answered from the results instead of re-evaluated.
    Each objective of a point is the mean of its value over the workloads.
"""

import os
import time

from peforge.sim.explore.points import LEVEL_COLUMNS, LEVELS, make_task, metric_units
from peforge.sim.explore.results import ResultStore
from peforge.sim.explore.runner import EXECUTORS, Runner, SweepRun, open_executor
from peforge.sim.explore.spec import Sweep

__all__ = ["SEARCHES", "run_sweep"]

SEARCHES = ("grid", "optuna")


def run_sweep(sweep: Sweep, db, *, search: str = "grid", budget: int | None = None,
              level: str = "model", executor: str = "local", scheduler: str | None = None,
              workers: int | None = None, quiet: bool = False, seed: int = 0,
              population: int = 20, retry_failed: bool = False) -> SweepRun:
    """Run ``sweep`` into the results database ``db`` (see the module docstring).

    ``budget``: with ``optuna``, the number of new points to evaluate (required); with ``grid``,
    none. ``workers``: processes of the local pool or of a dask LocalCluster (default: the CPU
    count); with ``scheduler`` the cluster's own workers run the points. ``quiet`` hides the
    progress bar (it is also hidden when stderr is not a terminal).
    """
    from tqdm import tqdm

    for name, value, allowed in (("search", search, SEARCHES), ("level", level, LEVELS),
                                 ("executor", executor, EXECUTORS)):
        if value not in allowed:
            raise ValueError(f"{name}: must be one of {', '.join(allowed)}, got {value!r}")
    units = metric_units(level)
    for metric in [c.metric for c in sweep.constraints] + list(sweep.objectives):
        if metric not in units:
            needs = next(name for name in LEVELS if metric in LEVEL_COLUMNS[name])
            raise ValueError(f"level: {metric} is measured at level {needs} (--{needs}), "
                             f"this sweep runs at {level}")
    if search == "optuna" and (isinstance(budget, bool) or not isinstance(budget, int)
                               or budget < 1):
        raise ValueError(f"budget: --search optuna needs a positive number of points, "
                         f"got {budget!r}")
    if search == "grid" and budget is not None:
        raise ValueError("budget: applies to --search optuna (a grid runs every point)")
    if scheduler is not None and executor != "dask":
        raise ValueError("scheduler: applies to --executor dask")
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers: must be a positive integer, got {workers}")
    started = time.perf_counter()
    with ResultStore(db) as store:
        store.save_sweep(sweep.name, sweep.describe())
        run = SweepRun(sweep.name, search, level, store.start_run(sweep.name, search, level))
        total = sweep.size if search == "grid" else min(budget, sweep.size)
        with tqdm(total=total, unit="point", disable=True if quiet else None,
                  desc=sweep.name, dynamic_ncols=True) as progress, \
                open_executor(executor, scheduler, workers) as pool:
            runner = Runner(store, run, pool, workers, progress, retry_failed)
            if search == "grid":
                runner.evaluate((make_task(values, sweep.workloads, level)
                                 for values in sweep.points()), sweep.size)
            else:
                _optuna_search(sweep, runner, store, level, budget, seed, population)
        run.seconds = time.perf_counter() - started
        store.finish_run(run.run, run.points_asked, run.points_evaluated)
    return run


def _objective_values(sweep: Sweep, rows) -> tuple[list[float] | None, list[float]]:
    """A point's objectives (each the mean of the metric over its workloads' rows) and its
    constraint violations (the worst workload's; <= 0 is met), or ``(None, [])`` when a row
    failed."""
    if any(row["status"] != "ok" for row in rows):
        return None, []
    values = [sum(row["metrics"][metric] for row in rows) / len(rows)
              for metric in sweep.objectives]
    violations = [max(c.violation(row["metrics"][c.metric]) for row in rows)
                  for c in sweep.constraints]
    return values, violations


def _optuna_search(sweep: Sweep, runner: Runner, store: ResultStore, level: str, budget: int,
                   seed: int, population: int) -> None:
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    study = optuna.create_study(directions=[("minimize" if d == "min" else "maximize")
                                            for d in sweep.objectives.values()], sampler=sampler)
    family_names = list(sweep.axes)
    seen: dict[str, list[dict]] = {}
    # A generous cap on trials: once the space is (almost) exhausted, asks repeat old points.
    for _generation in range(max(1, 50 * budget // population)):
        if runner.run.points_evaluated + runner.run.points_skipped >= min(budget, sweep.size):
            break
        trials, tasks = [], []
        for _ in range(population):
            trial = study.ask()
            name = trial.suggest_categorical("family", family_names)
            values = {"family": name}
            for fam_name in family_names:
                for axis in (axis for axis in sweep.axes[fam_name] if len(axis.values) > 1):
                    index = trial.suggest_int(f"{fam_name}:{axis.key}", 0, len(axis.values) - 1)
                    if fam_name == name:
                        values[axis.key] = axis.values[index]
            values.update({axis.key: axis.values[0] for axis in sweep.axes[name]
                           if len(axis.values) == 1})
            task = make_task(values, sweep.workloads, level)
            trials.append((trial, task))
            if task.point not in seen and task.point not in {t.point for t in tasks}:
                tasks.append(task)
        room = min(budget, sweep.size) - runner.run.points_evaluated - runner.run.points_skipped
        runner.evaluate(tasks[:room], len(tasks[:room]))
        found = store.rows_of({key for task in tasks[:room] for key in task.keys})
        for task in tasks[:room]:
            seen[task.point] = [found[key] for key in task.keys]
        for trial, task in trials:
            if task.point not in seen:
                study.tell(trial, state=TrialState.PRUNED)
                continue
            values, violations = _objective_values(sweep, seen[task.point])
            if values is None:
                study.tell(trial, state=TrialState.FAIL)
                continue
            for constraint, violation in zip(sweep.constraints, violations):
                trial.set_constraint(str(constraint), violation)
            study.tell(trial, values)
