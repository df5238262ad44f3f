"""Sweep files, grid and optuna search, local and dask execution, the results database."""

import dataclasses
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

import pandas as pd
import pytest

from peforge.sim.explore import points as points_module, runner as runner_module
from peforge.sim.perf.accelerator import Sram, load_accelerator
from peforge.sim.demo import DEMO_SWEEP
from peforge.sim.families import family
from peforge.sim.perf.model import METRIC_COLUMNS, simulate_workload
from peforge.sim.explore.results import ResultStore
from peforge.sim.explore.points import build_accelerator, flat_config, make_task
from peforge.sim.explore.runner import Runner, SweepRun
from peforge.sim.explore.search import run_sweep
from peforge.sim.explore.spec import SweepError, load_sweep
from peforge.sim.perf.workloads import load_scalesim_topology

#: A workload that simulates in milliseconds: two GEMMs in SCALE-Sim's format (name, M, N, K).
TOPOLOGY = "layer, M, N, K\ng1, 64, 96, 128\ng2, 200, 64, 48\n"


def write_sweep(tmp_path, body: str, name="s.yaml"):
    (tmp_path / "layers.csv").write_text(TOPOLOGY)
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


SMALL = """\
name: small
workloads:
  workload: layers.csv
axes:
  output_sram.size_kib: [1, 64]
families:
  systolic:
    pe.rows: [4, 8]
    pe.dataflow: [os, ws]
  bitserial:
    pe.lanes: [4, 3]
objectives: {cycles: min, dram_read_bytes: min}
"""


# --- The sweep file ------------------------------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    ("workloads: {workload: layers.csv}\nfamilies:\n  systolic:\n    pe.rows: [4, big]\n",
     "s.yaml:4: pe.rows: must be an integer in 1..256, got 'big'"),
    ("workloads: {workload: layers.csv}\nfamilies:\n  systolic:\n    pe.rows:\n      - 4\n"
     "      - 0\n", "s.yaml:6: pe.rows: must be an integer in 1..256, got 0"),
    ("workloads: {workload: layers.csv}\nfamilies:\n  systolic:\n    pe.rows: [4, 8, 4]\n",
     "s.yaml:4: pe.rows: values repeat: [4, 8, 4]"),
    ("workloads: {workload: layers.csv}\nfamilies:\n  systolic:\n    pe.rows: []\n",
     "s.yaml:4: pe.rows: empty axis: give at least one value"),
    ("workloads: {workload: layers.csv}\nfamilies:\n  systolic:\n    pe.lanes: [4]\n",
     "s.yaml:4: pe.lanes: no family of this sweep has this parameter (known: pe.acc_bits, "
     "pe.add_stages, pe.bits, pe.cols, pe.dataflow, pe.format, pe.k_max, pe.mul_stages, pe.pe, "
     "pe.rows, pe.signed)"),
    ("workloads: {workload: layers.csv}\naxes:\n  clock_mhz: [1000, -5]\nfamilies: [lut]\n",
     "s.yaml:3: clock_mhz: must be a number > 0, got -5"),
    ("workloads: {workload: layers.csv}\naxes:\n  dram.width: [8]\nfamilies: [lut]\n",
     "s.yaml:3: dram.width: unknown key (accelerator keys: clock_mhz, input_sram.size_kib"),
    ("workloads: {workload: layers.csv}\nfamily: [lut]\n",
     "s.yaml:2: family: unknown key (known: name, workloads, axes, families, constraints, "
     "objectives)"),
    ("workloads: {workload: layers.csv}\nfamilies: [lut, tpu]\n",
     "s.yaml:2: families: must be one of bitserial, lmul, lmul-dot, lut, sparse-dsp, systolic, "
     "got 'tpu'"),
    ("workloads: {workload: layers.csv, phase: [decode, warmup]}\nfamilies: [lut]\n",
     "s.yaml:1: workloads.phase: must be one of prefill, decode, got 'warmup'"),
    ("workloads: {workload: layers.csv}\nfamilies: [lut]\nconstraints: [area < 5]\n",
     "s.yaml:3: constraints: unknown metric 'area' (metrics: macs, cycles,"),
    ("workloads: {workload: layers.csv}\nfamilies: [lut]\nconstraints: [cycles is small]\n",
     "s.yaml:3: constraints: must read METRIC OP NUMBER with OP one of <=, <, >=, >, ==, got "
     "'cycles is small'"),
    ("workloads: {workload: layers.csv}\nfamilies: [lut]\nobjectives: {cycles: fewest}\n",
     "s.yaml:3: objectives.cycles: must be min or max, got 'fewest'"),
    ("workloads: {workload: layers.csv}\nfamilies:\n  lut:\n    pe.n: {from: 8, to: 64}\n",
     "s.yaml:4: pe.n: a range is {from: A, to: B, step: S} or {from: A, to: B, times: F}"),
])
def test_bad_sweep_files_name_the_line_and_the_key(tmp_path, body, message):
    path = write_sweep(tmp_path, body)
    with pytest.raises(SweepError) as error:
        load_sweep(path)
    assert str(error.value).startswith(f"{tmp_path}/{message}")


