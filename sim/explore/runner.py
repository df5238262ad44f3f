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

import asyncio
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import (FIRST_COMPLETED, BrokenExecutor, CancelledError,
                                ProcessPoolExecutor, wait)
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import islice

from peforge.sim.explore import points
from peforge.sim.explore.points import Task
from peforge.sim.explore.results import ResultStore

__all__ = ["EXECUTORS", "SweepRun", "Runner", "open_executor", "CHUNK_SECONDS",
           "CHUNKS_PER_WORKER", "CONNECT_TIMEOUT_S", "MAX_RESTARTS", "PoolError", "Stopped",
           "stop_on_sigterm"]

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


def _worker_start(parent: int) -> None:
    """Start of each local worker process: Ctrl-C and SIGTERM are the parent's to handle (a
    terminal sends SIGINT to the whole process group; a forked worker inherits the parent's
    handlers), and the worker dies with its parent, however the parent ends: on Linux by
    ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, elsewhere by a thread that polls ``os.getppid()``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform != "linux" or ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL,
                                                          0, 0, 0):
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before the watch began
        os._exit(1)


_PR_SET_PDEATHSIG = 1
#: Seconds between two looks at the parent of a worker without PR_SET_PDEATHSIG.
_PARENT_POLL_S = 0.5


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_S)
    os._exit(1)


class _LocalPool:
    """A process pool that can start again: when a worker process dies, the pool is broken and
    every future still running fails (:class:`~concurrent.futures.BrokenExecutor`), and so does
    every later ``submit``; :meth:`restart` replaces it with a new one. Its workers start with
    :func:`_worker_start`. Ending it never waits on a worker for long: :meth:`restart` and
    :meth:`kill` kill them at once, :meth:`shutdown` after a grace period."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, initializer=_worker_start,
                                   initargs=(os.getpid(),))

    def submit(self, function, *args):
        return self._pool.submit(function, *args)

    def processes(self) -> list:
        """The pool's worker processes (:class:`multiprocessing.Process`; none before the first
        submit). ProcessPoolExecutor has no public table of them before Python 3.14; its
        ``_processes`` has been one since 3.2."""
        return list((getattr(self._pool, "_processes", None) or {}).values())

    def restart(self) -> None:
        """End the (broken) pool, its workers killed, and start a new one (OSError when the
        system refuses the new one's pipes)."""
        self.kill()
        self._pool = self._start()

    def shutdown(self) -> None:
        """End the pool once its work is done: the workers are asked to exit and given
        :data:`_EXIT_S` seconds; those still there are killed. (A worker killed while it
        waits for work holds the pool's queue lock for good: the others, and the pool's
        ``shutdown(wait=True)``, would wait forever.)"""
        self._end(_EXIT_S)

    def kill(self) -> None:
        """End the workers now (an interrupted sweep, a broken pool: their chunks are lost, not
        awaited)."""
        self._end(0.0)

    def _end(self, grace: float) -> None:
        """Shut the pool down in a thread; after ``grace`` seconds kill its workers, which ends
        the shutdown (the pool's own thread sees them dead)."""
        processes = self.processes()
        ending = threading.Thread(target=self._shutdown, daemon=True)
        ending.start()
        ending.join(grace)
        if ending.is_alive():
            for process in processes:
                process.kill()
            ending.join()

    def _shutdown(self) -> None:
        try:
            self._pool.shutdown(wait=True, cancel_futures=True)
        except (OSError, RuntimeError) as error:  # the workers are killed all the same
            _log.warning("sweep: ending the worker processes failed (%s)", error)


#: Seconds the workers of a finished sweep are given to exit before they are killed.
_EXIT_S = 3.0


class _DaskPool:
    """dask's executor as the :class:`Runner` sees a pool: dask restarts its own workers, so
    :meth:`restart` has nothing to do."""

    def __init__(self, executor):
        self.executor = executor

    def submit(self, function, *args):
        return self.executor.submit(function, *args)

    def restart(self) -> None:
        pass


class PoolError(RuntimeError):
    """The worker processes died :data:`MAX_RESTARTS` + 1 times in a row before a chunk
    finished (they die as they start, or the system refuses new ones)."""


