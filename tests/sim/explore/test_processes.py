"""Processes and faults: workers killed at random moments, the sweep killed or stopped (its
workers die with it, its rows stay), Ctrl-C, a scheduler that does not answer, and the private
dask LocalCluster (TLS, no dashboard)."""

import os
import random
import re
import signal
import socket
import ssl
import sqlite3
import subprocess
import sys
import time

import pytest

from peforge.sim.explore.results import ResultStore
from peforge.sim.explore.pools import open_executor
from peforge.sim.explore.spec import load_sweep

from tests.sim.explore.test_sweep import SMALL, _wait_for_rows, write_sweep

psutil = pytest.importorskip("psutil")

PEFORGE = [sys.executable, "-m", "peforge.sim.cli"]


def _sweep_of(tmp_path, latencies: int):
    """``(path, sweep)``: SMALL with ``latencies`` DRAM latencies (12 x ``latencies`` points)."""
    body = SMALL.replace("[1, 64]", "[1, 64]\n  dram.latency_cycles: "
                         f"{{from: 1, to: {latencies}, step: 1}}")
    path = write_sweep(tmp_path, body)
    return path, load_sweep(path)


def _start(path, db, workers=2):
    return subprocess.Popen(PEFORGE + ["sweep", str(path), "--db", str(db), "--workers",
                                       str(workers), "--quiet"], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _gone(pids, seconds: float) -> bool:
    """Whether every process of ``pids`` has ended within ``seconds`` (zombies count as ended:
    their parent is gone, init reaps them)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return True
        time.sleep(0.1)
    return False


def _kill_a_worker_at_random(tmp_path, trial: int) -> None:
    rng = random.Random(trial)
    path, sweep = _sweep_of(tmp_path, 150)
    db = tmp_path / f"kill{trial}.db"
    process = _start(path, db)
    # Any moment: while the pool starts, while the first chunks (one point each) run, or later.
    time.sleep(rng.uniform(0.0, 2.5))
    workers = psutil.Process(process.pid).children()
    if workers:
        rng.choice(workers).kill()
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    with ResultStore(db, readonly=True) as store:
        table = store.table()
    assert len(table) == sweep.size == table["point"].nunique(), err
    assert not table["error"].fillna("").str.startswith("worker:").any(), err
    assert "Traceback" not in err


@pytest.mark.parametrize("trial", range(3))
def test_killing_a_worker_at_a_random_moment_never_breaks_the_sweep(tmp_path, trial):
    _kill_a_worker_at_random(tmp_path, trial)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3, 23))
def test_killing_a_worker_at_a_random_moment_20_trials(tmp_path, trial):
    _kill_a_worker_at_random(tmp_path, trial)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGINT"])
def test_workers_die_with_their_sweep_and_the_rows_stay(tmp_path, how):
    path, sweep = _sweep_of(tmp_path, 300)
    db = tmp_path / "s.db"
    process = _start(path, db)
    _wait_for_rows(db, 6)
    workers = [child.pid for child in psutil.Process(process.pid).children()]
    assert workers
    if how == "SIGINT":  # Ctrl-C: the terminal signals the whole process group
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(getattr(signal, how))  # the parent alone
    _out, err = process.communicate(timeout=120)
    assert _gone(workers, 10), f"workers outlived their sweep ({how})"
    if how == "SIGKILL":
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 128 + getattr(signal, how)
        assert err == (f"peforge: error: interrupted ({how}): the rows stored in {db} are kept; "
                       "the same command carries on\n")
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = connection.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert 6 <= stored < sweep.size


_STUCK_ON_SIGTERM = """
import os, signal, threading
from peforge.sim.explore.pools import Stopped, stop_on_sigterm
stuck = threading.Lock()
stuck.acquire()
with stop_on_sigterm(lambda signum: f"gone {signum}", grace=0.5):
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Event().wait(60)
    except Stopped:
        stuck.acquire()  # the ending sweep waits on a lock the signal left held
"""


def test_a_sweep_stuck_after_sigterm_exits_within_its_grace():
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _STUCK_ON_SIGTERM], capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stderr) == (128 + signal.SIGTERM, f"gone {signal.SIGTERM}\n")
    assert time.monotonic() - started < 30


def test_a_scheduler_that_does_not_answer_is_a_one_line_error(tmp_path):
    path = write_sweep(tmp_path, SMALL)
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        done = subprocess.run(PEFORGE + ["sweep", str(path), "--db", str(tmp_path / "d.db"),
                                         "--executor", "dask", "--scheduler", address,
                                         "--connect-timeout", "1", "--quiet"],
                              capture_output=True, text=True, timeout=120)
        seconds = time.monotonic() - started
    assert done.returncode == 2
    assert re.fullmatch(rf"peforge: error: scheduler: no dask scheduler answered at {address} "
                        r"within 1 s \(.*\)\n", done.stderr), done.stderr
    assert seconds < 30


def _listening_ports(process) -> set[int]:
    ports = set()
    for each in [process] + process.children(recursive=True):
        try:
            ports |= {c.laddr.port for c in each.net_connections(kind="inet")
                      if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            pass
    return ports


def _plain_answer(port: int) -> bytes:
    """What a port answers to a plain HTTP request (b"" when it closes or resets)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            return connection.recv(64)
        except ConnectionResetError:
            return b""


def _tls_answer_without_certificate(port: int) -> bytes | None:
    """What a port answers over TLS from a client without a certificate (None: refused)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                context.wrap_socket(raw) as connection:
            connection.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return connection.recv(64) or None
    except OSError:  # ssl.SSLError included
        return None


def test_the_local_dask_cluster_is_private():
    here = psutil.Process()
    before = _listening_ports(here)
    with open_executor("dask", None, 1) as executor:
        assert executor.submit(sum, [1, 2, 3]).result(timeout=60) == 6
        assert executor.executor._client.scheduler.address.startswith("tls://127.0.0.1:")
        ports = _listening_ports(here) - before
        assert ports and 8787 not in ports
        comms = 0
        for port in ports:
            plain = _plain_answer(port)
            # Nothing in the clear but a worker HTTP server's 404 (it serves no route) ...
            assert plain == b"" or plain.startswith(b"HTTP/1.1 404 "), (port, plain)
            # ... and no TLS session without the cluster's certificate.
            assert _tls_answer_without_certificate(port) is None, port
            comms += plain == b""
        assert comms >= 2  # the scheduler's and the worker's (and the nanny's)


def test_a_remote_scheduler_runs_the_sweep(tmp_path):
    from distributed import LocalCluster

    from peforge.sim.explore.search import run_sweep

    sweep = load_sweep(write_sweep(tmp_path, SMALL))
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://",
                      dashboard_address=None) as cluster:
        run = run_sweep(sweep, tmp_path / "r.db", executor="dask",
                        scheduler=cluster.scheduler_address, quiet=True, connect_timeout=30)
    assert (run.points_evaluated, run.points_failed) == (12, 7)