def test_ranges_and_per_family_axes(tmp_path):
    path = write_sweep(tmp_path, """\
        workloads: {workload: layers.csv, phase: prefill}
        axes:
          pe.bits: [4, 8]
          weight_sram.size_kib: {from: 64, to: 512, times: 2}
        families:
          systolic:
            pe.rows: {from: 16, to: 64, step: 24}
          sparse-dsp: {}
          lut:
        """)
    sweep = load_sweep(path)
    axes = {name: {axis.key: axis.values for axis in axes} for name, axes in sweep.axes.items()}
    # pe.bits is a parameter of systolic and sparse-dsp, not of lut.
    assert axes == {
        "systolic": {"pe.bits": (4, 8), "weight_sram.size_kib": (64, 128, 256, 512),
                     "pe.rows": (16, 40, 64)},
        "sparse-dsp": {"pe.bits": (4, 8), "weight_sram.size_kib": (64, 128, 256, 512)},
        "lut": {"weight_sram.size_kib": (64, 128, 256, 512)},
    }
    assert sweep.size == 2 * 4 * 3 + 2 * 4 + 4 == len(list(sweep.points()))
    assert sweep.name == "s"
    # Within a family the PE array's axes vary slowest (consecutive points share an array),
    # and every point's keys keep the file's order.
    systolic = [point for point in sweep.points() if point["family"] == "systolic"]
    assert [(p["pe.bits"], p["pe.rows"]) for p in systolic[:4]] == [(4, 16)] * 4
    assert [p["weight_sram.size_kib"] for p in systolic[:5]] == [64, 128, 256, 512, 64]
    assert systolic[4]["pe.rows"] == 40
    assert list(systolic[0]) == ["family", "pe.bits", "weight_sram.size_kib", "pe.rows"]
    assert len({tuple(p.items()) for p in sweep.points()}) == sweep.size


def test_build_accelerator_applies_keys_over_the_defaults():
    accel = build_accelerator({"family": "systolic", "pe.rows": 16, "output_sram.banks": 2,
                               "dram.bytes_per_cycle": 64.0})
    assert accel.pe == family("systolic").config(rows=16)
    assert accel.output_sram == Sram(size_kib=64, banks=2)  # the accelerator's 64 KiB default
    assert accel.dram.bytes_per_cycle == 64.0 and accel.dram.latency_cycles == 100
    flat = flat_config(accel)
    assert flat["pe.rows"] == 16 and flat["output_sram.size_kib"] == 64 and flat["pes"] == 128


def _nested(values: dict) -> dict:
    """A point's keys nested by prefix, as load_accelerator reads them."""
    nested = {}
    for key, value in values.items():
        head, _, sub = key.partition(".")
        if sub:
            nested.setdefault(head, {})[sub] = value
        else:
            nested[key] = value
    return nested


