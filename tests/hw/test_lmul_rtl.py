"""L-Mul families' RTL against the golden and cycle models.

Fast tier (Amaranth's simulator): the fp32 adder and the widener against the numerics model, and
small configurations of ``lmul``, ``lmul-dot`` and ``systolic`` with float PEs. Verilator tier: every one
of the 65,536 operand pairs of e4m3 and e5m2 through the L-Mul and the exact multiplier, fp16 and
bf16 random and corner pairs, and the dot-product unit and the L-Mul systolic array on random and
cancelling GEMMs; outputs bit-exact (NaN is the golden model's NaN pattern) and cycles exact.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from peforge.hw.common.floatmac import FloatAdder, FloatWidener
from peforge.models.numerics.floatfmt import FORMATS, FP32, decode
from peforge.models.numerics.floatmac import CANONICAL_NAN
from peforge.sim.families import family
from peforge.sim.rtl.flow import generate
from peforge.sim.rtl.backends.verilator import lint

from tests.conftest import assert_jobs_exact, run_jobs
from tests.models.test_floatmac_model import f32_bits, f32_value

LMUL, DOT, SYSTOLIC = family("lmul"), family("lmul-dot"), family("systolic")


def _check(fam, backend, sizes="quick", **params):
    config = fam.make_config(**params)
    jobs = fam.make_jobs(config, np.random.default_rng(5), sizes)
    assert_jobs_exact(fam, config, jobs, run_jobs(backend, fam, config, jobs))


def _simulate(dut, inputs: dict, output) -> list[int]:
    """``output`` of the combinational ``dut`` for each row of ``inputs`` (port -> values)."""
    got = []

    async def testbench(ctx):
        for values in zip(*inputs.values()):
            for port, value in zip(inputs, values):
                ctx.set(getattr(dut, port), int(value))
            got.append(ctx.get(output))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return got


def _fp32_operands(rng, count):
    """Random fp32 patterns rich in zeros, subnormals, Inf/NaN, equal exponents and near
    cancellation."""
    sign = rng.integers(0, 2, count) << 31
    exp = np.select([rng.random(count) < 0.15, rng.random(count) < 0.1],
                    [rng.integers(0, 3, count), rng.integers(252, 256, count)],
                    rng.integers(100, 156, count))
    frac = np.where(rng.random(count) < 0.1, 0, rng.integers(0, 1 << 23, count))
    return sign | (exp << 23) | frac


# -- fast tier ------------------------------------------------------------------------------------

def _adder_cases(rng):
    a = _fp32_operands(rng, 4000)
    b = _fp32_operands(rng, 4000)
    b[:1000] = (a[:1000] ^ (1 << 31)) + rng.integers(-3, 4, 1000)        # near cancellation
    b[1000:2000] = (a[1000:2000] ^ (1 << 31)) + (rng.integers(0, 3, 1000) << 23)
    b[2000:2100] = a[2000:2100]
    a, b = a & 0xFFFFFFFF, b & 0xFFFFFFFF
    return a, b, [f32_bits(f32_value(x) + f32_value(y)) for x, y in zip(a, b)]


def test_amaranth_fp32_adder(rng):
    a, b, want = _adder_cases(rng)
    dut = FloatAdder(FP32)
    assert _simulate(dut, {"a": a, "b": b}, dut.s) == want


def test_amaranth_staged_fp32_adder(rng):
    """``stages=1``: a new pair every cycle, each sum one cycle later, the same sums."""
    a, b, want = _adder_cases(rng)
    dut = FloatAdder(FP32, stages=1)
    got = []

    async def testbench(ctx):
        for x, y in zip(a, b):
            ctx.set(dut.a, int(x))
            ctx.set(dut.b, int(y))
            await ctx.tick()
            got.append(ctx.get(dut.s))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert got == want


def test_staged_adder_takes_one_register_stage():
    with pytest.raises(ValueError, match=r"^stages: must be 0 or 1, got 2$"):
        FloatAdder(FP32, stages=2)


@pytest.mark.parametrize("name", ["e4m3", "e5m2", "fp16", "bf16"])
def test_amaranth_widener(name, rng):
    fmt = FORMATS[name]
    patterns = np.arange(1 << fmt.bits) if fmt.bits == 8 else np.concatenate(
        [np.arange(1 << 10), rng.integers(0, 1 << 16, 3000), np.arange(0x7C00, 0x7C10),
         np.arange(0x7F80, 0x7F90)])
    want = [f32_bits(float(v)) if v == v else CANONICAL_NAN for v in decode(fmt, patterns)]
    dut = FloatWidener(fmt, FP32)
    assert _simulate(dut, {"x": patterns}, dut.y) == want


@pytest.mark.parametrize("params", [
    dict(format="e4m3", lanes=1), dict(format="e5m2", exact=True, lanes=5),
    dict(format="fp16", lanes=64), dict(format="bf16", exact=True, lanes=3)])
def test_amaranth_multipliers(params):
    _check(LMUL, "amaranth", **params)


@pytest.mark.parametrize("params", [
    dict(format="e4m3", lanes=1), dict(format="e5m2", exact=True, lanes=4),
    dict(format="fp16", lanes=3), dict(format="bf16", exact=True, lanes=2)])
def test_amaranth_dot(params):
    _check(DOT, "amaranth", "full", **params)


@pytest.mark.parametrize("rows, cols", [(1, 1), (2, 3), (3, 2)])
@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("fmt, exact", [("bf16", False), ("e4m3", True)])
def test_amaranth_systolic(rows, cols, dataflow, fmt, exact):
    _check(SYSTOLIC, "amaranth", rows=rows, cols=cols, dataflow=dataflow, format=fmt,
           pe="fp" if exact else "lmul")


# -- Verilator tier -------------------------------------------------------------------------------

@pytest.mark.verilator
@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
@pytest.mark.parametrize("exact", [False, True])
def test_verilator_exhaustive_8bit(fmt, exact):
    """All 65,536 operand pairs (the ``full`` job set), 16 per beat."""
    _check(LMUL, "verilator", "full", format=fmt, exact=exact)


@pytest.mark.verilator
@pytest.mark.parametrize("fmt, exact", [("fp16", False), ("bf16", True)])
def test_verilator_16bit_pairs(fmt, exact):
    """Corner pairs and 1,023 random and boundary pairs (the quick set), then 65,536 more."""
    _check(LMUL, "verilator", "full", format=fmt, exact=exact)


DOT_CASES = [dict(), dict(format="fp16", exact=True, lanes=3)]
SYSTOLIC_CASES = [dict(rows=4, cols=4, pe="lmul", format="bf16"),
                  dict(rows=3, cols=2, dataflow="ws", pe="fp", format="e5m2")]


@pytest.mark.verilator
@pytest.mark.parametrize("params", DOT_CASES)
def test_verilator_dot(params):
    _check(DOT, "verilator", **params)


@pytest.mark.verilator
@pytest.mark.parametrize("params", SYSTOLIC_CASES)
def test_verilator_systolic(params):
    _check(SYSTOLIC, "verilator", **params)


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("fam, params", [(DOT, p) for p in DOT_CASES]
                         + [(SYSTOLIC, p) for p in SYSTOLIC_CASES])
def test_verilator_full_regression(fam, params):
    _check(fam, "verilator", "full", **params)


@pytest.mark.verilator
@pytest.mark.parametrize("fam, params", [(LMUL, dict(exact=True)), (DOT, dict(lanes=2)),
                                         (SYSTOLIC, dict(rows=2, cols=2, dataflow="ws",
                                                         pe="lmul"))])
def test_lint_clean(fam, params):
    verilog, _ = generate(fam, fam.make_config(**params))
    clean, messages = lint(verilog, fam.top_name)
    assert clean, messages
