"""Bit-serial family RTL against the golden and cycle models.

The same jobs (random weights of every allowed type per group, extreme weights, quantised Gaussian
and Student-t weights, ragged M, K and N) run on Amaranth's simulator (fast tier) and on the
generated Verilog under Verilator; results before and after dequantisation are compared bit for
bit and every GEMM's measured cycles exactly with the job-level cycle model, in which each slot
takes the most terms of its columns' group types. The pace tests check measured cycles against
closed forms written out here.
"""

import itertools

import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from peforge.hw.bitserial.top import TermDecoder, slot_terms
from peforge.models.numerics import bitmod
from peforge.sim.families import family
from peforge.sim.families.bitserial import random_job
from peforge.sim.rtl.flow import generate
from peforge.sim.rtl.backends.verilator import lint

from tests.conftest import assert_jobs_exact, run_jobs
from tests.sim.test_cli import peforge

BITSERIAL = family("bitserial")
TERMS = {"fp3": 2, "fp4": 2, "int3": 2, "int4": 2, "int6": 3, "int8": 4}


def _check(backend, sizes="quick", **params):
    config = BITSERIAL.make_config(**params)
    jobs = BITSERIAL.make_jobs(config, np.random.default_rng(7), sizes)
    results = run_jobs(backend, BITSERIAL, config, jobs)
    assert_jobs_exact(BITSERIAL, config, jobs, results)
    return jobs, results


