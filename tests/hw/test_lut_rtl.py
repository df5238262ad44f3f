"""LUT family RTL against the golden and cycle models, and against the plain product A @ W.

The table precompute unit is checked on its own; then the same jobs (random, extreme, ragged)
run on the whole tile on Amaranth's simulator (fast tier) and on the generated Verilog under
Verilator; every result is compared bit for bit and every GEMM's measured cycles exactly with
the cycle model.
"""

import itertools
import subprocess
import sys

import numpy as np
import pytest
from amaranth.sim import Simulator

from peforge.hw.lut.top import TablePrecompute
from peforge.models.numerics.lut_table import precompute_table
from peforge.sim.rtl.backends.amaranth import AmaranthPorts
from peforge.sim.families import family
from peforge.sim.families.lut import LutJob
from peforge.sim.rtl.flow import generate
from peforge.sim.rtl.backends.verilator import lint

from tests.conftest import assert_jobs_exact, run_jobs

LUT = family("lut")
ACT_RANGES = {8: (-128, 127), 16: (-32768, 32767)}


def _check(backend, sizes="quick", **params):
    """Run the family's jobs; bit-exact and cycle-exact against the models, and equal to the
    plain product unless the configuration narrows the accumulator."""
    config = LUT.make_config(**params)
    jobs = LUT.make_jobs(config, np.random.default_rng(7), sizes)
    results = run_jobs(backend, LUT, config, jobs)
    assert_jobs_exact(LUT, config, jobs, results)
    if "acc_bits" not in params:
        for job, (outputs, _cycles) in zip(jobs, results):
            plain = job.a.astype(object) @ job.w.astype(object)
            assert np.array_equal(np.asarray(outputs["c"], dtype=object), plain)


def _params(m, n, k, wkind, wbits, abits, **extra):
    return dict(m=m, n=n, k=k, wkind=wkind, wbits=wbits, abits=abits, **extra)


# --- table precompute unit -----------------------------------------------------------------

