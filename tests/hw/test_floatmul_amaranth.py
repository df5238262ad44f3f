"""LMulMultiplier and FloatMultiplier in Amaranth's simulator, bit-exact against the models.

A :class:`Bank` holds many copies of a multiplier side by side, so one settle checks many pairs.
"""

import numpy as np
import pytest
from amaranth import Module, Shape, unsigned
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from peforge.hw.common.floatmul import FloatMultiplier, LMulMultiplier
from peforge.models.numerics.floatfmt import BF16, E4M3, E5M2, FP16, FP32
from peforge.models.numerics.lmul import exact_multiply, lmul_multiply, operand_pairs

UNITS = {LMulMultiplier: lmul_multiply, FloatMultiplier: exact_multiply}
COPIES = 64


class Bank(wiring.Component):
    """``copies`` multipliers; operand and product ``i`` are bits ``[i*w, (i+1)*w)`` of a, b, p.

    Parameters
    ----------
    unit : type
        :class:`LMulMultiplier` or :class:`FloatMultiplier`.
    fmt : FloatFormat
        Format of the multipliers; ``w = fmt.bits``.
    copies : int
        Number of multipliers.
    """

    def __init__(self, unit, fmt, copies):
        self.unit, self.fmt, self.copies = unit, fmt, copies
        width = fmt.bits * copies
        super().__init__({"a": In(width), "b": In(width), "p": Out(width)})

    def elaborate(self, platform):
        m = Module()
        w = self.fmt.bits
        for i in range(self.copies):
            unit = m.submodules[f"unit{i}"] = self.unit(self.fmt)
            m.d.comb += [
                unit.a.eq(self.a[i * w:(i + 1) * w]),
                unit.b.eq(self.b[i * w:(i + 1) * w]),
                self.p[i * w:(i + 1) * w].eq(unit.p),
            ]
        return m


def simulate(unit, fmt, x, y):
    """Products of the pattern arrays ``x`` and ``y`` as computed by ``unit(fmt)`` in simulation."""
    bank = Bank(unit, fmt, COPIES)
    dtype = fmt.dtype
    chunk_bytes = COPIES * dtype.itemsize
    pad = -len(x) % COPIES
    x, y = (np.concatenate([np.asarray(v, dtype), np.zeros(pad, dtype)]) for v in (x, y))
    products = []

    async def testbench(ctx):
        for start in range(0, len(x), COPIES):
            ctx.set(bank.a, int.from_bytes(x[start:start + COPIES].tobytes(), "little"))
            ctx.set(bank.b, int.from_bytes(y[start:start + COPIES].tobytes(), "little"))
            products.append(ctx.get(bank.p).to_bytes(chunk_bytes, "little"))

    sim = Simulator(bank)
    sim.add_testbench(testbench)
    sim.run()
    return np.frombuffer(b"".join(products), dtype=dtype)[:len(x) - pad]


def check(unit, fmt, x, y):
    got, want = simulate(unit, fmt, x, y), UNITS[unit](fmt, x, y)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (f"{bad.size} mismatches, first (a, b, got, want): "
                           f"{[tuple(hex(v[i]) for v in (x, y, got, want)) for i in bad[:5]]}")


@pytest.mark.parametrize("fmt", [E4M3, FP32], ids=lambda f: f.name)
@pytest.mark.parametrize("unit", list(UNITS), ids=lambda u: u.__name__)
def test_ports_and_verilog(unit, fmt):
    """Ports a, b (in) and p (out) of fmt.bits each, also in the Verilog; no clocked logic."""
    multiplier = unit(fmt)
    members = multiplier.signature.members
    assert {name: (members[name].flow, Shape.cast(members[name].shape)) for name in members} == {
        "a": (In, unsigned(fmt.bits)), "b": (In, unsigned(fmt.bits)),
        "p": (Out, unsigned(fmt.bits))}
    text = verilog.convert(multiplier, name="top", emit_src=False)
    msb = fmt.bits - 1
    for port in (f"input [{msb}:0] a", f"input [{msb}:0] b", f"output [{msb}:0] p"):
        assert port in text
    assert "posedge" not in text


@pytest.mark.parametrize("fmt", [E4M3, E5M2], ids=lambda f: f.name)
@pytest.mark.parametrize("unit", list(UNITS), ids=lambda u: u.__name__)
def test_exhaustive(unit, fmt):
    x, y = np.meshgrid(np.arange(256), np.arange(256))
    check(unit, fmt, x.ravel(), y.ravel())


@pytest.mark.parametrize("fmt, count", [(FP16, 8_000), (BF16, 8_000), (FP32, 2_000)],
                         ids=["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("unit", list(UNITS), ids=lambda u: u.__name__)
def test_random_and_corners(unit, fmt, count):
    check(unit, fmt, *operand_pairs(fmt, count, seed=11))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", [FP16, BF16, FP32], ids=lambda f: f.name)
@pytest.mark.parametrize("unit", list(UNITS), ids=lambda u: u.__name__)
def test_random_long(unit, fmt):
    check(unit, fmt, *operand_pairs(fmt, 200_000, seed=12))
