"""The design-space commands: ``sweep`` into a results database, ``results`` to read one and
``report`` to write a sweep's report or run a family study (peforge.sim.studies)."""

import signal
import sqlite3
import sys
import time
from pathlib import Path

from peforge.sim.cli import results as results_cli
from peforge.sim.cli.common import Parser, fail, stage
from peforge.sim.explore.pools import CONNECT_TIMEOUT_S, EXECUTORS
from peforge.sim.explore.search import MAX_POINTS, SEARCHES
from peforge.sim.studies import STUDIES

__all__ = ["add_commands"]


def add_commands(commands) -> None:
    sweep = commands.add_parser(
        "sweep", help="run a design-space sweep into a results database",
        description="Evaluate the points of a sweep file (axes, workloads, constraints, "
        "objectives) and store one row per point and workload in an SQLite database; points "
        "already stored are skipped, so an interrupted sweep carries on where it stopped.")
    sweep.add_argument("sweep", type=Path, metavar="SWEEP.yaml")
    sweep.add_argument("--db", type=Path, help="results database (default results/NAME.db)")
    sweep.add_argument("--search", choices=SEARCHES, default="grid",
                       help="grid: every point; optuna: NSGA-II over the space (needs --budget)")
    sweep.add_argument("--budget", type=int, help="points an optuna search evaluates")
    sweep.add_argument("--seed", type=int, default=0, help="seed of the optuna sampler")
    level = sweep.add_mutually_exclusive_group()
    level.add_argument("--synth", dest="level", action="store_const", const="synth",
                       help="also synthesise each point's PE array (yosys) for its area")
    level.add_argument("--verify", dest="level", action="store_const", const="verify",
                       help="also synthesise, build under Verilator and run the bit-exact checks")
    sweep.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="local process pool, or dask.distributed")
    sweep.add_argument("--scheduler", metavar="ADDR", help="dask scheduler address, trusted "
                       "both ways: it runs the sweep's code (default: a private TLS LocalCluster "
                       "of --workers processes)")
    sweep.add_argument("--workers", type=int, help="worker processes (default: CPU count)")
    sweep.add_argument("--retry-failed", action="store_true",
                       help="evaluate again the points stored as failed")
    sweep.add_argument("--max-points", type=int, default=MAX_POINTS, metavar="N",
                       help=f"refuse a run of more than N points (default {MAX_POINTS:,})")
    sweep.add_argument("--dry-run", action="store_true",
                       help="print the point count and the estimated time, run nothing")
    sweep.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT_S,
                       metavar="S", help="seconds --scheduler is given to answer (default "
                       f"{CONNECT_TIMEOUT_S:g})")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(handler=cmd_sweep)

    results = commands.add_parser("results", help="read a results database")
    results_commands = results.add_subparsers(dest="results_command", required=True,
                                              parser_class=Parser)
    export = results_commands.add_parser("export", help="write the results as a tidy table")
    export.add_argument("db", type=Path, metavar="DB")
    formats = export.add_mutually_exclusive_group(required=True)
    formats.add_argument("--csv", type=Path, metavar="PATH")
    formats.add_argument("--parquet", type=Path, metavar="PATH")
    export.set_defaults(handler=cmd_results)
    results_cli.add_commands(results_commands)

    report = commands.add_parser(
        "report", help="write a sweep's report, or a family study's tables",
        description="Write the report of a sweep (a sweep file or a results database) into "
        "reports/NAME, or run a family study into reports/: " + "; ".join(
            f"{entry.name} ({entry.summary})" for entry in STUDIES.values()) + ".")
    report.add_argument("topic", metavar="SWEEP_OR_DB_OR_STUDY",
                        help="a sweep file (its database: results/NAME.db or --db), a results "
                        "database, or a study: " + ", ".join(STUDIES))
    report.add_argument("--out", type=Path, help="folder (default reports/NAME, or the study's "
                        "folder under reports/)")
    report.add_argument("--db", type=Path, help="with a sweep file: its results database")
    report.add_argument("--seed", type=int, help="lmul: seed of the random operands (default 0)")
    report.add_argument("--stats", help="cost: operand statistics of the energy ratios "
                        "(default gaussian)")
    report.set_defaults(handler=cmd_report)


def _sweep_db(sweep, db: Path | None) -> Path:
    return db if db is not None else Path("results") / f"{sweep.name}.db"


