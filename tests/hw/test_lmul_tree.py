"""The dot-product unit's pipelined adder tree (``adder="tree"``, ``tree_stages``).

The golden model against a plain float64 reference of the pairwise order; the RTL (Amaranth's
simulator, then Verilator) bit-exact against it at several stage counts, with the cycles of each
job checked against a hand count: ``M * N * ceil(K / lanes)`` beats, one cycle for the
accumulator register, one per tree stage.
"""

import math

import numpy as np
import pytest

from peforge.hw.lmul.tree import register_levels
from peforge.models.lmul import DotConfig, golden_gemm
from peforge.models.numerics.floatmac import cancelling_job
from peforge.sim.families import GemmJob, evaluate_latency, family

from peforge.sim.rtl.backends.verilator import lint
from peforge.sim.rtl.flow import generate

from tests.conftest import assert_jobs_exact, run_jobs
from tests.contract.references import _fp32_patterns, _products

DOT = family("lmul-dot")


def _plain_tree(config, a, b):
    """The tree's order in float64: each ``+`` of two fp32 values is exact in float64 up to
    one rounding to fp32 (53 >= 2 * 24 + 2 bits: double rounding is innocuous for a sum).
    ``add_stages=1``: beats ``0, 2, 4, ...`` and ``1, 3, ...`` summed apart, then added."""
    m, k = a.shape
    lanes = config.lanes
    sums = [np.zeros((m, b.shape[1]), dtype=np.float32) for _ in range(1 + config.add_stages)]
    for beat, start in enumerate(range(0, k, lanes)):
        acc = sums[beat % len(sums)]
        level = [_products(config, a[:, s][:, None], b[s][None, :]).astype(np.float32)
                 if s < k else np.zeros_like(acc) for s in range(start, start + lanes)]
        with np.errstate(invalid="ignore", over="ignore"):
            while len(level) > 1:
                pairs = [(level[i].astype(np.float64) + level[i + 1]).astype(np.float32)
                         for i in range(0, len(level) - 1, 2)]
                level = pairs + level[2 * len(pairs):]
            sums[beat % len(sums)] = (acc.astype(np.float64) + level[0]).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        acc = sums[0] if len(sums) == 1 else \
            (sums[0].astype(np.float64) + sums[1]).astype(np.float32)
    return _fp32_patterns(acc)


def _hand_cycles(lanes, stages, m, k, n, add_stages=0):
    """Beats, the output register, the tree stages; with ``add_stages`` a register in each of
    the ``ceil(log2(lanes))`` adder levels and the accumulator adder, the partial sums'
    registers, and a register in the adder of the two."""
    levels = math.ceil(math.log2(lanes)) if lanes > 1 else 0
    return m * n * math.ceil(k / lanes) + 1 + stages + add_stages * (levels + 3)


# -- configuration --------------------------------------------------------------------------------

@pytest.mark.parametrize("values, message", [
    (dict(tree_stages=1), "tree_stages: must be 0 with adder=chain (its running sum feeds back "
                          "every cycle), got 1"),
    (dict(adder="tree", lanes=8, tree_stages=5), "tree_stages: must be an integer in 0..4 for "
                                                 "lanes=8, got 5"),
    (dict(adder="tree", lanes=1, tree_stages=2), "tree_stages: must be an integer in 0..1 for "
                                                 "lanes=1, got 2"),
    (dict(adder="tree", tree_stages=-1), "tree_stages: must be an integer in 0..7, got -1"),
    (dict(adder="wallace"), "adder: must be one of chain, tree, got 'wallace'"),
    (dict(add_stages=1), "add_stages: must be 0 with adder=chain (its running sum feeds back "
                         "every cycle), got 1"),
    (dict(adder="tree", add_stages=2), "add_stages: must be an integer in 0..1, got 2"),
])
def test_bad_stage_settings_are_named(values, message):
    with pytest.raises(ValueError) as error:
        DotConfig(**values)
    assert str(error.value) == message


@pytest.mark.parametrize("lanes, stages, levels", [
    (8, 1, {3}), (8, 2, {1, 3}), (8, 3, {1, 2, 3}), (8, 4, {0, 1, 2, 3}),
    (1, 1, {0}), (5, 2, {1, 3}), (64, 7, set(range(7))), (2, 1, {1}), (3, 0, set())])
def test_register_levels_cut_the_tree_evenly(lanes, stages, levels):
    """Hand counts: 8 lanes are 4 levels (products, then 3 adder levels)."""
    assert register_levels(lanes, stages) == levels


# -- golden model ---------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [dict(lanes=8), dict(lanes=5, format="bf16", exact=True),
                                    dict(lanes=1, format="e5m2"), dict(lanes=3, format="fp16"),
                                    dict(lanes=8, add_stages=1),
                                    dict(lanes=1, format="fp16", exact=True, add_stages=1)])
def test_golden_tree_equals_plain_reference(params, rng):
    config = DotConfig(adder="tree", **params)
    for m, k, n in [(1, 1, 1), (3, 17, 2), (2, 2 * config.lanes, 4), (2, 5 * config.lanes, 3)]:
        job = DOT.random_job(config, rng, m, k, n)
        assert golden_gemm(config, job.a, job.b).tolist() == \
            _plain_tree(config, job.a, job.b).tolist()