def test_term_decoder_matches_decompose():
    """Every code of every type under every selector, every term index, two lanes at once."""
    config = BITSERIAL.make_config(rows=1, cols=1, lanes=2, group=8, wtypes=",".join(TERMS))
    dut = TermDecoder(config)
    cases = [(index, wtype, selector, code)
             for index, wtype in enumerate(config.weight_types)
             for selector in range(wtype.n_selectors) for code in wtype.codes]
    mismatches = []

    def expected_terms(wtype, selector, code):
        terms = bitmod.decompose(bitmod.decode([code], wtype, selector), wtype)[0]
        return [(int(t["sign"]), int(t["exponent"]), int(t["mantissa"]), int(t["bsig"]) // 2)
                for t in terms]

    async def bench(ctx):
        for number, (index, wtype, selector, code) in enumerate(cases):
            other = wtype.codes[-1 - number % len(wtype.codes)]
            ctx.set(dut.wtype, index)
            ctx.set(dut.selector, selector)
            ctx.set(dut.code, [code, other])
            want = [expected_terms(wtype, selector, c) for c in (code, other)]
            for t in range(config.terms):
                ctx.set(dut.term_index, t)
                shift = ctx.get(dut.shift)
                for lane in range(2):
                    term = ctx.get(dut.terms[lane])
                    got = (term.sign, term.exponent, term.mantissa, shift)
                    if t < wtype.n_terms:
                        ok = got == want[lane][t]
                    else:
                        ok = term.mantissa == 0
                    if not ok:
                        mismatches.append((wtype.name, selector, code, t, lane, got))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert len(cases) == 255 + 63 + 15 + 7 + 4 * 16 + 4 * 8
    assert not mismatches, mismatches[:5]


def test_slot_terms_is_the_most_of_its_columns():
    """Every assignment of the 2-bit type index of 3 columns (fp4, int6, int8 and the unused
    index 3, which counts as fp4's 2 terms)."""
    config = BITSERIAL.make_config(rows=1, cols=3, lanes=1, wtypes="fp4,int6,int8", group=4)
    m = Module()
    wtypes = [Signal(2, name=f"wtype{j}") for j in range(3)]
    terms = slot_terms(m, config, wtypes)
    per_index = [TERMS["fp4"], TERMS["int6"], TERMS["int8"], TERMS["fp4"]]
    assignments = list(itertools.product(range(4), repeat=3))
    got = []

    async def bench(ctx):
        for assignment in assignments:
            for signal, index in zip(wtypes, assignment):
                ctx.set(signal, index)
            got.append(ctx.get(terms))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == [max(per_index[i] for i in assignment) for assignment in assignments]
    assert got.count(2) == 8 and got.count(3) == 19 and got.count(4) == 37


# Fast tier: Amaranth's simulator, small arrays, every datatype, mixed types per group.
@pytest.mark.parametrize("rows, cols, lanes, wtypes, group", [
    (1, 1, 1, "int8", 2),
    (2, 3, 2, "fp4,int4,int8", 8),
    (3, 2, 4, "fp3,int6,int3,fp4", 16),
    (2, 2, 3, "int6,fp3", 12),
    (2, 3, 1, "int8,int6", 3),
])
def test_amaranth(rows, cols, lanes, wtypes, group):
    _check("amaranth", "full", rows=rows, cols=cols, lanes=lanes, wtypes=wtypes, group=group)


@pytest.mark.parametrize("wtype", sorted(TERMS))
def test_amaranth_every_datatype(wtype):
    _check("amaranth", rows=2, cols=2, lanes=2, wtypes=wtype, group=8)


def test_amaranth_accumulators_wrap():
    """k_max = group: the extreme jobs (two int8 groups of -128 * -127) overflow both results."""
    jobs, results = _check("amaranth", rows=2, cols=2, lanes=2, wtypes="int8", group=4, k_max=4)
    extreme = jobs[-6]
    exact = extreme.a.astype(object) @ np.full(extreme.codes.shape, -127, dtype=object)
    assert (results[-6][0]["c_raw"] != exact).all()


def test_mixed_job_paces_each_slot_by_its_widest_column(rng):
    """2 x 2 array, 2 lanes, groups of 8 (4 slots), fp4/int6/int8 (2/3/4 terms). 3 x 24 x 3: two
    row tiles of two column tiles. Columns 0 and 1 take per group max(fp4, fp4) = 2,
    max(fp4, int6) = 3, max(int8, fp4) = 4 terms per slot; column 2 (with a padded column of the
    fastest type) 2, 3, 2."""
    config = BITSERIAL.make_config(rows=2, cols=2, lanes=2, wtypes="fp4,int6,int8", group=8)
    job = random_job(config, rng, 3, 24, 3, [[0, 0, 0], [0, 1, 1], [2, 0, 0]])
    results = run_jobs("amaranth", BITSERIAL, config, [job])
    assert_jobs_exact(BITSERIAL, config, [job], results)
    assert results[0][1] == 2 * ((4 * (2 + 3 + 4) + 8 + 2 + 1) + (4 * (2 + 3 + 2) + 8 + 2 + 1))


def test_lower_precision_is_faster_on_the_same_array(rng):
    """The same 3 x 17 x 3 GEMM on a 2 x 2 array, 2 lanes, groups of 8: 2 x 2 tiles of 3 groups
    of 4 slots, each slot as many cycles as the type has terms, plus 8 + 2 + 1 per tile."""
    measured = {}
    for wtype in ("fp4", "int6", "int8"):
        config = BITSERIAL.make_config(rows=2, cols=2, lanes=2, wtypes=wtype, group=8)
        job = random_job(config, rng, 3, 17, 3)
        results = run_jobs("amaranth", BITSERIAL, config, [job])
        assert_jobs_exact(BITSERIAL, config, [job], results)
        measured[wtype] = results[0][1]
    assert measured == {wtype: 4 * (3 * 4 * TERMS[wtype] + 11) for wtype in measured}
    assert measured["fp4"] < measured["int6"] < measured["int8"]


# Verilator tier: five builds cover every datatype (int8, fp4 and the mix of the example;
# fp3, int6, int3 in the 4 x 4 build), array sizes 1x1 to 8x8 and lanes 1, 2, 4.
VERILATOR_CASES = [
    dict(rows=1, cols=1, lanes=1, wtypes="int8", group=4),
    dict(rows=1, cols=1, lanes=1, wtypes="fp4", group=4),
    dict(rows=2, cols=3, lanes=4, wtypes="fp4,int4,int8", group=16),
    dict(rows=4, cols=4, lanes=2, wtypes="fp3,int6,int3", group=8),
    dict(rows=8, cols=8, lanes=4, wtypes="fp4,int4,int8", group=128),
]


def _case_id(params):
    return "{rows}x{cols}-l{lanes}-{wtypes}-g{group}".format(**params)


@pytest.mark.verilator
@pytest.mark.parametrize("params", VERILATOR_CASES, ids=_case_id)
def test_verilator(params):
    _check("verilator", **params)


@pytest.mark.verilator
def test_verilator_fp4_is_twice_as_fast_as_int8():
    """The two 1 x 1 builds (lanes 1, groups of 4) on the same GEMM: 4 groups of 4 slots, 2 or 4
    cycles per slot, plus 8 + 1 + 1 per tile."""
    rng = np.random.default_rng(11)
    cycles = {}
    for params in VERILATOR_CASES[:2]:
        config = BITSERIAL.make_config(**params)
        job = random_job(config, rng, 1, 16, 1)
        results = run_jobs("verilator", BITSERIAL, config, [job])
        assert_jobs_exact(BITSERIAL, config, [job], results)
        cycles[params["wtypes"]] = results[0][1]
    assert cycles == {"fp4": 4 * 4 * 2 + 10, "int8": 4 * 4 * 4 + 10}


@pytest.mark.verilator
def test_verilator_fp4_job_is_faster_than_int8_job_on_one_build(rng):
    """One build (2 x 3, 4 lanes, groups of 16, fp4,int4,int8) runs 3 x 40 x 5 GEMMs: 2 x 2
    tiles of 3 groups of 4 slots, plus 8 + 2 + 1 per tile. All-fp4 and all-int4 groups take 2
    cycles per slot, all-int8 4, and a job with one int8 column in each column tile 4."""
    config = BITSERIAL.make_config(**VERILATOR_CASES[2])
    one_int8_column = np.zeros((3, 5), dtype=int)
    one_int8_column[:, [1, 4]] = 2
    type_index = {"fp4": np.zeros((3, 5), dtype=int), "int4": np.ones((3, 5), dtype=int),
                  "int8": np.full((3, 5), 2), "fp4+int8": one_int8_column}
    jobs = [random_job(config, rng, 3, 40, 5, types) for types in type_index.values()]
    results = run_jobs("verilator", BITSERIAL, config, jobs)
    assert_jobs_exact(BITSERIAL, config, jobs, results)
    cycles = dict(zip(type_index, (measured for _, measured in results)))
    fast, slow = 4 * (3 * 4 * 2 + 11), 4 * (3 * 4 * 4 + 11)
    assert cycles == {"fp4": fast, "int4": fast, "int8": slow, "fp4+int8": slow}
    assert (fast, slow) == (140, 236) and cycles["int8"] / cycles["fp4"] == 236 / 140


@pytest.mark.verilator
def test_verify_command_passes():
    """``peforge verify`` on the 2 x 3 build (default wtypes fp4,int4,int8)."""
    result = peforge("verify", "bitserial", "--rows", "2", "--cols", "3", "--group", "16")
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = [line for line in result.stdout.splitlines() if line.strip().startswith("job")]
    assert len(jobs) == 11 and all(line.endswith("PASS") for line in jobs)
    # GEMM 1x1x1 (verify's seed 0): one tile of one group of 4 slots of as many terms as its
    # one column's type has (the padded columns are fp4), plus 8 + 2 + 1
    config = BITSERIAL.make_config(rows=2, cols=3, group=16)
    first = BITSERIAL.make_jobs(config, np.random.default_rng(0))[0]
    terms = TERMS[config.weight_types[first.type_index[0, 0]].name]
    assert f"cycles {4 * terms + 11} = model {4 * terms + 11}" in jobs[0]


# Slow regression: the wider job set on the builds above and on two more shapes (a tall array
# with 8 lanes of int6, a wide single-lane array allowing all six types).
SLOW_CASES = VERILATOR_CASES + [
    dict(rows=16, cols=4, lanes=8, wtypes="int6", group=24),
    dict(rows=3, cols=16, lanes=1, wtypes=",".join(TERMS), group=4),
]


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("params", SLOW_CASES, ids=_case_id)
def test_verilator_full_regression(params):
    _check("verilator", "full", **params)


@pytest.mark.verilator
def test_lint_clean():
    config = BITSERIAL.make_config(rows=2, cols=3, lanes=2, wtypes=",".join(TERMS), group=8)
    verilog, _ = generate(BITSERIAL, config)
    clean, messages = lint(verilog, BITSERIAL.top_name)
    assert clean, messages
