"""The results database of design-space sweeps: one SQLite file (stdlib ``sqlite3``, WAL mode).

Tables
    ``results``: one row per design point and workload, keyed by ``key`` (a config hash of the
    whole accelerator, the workload (with a topology CSV's content hash) and the evaluation
    level, :func:`result_key`). Columns:
    ``point`` (hash of the accelerator and level alone: the rows of one point share it),
    ``family``, ``config`` (JSON of the accelerator's flattened keys, ``pe.rows``,
    ``dram.bytes_per_cycle``, ... plus ``pes``), ``workload``, ``phase``, ``seq``, ``level``,
    ``status`` (``ok`` or ``failed``), ``error`` (text of the failure, else NULL), ``metrics``
    (JSON: the ``total`` row of the workload table, :data:`peforge.sim.perf.model.METRIC_COLUMNS`, plus
    the level's columns), ``peforge_version``, ``started_at``/``finished_at`` (UTC, ISO 8601),
    ``seconds`` (wall time of the point's evaluation), ``run`` (the run that wrote it) and
    ``model_version`` (:func:`peforge.sim.explore.points.model_version`; NULL in rows written
    before schema version 2).

    ``runs``: one row per ``peforge sweep`` invocation: sweep name, search method, level, points
    asked for, points evaluated (the rest were already in the database), start and end times.
    ``run_points``: every point each run asked for (evaluated or found), so a report can tell what
    each search method saw. ``sweeps``: each sweep's name and specification (JSON), so a report
    needs the database only.

Writers: rows are committed as soon as their points finish, one transaction per point
(:meth:`ResultStore.write_point`) or per chunk of points (:meth:`ResultStore.write_points`, what a
sweep uses), so a killed sweep loses at most the points in flight. Several processes may write
one database: WAL lets readers run beside the writer, and writers wait for each other
(``busy_timeout``) instead of failing; every write is a single transaction, so rows are never
half-written.
"""

import json
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from hashlib import sha256
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from peforge.models.params import values_hash

__all__ = ["ResultStore", "result_key", "point_key", "PointKeys", "utc_now",
           "SCHEMA_VERSION", "COLUMNS"]

#: Stored in ``PRAGMA user_version``. Version 2 added ``results.model_version``; a version 1
#: database is read as it is and upgraded by a writer (its rows' model version is NULL).
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
_TABLES = {"results", "runs", "run_points", "sweeps"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY, point TEXT NOT NULL, family TEXT NOT NULL, config TEXT NOT NULL,
    workload TEXT NOT NULL, phase TEXT NOT NULL, seq INTEGER NOT NULL, level TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')), error TEXT, metrics TEXT,
    peforge_version TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    seconds REAL NOT NULL, run INTEGER, model_version TEXT);
CREATE INDEX IF NOT EXISTS results_point ON results (point);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, sweep TEXT NOT NULL, search TEXT NOT NULL, level TEXT NOT NULL,
    points_asked INTEGER, points_evaluated INTEGER, started_at TEXT NOT NULL, finished_at TEXT);
CREATE TABLE IF NOT EXISTS run_points (
    run INTEGER NOT NULL, point TEXT NOT NULL, PRIMARY KEY (run, point));
CREATE TABLE IF NOT EXISTS sweeps (name TEXT PRIMARY KEY, spec TEXT NOT NULL);
"""

#: The columns of ``results``, in order.
COLUMNS = ("key", "point", "family", "config", "workload", "phase", "seq", "level", "status",
           "error", "metrics", "peforge_version", "started_at", "finished_at", "seconds", "run",
           "model_version")

#: Seconds a writer waits for another writer's transaction before giving up.
BUSY_TIMEOUT_S = 60


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def point_key(config: dict, level: str) -> str:
    """Hash of a point (its flattened accelerator ``config``) at an evaluation ``level``."""
    return values_hash({"config": config, "level": level})


def result_key(config: dict, workload: dict, level: str) -> str:
    """Hash of one row: the point's accelerator ``config``, the ``workload`` (``workload``,
    ``phase``, ``seq``) and the level (:func:`peforge.models.params.values_hash`)."""
    return values_hash({"config": config, "workload": workload, "level": level})


class PointKeys:
    """The keys of points at one evaluation ``level`` on the same ``workloads`` (dicts of
    ``workload``, ``phase``, ``seq``): calling it with a point's ``config`` gives
    ``(point_key(config, level), (result_key(config, workload, level) for each workload))``.

    The keys are those functions' (the same sha256 of the same JSON text), with ``config``
    serialised once per point and the rest once: the JSON that
    :func:`~peforge.models.params.values_hash` hashes has its keys sorted, and ``config`` <
    ``level`` < ``workload``, so each text is the config's JSON between fixed parts."""

    def __init__(self, workloads: list[dict], level: str):
        level_text = json.dumps(level)
        self._point_tail = f', "level": {level_text}}}'
        self._row_tails = tuple(
            f', "level": {level_text}, "workload": {json.dumps(workload, sort_keys=True)}}}'
            for workload in workloads)

    def __call__(self, config: dict) -> tuple[str, tuple[str, ...]]:
        head = '{"config": ' + json.dumps(config, sort_keys=True)
        return (_digest(head + self._point_tail),
                tuple(_digest(head + tail) for tail in self._row_tails))


