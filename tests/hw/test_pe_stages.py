"""The systolic PE's product register (``mul_stages``): the same sums, a longer tile.

Amaranth's simulator and Verilator run the family's jobs on output-stationary arrays of float and
integer PEs with ``mul_stages=1``: outputs bit-exact against the golden model, and each job's
cycles against a hand count, ``tiles * (K + 2 * rows + cols - 2 + mul_stages)``.
"""

import math

import numpy as np
import pytest

from peforge.models.systolic import SystolicConfig
from peforge.sim.families import evaluate_latency, family
from peforge.sim.rtl.backends.verilator import lint
from peforge.sim.rtl.flow import generate

from tests.conftest import assert_jobs_exact, run_jobs

SYSTOLIC = family("systolic")


def _hand_cycles(rows, cols, stages, m, k, n):
    return math.ceil(m / rows) * math.ceil(n / cols) * (k + 2 * rows + cols - 2 + stages)


@pytest.mark.parametrize("values, message", [
    (dict(dataflow="ws", mul_stages=1), "mul_stages: must be 0 with dataflow=ws (the partial "
                                        "sums would need re-timing), got 1"),
    (dict(mul_stages=2), "mul_stages: must be an integer in 0..1, got 2"),
])
def test_bad_stage_settings_are_named(values, message):
    with pytest.raises(ValueError) as error:
        SystolicConfig(**values)
    assert str(error.value) == message


def test_cycle_model_is_the_hand_count():
    config = SystolicConfig(rows=4, cols=3, pe="fp", mul_stages=1)
    for m, k, n in [(1, 1, 1), (5, 9, 7), (8, 64, 3)]:
        assert SYSTOLIC.gemm_cycles(config, m, k, n) == _hand_cycles(4, 3, 1, m, k, n)
        assert evaluate_latency(SYSTOLIC.latency(config), m, k, n) == \
            _hand_cycles(4, 3, 1, m, k, n)


def _check_rtl(backend, **params):
    config = SYSTOLIC.make_config(mul_stages=1, **params)
    jobs = SYSTOLIC.make_jobs(config, np.random.default_rng(3), "quick")
    results = run_jobs(backend, SYSTOLIC, config, jobs)
    assert_jobs_exact(SYSTOLIC, config, jobs, results)
    for job, (_outputs, cycles) in zip(jobs, results):
        assert cycles == _hand_cycles(config.rows, config.cols, 1, *SYSTOLIC.job_shape(job))


@pytest.mark.parametrize("params", [
    dict(rows=2, cols=3, pe="fp", format="bf16"), dict(rows=1, cols=1, pe="lmul", format="e4m3"),
    dict(rows=3, cols=2, pe="int", bits=8)])
def test_amaranth_pe_stages(params):
    _check_rtl("amaranth", **params)


@pytest.mark.verilator
@pytest.mark.parametrize("params", [dict(rows=4, cols=4, pe="fp", format="bf16"),
                                    dict(rows=3, cols=2, pe="lmul", format="fp16")])
def test_verilator_pe_stages(params):
    _check_rtl("verilator", **params)


@pytest.mark.verilator
def test_lint_clean():
    verilog, _ = generate(SYSTOLIC, SYSTOLIC.make_config(rows=2, cols=2, pe="fp", mul_stages=1))
    clean, messages = lint(verilog, SYSTOLIC.top_name)
    assert clean, messages
