"""Register delay lines: the skew, deskew and pipeline registers of the generators, in place
(:func:`delayed`) or as parts (:class:`DelayLine`, :class:`Skew`) that a shared-part top
(:mod:`peforge.hw.common.hierarchy`) converts once per distinct size."""

from amaranth import Cat, Module, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["delayed", "DelayLine", "Skew"]


def delayed(m: Module, value, cycles: int, name: str):
    """``value`` passed through ``cycles`` registers of ``m``'s sync domain (reset to zero),
    named ``<name>_d1`` .. ``<name>_d<cycles>``; ``value`` itself if ``cycles`` is 0."""
    for stage in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{stage + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


class DelayLine(wiring.Component):
    """``cycles`` register stages (reset to zero); one stage is also the area-composition part
    of the skew and deskew registers.

    Parameters
    ----------
    shape
        Width of the line.
    cycles : int
        At least 1.
    line : callable, optional
        ``(width, cycles) -> component`` with a line's signature: a longer line is two of them,
        ``ceil(cycles / 2)`` then ``floor(cycles / 2)`` (from parts, about ``2 * log2(cycles)``
        distinct lines); default: the registers in place.

    Ports
    -----
    i : In(shape); o : Out(shape)
        ``o`` is ``i`` ``cycles`` cycles later.
    """

    def __init__(self, shape, cycles: int = 1, *, line=None):
        if cycles < 1:
            raise ValueError(f"cycles: must be at least 1, got {cycles}")
        self.shape, self.cycles, self._line = shape, cycles, line
        super().__init__({"i": In(shape), "o": Out(shape)})

    def elaborate(self, platform):
        m = Module()
        if self.cycles == 1 or self._line is None:
            m.d.comb += self.o.eq(delayed(m, self.i, self.cycles, "stage"))
            return m
        first = (self.cycles + 1) // 2
        width = Shape.cast(self.shape).width
        m.submodules.first = head = self._line(width, first)
        m.submodules.rest = tail = self._line(width, self.cycles - first)
        m.d.comb += [head.i.eq(self.i), tail.i.eq(head.o), self.o.eq(tail.o)]
        return m


class Skew(wiring.Component):
    """``lanes`` lanes of ``width`` bits, lane ``k`` delayed ``k`` cycles (registers reset to
    zero): ``k`` register stages per lane, as separate lines would have.

    Built from parts: lanes ``[0, h)`` through ``skew(h)``, lanes ``[h, lanes)`` through one
    ``h``-cycle line as wide as they are and then ``skew(lanes - h)``, ``h = ceil(lanes / 2)``.

    Parameters
    ----------
    lanes, width : int
        At least 1 each.
    skew : callable
        ``(lanes, width) -> component`` with a skew's signature.
    line : callable
        ``(width, cycles) -> component`` with a :class:`DelayLine`'s signature.

    Ports
    -----
    i : In(lanes * width); o : Out(lanes * width)
        Lane ``k`` is bits ``[k * width, (k + 1) * width)``.
    """

    def __init__(self, lanes: int, width: int, *, skew, line):
        if lanes < 1 or width < 1:
            raise ValueError(f"Skew: needs at least 1 lane of 1 bit, got {lanes} x {width}")
        self.lanes, self.width, self._skew, self._line = lanes, width, skew, line
        super().__init__({"i": In(lanes * width), "o": Out(lanes * width)})

    def elaborate(self, platform):
        m = Module()
        if self.lanes == 1:
            m.d.comb += self.o.eq(self.i)
            return m
        low = (self.lanes + 1) // 2
        split = low * self.width
        m.submodules.low = first = self._skew(low, self.width)
        m.submodules.wait = wait = self._line(len(self.i) - split, low)
        m.submodules.high = rest = self._skew(self.lanes - low, self.width)
        m.d.comb += [first.i.eq(self.i[:split]), wait.i.eq(self.i[split:]), rest.i.eq(wait.o),
                     self.o.eq(Cat(first.o, rest.o))]
        return m
