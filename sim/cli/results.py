"""``peforge results list|show``: read a results database without changing it (SQLite opened
read-only, ``mode=ro``: no table, ``user_version`` or journal mode is written).

``list DB``: its sweeps with their row counts; ``list DB --sweep NAME``: that sweep's rows (key,
family, workload, level, status, cycles, energy). ``show DB KEY``: one row (its ``key``) or the
rows of one point (its ``point``), configuration and metrics, a unique prefix of 4+ characters
being enough."""

import json
import sqlite3
from pathlib import Path

from peforge.sim.cli.common import fail
from peforge.sim.cli.units import SCALES, readable

__all__ = ["add_commands"]


def add_commands(results_commands) -> None:
    listing = results_commands.add_parser("list", help="the sweeps of a results database, or "
                                          "the rows of one (--sweep)")
    listing.add_argument("db", type=Path, metavar="DB")
    listing.add_argument("--sweep", metavar="NAME", help="list this sweep's rows")
    listing.set_defaults(handler=cmd_list)
    show = results_commands.add_parser("show", help="one row (its key) or one point's rows")
    show.add_argument("db", type=Path, metavar="DB")
    show.add_argument("key", metavar="KEY", help="a row key or point key, or a unique prefix "
                      "of 4 or more characters")
    show.set_defaults(handler=cmd_show)


class _Refused(Exception):
    """A database that cannot be read: the message is the one line to print."""


def _open(path: Path) -> sqlite3.Connection:
    from peforge.sim.explore.results import SCHEMA_VERSION

    if not path.is_file():
        raise _Refused(f"db: {path}: " + ("a folder, not a file" if path.is_dir()
                                          else "no such file"))
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master "
                                                 "WHERE type = 'table'")}
        version = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise _Refused(f"db: {path} is not a readable SQLite database ({error})") from None
    if not {"results", "runs", "run_points", "sweeps"} <= tables or version != SCHEMA_VERSION:
        db.close()
        raise _Refused(f"db: {path} is not a peforge results database (schema version "
                       f"{SCHEMA_VERSION} with tables results, runs, run_points, sweeps)")
    return db


def _rows(db, query: str, arguments=()) -> list[sqlite3.Row]:
    db.row_factory = sqlite3.Row
    return db.execute(query, arguments).fetchall()


def cmd_list(args) -> int:
    try:
        db = _open(args.db)
    except _Refused as error:
        return fail(str(error))
    with db:
        if args.sweep is None:
            sweeps = _rows(db, "SELECT name FROM sweeps ORDER BY name")
            print(f"{'sweep':<24} {'points':>7} {'rows':>7} {'failed':>7}")
            for (name,) in sweeps:
                points, rows, failed = db.execute(
                    "SELECT COUNT(DISTINCT point), COUNT(*), SUM(status = 'failed') FROM "
                    "results WHERE point IN (SELECT point FROM run_points JOIN runs ON "
                    "run = runs.id WHERE sweep = ?)", (name,)).fetchone()
                print(f"{name:<24} {points:>7} {rows:>7} {failed or 0:>7}")
            return 0
        if not db.execute("SELECT 1 FROM sweeps WHERE name = ?", (args.sweep,)).fetchone():
            names = ", ".join(name for (name,) in db.execute("SELECT name FROM sweeps"))
            return fail(f"sweep: no sweep {args.sweep!r} in {args.db} (it holds: "
                        f"{names or 'none'})")
        rows = _rows(db, "SELECT key, point, family, workload, phase, seq, level, status, "
                     "metrics FROM results WHERE point IN (SELECT point FROM run_points JOIN "
                     "runs ON run = runs.id WHERE sweep = ?) ORDER BY family, point, workload",
                     (args.sweep,))
        print(f"{'key':<12} {'point':<12} {'family':<10} {'workload':<24} {'level':<6} "
              f"{'status':<6} {'cycles':>14} {'energy':>11}")
        for row in rows:
            metrics = json.loads(row["metrics"] or "{}")
            energy, cycles = metrics.get("energy_pj"), metrics.get("cycles")
            print(f"{row['key']:<12} {row['point']:<12} {row['family']:<10} "
                  f"{row['workload'] + ' ' + row['phase'] + ' ' + str(row['seq']):<24} "
                  f"{row['level']:<6} {row['status']:<6} "
                  f"{'' if cycles is None else f'{cycles:.0f}':>14} "
                  f"{readable(energy, 'pJ') if energy is not None else '':>11}")
    return 0


def _value(value) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return str(int(value))
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def cmd_show(args) -> int:
    from peforge.sim.perf.model import METRIC_COLUMNS

    if len(args.key) < 4:
        return fail(f"key: give 4 or more characters of a row or point key, got {args.key!r}")
    try:
        db = _open(args.db)
    except _Refused as error:
        return fail(str(error))
    with db:
        prefix = args.key.replace("%", "").replace("_", "") + "%"
        rows = _rows(db, "SELECT * FROM results WHERE key LIKE ? OR point LIKE ? ORDER BY "
                     "workload", (prefix, prefix))
    by_key = [row for row in rows if row["key"].startswith(args.key)]
    points = {row["point"] for row in rows if row["point"].startswith(args.key)}
    if len(by_key) == 1:
        rows = by_key
    elif len(points) == 1:
        rows = [row for row in rows if row["point"] in points]
    elif not rows:
        return fail(f"key: no row or point starting {args.key!r} in {args.db}")
    else:
        matches = sorted({row["key"] for row in by_key} | points)
        return fail(f"key: {args.key!r} matches {len(matches)} keys "
                    f"({', '.join(matches[:4])}{', ...' if len(matches) > 4 else ''})")
    for row in rows:
        print(f"row {row['key']} (point {row['point']}): {row['family']} {row['workload']} "
              f"{row['phase']} seq {row['seq']}, level {row['level']}, {row['status']}")
        if row["error"]:
            print(f"  error: {row['error']}")
        for name, value in json.loads(row["config"]).items():
            print(f"  {name:<28} {value}")
        for name, value in json.loads(row["metrics"] or "{}").items():
            unit = METRIC_COLUMNS.get(name, "")
            base = {"bytes": "B"}.get(unit, unit)
            plain = f" ({readable(value, base)})" if base in SCALES and value is not None else ""
            print(f"  {name:<28} {_value(value)} {unit}{plain}".rstrip())
        print(f"  {'peforge_version':<28} {row['peforge_version']}, finished "
              f"{row['finished_at']} in {row['seconds']:.2f} s")
    return 0