def _sha(value) -> str:
    """The documented key: sha256 of the sorted-key JSON, 12 hex digits."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


@pytest.mark.parametrize("level", ["model", "synth"])
def test_point_keys_and_stored_configs_are_those_of_the_documented_form(level):
    """Keys and stored configurations of every demo point, built twice (the second time from
    the caches), equal the documented ones computed here from an uncached load_accelerator:
    the ``asdict`` flattening in field order and sha256 of the sorted JSON, so databases
    written before stay valid and resume."""
    sweep = load_sweep(DEMO_SWEEP)
    for _ in range(2):
        for values in sweep.points():
            task = make_task(values, sweep.workloads, level)
            accel = load_accelerator(_nested(values))
            config = {"family": accel.family}
            for name, value in dataclasses.asdict(accel).items():
                if isinstance(value, dict):
                    config.update({f"{name}.{sub}": item for sub, item in value.items()})
                elif name != "family":
                    config[name] = value
            config["pes"] = family(accel.family).pes(accel.pe)
            assert task.accel == accel and task.error is None
            # Same keys in the same order: the stored JSON text is the same.
            assert json.dumps(task.config) == json.dumps(config)
            assert task.point == _sha({"config": config, "level": level})
            assert task.keys == tuple(
                _sha({"config": config, "workload": {"workload": w.workload, "phase": w.phase,
                                                     "seq": w.seq}, "level": level})
                for w in sweep.workloads)


@pytest.mark.parametrize("values", [
    {"family": "bitserial", "pe.lanes": 3},
    {"family": "systolic", "pe.rows": 0, "clock_mhz": -1},
    {"family": "systolic", "pe.rows": 4, "clock_mhz": -1, "output_sram.banks": 0},
    {"family": "lut", "dram.bytes_per_cycle": 0, "timing": "scalesim-os"},
    {"family": "lut", "timing": "scalesim-os"},
    {"family": "lut", "clock": 5},
    {"family": "systolic", "clock_mhz": [1000]},
    {"family": "tpu", "pe.rows": 4},
    {"pe.rows": 4},
])
def test_rejected_points_give_load_accelerators_error(values):
    with pytest.raises(ValueError) as expected:
        load_accelerator(_nested(values))
    for _ in range(2):  # the second time, the valid part comes from the cache
        with pytest.raises(ValueError) as error:
            build_accelerator(values)
        assert str(error.value) == str(expected.value)
        task = make_task(values, (), "model")
        assert task.error == f"config: {expected.value}" and task.config == values


# --- Running a grid ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_grid(tmp_path_factory):
    """The SMALL sweep run once on a local pool of two processes."""
    tmp_path = tmp_path_factory.mktemp("grid")
    sweep = load_sweep(write_sweep(tmp_path, SMALL))
    run = run_sweep(sweep, tmp_path / "r.db", workers=2, quiet=True)
    with ResultStore(tmp_path / "r.db") as store:
        table = store.table()
    return tmp_path, sweep, run, table


def test_grid_stores_the_model_results_of_every_point(small_grid):
    tmp_path, sweep, run, table = small_grid
    assert sweep.size == 2 * 2 * 2 + 2 * 2 == 12
    assert (run.points_asked, run.points_evaluated, run.points_skipped) == (12, 12, 0)
    assert len(table) == 12 and table["key"].is_unique
    gemms = load_scalesim_topology(tmp_path / "layers.csv")
    ok = table[table["status"] == "ok"]
    # Every ok row holds the model's total row for its accelerator, computed here again.
    for _, row in ok.iterrows():
        values = {"family": row["family"], "output_sram.size_kib": int(row["output_sram.size_kib"])}
        if row["family"] == "systolic":
            values.update({"pe.rows": int(row["pe.rows"]), "pe.dataflow": row["pe.dataflow"]})
        else:
            values["pe.lanes"] = int(row["pe.lanes"])
        total = simulate_workload(build_accelerator(values), gemms).iloc[-1]
        for metric in METRIC_COLUMNS:
            assert row[metric] == pytest.approx(float(total[metric]), rel=1e-12), metric
    assert set(table["peforge_version"]) == {"0.1.0"}
    assert (table["finished_at"] >= table["started_at"]).all()


def test_failing_points_are_stored_with_their_error_and_the_sweep_goes_on(small_grid):
    _tmp_path, _sweep, run, table = small_grid
    failed = table[table["status"] == "failed"]
    # 1 KiB of output SRAM holds no double-buffered 16 x 16 x 4-byte output tile: MappingError
    # for every family; lanes=3 does not divide the bit-serial group of 128: a rejected config.
    mapping = failed[failed["error"].str.startswith("MappingError: buffers: no tile")]
    rejected = failed[failed["error"] == "config: group: must be a multiple of lanes=3, got 128"]
    assert len(mapping) == 4 + 1 and (mapping["output_sram.size_kib"] == 1).all()
    assert len(rejected) == 2 and set(rejected["output_sram.size_kib"]) == {1, 64}
    assert len(failed) == 7 and run.points_failed == 7
    assert failed["cycles"].isna().all()
    assert (table["status"] == "ok").sum() == 5


def test_a_second_run_skips_every_stored_point(small_grid):
    tmp_path, sweep, _run, table = small_grid
    again = run_sweep(sweep, tmp_path / "r.db", workers=2, quiet=True)
    assert (again.points_asked, again.points_evaluated, again.points_skipped) == (12, 0, 12)
    with ResultStore(tmp_path / "r.db") as store:
        pd.testing.assert_frame_equal(store.table().drop(columns="run"),
                                      table.drop(columns="run"))
        runs = store.runs()
    assert list(runs["points_evaluated"]) == [12, 0]


def test_dask_local_cluster_gives_the_same_rows(small_grid, tmp_path):
    source, sweep, _run, table = small_grid
    run = run_sweep(sweep, tmp_path / "dask.db", executor="dask", workers=3, quiet=True)
    assert run.points_evaluated == 12
    with ResultStore(tmp_path / "dask.db") as store:
        other = store.table()
    columns = ["key", "status", "error"] + list(METRIC_COLUMNS)
    pd.testing.assert_frame_equal(other[columns].sort_values("key").reset_index(drop=True),
                                  table[columns].sort_values("key").reset_index(drop=True))


def test_optuna_evaluates_its_budget_of_distinct_points(tmp_path):
    # Rows and columns change the energy model's reduced configurations (2 x 2 PEs) of neither
    # family: two gate-level energy runs serve every point.
    body = SMALL.replace("[4, 8]", "[2, 4, 8, 16]").replace("pe.lanes: [4, 3]",
                                                             "pe.rows: [2, 4, 8, 16]")
    sweep = load_sweep(write_sweep(tmp_path, body))
    assert sweep.size == 2 * 4 * 2 + 2 * 4 == 24
    run = run_sweep(sweep, tmp_path / "o.db", search="optuna", budget=10, population=4,
                    workers=2, quiet=True)
    assert (run.points_evaluated, run.points_skipped) == (10, 0)
    with ResultStore(tmp_path / "o.db") as store:
        table = store.table()
        assert len(store.run_points()) == 10
    assert table["point"].nunique() == 10 and len(table) == 10
    with pytest.raises(ValueError, match="budget: --search optuna needs a positive number"):
        run_sweep(sweep, tmp_path / "o.db", search="optuna", quiet=True)


def test_level_columns_need_their_level(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, SMALL.replace("dram_read_bytes: min",
                                                           "synth_area_mm2: min")))
    with pytest.raises(ValueError, match=r"^level: synth_area_mm2 is measured at level synth "
                       r"\(--synth\), this sweep runs at model$"):
        run_sweep(sweep, tmp_path / "x.db", quiet=True)


def test_synth_level_stores_the_synthesised_array_area(tmp_path):
    from peforge.sim.eda import synth

    sweep = load_sweep(write_sweep(tmp_path, """\
        workloads: {workload: layers.csv}
        families:
          systolic: {pe.rows: 2, pe.cols: 2}
        """))
    run_sweep(sweep, tmp_path / "s.db", level="synth", workers=1, quiet=True)
    with ResultStore(tmp_path / "s.db") as store:
        row = store.table().iloc[0]
    report = synth.synth_family(family("systolic"), family("systolic").config(rows=2, cols=2))
    assert row["status"] == "ok" and row["level"] == "synth"
    assert row["synth_nand2_eq"] == report.transistors / 4
    assert row["synth_area_mm2"] == pytest.approx(report.transistors / 4 * 24.0 / 1e6)
    assert row["synth_flip_flops"] == report.flip_flops > 0


# --- Chunks ------------------------------------------------------------------------------------

class _InlinePool:
    """An executor that runs each call when it is submitted and records the chunk sizes."""

    def __init__(self):
        self.sizes = []

    def submit(self, function, chunk):
        self.sizes.append(len(chunk))
        future = Future()
        future.set_result(function(chunk))
        return future


class _Count:
    """A progress bar that adds up its updates."""

    def __init__(self):
        self.n = 0

    def update(self, count):
        self.n += count


def _fake_point(seconds: float):
    """An ``evaluate_point`` whose points take ``seconds`` each, and fail as the real one does
    when their task carries an error."""
    def fake_point(task):
        return [{"key": key, "point": task.point, "family": "systolic", "config": task.config,
                 "workload": w.workload, "phase": w.phase, "seq": w.seq, "level": task.level,
                 "status": "ok" if task.error is None else "failed", "error": task.error,
                 "metrics": {"cycles": 1.0} if task.error is None else None, "started_at": "t",
                 "finished_at": "t", "seconds": seconds,
                 "model_version": points_module.model_version()}
                for key, w in zip(task.keys, task.workloads)]

    return fake_point


def _run_chunks(tmp_path, monkeypatch, seconds: float, workers: int = 1):
    """The 256-point systolic grid through a runner whose points take ``seconds`` each."""
    monkeypatch.setattr(points_module, "evaluate_point", _fake_point(seconds))
    sweep = load_sweep(write_sweep(tmp_path, "workloads: {workload: layers.csv}\n"
                                   "families: {systolic: {pe.rows: {from: 1, to: 256, step: 1}}}"))
    pool, progress = _InlinePool(), _Count()
    with ResultStore(tmp_path / "c.db") as store:
        run = SweepRun("s", "grid", "model", store.start_run("s", "grid", "model"))
        runner = Runner(store, run, pool, workers, progress, retry_failed=False)
        runner.evaluate((make_task(values, sweep.workloads, "model")
                         for values in sweep.points()), sweep.size)
        stored = len(store.table())
    return pool.sizes, run, progress.n, stored


@pytest.mark.parametrize("workers", [1, 2])
def test_chunks_grow_to_the_target_seconds_and_shrink_at_the_end(tmp_path, monkeypatch, workers):
    sizes, run, shown, stored = _run_chunks(tmp_path, monkeypatch, 0.01, workers)
    assert sum(sizes) == run.points_evaluated == stored == shown == 256
    assert sizes[0] == 1
    # 0.2 s of 0.01 s points; at most twice the largest chunk before.
    assert max(sizes) == round(runner_module.CHUNK_SECONDS / 0.01) == 20
    assert all(size <= 2 * max(sizes[:index]) for index, size in enumerate(sizes) if index)
    # Every chunk leaves a share of the rest for each chunk in flight.
    in_flight = runner_module.CHUNKS_PER_WORKER * workers
    for index, size in enumerate(sizes):
        left = 256 - sum(sizes[:index])
        assert size <= max(1, -(-left // in_flight))
    assert sizes[-1] < 20


def test_slow_points_go_one_per_chunk_and_stored_ones_are_skipped(tmp_path, monkeypatch):
    sizes, run, shown, _stored = _run_chunks(tmp_path, monkeypatch, 0.5)
    assert sizes == [1] * 256 and run.points_evaluated == shown == 256
    sizes, run, shown, stored = _run_chunks(tmp_path, monkeypatch, 0.5)
    assert sizes == [] and (run.points_asked, run.points_skipped) == (256, 256)
    assert shown == stored == 256


def _row(key: str, config: dict, status: str = "ok") -> dict:
    return {"key": key, "point": key[0], "family": "lut", "config": config, "workload": "x",
            "phase": "prefill", "seq": 1, "level": "model", "status": status, "error": None,
            "metrics": {"cycles": float(len(key))}, "started_at": "t", "finished_at": "t",
            "seconds": 0.0}


def test_write_points_stores_a_chunk_in_one_transaction(tmp_path):
    shared = {"pe.n": 8, "family": "lut"}
    points = [[_row("a1", shared), _row("a2", shared)],
              [_row("b1", {"pe.n": 16}), _row("b2", {"pe.n": 32})],  # configs differ by row
              [_row("c1", {"pe.n": 64})]]
    with ResultStore(tmp_path / "w.db") as store:
        store.write_points(points, run=7)
        with pytest.raises(sqlite3.IntegrityError):  # the CHECK on status fails the last row
            store.write_points([[_row("d1", shared)], [_row("e1", shared, status="lost")]])
    with sqlite3.connect(tmp_path / "w.db") as db:
        found = {key: (config, metrics, run) for key, config, metrics, run in db.execute(
            "SELECT key, config, metrics, run FROM results")}
    assert found == {row["key"]: (json.dumps(row["config"]), json.dumps(row["metrics"]), 7)
                     for rows in points for row in rows}


# --- The database under stress -------------------------------------------------------------------

def _write_rows(path, writer: int, count: int):
    with ResultStore(path) as store:
        for index in range(count):
            store.write_point([{
                "key": f"w{writer}-{index}", "point": f"p{writer}-{index}", "family": "lut",
                "config": {"writer": writer}, "workload": "x", "phase": "prefill", "seq": 1,
                "level": "model", "status": "ok", "error": None,
                "metrics": {"cycles": index}, "started_at": "t", "finished_at": "t",
                "seconds": 0.0}])


def test_concurrent_writers_do_not_corrupt_the_database(tmp_path):
    path = tmp_path / "c.db"
    ResultStore(path).close()
    context = get_context("spawn")
    writers = [context.Process(target=_write_rows, args=(path, writer, 300))
               for writer in range(2)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
        assert process.exitcode == 0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        counts = dict(db.execute("SELECT json_extract(config, '$.writer'), COUNT(*) FROM results "
                                 "GROUP BY 1"))
        cycles = db.execute("SELECT SUM(json_extract(metrics, '$.cycles')) FROM results")
        assert cycles.fetchone() == (2 * sum(range(300)),)
    assert counts == {0: 300, 1: 300}


def _long_sweep(tmp_path):
    """``(path, sweep)`` of enough points (40 x 300 DRAM latencies) that a sweep of them is
    still running when a test kills it or one of its workers."""
    latencies = ", ".join(map(str, range(300)))
    body = (SMALL.replace("[1, 64]", f"[32, 64, 128, 256]\n  dram.latency_cycles: [{latencies}]")
            .replace("[4, 8]", "[2, 4, 8, 16]"))
    path = write_sweep(tmp_path, body)
    return path, load_sweep(path)


def _wait_for_rows(db, count: int) -> None:
    """Wait (up to 2 minutes) until the database ``db`` holds ``count`` result rows."""
    deadline = time.monotonic() + 120
    stored = 0
    while stored < count and time.monotonic() < deadline:
        time.sleep(0.05)
        if db.exists():
            with sqlite3.connect(db) as connection:
                try:
                    stored = connection.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                except sqlite3.OperationalError:  # the tables are not created yet
                    stored = 0


def test_a_killed_sweep_resumes_without_rerunning_finished_points(tmp_path):
    path, sweep = _long_sweep(tmp_path)
    db = tmp_path / "k.db"
    command = [sys.executable, "-m", "peforge.sim.cli", "sweep", str(path), "--db", str(db),
               "--workers", "1", "--quiet"]
    process = subprocess.Popen(command, start_new_session=True)
    _wait_for_rows(db, 6)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    with ResultStore(db) as store:
        before = store.table().set_index("key")
    assert 6 <= len(before) < sweep.size, "the sweep was killed midway"
    subprocess.run(command, check=True, timeout=300)
    with ResultStore(db) as store:
        after = store.table().set_index("key")
        runs = store.runs()
    assert len(after) == sweep.size and after["point"].nunique() == sweep.size
    # The rows stored before the kill were not evaluated again.
    pd.testing.assert_frame_equal(after.loc[before.index, ["finished_at", "run"]],
                                  before[["finished_at", "run"]])
    assert runs["points_evaluated"].iloc[-1] == sweep.size - len(before)


class _BreakingPool(_InlinePool):
    """An inline executor whose worker dies on every chunk holding a poisoned point, and on the
    first chunk after ``break_at`` points (once): that chunk's future and the pool break."""

    def __init__(self, poisoned: set, break_at: int):
        super().__init__()
        self.poisoned, self.break_at, self.restarts, self.broken = poisoned, break_at, 0, False

    def submit(self, function, chunk):
        future = Future()
        dies = any(task.values["pe.rows"] in self.poisoned for task in chunk)
        if not dies and not self.broken and sum(self.sizes) >= self.break_at:
            dies = self.broken = True
        if self.restarts_pending or dies:
            self.restarts_pending = True
            future.set_exception(BrokenProcessPool("a worker died"))
            return future
        return super().submit(function, chunk)

    restarts_pending = False

    def restart(self):
        self.restarts += 1
        self.restarts_pending = False


