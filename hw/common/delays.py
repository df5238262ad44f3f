"""Register delay lines: the skew, deskew and pipeline registers of the generators."""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["delayed", "DelayStage"]


def delayed(m: Module, value, cycles: int, name: str):
    """``value`` passed through ``cycles`` registers of ``m``'s sync domain (reset to zero),
    named ``<name>_d1`` .. ``<name>_d<cycles>``; ``value`` itself if ``cycles`` is 0."""
    for stage in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{stage + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


class DelayStage(wiring.Component):
    """One stage of the skew and deskew registers (:func:`delayed` with one cycle), as a part for
    area composition.

    Ports
    -----
    i : In(shape); o : Out(shape)
        ``o`` is ``i`` one cycle later (reset to zero).
    """

    def __init__(self, shape):
        super().__init__({"i": In(shape), "o": Out(shape)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o.eq(delayed(m, self.i, 1, "stage"))
        return m
