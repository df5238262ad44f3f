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

import logging
import os
import time
from dataclasses import dataclass
from itertools import islice, product

from peforge.sim.explore.points import (LEVEL_COLUMNS, LEVELS, build_accelerator,
                                        evaluate_point, make_task, metric_units, model_version)
from peforge.sim.explore.pools import CONNECT_TIMEOUT_S, EXECUTORS, open_executor
from peforge.sim.explore.results import ResultStore
from peforge.sim.explore.runner import Runner, SweepRun
from peforge.sim.explore.spec import Sweep

__all__ = ["SEARCHES", "MAX_POINTS", "SweepPlan", "plan_sweep", "estimate_seconds",
           "accuracy_specs", "estimate_accuracy_seconds", "run_sweep"]

SEARCHES = ("grid", "optuna")

_log = logging.getLogger(__name__)


#: Most points a run evaluates unless told otherwise (``--max-points``): about ten minutes of
#: model-only points on two cores.
MAX_POINTS = 1_000_000


@dataclass(frozen=True)
class SweepPlan:
    """What a run will do, checked before anything runs: ``points`` to use (the grid, or the
    optuna budget), each on ``workloads`` workloads, by ``workers`` processes."""

    sweep: str
    search: str
    level: str
    executor: str
    points: int
    workloads: int
    workers: int


def plan_sweep(sweep: Sweep, *, search: str = "grid", budget: int | None = None,
               level: str = "model", executor: str = "local", scheduler: str | None = None,
               workers: int | None = None, max_points: int = MAX_POINTS) -> SweepPlan:
    """Check a run's options against ``sweep`` (raises ValueError naming the option) and size
    it: a grid of more than ``max_points`` points is refused before any is built."""
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
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
        raise ValueError(f"max-points: must be a positive integer, got {max_points!r}")
    points = sweep.size if search == "grid" else min(budget, sweep.size)
    if points > max_points:
        what = "the grid has" if search == "grid" else "--budget asks for"
        raise ValueError(f"max-points: {what} {points} points, more than --max-points "
                         f"{max_points} (raise it to run them)")
    return SweepPlan(sweep.name, search, level, executor, points, len(sweep.workloads), workers)


def estimate_seconds(sweep: Sweep, plan: SweepPlan, sample_seconds: float = 1.0) -> tuple[
        float, int]:
    """``(seconds, points timed)``: the run's wall time estimated from points spread over the
    grid evaluated here, one after the other, for about ``sample_seconds`` (2 to 64 points) at
    level ``model`` (synthesis and Verilator are not timed), shared by ``plan.workers``."""
    every = max(1, sweep.size // 64)
    started = time.perf_counter()
    timed = 0
    for values in islice(sweep.points(), 0, None, every):
        evaluate_point(make_task(values, sweep.workloads, "model"))
        timed += 1
        if timed >= 64 or (timed >= 2 and time.perf_counter() - started > sample_seconds):
            break
    per_point = (time.perf_counter() - started) / timed
    return per_point * plan.points / plan.workers, timed


def accuracy_specs(sweep: Sweep) -> tuple[str, ...]:
    """The distinct arithmetics (``peforge numerics`` specs) of the grid's points, in order:
    one per family and combination of its ``pe.`` axes (a point's PE configuration is built
    from those alone). Points whose configuration is rejected, or whose family has no
    whole-GEMM numerics, measure none."""
    from peforge.sim.numerics.accuracy import arith_spec

    specs = {}
    for name, axes in sweep.axes.items():
        pe_axes = [axis for axis in axes if axis.key.startswith("pe.")]
        for values in product(*(axis.values for axis in pe_axes)):
            try:
                accel = build_accelerator({"family": name, **{axis.key: value for axis, value
                                                             in zip(pe_axes, values)}})
                specs[arith_spec(name, accel.pe)] = None
            except ValueError:      # ArithError too: such points fail, measuring nothing
                continue
    return tuple(specs)


def estimate_accuracy_seconds(sweep: Sweep) -> tuple[float, int, int]:
    """``(seconds, arithmetics, cached)``: the estimated time of the accuracy metrics a run of
    ``sweep`` computes (none unless it names one), each of its :func:`accuracy_specs` measured
    once (:func:`~peforge.sim.numerics.accuracy.accuracy_seconds`; 0 for the ``cached`` ones
    the cache holds). Not divided among workers: the points of an arithmetic wait for its one
    measurement. With optuna, every arithmetic of the grid: an upper bound."""
    from peforge.sim.numerics.accuracy import accuracy_seconds

    if not sweep.optional_metrics:
        return 0.0, 0, 0
    times = [accuracy_seconds(spec, model_version()) for spec in accuracy_specs(sweep)]
    return sum(times), len(times), times.count(0.0)


def run_sweep(sweep: Sweep, db, *, search: str = "grid", budget: int | None = None,
              level: str = "model", executor: str = "local", scheduler: str | None = None,
              workers: int | None = None, quiet: bool = False, seed: int = 0,
              population: int = 20, retry_failed: bool = False, max_points: int = MAX_POINTS,
              connect_timeout: float = CONNECT_TIMEOUT_S) -> SweepRun:
    """Run ``sweep`` into the results database ``db``, in stages: check and size the run
    (:func:`plan_sweep`), open the database and record the run, start the executor, search
    (the grid, or optuna), record the run's end.

    ``budget``: with ``optuna``, the number of new points to evaluate (required); with ``grid``,
    none. ``workers``: processes of the local pool or of a dask LocalCluster (default: the CPU
    count); with ``scheduler`` the cluster's own workers run the points. ``quiet`` hides the
    progress bar; otherwise it is shown as the other progress lines are
    (:func:`~peforge.sim.cli.common.progress_shown`: on a terminal, or with
    ``PEFORGE_PROGRESS=1``; never with ``PEFORGE_PROGRESS=0``). Stored rows of another
    model version (:func:`~peforge.sim.explore.points.model_version`) are evaluated again.
    """
    from tqdm import tqdm

    from peforge.sim.cli.common import progress_shown

    plan = plan_sweep(sweep, search=search, budget=budget, level=level, executor=executor,
                      scheduler=scheduler, workers=workers, max_points=max_points)
    started = time.perf_counter()
    with ResultStore(db) as store:
        older = store.older_rows(model_version())
        if older:
            _log.warning("sweep: %d stored rows of %s come from an older model (another peforge "
                         "or edited model code): this sweep's among them are evaluated again",
                         older, store.path)
        store.save_sweep(sweep.name, sweep.describe())
        run = SweepRun(sweep.name, search, level, store.start_run(sweep.name, search, level))
        with tqdm(total=plan.points, unit="point", disable=quiet or not progress_shown(),
                  desc=sweep.name, dynamic_ncols=True) as progress, \
                open_executor(executor, scheduler, plan.workers, connect_timeout) as pool:
            runner = Runner(store, run, pool, plan.workers, progress, retry_failed)
            if search == "grid":
                runner.evaluate((make_task(values, sweep.workloads, level,
                                           sweep.optional_metrics)
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
            task = make_task(values, sweep.workloads, level, sweep.optional_metrics)
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