def test_a_dead_worker_costs_its_chunks_again_and_a_point_that_kills_it_is_failed(
        tmp_path, monkeypatch):
    monkeypatch.setattr(points_module, "evaluate_point", _fake_point(0.01))
    sweep = load_sweep(write_sweep(tmp_path, "workloads: {workload: layers.csv}\n"
                                   "families: {systolic: {pe.rows: {from: 1, to: 64, step: 1}}}"))
    pool = _BreakingPool(poisoned={7}, break_at=30)
    with ResultStore(tmp_path / "b.db") as store:
        run = SweepRun("s", "grid", "model", store.start_run("s", "grid", "model"))
        runner = Runner(store, run, pool, 2, _Count(), retry_failed=False)
        runner.evaluate((make_task(values, sweep.workloads, "model")
                         for values in sweep.points()), sweep.size)
        table = store.table()
    assert pool.restarts >= 2 and len(table) == 64 == table["point"].nunique()
    failed = table[table["status"] == "failed"]
    # Only the poisoned point (lost with its chunk, then again run alone) is failed; the other
    # points of the lost chunks ran again.
    assert failed["pe.rows"].tolist() == [7]
    assert failed["error"].tolist() == ["worker: the process evaluating this point died, twice"]
    assert run.points_evaluated == 64