def test_tree_order_is_not_the_chain_order(rng):
    """On fp16 exact products the two orders round differently somewhere (else the parameter
    would not be numerics)."""
    chain, tree = DotConfig(format="fp16", exact=True), DotConfig(format="fp16", exact=True,
                                                                  adder="tree")
    job = DOT.random_job(chain, rng, 16, 64, 16)
    assert (golden_gemm(chain, job.a, job.b) != golden_gemm(tree, job.a, job.b)).any()


def test_split_accumulator_is_not_the_single_order(rng):
    """On fp16 exact products summing even and odd beats apart rounds differently somewhere."""
    single = DotConfig(format="fp16", exact=True, adder="tree", lanes=2)
    split = DotConfig(format="fp16", exact=True, adder="tree", lanes=2, add_stages=1)
    job = DOT.random_job(single, rng, 16, 64, 16)
    assert (golden_gemm(single, job.a, job.b) != golden_gemm(split, job.a, job.b)).any()


@pytest.mark.parametrize("lanes, stages, add_stages", [
    (8, 0, 0), (8, 3, 0), (1, 1, 0), (5, 2, 0), (8, 4, 1), (1, 0, 1), (5, 0, 1)])
def test_cycle_model_is_the_hand_count(lanes, stages, add_stages):
    config = DotConfig(adder="tree", lanes=lanes, tree_stages=stages, add_stages=add_stages)
    for m, k, n in [(1, 1, 1), (3, 17, 2), (4, 64, 5)]:
        hand = _hand_cycles(lanes, stages, m, k, n, add_stages)
        assert DOT.gemm_cycles(config, m, k, n) == hand
        assert evaluate_latency(DOT.latency(config), m, k, n) == hand
    assert DOT.pipeline_overlap(config) == _hand_cycles(lanes, stages, 0, 1, 0, add_stages)


# -- RTL ------------------------------------------------------------------------------------------

def _check_rtl(backend, rng, **params):
    """The family's jobs plus one ragged one; bit-exact, cycles from the cycle model and then
    from the hand count."""
    config = DOT.make_config(adder="tree", **params)
    jobs = DOT.make_jobs(config, rng, "quick") + [DOT.random_job(config, rng, 2, 11, 3)]
    results = run_jobs(backend, DOT, config, jobs)
    assert_jobs_exact(DOT, config, jobs, results)
    for job, (_outputs, cycles) in zip(jobs, results):
        assert cycles == _hand_cycles(config.lanes, config.tree_stages, *DOT.job_shape(job),
                                      config.add_stages)


@pytest.mark.parametrize("params", [
    dict(lanes=4, tree_stages=0), dict(lanes=4, tree_stages=2), dict(lanes=4, tree_stages=3),
    dict(lanes=1, tree_stages=1, format="e5m2", exact=True),
    dict(lanes=3, tree_stages=1, format="bf16", exact=True),
    dict(lanes=4, tree_stages=3, add_stages=1), dict(lanes=1, add_stages=1),
    dict(lanes=3, add_stages=1, format="fp16", exact=True)])
def test_amaranth_tree(params, rng):
    _check_rtl("amaranth", rng, **params)


@pytest.mark.verilator
@pytest.mark.parametrize("params", [dict(tree_stages=2),
                                    dict(lanes=5, tree_stages=4, format="fp16", exact=True),
                                    dict(tree_stages=4, add_stages=1),
                                    dict(lanes=2, add_stages=1, format="bf16", exact=True)])
def test_verilator_tree(params, rng):
    _check_rtl("verilator", rng, **params)


@pytest.mark.verilator
def test_verilator_tree_back_to_back_cancelling(rng):
    """Cancelling jobs (:func:`cancelling_job`) at the deepest pipeline of 8 lanes."""
    config = DOT.make_config(adder="tree", tree_stages=4)
    jobs = [GemmJob(**cancelling_job(config.mac.fmt, rng, 3, 29, 2)) for _ in range(3)]
    results = run_jobs("verilator", DOT, config, jobs)
    assert_jobs_exact(DOT, config, jobs, results)
    assert [cycles for _, cycles in results] == [_hand_cycles(8, 4, 3, 29, 2)] * 3


@pytest.mark.verilator
def test_lint_clean():
    verilog, _ = generate(DOT, DOT.make_config(adder="tree", lanes=5, tree_stages=2))
    clean, messages = lint(verilog, DOT.top_name)
    assert clean, messages


def test_energy_configuration_keeps_the_stages_four_lanes_take():
    """4 lanes are 3 levels (products, 2 adder levels): 4 stages become 3, 2 stay 2."""
    deep = DOT.energy_config(DotConfig(adder="tree", tree_stages=4))
    shallow = DOT.energy_config(DotConfig(adder="tree", lanes=16, tree_stages=2))
    assert (deep.lanes, deep.tree_stages, shallow.lanes, shallow.tree_stages) == (4, 3, 4, 2)
