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
worker process of the local pool dies, the pool starts again and the points of the chunks in
flight run again, one at a time and alone in the pool, so that a point lost again (it kills its
worker) is known and stored as failed; after :data:`MAX_RESTARTS` restarts in a row without a
finished chunk the sweep ends with :class:`PoolError`. (dask restarts its own workers.)
"""

import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, CancelledError, wait
from dataclasses import dataclass, replace
from itertools import islice

from peforge.sim.explore import points
from peforge.sim.explore.points import Task
from peforge.sim.explore.pools import PoolError
from peforge.sim.explore.results import ResultStore

__all__ = ["SweepRun", "Runner", "CHUNK_SECONDS", "CHUNKS_PER_WORKER", "MAX_RESTARTS"]


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


#: Worker seconds a chunk of points aims at: long enough that a future's own cost (pickling,
#: the round trip, one database transaction) is small beside it, short enough that a kill loses
#: little and the progress bar moves.
CHUNK_SECONDS = 0.2
#: Chunks in flight per worker: one running, one waiting, so a worker never waits for the parent.
CHUNKS_PER_WORKER = 2
#: Points read, checked against the database and noted in ``run_points`` at a time.
_BLOCK = 512
#: Pool restarts in a row, with no chunk finished by a worker between them, before the sweep
#: gives up (:class:`PoolError`): a worker killed from outside costs one restart, a point that
#: kills its worker two (its chunk's loss, then its run alone).
MAX_RESTARTS = 4
#: Exceptions of a future that mean the pool lost the chunk, not that its points failed: a dead
#: worker broke the pool, or dask cancelled the task.
_LOST = (BrokenExecutor, CancelledError)
#: Exceptions of a ``submit`` that mean the pool cannot take the chunk: it is broken
#: (BrokenExecutor, a RuntimeError as a submit to a pool that shut down is), or the system
#: refused a new worker.
_REFUSED = (RuntimeError, OSError)


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
        self.done = store.finished_keys(include_failed=not retry_failed,
                                        model_version=points.model_version())

    def evaluate(self, tasks: Iterable[Task], count: int) -> None:
        """Evaluate the ``count`` tasks of ``tasks`` (read as needed) whose rows are not all
        stored yet; the others count as skipped.

        One loop: fill the pool, wait for a chunk, store it; when the pool lost chunks (a worker
        died: every chunk in flight fails), start it again. The points of a lost chunk then run
        again one at a time, each alone in the pool: one lost again is stored as failed (a
        point that kills its worker, e.g. by running out of memory), so the sweep goes on. A
        chunk the pool refused at once runs again as it was. A chunk that raised anything else
        is stored as failed with the error. A pool that dies again after :data:`MAX_RESTARTS`
        restarts in a row without a finished chunk ends the sweep: :class:`PoolError`."""
        in_flight = CHUNKS_PER_WORKER * self.workers
        handed, skipped = 0, self.run.points_skipped
        todo = self._unfinished(tasks)
        pending = {}       # future -> (chunk, whether it is a lost point run again alone)
        refused = deque()  # chunks the broken pool refused: to submit again as they are
        alone = deque()    # points of lost chunks: to run again one at a time
        restarts = 0
        while True:
            broken = False
            # A point run again has the pool to itself: if it is lost again, it was the one.
            while not broken and not any(single for _, single in pending.values()) and \
                    len(pending) < (1 if alone else in_flight):
                if alone:
                    chunk, single = [alone.popleft()], True
                elif refused:
                    chunk, single = refused.popleft(), False
                else:
                    left = count - handed - (self.run.points_skipped - skipped)
                    chunk, single = list(islice(todo, max(1, min(
                        self.chunk, -(-left // in_flight))))), False
                    if not chunk:
                        break
                    handed += len(chunk)
                try:
                    pending[self.pool.submit(points.evaluate_points, chunk)] = (chunk, single)
                except _REFUSED:
                    if single:
                        alone.appendleft(chunk[0])
                    else:
                        refused.appendleft(chunk)
                    broken = True
            if not pending and not broken:
                return
            finished = () if broken else wait(pending, return_when=FIRST_COMPLETED)[0]
            outcomes = [self._settle(future, *pending.pop(future), alone) for future in finished]
            if all(outcomes) and not broken:
                restarts = 0
                continue
            # The pool is broken: every other chunk in flight fails with it, unless it finished
            # first.
            outcomes += [self._settle(future, chunk, single, alone)
                         for future, (chunk, single) in pending.items()]
            pending.clear()
            restarts = self._restart(0 if any(outcomes) else restarts,
                                     sum(map(len, refused)) + len(alone))

    def _settle(self, future, chunk: list[Task], single: bool, alone: deque) -> bool:
        """Store the rows of ``future`` if a worker finished it (True); else (the pool lost
        ``chunk``: False) queue its points to run ``alone``, or, a ``single`` point lost again,
        store it as failed. A chunk that raised is stored as failed with the error."""
        try:
            rows = future.result(timeout=0) if future.done() else None
        except _LOST:
            rows = None
        except Exception as error:  # noqa: BLE001 - any failure of a chunk is stored, not raised
            rows = self._failed(chunk, f"worker: evaluating the chunk raised "
                                f"{type(error).__name__}: {error}")
        if rows is not None:
            self._store(rows)
            return True
        if single:
            self._store(self._failed(chunk, "worker: the process evaluating this point died, "
                                     "twice"))
        else:
            alone.extend(chunk)
        return False

    @staticmethod
    def _failed(chunk: list[Task], error: str) -> list[list[dict]]:
        return [points.evaluate_point(replace(task, error=error)) for task in chunk]

    def _restart(self, restarts: int, again: int) -> int:
        """Start the pool again (``again`` points to run again); the restarts in a row, this
        one included. :class:`PoolError` when ``restarts`` is :data:`MAX_RESTARTS` already;
        a restart the system refuses (OSError) counts as one."""
        refusal = None
        while restarts < MAX_RESTARTS:
            restarts += 1
            try:
                self.pool.restart()
            except OSError as error:
                refusal = error
                _log.warning("sweep: the pool cannot start again (%s)", error)
                time.sleep(0.1 * restarts)
                continue
            _log.warning("sweep: a worker process died; the pool started again and %d points "
                         "run again", again)
            return restarts
        cause = f" (the last restart: {refusal})" if refusal else ""
        raise PoolError(f"sweep: the worker processes died {MAX_RESTARTS + 1} times in a row "
                        f"before finishing a chunk; the pool is not started again{cause}")

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
