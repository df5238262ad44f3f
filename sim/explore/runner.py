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

import asyncio
import ctypes
import logging
import os
import signal
import sys
import threading
import time
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
           "CHUNKS_PER_WORKER", "CONNECT_TIMEOUT_S", "Stopped", "stop_on_sigterm"]

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
    every future still running fails (:class:`~concurrent.futures.process.BrokenProcessPool`),
    and so does every later ``submit``; :meth:`restart` replaces it with a new one. Its workers
    start with :func:`_worker_start`."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, initializer=_worker_start,
                                   initargs=(os.getpid(),))

    def submit(self, function, *args):
        return self._pool.submit(function, *args)

    def restart(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._start()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def kill(self) -> None:
        """End the workers now (an interrupted sweep: their chunks are lost, not awaited)."""
        # ProcessPoolExecutor has no public way to end its workers before Python 3.14
        # (terminate_workers); its process table has been ``_processes`` since 3.2.
        for process in list((getattr(self._pool, "_processes", None) or {}).values()):
            process.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)


class Stopped(KeyboardInterrupt):
    """A SIGTERM, raised in the main thread as Ctrl-C's KeyboardInterrupt is, so that a sweep
    ends the same way: workers killed, the rows stored so far kept."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextmanager
def stop_on_sigterm():
    """Within the block, SIGTERM raises :class:`Stopped` (main thread only)."""
    def stop(signum, _frame):
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
        yield client.get_executor(pure=False)


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

        If a worker process of the local pool dies, the pool starts again and the chunks it
        lost are submitted again; a chunk lost twice is stored as failed (a point that kills
        its worker, e.g. by running out of memory), so the sweep goes on."""
        in_flight = CHUNKS_PER_WORKER * self.workers
        handed, skipped = 0, self.run.points_skipped
        todo = self._unfinished(tasks)
        self.pending = {}  # future -> (chunk, how many times it was lost before)
        lost: list = []
        while True:
            while len(self.pending) < in_flight and not lost:
                left = count - handed - (self.run.points_skipped - skipped)
                chunk = list(islice(todo, max(1, min(self.chunk, -(-left // in_flight)))))
                if not chunk:
                    break
                self._submit(chunk, 0, lost)
                handed += len(chunk)
            if lost:
                lost = self._start_again(lost)
                continue
            if not self.pending:
                return
            finished, _ = wait(self.pending, return_when=FIRST_COMPLETED)
            for future in finished:
                chunk, losses = self.pending.pop(future)
                try:
                    rows = future.result()
                except BrokenProcessPool:
                    lost.append((chunk, losses))
                    continue
                self._store(rows)

    def _submit(self, chunk: list[Task], losses: int, lost: list) -> None:
        """Hand ``chunk`` to the pool; a broken pool refuses it at once, and it joins ``lost``."""
        try:
            self.pending[self.pool.submit(points.evaluate_points, chunk)] = (chunk, losses)
        except BrokenProcessPool:
            lost.append((chunk, losses))

    def _start_again(self, lost: list) -> list:
        """Restart the broken pool and submit its lost chunks again, those still pending
        included (they fail too); store the chunks lost twice as failed. Returns the chunks
        that the new pool refused at once (it broke again)."""
        for future, (chunk, losses) in list(self.pending.items()):
            del self.pending[future]
            if future.done() and not future.cancelled() and future.exception() is None:
                self._store(future.result())
            else:
                lost.append((chunk, losses))
        self.pool.restart()
        _log.warning("sweep: a worker process died; the pool started again and %d points run "
                     "again", sum(len(chunk) for chunk, losses in lost if not losses))
        refused: list = []
        for chunk, losses in lost:
            if losses:
                self._store([points.evaluate_point(replace(
                    task, error="worker: the process evaluating this point died, twice"))
                    for task in chunk])
            else:
                self._submit(chunk, 1, refused)
        return refused

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
