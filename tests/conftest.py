"""Shared helpers: run a family's jobs on a backend and check them against the models."""

import numpy as np
import pytest

from peforge.sim.rtl.backends.amaranth import run_jobs_amaranth
from peforge.sim.rtl.flow import generate
from peforge.sim.rtl.backends.verilator import build, run_jobs_verilator


def run_jobs(backend, family, config, jobs):
    """``(outputs, cycles)`` per job on ``backend`` ("amaranth" or "verilator"). Verilator builds
    are cached on disk per Verilog content, so every test of one configuration shares one build."""
    if backend == "amaranth":
        return run_jobs_amaranth(family, config, jobs)
    verilog, _ = generate(family, config)
    return run_jobs_verilator(family, config, jobs, build(verilog, family.top_name))


def assert_jobs_exact(family, config, jobs, results):
    """Every job's outputs equal the golden model bit for bit and its measured cycles equal the
    timing model exactly."""
    assert len(results) == len(jobs)
    for number, (job, (outputs, cycles)) in enumerate(zip(jobs, results)):
        expected = family.golden(config, job)
        assert outputs.keys() == expected.keys()
        for name in expected:
            got = np.asarray(outputs[name], dtype=object)
            want = np.asarray(expected[name], dtype=object)
            assert got.shape == want.shape, f"job {number}: {name} shape"
            bad = np.argwhere(got != want)
            assert not len(bad), (f"job {number} ({family.job_shape(job)}): {len(bad)} values "
                                  f"differ, first at {tuple(bad[0])}: RTL "
                                  f"{got[tuple(bad[0])]}, golden {want[tuple(bad[0])]}")
        model = family.job_cycles(config, job)
        assert cycles == model, f"job {number} ({family.job_shape(job)}): RTL {cycles} cycles, model {model}"


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


@pytest.fixture
def fresh_machine(tmp_path, monkeypatch):
    """An empty ``$PEFORGE_CACHE`` (``tmp_path``), no OSU018 Liberty and no gate-level
    measurement allowed (``peforge.sim.eda.energy._measure`` raises): energy only from the shipped
    table. Yields the cache folder."""
    from peforge.sim.eda import energy

    def refuse(*args, **kwargs):
        raise AssertionError("a gate-level measurement was started")

    monkeypatch.setenv("PEFORGE_CACHE", str(tmp_path))
    energy._reduced_verilog.cache_clear()
    monkeypatch.setattr(energy, "_measure", refuse)
    monkeypatch.setattr(energy, "default_liberty", lambda: None)
    yield tmp_path