def test_a_sweep_goes_on_when_one_worker_process_is_killed(tmp_path):
    psutil = pytest.importorskip("psutil")
    path, sweep = _long_sweep(tmp_path)
    db = tmp_path / "w.db"
    command = [sys.executable, "-m", "peforge.sim.cli", "sweep", str(path), "--db", str(db),
               "--workers", "2", "--quiet"]
    process = subprocess.Popen(command, start_new_session=True, stderr=subprocess.PIPE,
                               text=True)
    _wait_for_rows(db, 6)
    workers = psutil.Process(process.pid).children(recursive=True)
    assert workers, "the pool has no worker processes"
    workers[0].kill()
    _out, err = process.communicate(timeout=300)
    assert process.returncode == 0
    assert re.search(r"sweep: a worker process died; the pool started again and \d+ points run "
                     r"again", err)
    with ResultStore(db) as store:
        table = store.table()
    assert len(table) == sweep.size and table["point"].nunique() == sweep.size
    # No point was lost and none failed for the kill (the sweep's own failures are bit-serial
    # lanes that do not divide the group, whatever the worker).
    assert not table["error"].fillna("").str.startswith("worker:").any()


# --- The command line ----------------------------------------------------------------------------

def test_cli_sweep_export_and_errors(tmp_path):
    path = write_sweep(tmp_path, SMALL)
    db = tmp_path / "cli.db"
    peforge = [sys.executable, "-m", "peforge.sim.cli"]
    done = subprocess.run(peforge + ["sweep", str(path), "--db", str(db), "--workers", "2",
                                     "--quiet"], capture_output=True, text=True, check=True)
    assert re.fullmatch(r"sweep small: grid search at level model: 12 points asked, 12 evaluated "
                        r"\(7 with failed rows\), 0 already stored, [0-9.]+ s",
                        done.stdout.splitlines()[0])
    assert done.stdout.splitlines()[1] == f"results: {db}"
    for flag, name in (("--csv", "out.csv"), ("--parquet", "out.parquet")):
        subprocess.run(peforge + ["results", "export", str(db), flag, str(tmp_path / name)],
                       check=True, capture_output=True)
    csv = pd.read_csv(tmp_path / "out.csv")
    parquet = pd.read_parquet(tmp_path / "out.parquet")
    assert len(csv) == len(parquet) == 12
    assert list(csv["cycles"].fillna(-1)) == list(parquet["cycles"].fillna(-1))
    bad = write_sweep(tmp_path, "workloads: {workload: layers.csv}\nfamilies: [lut]\n"
                      "axes: {clock_mhz: fast}\n", name="bad.yaml")
    failed = subprocess.run(peforge + ["sweep", str(bad), "--db", str(db)], capture_output=True,
                            text=True)
    assert failed.returncode == 2
    assert failed.stderr == (f"peforge: error: {bad}:3: clock_mhz: must be a number > 0, got "
                             f"'fast'\n")


