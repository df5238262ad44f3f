"""The systolic PE's product register (``mul_stages``): the same sums, a longer tile; and the
Verilog of the float PEs and the dot unit at default stages, unchanged.

Amaranth's simulator and Verilator run the family's jobs on output-stationary arrays of float and
integer PEs with ``mul_stages=1``: outputs bit-exact against the golden model, and each job's
cycles against a hand count, ``tiles * (K + 2 * rows + cols - 2 + mul_stages)``.
"""

import hashlib
import math

import numpy as np
import pytest

from peforge.hw.common.verilog import to_verilog
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


#: sha256 of the Verilog main (bb36b9c, before these parameters) generated for each configuration.
MAIN_SHA256 = [
    ("lmul-dot", {"exact": True, "format": "fp16", "lanes": 3},
     "35a57257ad926c388719b33589b270162a27acb01ab23ebcff34b9c11508be80"),
    ("lmul-dot", {"lanes": 1, "format": "bf16"},
     "79fe60ceeed988d97545daab706247472adec00c8f103c7d4183a0bf52ce40f5"),
    ("systolic", {"rows": 2, "cols": 2, "pe": "fp"},
     "32109a20c496d8ebfa12ce16b86ad18494c5c955161241487bf56294c0a81886"),
    ("systolic", {"rows": 3, "cols": 2, "pe": "lmul", "format": "e4m3"},
     "3736718d5ae7bd38e5f80dcf22e0cdeec0d23000b11b68a75d79feda2c1d87ce"),
    ("systolic", {"rows": 2, "cols": 2, "dataflow": "ws", "pe": "fp"},
     "8a32bf20360d9a200095719d6df7f8146415a1ccc93dcada8dd67a576b246430"),
    ("systolic", {"rows": 2, "cols": 2},
     "1f2b8ad92c594caec19f0c603f1645c5d031824aa383474660122511dc4ee645"),
]


@pytest.mark.parametrize("name, values, sha256", MAIN_SHA256)
def test_verilog_at_default_stages_is_mains(name, values, sha256):
    """No stage parameter given: the Verilog is byte-identical to main's before they existed
    (more configurations in tests/hw/test_verilog_unchanged.py)."""
    fam = family(name)
    verilog = to_verilog(fam.generator(fam.make_config(**values)), fam.top_name)
    assert hashlib.sha256(verilog.encode()).hexdigest() == sha256
