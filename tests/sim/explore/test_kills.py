"""A worker of the local pool SIGKILLed at chosen moments of a real sweep (the pool's own
processes, the real model): when the pool starts, mid-batch, right after a restart, during the
final shutdown, and on every start (the retries run out). Every point must end stored exactly
once, and no row may be lost."""

import logging
import os
import signal
import threading
import time
from collections import Counter

import pytest

from peforge.sim.explore import pools, runner as runner_module
from peforge.sim.explore.pools import PoolError
from peforge.sim.explore.results import ResultStore
from peforge.sim.explore.search import run_sweep
from peforge.sim.explore.spec import load_sweep

from tests.sim.explore.test_sweep import SMALL, write_sweep


class _KillingPool(pools._LocalPool):
    """The local pool, SIGKILLing one of its workers right after the submits named in
    ``kill_after``, each ``(pool, submit)``: pool 0 is the first, 1 the first restart's; submit
    1 is the pool's first (it forks the workers: they have not taken a chunk yet). With
    ``kill_in_shutdown`` ``"main"`` it kills one as the final shutdown begins (before the pool
    is asked to end), with ``"thread"`` from a thread while it ends."""

    kill_after: tuple[tuple[int, int], ...] = ()
    kill_in_shutdown: str | None = None
    submits = restarts = kills = 0  # submits: those of the pool now running

    def submit(self, function, *args):
        type(self).submits += 1
        if (self.restarts, self.submits) not in self.kill_after:
            return super().submit(function, *args)
        # the chunk waits in its worker, so it is still in flight when the kill lands (a fast
        # chunk on a loaded machine could otherwise finish first and no point be lost)
        future = super().submit(_after_a_pause, function, *args)
        self._kill_one()
        return future

    def restart(self):
        type(self).restarts += 1
        type(self).submits = 0
        super().restart()

    def shutdown(self):
        if self.kill_in_shutdown == "main":
            self._kill_one()
        elif self.kill_in_shutdown == "thread":
            threading.Timer(0.001, self._kill_one).start()
        super().shutdown()

    def _kill_one(self):
        pids = [process.pid for process in self.processes() if process.is_alive()]
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            type(self).kills += 1


def _after_a_pause(function, *args):
    time.sleep(0.5)
    return function(*args)


@pytest.fixture
def killing(monkeypatch):
    """The pool class the sweep uses, reset; and every key ``write_points`` is asked to store."""
    for name, value in (("submits", 0), ("restarts", 0), ("kills", 0), ("kill_after", ()),
                        ("kill_in_shutdown", None)):
        monkeypatch.setattr(_KillingPool, name, value)
    monkeypatch.setattr(pools, "_LocalPool", _KillingPool)
    written = Counter()
    write_points = ResultStore.write_points

    def counting(store, points, run=None):
        write_points(store, points, run)
        written.update(row["key"] for rows in points for row in rows)

    monkeypatch.setattr(ResultStore, "write_points", counting)
    return written


def _sweep(tmp_path, latencies: int = 40):
    """SMALL with ``latencies`` DRAM latencies: 12 x ``latencies`` points of one workload."""
    body = SMALL.replace("[1, 64]", "[1, 64]\n  dram.latency_cycles: "
                         f"{{from: 1, to: {latencies}, step: 1}}")
    return load_sweep(write_sweep(tmp_path, body))


def _stored(db):
    with ResultStore(db, readonly=True) as store:
        return store.table()


def _assert_every_point_once(sweep, db, written, worker_failures: int = 0):
    table = _stored(db)
    assert len(table) == sweep.size == table["point"].nunique() == table["key"].nunique()
    assert set(written) == set(table["key"]) and set(written.values()) == {1}
    lost = table["error"].fillna("").str.startswith("worker:")
    assert lost.sum() == worker_failures, table.loc[lost, "error"].tolist()