class Stopped(KeyboardInterrupt):
    """A SIGTERM, raised in the main thread as Ctrl-C's KeyboardInterrupt is, so that a sweep
    ends the same way: workers killed, the rows stored so far kept."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


#: Seconds a sweep is given to end after SIGTERM before :func:`stop_on_sigterm` exits hard.
STOP_GRACE_S = 15.0


@contextmanager
def stop_on_sigterm(farewell=lambda signum: "", grace: float = STOP_GRACE_S):
    """Within the block, SIGTERM raises :class:`Stopped` (main thread only). A signal may land
    inside a lock the ending sweep needs: if the block has not ended ``grace`` seconds later, a
    watchdog writes ``farewell(signum)`` to stderr and exits with status 128 + the signal
    (the workers die with their parent; the rows stored so far are committed)."""
    watchdogs = []

    def stop(signum, _frame):
        watchdog = threading.Timer(grace, _exit_hard, args=(signum, farewell(signum)))
        watchdog.daemon = True
        watchdog.start()
        watchdogs.append(watchdog)
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        for watchdog in watchdogs:
            watchdog.cancel()


def _exit_hard(signum: int, farewell: str) -> None:
    os.write(2, f"{farewell}\n".encode() if farewell else b"")
    os._exit(128 + signum)


#: Seconds ``--scheduler`` is given to answer (``--connect-timeout``).
CONNECT_TIMEOUT_S = 10.0


@contextmanager
def open_executor(kind: str, scheduler: str | None, workers: int,
                  connect_timeout: float = CONNECT_TIMEOUT_S):
    """The executor of ``kind`` (``local``: :class:`_LocalPool`; ``dask``: a client of
    ``scheduler``, or of a LocalCluster of ``workers`` processes). On an exception (Ctrl-C,
    SIGTERM) local workers are killed rather than awaited."""
    if kind == "local":
        pool = _LocalPool(workers)
        try:
            yield pool
        except BaseException:
            pool.kill()
            raise
        pool.shutdown()
        return
    with _dask_client(scheduler, workers, connect_timeout) as client:
        yield _DaskPool(client.get_executor(pure=False))


async def _identity(address: str, timeout: float) -> dict:
    """The ``identity`` of the dask scheduler at ``address`` (TLS settings from dask's config),
    or TimeoutError after ``timeout`` seconds."""
    from distributed.core import rpc
    from distributed.security import Security

    scheduler = rpc(address, timeout=timeout,
                    connection_args=Security().get_connection_args("client"))
    try:
        return await asyncio.wait_for(scheduler.identity(), timeout)
    finally:
        await scheduler.close_rpc()


@contextmanager
def _dask_client(scheduler: str | None, workers: int, connect_timeout: float):
    """A dask client: of ``scheduler`` (which runs the sweep's code and whose answers the sweep
    trusts: a remote scheduler is trusted code execution both ways), or of a private
    LocalCluster: TLS with a temporary certificate (no other local user can connect), its
    scheduler's HTTP server (dashboard, metrics) stopped and the workers' serving nothing."""
    import dask
    from distributed import Client, LocalCluster
    from distributed.security import Security

    if scheduler is not None:
        try:
            # distributed's own timeout does not bound a scheduler that accepts the connection
            # and then says nothing: ask it for its identity within the time first.
            asyncio.run(_identity(scheduler, connect_timeout))
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError, ValueError, TypeError) as error:
            raise ValueError(f"scheduler: no dask scheduler answered at {scheduler} within "
                             f"{connect_timeout:g} s ({type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else 'no answer'})") \
                from None
        with client:
            yield client
        return
    security = Security.temporary()
    with dask.config.set({"distributed.scheduler.http.routes": [],
                          "distributed.worker.http.routes": []}), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                         protocol="tls://", host="127.0.0.1", security=security,
                         # Its HTTP server starts whatever is asked (8787 by default): on a
                         # free port, serving nothing, and stopped at once.
                         scheduler_kwargs={"dashboard": False,
                                           "dashboard_address": "127.0.0.1:0"}) as cluster:
        cluster.scheduler.http_server.stop()
        with Client(cluster, security=security) as client:
            yield client


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
