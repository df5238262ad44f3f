"""Running a sweep's points: a local process pool or a dask cluster, chunks, resuming.

Points run in a local process pool (:class:`concurrent.futures.ProcessPoolExecutor`) or on a
dask.distributed cluster (its ``concurrent.futures`` executor) in chunks, a list of points
per future, ``2 x workers`` chunks in flight. The first chunk holds one point; each next one
as many as the chunk before it ran in about 0.2 s of a worker's time (at most twice its
size), so slow points (``synth``, ``verify``) and small sweeps still go one by one and fast
model-only points hundreds at a time. Only the parent process writes the database, one
transaction per finished chunk; a point whose rows are all stored is skipped, so a killed
sweep started again carries on. A kill loses at most the chunks in flight: ``2 x workers``
chunks, each sized for about 0.2 s of work by the chunk before it (longer only where its
points are slower than those before them; a slow point runs alone, whatever it takes). If a
worker process of the local pool dies, the pool starts again and the chunks in flight are
submitted again; a chunk lost twice is stored as failed. (dask restarts its own workers.)
"""

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import islice

from peforge.sim.explore import points
from peforge.sim.explore.points import Task
from peforge.sim.explore.results import ResultStore

__all__ = ["EXECUTORS", "SweepRun", "Runner", "open_executor", "CHUNK_SECONDS",
           "CHUNKS_PER_WORKER"]

EXECUTORS = ("local", "dask")


@dataclass
class SweepRun:
    """What one :func:`run_sweep` did."""

    sweep: str
    search: str
    level: str
    run: int
    points_asked: int = 0
    points_evaluated: int = 0
    points_skipped: int = 0
    points_failed: int = 0
    seconds: float = 0.0


_log = logging.getLogger(__name__)


class _LocalPool:
    """A process pool that can start again: when a worker process dies, the pool is broken and
    every future still running fails (:class:`~concurrent.futures.process.BrokenProcessPool`);
    :meth:`restart` replaces it with a new one."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool = ProcessPoolExecutor(max_workers=workers)

    def submit(self, function, *args):
        return self._pool.submit(function, *args)

    def restart(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = ProcessPoolExecutor(max_workers=self.workers)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def open_executor(kind: str, scheduler: str | None, workers: int):
    if kind == "local":
        pool = _LocalPool(workers)
        try:
            yield pool
        finally:
            pool.shutdown()
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client.get_executor(pure=False)
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client.get_executor(pure=False)


#: Worker seconds a chunk of points aims at: long enough that a future's own cost (pickling,
#: the round trip, one database transaction) is small beside it, short enough that a kill loses
#: little and the progress bar moves.
CHUNK_SECONDS = 0.2
#: Chunks in flight per worker: one running, one waiting, so a worker never waits for the parent.
CHUNKS_PER_WORKER = 2
#: Points read, checked against the database and noted in ``run_points`` at a time.
_BLOCK = 512


class Runner:
    """Evaluates points on an executor in chunks and stores each chunk as it finishes.

    A chunk starts at one point and then holds about :data:`CHUNK_SECONDS` of work by the last
    chunk's seconds per point (at most twice the last size: the first points of a worker are
    slow, and a mis-estimate should not stall the pipeline); near the end of a batch chunks
    shrink so that every worker gets a share. Points that take long (synthesis, Verilator) thus
    run one per chunk, and fast model-only points hundreds per chunk."""

    def __init__(self, store: ResultStore, run: SweepRun, pool, workers: int, progress,
                 retry_failed: bool):
        self.store, self.run, self.pool, self.progress = store, run, pool, progress
        self.workers = workers
        self.chunk = 1
        self.done = store.finished_keys(include_failed=not retry_failed)

    def evaluate(self, tasks: Iterable[Task], count: int) -> None:
        """Evaluate the ``count`` tasks of ``tasks`` (read as needed) whose rows are not all
        stored yet; the others count as skipped.

        If a worker process of the local pool dies, the pool starts again and the chunks it
        lost are submitted again; a chunk lost twice is stored as failed (a point that kills
        its worker, e.g. by running out of memory), so the sweep goes on."""
        in_flight = CHUNKS_PER_WORKER * self.workers
        handed, skipped = 0, self.run.points_skipped
        todo = self._unfinished(tasks)
        pending: dict = {}  # future -> (chunk, how many times it was lost before)
        while True:
            while len(pending) < in_flight:
                left = count - handed - (self.run.points_skipped - skipped)
                chunk = list(islice(todo, max(1, min(self.chunk, -(-left // in_flight)))))
                if not chunk:
                    break
                pending[self.pool.submit(points.evaluate_points, chunk)] = (chunk, 0)
                handed += len(chunk)
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            lost = []
            for future in finished:
                chunk, losses = pending.pop(future)
                try:
                    rows = future.result()
                except BrokenProcessPool:
                    lost.append((chunk, losses))
                    continue
                self._store(rows)
            if lost:
                self._start_again(pending, lost)

    def _start_again(self, pending: dict, lost: list) -> None:
        """Restart the broken pool and submit its lost chunks again, those still running
        included (they fail too); store the chunks lost twice as failed."""
        for future in list(pending):
            chunk, losses = pending.pop(future)
            if future.done() and future.exception() is None:
                self._store(future.result())
            else:
                lost.append((chunk, losses))
        self.pool.restart()
        _log.warning("sweep: a worker process died; the pool started again and %d points run "
                     "again", sum(len(chunk) for chunk, losses in lost if not losses))
        for chunk, losses in lost:
            if losses:
                self._store([points.evaluate_point(replace(
                    task, error="worker: the process evaluating this point died, twice"))
                    for task in chunk])
            else:
                pending[self.pool.submit(points.evaluate_points, chunk)] = (chunk, 1)

    def _unfinished(self, tasks: Iterable[Task]) -> Iterator[Task]:
        """The tasks whose rows are not all stored, read and noted in blocks of :data:`_BLOCK`
        (the others are counted as skipped)."""
        tasks = iter(tasks)
        while block := list(islice(tasks, _BLOCK)):
            self.store.note_points(self.run.run, [task.point for task in block])
            self.run.points_asked += len(block)
            todo = [task for task in block if not all(key in self.done for key in task.keys)]
            self.run.points_skipped += len(block) - len(todo)
            self.progress.update(len(block) - len(todo))
            yield from todo

    def _store(self, chunk_rows: list[list[dict]]) -> None:
        """Store a finished chunk (one transaction) and size the next one by its seconds."""
        self.store.write_points(chunk_rows, self.run.run)
        for rows in chunk_rows:
            self.done.update(row["key"] for row in rows)
            self.run.points_failed += any(row["status"] == "failed" for row in rows)
        self.run.points_evaluated += len(chunk_rows)
        self.progress.update(len(chunk_rows))
        seconds = sum(rows[0]["seconds"] for rows in chunk_rows) / len(chunk_rows)
        self.chunk = max(1, min(2 * len(chunk_rows), int(CHUNK_SECONDS / max(seconds, 1e-6))))