@pytest.mark.parametrize("moment, kill_after", [
    ("when the pool starts, before a worker took a chunk", ((0, 1),)),
    ("mid-batch, chunks in flight and stored", ((0, 12),)),
    ("twice, in two pools", ((0, 3), (1, 8))),
])
def test_a_worker_killed_costs_nothing(tmp_path, killing, caplog, moment, kill_after):
    sweep = _sweep(tmp_path)
    _KillingPool.kill_after = kill_after
    db = tmp_path / "k.db"
    with caplog.at_level(logging.WARNING, logger=runner_module.__name__):
        run = run_sweep(sweep, db, workers=2, quiet=True)
    assert _KillingPool.kills == len(kill_after), moment
    assert _KillingPool.restarts == len(kill_after)
    assert (run.points_asked, run.points_evaluated) == (sweep.size, sweep.size)
    _assert_every_point_once(sweep, db, killing)
    assert caplog.text.count("a worker process died; the pool started again") == len(kill_after)


@pytest.mark.parametrize("how", ["main", "thread"])
def test_a_worker_killed_during_the_final_shutdown_costs_nothing(tmp_path, killing, how):
    sweep = _sweep(tmp_path, 5)
    _KillingPool.kill_in_shutdown = how
    db = tmp_path / "s.db"
    run = run_sweep(sweep, db, workers=2, quiet=True)
    assert _KillingPool.restarts == 0 and run.points_evaluated == sweep.size
    _assert_every_point_once(sweep, db, killing)


def test_a_point_retried_alone_and_killed_again_is_the_only_failed_one(tmp_path, killing):
    # The kill after submit 3 loses the chunks in flight; their points run again one at a
    # time, alone in the new pool; the kill after its first submit hits the first of them.
    sweep = _sweep(tmp_path)
    _KillingPool.kill_after = ((0, 3), (1, 1))
    db = tmp_path / "r.db"
    run_sweep(sweep, db, workers=2, quiet=True)
    assert _KillingPool.restarts == 2
    _assert_every_point_once(sweep, db, killing, worker_failures=1)
    failed = _stored(db).query("error.str.startswith('worker:')", engine="python")
    assert failed["error"].tolist() == ["worker: the process evaluating this point died, twice"]


def _dies_at_start(parent):
    os._exit(3)


def test_workers_that_always_die_end_the_sweep_with_a_clear_error(tmp_path, killing,
                                                                  monkeypatch):
    written = killing
    monkeypatch.setattr(pools, "_worker_start", _dies_at_start)
    sweep = _sweep(tmp_path, 2)
    with pytest.raises(PoolError) as raised:
        run_sweep(sweep, tmp_path / "d.db", workers=2, quiet=True)
    assert str(raised.value) == (
        f"sweep: the worker processes died {runner_module.MAX_RESTARTS + 1} times in a row "
        "before finishing a chunk; the pool is not started again")
    assert _KillingPool.restarts == runner_module.MAX_RESTARTS
    # Points run alone between the restarts were lost twice: stored as failed, none ok.
    table = _stored(tmp_path / "d.db")
    assert 1 <= len(table) <= runner_module.MAX_RESTARTS and set(written) == set(table["key"])
    assert set(table["error"]) <= {"worker: the process evaluating this point died, twice"}


def test_the_command_says_so_in_one_line(tmp_path, killing, monkeypatch, capsys):
    from peforge.sim.cli import main

    monkeypatch.setattr(pools, "_worker_start", _dies_at_start)
    _sweep(tmp_path, 2)
    db = tmp_path / "c.db"
    assert main(["sweep", str(tmp_path / "s.yaml"), "--db", str(db), "--workers", "1",
                 "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == (
        f"peforge: error: sweep: the worker processes died {runner_module.MAX_RESTARTS + 1} "
        f"times in a row before finishing a chunk; the pool is not started again; the rows "
        f"stored in {db} are kept (points failed with 'worker:' errors run again with "
        "--retry-failed)\n")
