"""Where a sweep's points run: a local process pool that starts again when a worker dies, or
a dask.distributed cluster; and how a sweep is stopped by SIGTERM.

Local workers (:class:`_LocalPool`) ignore Ctrl-C (the parent's to handle) and die with their
parent. A finished pool gives its workers :data:`_EXIT_S` seconds, then kills them; a broken or
interrupted one kills them at once. dask (:func:`open_executor` with ``dask``) runs on the
scheduler given, or on a private TLS LocalCluster, and restarts its own workers.
"""

import asyncio
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

__all__ = ["EXECUTORS", "open_executor", "CONNECT_TIMEOUT_S", "PoolError", "Stopped",
           "stop_on_sigterm"]

EXECUTORS = ("local", "dask")

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
