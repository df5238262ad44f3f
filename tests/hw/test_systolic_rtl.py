"""Systolic family RTL against the golden and cycle models.

The same jobs (random, corner, ragged) run on Amaranth's simulator (fast tier) and on the generated
Verilog under Verilator; every result is compared bit for bit and every GEMM's measured cycles
exactly with the cycle model.
"""

import itertools

import numpy as np
import pytest

from peforge.sim.families import family
from peforge.sim.rtl.flow import generate
from peforge.sim.rtl.backends.verilator import lint

from tests.conftest import assert_jobs_exact, run_jobs

SYSTOLIC = family("systolic")


def _check(backend, sizes="quick", **params):
    config = SYSTOLIC.make_config(**params)
    jobs = SYSTOLIC.make_jobs(config, np.random.default_rng(7), sizes)
    assert_jobs_exact(SYSTOLIC, config, jobs, run_jobs(backend, SYSTOLIC, config, jobs))


# Fast tier: Amaranth's simulator, small arrays, every dataflow and signedness.
@pytest.mark.parametrize("rows, cols", [(1, 1), (2, 2), (2, 3), (3, 2)])
@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("signed", [True, False])
def test_amaranth(rows, cols, dataflow, signed):
    _check("amaranth", "full", rows=rows, cols=cols, dataflow=dataflow, signed=signed)


@pytest.mark.parametrize("bits", [2, 16])
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_amaranth_operand_width_extremes(bits, dataflow):
    _check("amaranth", rows=2, cols=2, dataflow=dataflow, bits=bits, signed=bits == 16)


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_amaranth_accumulator_wraps(dataflow):
    """A 16-bit accumulator on int8 operands overflows on the corner jobs and must wrap."""
    _check("amaranth", rows=2, cols=2, dataflow=dataflow, acc_bits=16)


# Verilator tier: every array size of the issue, both dataflows and signednesses covered;
# the full cross product is the slow regression below.
VERILATOR_CASES = [
    (1, 1, "os", True), (1, 1, "ws", False),
    (2, 2, "os", False), (2, 2, "ws", True),
    (4, 4, "os", True), (4, 4, "ws", False),
    (4, 8, "os", False), (4, 8, "ws", True),
    (8, 8, "os", True), (8, 8, "ws", False),
    (16, 16, "os", False), (16, 16, "ws", True),
]


@pytest.mark.verilator
@pytest.mark.parametrize("rows, cols, dataflow, signed", VERILATOR_CASES)
def test_verilator(rows, cols, dataflow, signed):
    _check("verilator", rows=rows, cols=cols, dataflow=dataflow, signed=signed)


@pytest.mark.verilator
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_verilator_accumulator_wraps_and_narrow_operands(dataflow):
    _check("verilator", rows=3, cols=2, dataflow=dataflow, acc_bits=16)
    _check("verilator", rows=2, cols=3, dataflow=dataflow, bits=2, signed=True)


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("shape, dataflow, signed", list(itertools.product(
    [(1, 1), (2, 2), (4, 4), (4, 8), (8, 8), (16, 16)], ["os", "ws"], [True, False])))
def test_verilator_full_regression(shape, dataflow, signed):
    _check("verilator", "full", rows=shape[0], cols=shape[1], dataflow=dataflow, signed=signed)


@pytest.mark.verilator
@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("signed", [True, False])
def test_lint_clean(dataflow, signed):
    config = SYSTOLIC.make_config(rows=3, cols=4, dataflow=dataflow, signed=signed)
    verilog, _ = generate(SYSTOLIC, config)
    clean, messages = lint(verilog, SYSTOLIC.top_name)
    assert clean, messages