def _digest(text: str) -> str:
    """:func:`~peforge.models.params.values_hash` of the value whose JSON is ``text``."""
    return sha256(text.encode()).hexdigest()[:12]


class ResultStore:
    """The results database at ``path``: created with its folder if missing, or opened
    ``readonly`` (SQLite's ``mode=ro``: nothing in the file changes, a missing file is an error).

    A file that is not SQLite, is damaged, or holds other tables than a results database's is
    refused with a ValueError naming it (``db: ...``); so is a folder or a path under a file."""

    def __init__(self, path, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        if self.path.is_dir():
            raise ValueError(f"db: {self.path} is a folder, not a results database")
        if readonly and not self.path.is_file():
            raise ValueError(f"db: no such file {self.path}")
        if not readonly:
            above = next((parent for parent in self.path.parents if parent.exists()), None)
            if above is not None and not above.is_dir():
                raise ValueError(f"db: {self.path} is under {above}, which is a file")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise ValueError(f"db: cannot create the folder of {self.path}: "
                                 f"{error.strerror or error}") from None
        try:
            if readonly:
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                           timeout=BUSY_TIMEOUT_S, isolation_level=None)
            else:
                self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S,
                                           isolation_level=None)
            self._open()
        except sqlite3.Error as error:
            self._close_quietly()
            raise ValueError(f"db: {self.path} is not a readable results database "
                             f"(sqlite: {error})") from None
        except ValueError:
            self._close_quietly()
            raise
        self.version = version("peforge")

    def _open(self) -> None:
        """Check the file's schema; a writer creates (or upgrades) it and switches to WAL."""
        found = self._db.execute("PRAGMA user_version").fetchone()[0]
        tables = {name for (name,) in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if self._db.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok":
            raise ValueError(f"db: {self.path} is damaged (PRAGMA quick_check fails)")
        ours = found in READABLE_VERSIONS and _TABLES <= tables
        if not ours and (tables or found or self.readonly):
            raise ValueError(f"db: {self.path} is not a peforge results database (schema "
                             f"version {found}, tables {', '.join(sorted(tables)) or 'none'}; "
                             f"this peforge reads versions "
                             f"{', '.join(map(str, READABLE_VERSIONS))} with tables "
                             f"{', '.join(sorted(_TABLES))})")
        if self.readonly:
            return
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._transaction():
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._db.execute(statement)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(results)")}
            if "model_version" not in columns:  # a version 1 database: its rows have none
                self._db.execute("ALTER TABLE results ADD COLUMN model_version TEXT")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _close_quietly(self) -> None:
        if getattr(self, "_db", None) is not None:
            self._db.close()

    def close(self) -> None:
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def _transaction(self):
        """``BEGIN IMMEDIATE``: take the write lock first (waiting for other writers), so a
        transaction never fails half-way on a lock."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def save_sweep(self, name: str, spec: dict) -> None:
        """Record (or replace) sweep ``name``'s specification."""
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO sweeps VALUES (?, ?)",
                             (name, json.dumps(spec)))

    def sweeps(self) -> dict[str, dict]:
        return {name: json.loads(spec)
                for name, spec in self._db.execute("SELECT name, spec FROM sweeps")}

    def start_run(self, sweep: str, search: str, level: str) -> int:
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO runs (sweep, search, level, started_at) VALUES (?, ?, ?, ?)",
                (sweep, search, level, utc_now()))
        return cursor.lastrowid

    def finish_run(self, run: int, points_asked: int, points_evaluated: int) -> None:
        with self._transaction():
            self._db.execute("UPDATE runs SET points_asked = ?, points_evaluated = ?, "
                             "finished_at = ? WHERE id = ?",
                             (points_asked, points_evaluated, utc_now(), run))

    def note_points(self, run: int, points) -> None:
        """Record that ``run`` asked for ``points`` (point keys)."""
        with self._transaction():
            self._db.executemany("INSERT OR IGNORE INTO run_points VALUES (?, ?)",
                                 [(run, point) for point in points])

    def finished_keys(self, *, include_failed: bool = True,
                      model_version: str | None = None) -> set[str]:
        """Keys of the rows already stored (only ``ok`` ones unless ``include_failed``; only
        those of ``model_version`` when given)."""
        where = [] if include_failed else ["status = 'ok'"]
        if model_version is not None:
            where.append("model_version = ?")
        query = "SELECT key FROM results" + (" WHERE " + " AND ".join(where) if where else "")
        return {key for (key,) in self._db.execute(
            query, () if model_version is None else (model_version,))}

    def older_rows(self, model_version: str) -> int:
        """How many stored rows come from another model version than ``model_version`` (or
        from before versions were stored)."""
        return self._db.execute("SELECT COUNT(*) FROM results WHERE model_version IS NOT ?",
                                (model_version,)).fetchone()[0]

    def rows_of(self, keys) -> dict[str, dict]:
        """``{key: {"status", "error", "metrics"}}`` of the stored rows among ``keys``."""
        keys = list(keys)
        found = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            query = ("SELECT key, status, error, metrics FROM results WHERE key IN "
                     f"({', '.join('?' * len(chunk))})")
            for key, status, error, metrics in self._db.execute(query, chunk):
                found[key] = {"status": status, "error": error,
                              "metrics": json.loads(metrics) if metrics else None}
        return found

    def write_point(self, rows: list[dict], run: int | None = None) -> None:
        """Store the rows of one point (one per workload) in one transaction.

        Each row has ``key``, ``point``, ``family``, ``config`` (dict), ``workload``, ``phase``,
        ``seq``, ``level``, ``status``, ``error``, ``metrics`` (dict or None), ``started_at``,
        ``finished_at`` and ``seconds``. A row whose key is stored already is replaced.
        """
        self.write_points([rows], run)

    def write_points(self, points: list[list[dict]], run: int | None = None) -> None:
        """Store the rows of several points (each a list as :meth:`write_point` takes) in one
        transaction: all of them or, if it fails, none."""
        texts: dict[int, str] = {}  # JSON of each config dict, by id: a point's rows share one

        def config_text(config: dict) -> str:
            if id(config) not in texts:
                texts[id(config)] = json.dumps(config)
            return texts[id(config)]

        with self._transaction():
            self._db.executemany(
                f"INSERT OR REPLACE INTO results ({', '.join(COLUMNS)}) VALUES "
                f"({', '.join('?' * len(COLUMNS))})",
                [(row["key"], row["point"], row["family"], config_text(row["config"]),
                  row["workload"], row["phase"], row["seq"], row["level"], row["status"],
                  row["error"], None if row["metrics"] is None else json.dumps(row["metrics"]),
                  self.version, row["started_at"], row["finished_at"], row["seconds"], run,
                  row.get("model_version"))
                 for rows in points for row in rows])

    def table(self) -> pd.DataFrame:
        """Every stored row as a tidy table: the fixed columns, then one column per config key
        and per metric (NaN where a row has none, e.g. a failed point's metrics)."""
        frame = pd.read_sql_query("SELECT * FROM results ORDER BY family, point, workload, "
                                  "phase, seq", self._db)
        configs = pd.DataFrame([json.loads(text) for text in frame.pop("config")],
                               index=frame.index)
        metrics = pd.DataFrame([json.loads(text) if isinstance(text, str) else {}
                                for text in frame.pop("metrics")], index=frame.index)
        configs = configs.drop(columns=[name for name in ("family",) if name in configs])
        return pd.concat([frame, configs, metrics], axis=1)

    def runs(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM runs ORDER BY id", self._db)

    def run_points(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM run_points", self._db)

    def export(self, out: Path, fmt: str) -> Path:
        """Write :meth:`table` to ``out`` as ``csv`` or ``parquet`` (pyarrow)."""
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"format: must be csv or parquet, got {fmt!r}")
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        table = self.table()
        partial = out.with_name(f".{out.name}.partial")  # renamed when whole: no half a file
        try:
            if fmt == "parquet":
                table.to_parquet(partial, index=False, engine="pyarrow")
            else:
                table.to_csv(partial, index=False)
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
        return out
