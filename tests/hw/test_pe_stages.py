"""The systolic PE's product register (``mul_stages``): the same sums, a longer tile; its
adder's register (``add_stages``, float PEs): even and odd K steps summed apart; and the
Verilog of the float PEs and the dot unit at default stages, unchanged.

Amaranth's simulator and Verilator run the family's jobs on output-stationary arrays of float and
integer PEs with the stages: outputs bit-exact against the golden model (``add_stages``: and
against a float64 reference of the split order), and each job's cycles against a hand count,
``tiles * (K + 2 * rows + cols - 2 + mul_stages + 3 * add_stages)``.
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
from tests.contract.references import _fp32_patterns, _products

SYSTOLIC = family("systolic")


def _hand_cycles(rows, cols, stages, m, k, n, add_stages=0):
    """Per tile: K beats, the wavefront, the product register; with ``add_stages`` the last
    sum's register and the two cycles of adding the partial sums; the drain."""
    return math.ceil(m / rows) * math.ceil(n / cols) * (k + 2 * rows + cols - 2 + stages
                                                        + 3 * add_stages)


@pytest.mark.parametrize("values, message", [
    (dict(dataflow="ws", mul_stages=1), "mul_stages: must be 0 with dataflow=ws (the partial "
                                        "sums would need re-timing), got 1"),
    (dict(mul_stages=2), "mul_stages: must be an integer in 0..1, got 2"),
    (dict(add_stages=1), "add_stages: needs pe=lmul or fp and dataflow=os (an integer adder is "
                         "fast; ws partial sums pass every cycle), got pe=int dataflow=os"),
    (dict(pe="fp", dataflow="ws", add_stages=1),
     "add_stages: needs pe=lmul or fp and dataflow=os (an integer adder is fast; ws partial "
     "sums pass every cycle), got pe=fp dataflow=ws"),
    (dict(pe="fp", add_stages=2), "add_stages: must be an integer in 0..1, got 2"),
])
def test_bad_stage_settings_are_named(values, message):
    with pytest.raises(ValueError) as error:
        SystolicConfig(**values)
    assert str(error.value) == message


@pytest.mark.parametrize("mul_stages, add_stages", [(1, 0), (0, 1), (1, 1)])
def test_cycle_model_is_the_hand_count(mul_stages, add_stages):
    config = SystolicConfig(rows=4, cols=3, pe="fp", mul_stages=mul_stages,
                            add_stages=add_stages)
    for m, k, n in [(1, 1, 1), (5, 9, 7), (8, 64, 3)]:
        hand = _hand_cycles(4, 3, mul_stages, m, k, n, add_stages)
        assert SYSTOLIC.gemm_cycles(config, m, k, n) == hand
        assert evaluate_latency(SYSTOLIC.latency(config), m, k, n) == hand


def _split_reference(config, a, b):
    """Even and odd k steps of float64 MACs of the PE's own products (fp32 rounding after
    each add: exact in float64, then one rounding), then their sum."""
    products = _products(config, a[:, :, None], b[None, :, :])       # m x k x n, fp32 values
    sums = []
    with np.errstate(invalid="ignore", over="ignore"):
        for first in (0, 1):
            acc = np.zeros((a.shape[0], b.shape[1]), dtype=np.float32)
            for step in range(first, a.shape[1], 2):
                acc = (acc.astype(np.float64) + products[:, step, :]).astype(np.float32)
            sums.append(acc)
        return _fp32_patterns((sums[0].astype(np.float64) + sums[1]).astype(np.float32))


def test_golden_split_order_equals_plain_reference(rng):
    for pe, fmt in (("fp", "bf16"), ("lmul", "e4m3"), ("fp", "fp16")):
        config = SystolicConfig(rows=2, cols=2, pe=pe, format=fmt, add_stages=1)
        for m, k, n in [(1, 1, 1), (3, 2, 2), (4, 33, 3)]:
            job = SYSTOLIC.random_job(config, rng, m, k, n)
            assert SYSTOLIC.golden(config, job)["c"].tolist() == \
                _split_reference(config, job.a, job.b).tolist()


def test_split_order_is_not_the_k_order(rng):
    """On fp16 exact products the two orders round differently somewhere."""
    single, split = (SystolicConfig(pe="fp", format="fp16", add_stages=s) for s in (0, 1))
    job = SYSTOLIC.random_job(single, rng, 16, 64, 16)
    assert (SYSTOLIC.golden(single, job)["c"] != SYSTOLIC.golden(split, job)["c"]).any()


def _check_rtl(backend, mul_stages=1, add_stages=0, **params):
    config = SYSTOLIC.make_config(mul_stages=mul_stages, add_stages=add_stages, **params)
    rng = np.random.default_rng(3)
    jobs = SYSTOLIC.make_jobs(config, rng, "quick")
    if add_stages:      # one K step (no odd sum), two, and an odd count over several tiles
        jobs += [SYSTOLIC.random_job(config, rng, *shape)
                 for shape in ((1, 1, 1), (2, 2, 3), (2 * config.rows + 1, 7, config.cols + 1))]
    results = run_jobs(backend, SYSTOLIC, config, jobs)
    assert_jobs_exact(SYSTOLIC, config, jobs, results)
    for job, (_outputs, cycles) in zip(jobs, results):
        assert cycles == _hand_cycles(config.rows, config.cols, mul_stages,
                                      *SYSTOLIC.job_shape(job), add_stages)


@pytest.mark.parametrize("params", [
    dict(rows=2, cols=3, pe="fp", format="bf16"), dict(rows=1, cols=1, pe="lmul", format="e4m3"),
    dict(rows=3, cols=2, pe="int", bits=8),
    dict(rows=2, cols=3, pe="fp", format="bf16", add_stages=1),
    dict(rows=1, cols=1, pe="lmul", format="e4m3", mul_stages=0, add_stages=1),
    dict(rows=3, cols=2, pe="fp", format="fp16", mul_stages=0, add_stages=1)])
def test_amaranth_pe_stages(params):
    _check_rtl("amaranth", **params)


@pytest.mark.verilator
@pytest.mark.parametrize("params", [dict(rows=4, cols=4, pe="fp", format="bf16"),
                                    dict(rows=3, cols=2, pe="lmul", format="fp16"),
                                    dict(rows=4, cols=4, pe="fp", format="bf16", add_stages=1),
                                    dict(rows=2, cols=3, pe="lmul", format="e5m2",
                                         mul_stages=0, add_stages=1)])
def test_verilator_pe_stages(params):
    _check_rtl("verilator", **params)


@pytest.mark.verilator
@pytest.mark.parametrize("add_stages", [0, 1])
def test_lint_clean(add_stages):
    verilog, _ = generate(SYSTOLIC, SYSTOLIC.make_config(rows=2, cols=2, pe="fp", mul_stages=1,
                                                         add_stages=add_stages))
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