def cmd_sweep(args) -> int:
    from peforge.sim.explore.pools import PoolError, stop_on_sigterm
    from peforge.sim.explore.search import (estimate_accuracy_seconds, estimate_seconds,
                                            plan_sweep, run_sweep)
    from peforge.sim.explore.spec import load_sweep

    sweep = load_sweep(args.sweep)
    db = _sweep_db(sweep, args.db)
    options = dict(search=args.search, budget=args.budget, level=args.level or "model",
                   executor=args.executor, scheduler=args.scheduler, workers=args.workers,
                   max_points=args.max_points)
    if not args.connect_timeout > 0:
        return fail(f"connect-timeout: must be a number of seconds > 0, got "
                    f"{args.connect_timeout:g}")
    if args.dry_run:
        plan = plan_sweep(sweep, **options)
        seconds, timed = estimate_seconds(sweep, plan)
        extra = "" if plan.level == "model" else f", plus the {plan.level} step of each point"
        print(f"sweep {sweep.name}: {plan.search} search at level {plan.level}: {plan.points} "
              f"points x {plan.workloads} workloads = {plan.points * plan.workloads} rows")
        points = f"on {plan.workers} workers (the model timed on {timed} points here{extra})"
        if sweep.optional_metrics:
            accuracy, specs, cached = estimate_accuracy_seconds(sweep)
            seconds, accuracy = round(seconds, 1), round(accuracy, 1)
            bound = " at most" if plan.search == "optuna" else ""
            points = (f"= {seconds:.1f} s for the points {points} + {accuracy:.1f} s for the "
                      f"accuracy of{bound} {specs} arithmetics ({cached} cached; one measurement "
                      f"each, not shared among workers)")
            seconds += accuracy
        print(f"estimated time: {seconds:.1f} s {points}; nothing was run, {db} is unchanged")
        return 0

    def interrupted(signum: int) -> str:
        return (f"peforge: error: interrupted ({signal.Signals(signum).name}): the rows stored "
                f"in {db} are kept; the same command carries on")

    try:
        with stop_on_sigterm(interrupted):
            run = run_sweep(sweep, db, quiet=args.quiet, seed=args.seed,
                            retry_failed=args.retry_failed,
                            connect_timeout=args.connect_timeout, **options)
    except sqlite3.Error as error:
        return fail(f"db: {db}: cannot be written (sqlite: {error})")
    except PoolError as error:
        fail(f"{error}; the rows stored in {db} are kept (points failed with 'worker:' errors "
             "run again with --retry-failed)")
        return 1
    except KeyboardInterrupt as stop:
        signum = getattr(stop, "signum", signal.SIGINT)
        print(interrupted(signum), file=sys.stderr)
        return 128 + signum
    print(f"sweep {sweep.name}: {run.search} search at level {run.level}: "
          f"{run.points_asked} points asked, {run.points_evaluated} evaluated "
          f"({run.points_failed} with failed rows), {run.points_skipped} already stored, "
          f"{run.seconds:.1f} s")
    print(f"results: {db}")
    return 0


def cmd_results(args) -> int:
    from peforge.sim.explore.results import ResultStore

    out = args.csv or args.parquet
    with ResultStore(args.db, readonly=True) as store:
        try:
            store.export(out, "csv" if args.csv else "parquet")
        except OSError as error:
            return fail(f"out: cannot write {out}: {error.strerror or error}")
        except sqlite3.Error as error:
            return fail(f"db: {args.db}: cannot be read (sqlite: {error})")
    print(f"wrote {out}")
    return 0


def cmd_report(args) -> int:
    if args.topic not in STUDIES:
        return _sweep_report(args)
    entry = STUDIES[args.topic]
    options = {name: getattr(args, name) for name in ("seed", "stats")
               if getattr(args, name) is not None}
    out = args.out or Path("reports") / entry.folder
    start = time.perf_counter()
    try:
        with stage(f"report {entry.name}: running the study into {out}"):
            paths = entry.run(out, **options)
    except OSError as error:
        return fail(f"out: cannot write to {out}: {error.strerror or error}")
    seconds = time.perf_counter() - start
    for path in paths:
        print(f"wrote {path}")
    print(f"report {entry.name}: {seconds:.1f} s")
    return 0


def _sweep_report(args) -> int:
    from peforge.sim.explore.spec import load_sweep
    from peforge.sim.explore.report import write_sweep_report

    target = Path(args.topic)
    if target.suffix in (".yaml", ".yml"):
        sweep = load_sweep(target)
        db, name = _sweep_db(sweep, args.db), sweep.name
    elif target.is_file():
        db, name = target, None
    else:
        return fail(f"report: must be a study ({', '.join(STUDIES)}), a sweep file (.yaml) or "
                    f"a results database, got {args.topic!r}")
    try:
        paths = write_sweep_report(db, args.out, sweep=name)
    except OSError as error:
        return fail(f"out: cannot write the report: {error.strerror or error}")
    except sqlite3.Error as error:
        return fail(f"db: {db}: cannot be read (sqlite: {error})")
    for path in paths:
        print(f"wrote {path}")
    return 0