@pytest.mark.parametrize("k", range(2, 9))
@pytest.mark.parametrize("abits", [8, 16])
def test_table_precompute_unit(k, abits):
    low, high = ACT_RANGES[abits]
    rng = np.random.default_rng(k + abits)
    groups = [[low] * k, [high] * k, [low, high] * (k // 2) + [low] * (k % 2), [0] * k,
              *rng.integers(low, high + 1, size=(4, k)).tolist()]
    dut = TablePrecompute(k, abits)
    got = []

    async def testbench(ctx):
        for group in groups:
            ctx.set(dut.a, group)
            got.append(list(ctx.get(dut.table)))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    assert got == precompute_table(np.array(groups)).tolist()
    assert [entries[0] for entries in got] == [-sum(group) for group in groups]


# --- whole tile: Amaranth's simulator --------------------------------------------------------

# Every weight format, INT8 and INT16, K = 2..8, tiles 1 x 8, 2 x 16, 3 x 5 and 2 x 64.
AMARANTH_CASES = [
    (1, 8, 2, "unsigned", 1, 8), (1, 8, 8, "unsigned", 2, 16), (2, 16, 4, "unsigned", 3, 8),
    (2, 16, 8, "unsigned", 4, 16), (2, 16, 2, "signed", 2, 16), (1, 8, 4, "signed", 3, 8),
    (2, 16, 8, "signed", 4, 8), (2, 16, 4, "ternary", 2, 8), (1, 8, 8, "ternary", 2, 16),
    (3, 5, 3, "unsigned", 4, 8), (3, 5, 5, "signed", 3, 16),
]


@pytest.mark.parametrize("case", AMARANTH_CASES)
def test_amaranth(case):
    _check("amaranth", "full", **_params(*case))


def test_amaranth_default_tile():
    _check("amaranth")


@pytest.mark.parametrize("case", [(2, 4, 4, "unsigned", 4, 8), (1, 3, 2, "signed", 2, 16),
                                  (3, 2, 3, "ternary", 2, 8)])
def test_amaranth_accumulator_wraps(case):
    """An 8-bit accumulator keeps 7-bit results: the extreme jobs overflow and must wrap."""
    _check("amaranth", **_params(*case, acc_bits=8))


@pytest.mark.parametrize("wkind, wbits", [("unsigned", 4), ("signed", 4), ("ternary", 2)])
@pytest.mark.parametrize("abits", [8, 16])
def test_amaranth_tight_accumulator_is_exact(wkind, wbits, abits):
    """With the accumulator sized for k_max = 9, extreme jobs 9 deep (ragged: 3 groups of 4)
    give exactly A @ W through the RTL."""
    config = LUT.make_config(**_params(2, 3, 4, wkind, wbits, abits, k_max=9))
    (a_low, a_high), (w_low, w_high) = ACT_RANGES[abits], config.weight_format.code_range
    jobs = [LutJob(np.full((2, 9), a, dtype=np.int64), np.full((9, 3), w, dtype=np.int64))
            for a, w in itertools.product((a_low, a_high), (w_low, w_high))]
    results = run_jobs("amaranth", LUT, config, jobs)
    assert_jobs_exact(LUT, config, jobs, results)
    for (a, w), (outputs, _cycles) in zip(itertools.product((a_low, a_high), (w_low, w_high)),
                                          results):
        assert outputs["c"].tolist() == [[9 * a * w] * 3] * 2


class _Bubbles:
    """Ports that hold the input beat back on random cycles (valid low, seen as not ready)."""

    def __init__(self, ports, rng):
        self._ports, self._rng, self._held = ports, rng, False

    def set(self, name, value):
        if name == "i_stream.valid":
            self._held = bool(self._rng.random() < 0.4)
            value = value and not self._held
        self._ports.set(name, value)

    async def settle(self):
        await self._ports.settle()

    def get(self, name):
        return 0 if name == "i_stream.ready" and self._held else self._ports.get(name)

    async def tick(self):
        await self._ports.tick()


@pytest.mark.parametrize("case", [(1, 8, 2, "unsigned", 1, 8), (2, 16, 4, "signed", 3, 16),
                                  (3, 5, 3, "ternary", 2, 8)])
def test_amaranth_input_bubbles(case):
    """Beats offered with gaps (valid low on random cycles) still give bit-exact results."""
    config = LUT.make_config(**_params(*case))
    jobs = LUT.make_jobs(config, np.random.default_rng(3), "full")
    dut = LUT.generator(config)
    outputs = []

    async def testbench(ctx):
        ports = _Bubbles(AmaranthPorts(ctx, dut), np.random.default_rng(11))
        for job in jobs:
            outputs.append((await LUT.run_job(ports, config, job))[0])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    for job, out in zip(jobs, outputs):
        assert out["c"].tolist() == (job.a @ job.w).tolist()


# --- Verilator -----------------------------------------------------------------------------

# Five builds cover the matrix: W1 (narrow, wrapping accumulator), W2, W3, W4 and
# ternary; INT8 and INT16; K = 2, 4, 8; tiles 1 x 8, 2 x 16 and 2 x 64 (the default, whose build
# the command-line test below shares). Wider sweeps are the slow regression.
VERILATOR_CASES = [
    _params(1, 8, 2, "unsigned", 1, 8, acc_bits=8),
    _params(2, 16, 4, "signed", 3, 16),
    _params(2, 64, 4, "unsigned", 2, 8),
    _params(2, 16, 2, "ternary", 2, 8),
    _params(1, 8, 8, "signed", 4, 16),
]


@pytest.mark.verilator
@pytest.mark.parametrize("params", VERILATOR_CASES, ids=lambda p: "-".join(map(str, p.values())))
def test_verilator(params):
    _check("verilator", **params)


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("case", [
    *[(2, 16, 4, kind, wbits, abits) for (kind, wbits), abits in zip(
        [("unsigned", 1), ("unsigned", 2), ("unsigned", 3), ("unsigned", 4), ("signed", 2),
         ("signed", 3), ("signed", 4), ("ternary", 2)], itertools.cycle([8, 16]))],
    *[(1, 8, k, "signed", 2, 8) for k in (3, 5, 6, 7, 8)],
    (4, 32, 4, "unsigned", 4, 16), (2, 64, 8, "ternary", 2, 16),
])
def test_verilator_full_regression(case):
    _check("verilator", "full", **_params(*case))


@pytest.mark.verilator
@pytest.mark.parametrize("case", [(3, 4, 4, "signed", 4, 16), (1, 8, 2, "unsigned", 1, 8),
                                  (2, 4, 3, "ternary", 2, 8)])
def test_lint_clean(case):
    verilog, _ = generate(LUT, LUT.make_config(**_params(*case)))
    clean, messages = lint(verilog, LUT.top_name)
    assert clean, messages


@pytest.mark.verilator
def test_verify_command_passes_and_reports_cycles():
    result = subprocess.run([sys.executable, "-m", "peforge.sim.cli", "verify", "lut", "--m", "2",
                             "--n", "64", "--k", "4", "--wbits", "2", "--abits", "8"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("build: ") and "/bulk/lut-" in lines[1]
    jobs = [line for line in lines if line.strip().startswith("job")]
    assert len(jobs) == 10 and all(line.endswith("PASS") for line in jobs)
    # 2 x 64, W2, GEMM 1x1x1: 1 precompute + 2 planes + 2 drain rows
    assert "a[1, 1] w[1, 1]" in jobs[0] and "cycles 5 = model 5" in jobs[0]
    assert lines[-2] == "PASS: 10/10 jobs bit-exact with cycles equal to the model"
    assert lines[-1].startswith("simulated ") and lines[-1].endswith("cycles/s, bulk)")
