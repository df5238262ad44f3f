"""FPGA mapping: resource counts of designs small enough to count by hand, DSP inference, place
and route on iCE40, and one-line errors for bad targets."""

import subprocess
import sys

import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from peforge.hw.common.verilog import to_verilog
from peforge.sim.eda import fpga


class Register(wiring.Component):
    """``q`` is ``d`` one cycle later, no reset: ``width`` flip-flops and no logic."""

    def __init__(self, width: int):
        super().__init__({"d": In(width), "q": Out(width)})

    def elaborate(self, platform):
        m = Module()
        register = Signal.like(self.d, reset_less=True)
        m.d.sync += register.eq(self.d)
        m.d.comb += self.q.eq(register)
        return m


class Multiply(wiring.Component):
    """Registered signed 8 x 8 -> 16 product of registered operands: one 18 x 18 DSP multiply."""

    a: In(8)
    b: In(8)
    p: Out(16)

    def elaborate(self, platform):
        m = Module()
        a, b = Signal(8, reset_less=True), Signal(8, reset_less=True)
        m.d.sync += [a.eq(self.a), b.eq(self.b), self.p.eq(a.as_signed() * b.as_signed())]
        return m


class Counter(wiring.Component):
    """An 8-bit counter: 8 flip-flops fed back through an incrementer (a register-to-register
    path for the Fmax)."""

    q: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.q.eq(self.q + 1)
        return m


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PEFORGE_CACHE", str(tmp_path))


@pytest.mark.parametrize("name, flop", [("ecp5", "TRELLIS_FF"), ("ice40", "SB_DFF"),
                                        ("xc7", "FDRE")])
def test_register_is_its_width_in_flip_flops(name, flop):
    report = fpga.map_fpga(to_verilog(Register(8), "reg8"), "reg8", name, place=False)
    assert (report.flip_flops, report.luts, report.dsps, report.brams) == (8, 0, 0, 0)
    assert report.cells[flop] == 8 and report.fmax_mhz is None


@pytest.mark.parametrize("name, dsp", [("ecp5", "MULT18X18D"), ("xc7", "DSP48E1")])
def test_multiply_maps_onto_one_dsp_block(name, dsp):
    report = fpga.map_fpga(to_verilog(Multiply(), "mul8"), "mul8", name, place=False)
    assert report.dsp_cells == {dsp: 1}
    assert report.luts < 8


@pytest.mark.slow
def test_ice40_place_and_route_gives_fmax():
    report = fpga.map_fpga(to_verilog(Counter(), "counter"), "counter", "ice40")
    assert (report.flip_flops, report.luts) == (8, 8)
    assert report.clocks and report.fmax_mhz == min(report.clocks.values())
    assert 20 < report.fmax_mhz < 1000
    again = fpga.map_fpga(to_verilog(Counter(), "counter"), "counter", "ice40")
    assert again.cached and again.fmax_mhz == report.fmax_mhz


def test_unknown_target_is_one_clear_error():
    run = subprocess.run([sys.executable, "-m", "peforge.sim.cli", "synth", "systolic",
                          "--target", "virtex2"], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "peforge: error: target: must be one of ecp5, ice40, xc7, got 'virtex2'"]