# --- Verification level ------------------------------------------------------------------------

VERIFY_SWEEP = """\
workloads: {workload: layers.csv}
families:
  systolic: {pe.rows: 2, pe.cols: %s, pe.dataflow: ws}
"""


@pytest.mark.verilator
def test_verify_level_runs_the_bit_exact_checks(tmp_path):
    # The 2 x 3 ws array of test_cli's verify test: one shared Verilator build.
    sweep = load_sweep(write_sweep(tmp_path, VERIFY_SWEEP % 3))
    run_sweep(sweep, tmp_path / "v.db", level="verify", workers=1, quiet=True)
    with ResultStore(tmp_path / "v.db") as store:
        row = store.table().iloc[0]
    assert (row["status"], row["level"]) == ("ok", "verify")
    assert row["verify_jobs"] == 8  # 4 random shapes + 4 corner jobs (quick set)
    assert row["synth_nand2_eq"] > 0


@pytest.mark.verilator
def test_a_verilator_build_error_is_stored_and_the_sweep_goes_on(tmp_path):
    """A C++ compiler that always fails (Verilator's makefiles call ``c++``), in a fresh build
    cache: every point's build fails."""
    stub = tmp_path / "bin" / "c++"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\necho 'c++: forced failure' >&2\nexit 1\n")
    stub.chmod(0o755)
    path = write_sweep(tmp_path, VERIFY_SWEEP % "[3, 4]")
    env = {**os.environ, "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}",
           "PEFORGE_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "peforge.sim.cli", "sweep", str(path), "--db",
                           str(tmp_path / "f.db"), "--verify", "--workers", "1", "--quiet"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with ResultStore(tmp_path / "f.db") as store:
        table = store.table()
    assert len(table) == 2 and set(table["pe.cols"]) == {3, 4}
    assert (table["status"] == "failed").all()
    for error in table["error"]:
        assert re.fullmatch(r"BenchError: Verilator build of systolic failed; see "
                            rf"{tmp_path}/cache/verilator/systolic-[0-9a-f]{{16}}/build\.log",
                            error)
