"""Shared helpers: run a family's jobs on a backend and check them against the models."""

import signal

import numpy as np
import pytest

from peforge.sim.rtl.backends import get_backend
from peforge.sim.rtl.flow import check_job

# A shell starts a background job (``make test &``, nohup) with SIGINT ignored, and its children
# inherit that: the Ctrl-C tests' subprocesses would then never see their SIGINT. Python's own
# handler here makes every child start with the default disposition again.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run_jobs(backend, family, config, jobs):
    """``(outputs, cycles)`` per job on ``backend`` ("amaranth" or "verilator"). Verilator builds
    are cached on disk per Verilog content, so every test of one configuration shares one build."""
    return get_backend(backend).run_jobs(family, config, jobs)


def assert_jobs_exact(family, config, jobs, results):
    """Every job's outputs equal the golden model bit for bit and its measured cycles equal the
    timing model exactly (:func:`peforge.sim.rtl.flow.check_job`)."""
    assert len(results) == len(jobs)
    for number, (job, (outputs, cycles)) in enumerate(zip(jobs, results)):
        result = check_job(family, config, job, outputs, cycles)
        assert result.passed, f"job {number} ({family.job_shape(job)}): {result.describe()}"


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


@pytest.fixture
def fresh_machine(tmp_path, monkeypatch):
    """An empty ``$PEFORGE_CACHE`` (``tmp_path``) and no gate-level measurement allowed
    (``peforge.sim.eda.energy._measure`` raises EnergyError, as a failing one would): energy
    only from the shipped table. Yields the cache folder."""
    from peforge.sim.eda import energy

    def refuse(*args, **kwargs):
        raise energy.EnergyError("energy: a gate-level measurement was started (fresh_machine "
                                 "refuses them)")

    monkeypatch.setenv("PEFORGE_CACHE", str(tmp_path))
    energy._reduced_verilog.cache_clear()
    monkeypatch.setattr(energy, "_measure", refuse)
    yield tmp_path
