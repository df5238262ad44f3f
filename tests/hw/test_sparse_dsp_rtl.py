"""Sparse DSP chain RTL against the golden and cycle models.

The family's jobs (random and extreme values, ragged shapes) run on Amaranth's simulator (fast
tier: every pattern, chain lengths 1..32, every pipeline-register setting) and on the generated
Verilog under Verilator. The pattern's N is an input of the beat, so the Verilator tier builds one
circuit per (chain, M, widths) and runs every N of that M on it: five builds cover dense and all
the issue's patterns. Every result is compared bit for bit, every GEMM's cycles exactly.
"""

import itertools
import subprocess
import sys

import numpy as np
import pytest

from peforge.models.numerics.nm_sparse import NMPattern
from peforge.models.sparse_dsp import NM_CHOICES
from peforge.sim.families import family
from peforge.sim.rtl.flow import generate
from peforge.sim.rtl.backends.verilator import lint

from tests.conftest import assert_jobs_exact, run_jobs

SPARSE_DSP = family("sparse-dsp")


def _check(backend, sizes="quick", **params):
    config = SPARSE_DSP.make_config(**params)
    jobs = SPARSE_DSP.make_jobs(config, np.random.default_rng(11), sizes)
    assert_jobs_exact(SPARSE_DSP, config, jobs, run_jobs(backend, SPARSE_DSP, config, jobs))


# Fast tier: Amaranth's simulator.
@pytest.mark.parametrize("nm", NM_CHOICES)
def test_amaranth_every_pattern(nm):
    """Each pattern on a chain of M slices: G = M reduction groups of one slice."""
    _check("amaranth", "full", chain=NMPattern.parse(nm).m, nm=nm)


@pytest.mark.parametrize("chain, nm", [
    (1, "2:2"), (3, "4:4"), (5, "16:16"), (6, "1:2"), (12, "2:4"), (12, "1:4"), (24, "4:8"),
    (24, "2:8"), (31, "8:8"), (32, "8:16"), (32, "4:16"), (32, "16:16"),
])
def test_amaranth_chain_lengths(chain, nm):
    _check("amaranth", chain=chain, nm=nm)


@pytest.mark.parametrize("areg, mreg, preg", list(itertools.product([0, 1, 2], [0, 1], [0, 1])))
def test_amaranth_pipeline_registers(areg, mreg, preg):
    _check("amaranth", chain=8, nm="2:4", areg=areg, mreg=mreg, preg=preg)


@pytest.mark.parametrize("bits", [2, 4])
@pytest.mark.parametrize("nm", ["1:4", "4:4"])
def test_amaranth_narrow_weights(bits, nm):
    _check("amaranth", chain=8, nm=nm, bits=bits, acc_bits=8 + bits)


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize("chain, nm", [(4, "1:2"), (8, "2:8"), (5, "2:2")])
def test_amaranth_accumulator_overflow(overflow, chain, nm):
    """A 16-bit accumulator overflows on the extreme-value jobs: it must wrap or clamp exactly
    as the golden model says."""
    _check("amaranth", chain=chain, nm=nm, acc_bits=16, overflow=overflow)


# Verilator tier: one build per row, every N of its M run on that build.
VERILATOR_BUILDS = [
    ({"chain": 1}, ["2:2", "16:16"]),
    ({"chain": 6, "overflow": "saturate", "acc_bits": 16, "areg": 2, "mreg": 0}, ["1:2", "2:2"]),
    ({"chain": 12, "bits": 4, "acc_bits": 20, "preg": 0}, ["1:4", "2:4", "4:4"]),
    ({"chain": 16}, ["2:8", "4:8", "8:8"]),
    ({"chain": 32, "acc_bits": 18}, ["4:16", "8:16", "16:16"]),
]


@pytest.mark.verilator
@pytest.mark.parametrize("params, patterns", VERILATOR_BUILDS)
def test_verilator(params, patterns):
    verilogs = {generate(SPARSE_DSP, SPARSE_DSP.make_config(nm=nm, **params))[0]
                for nm in patterns}
    assert len(verilogs) == 1
    for nm in patterns:
        _check("verilator", nm=nm, **params)


@pytest.mark.verilator
def test_cli_verify_passes_and_reports_cycles(tmp_path):
    """``peforge verify`` on the chain-16, M = 8 build above, running 4:8."""
    result = subprocess.run([sys.executable, "-m", "peforge.sim.cli", "verify", "sparse-dsp",
                             "--chain", "16", "--nm", "4:8"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    jobs = [line for line in lines if line.strip().startswith("job")]
    assert len(jobs) == 9 and all(line.endswith("PASS") for line in jobs)
    # 1 x 1 x 1: one beat, then areg + mreg + 16 * preg + 1 = 19 cycles
    assert "cycles 20 = model 20" in jobs[0]
    assert lines[-2] == "PASS: 9/9 jobs bit-exact with cycles equal to the model"
    assert lines[-1].startswith("simulated ") and lines[-1].endswith("cycles/s, bulk)")


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("chain, nm, overflow", [
    (2, "1:2", "wrap"), (4, "2:4", "saturate"), (7, "8:8", "wrap"), (8, "2:8", "saturate"),
    (16, "8:16", "wrap"), (20, "1:4", "wrap"), (24, "4:8", "saturate"), (32, "2:16", "saturate"),
    (32, "1:2", "wrap"),
])
def test_verilator_full_regression(chain, nm, overflow):
    _check("verilator", "full", chain=chain, nm=nm, overflow=overflow, acc_bits=20)


@pytest.mark.verilator
@pytest.mark.parametrize("params", [{"chain": 8, "nm": "2:4"}, {"chain": 3, "nm": "2:2"},
                                    {"chain": 4, "nm": "1:4", "overflow": "saturate",
                                     "areg": 0, "mreg": 0, "preg": 0}])
def test_lint_clean(params):
    verilog, _ = generate(SPARSE_DSP, SPARSE_DSP.make_config(**params))
    clean, messages = lint(verilog, SPARSE_DSP.top_name)
    assert clean, messages
