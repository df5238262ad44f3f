"""Stream tops of the L-Mul families: a bank of multipliers and a dot-product unit.

Protocols and cycle models are in :mod:`peforge.models.lmul`; drivers in
:mod:`peforge.hw.lmul.driver`. Both tops accept a beat every cycle (``ready`` is always high) and
register their output: one output beat per accepted beat (``lmul``), one cycle after it was
accepted, or per ``last`` beat (``lmul-dot``), ``DotConfig.latency`` cycles after it was
accepted; valid-only (no backpressure).
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from peforge.models.numerics.floatmac import ACC_FORMAT
from peforge.models.lmul import DotConfig, MultiplierConfig, tree_levels

from peforge.hw.common.delays import delayed
from peforge.hw.common.floatmac import FloatAdder, FloatMacUnit
from peforge.hw.common.floatmul import FloatMultiplier, LMulMultiplier
from peforge.hw.common.streams import ValidStream
from peforge.hw.lmul.tree import ProductTree

__all__ = ["MultiplierStream", "DotProductUnit", "multiplier_layouts", "dot_layouts"]


def multiplier_layouts(config: MultiplierConfig):
    """Input ``{a[lanes], b[lanes]}`` and output ``{p[lanes]}`` payloads (operand patterns)."""
    lanes = data.ArrayLayout(config.mac.fmt.bits, config.lanes)
    return data.StructLayout({"a": lanes, "b": lanes}), data.StructLayout({"p": lanes})


def dot_layouts(config: DotConfig):
    """Input ``{a[lanes], b[lanes], last}`` and output ``{data}`` (fp32 pattern) payloads."""
    lanes = data.ArrayLayout(config.mac.fmt.bits, config.lanes)
    return (data.StructLayout({"a": lanes, "b": lanes, "last": 1}),
            data.StructLayout({"data": ACC_FORMAT.bits}))


class MultiplierStream(wiring.Component):
    """``lanes`` L-Mul or exact multipliers (:mod:`peforge.hw.common.floatmul`) with registered products.

    Parameters
    ----------
    config : MultiplierConfig
        Format, multiplier kind and lanes.

    Ports
    -----
    i_stream : In(stream.Signature({a[lanes], b[lanes]}))
        Operand bit patterns (format width each), lane 0 in the LSBs; ``ready`` is always high.
    o_stream : Out(ValidStream({p[lanes]}))
        Products of the beat accepted one cycle earlier (1 cycle of latency).
    """

    def __init__(self, config: MultiplierConfig):
        self.config = config
        self.in_layout, self.out_layout = multiplier_layouts(config)
        super().__init__({"i_stream": In(stream.Signature(self.in_layout)),
                          "o_stream": Out(ValidStream(self.out_layout))})

    def elaborate(self, platform):
        config = self.config
        m = Module()
        unit = FloatMultiplier if config.exact else LMulMultiplier
        fire = self.i_stream.valid & self.i_stream.ready
        m.d.comb += self.i_stream.ready.eq(1)
        for lane in range(config.lanes):
            mul = m.submodules[f"mul{lane}"] = unit(config.mac.fmt)
            m.d.comb += [mul.a.eq(self.i_stream.payload.a[lane]),
                         mul.b.eq(self.i_stream.payload.b[lane])]
            m.d.sync += self.o_stream.payload.p[lane].eq(mul.p)
        m.d.sync += self.o_stream.valid.eq(fire)
        return m


class DotProductUnit(wiring.Component):
    """A ``lanes``-wide dot-product unit: a chain or a tree of float adders and an fp32 accumulator.

    ``adder="chain"``: lane ``i``'s :class:`~peforge.hw.common.floatmac.FloatMacUnit` adds its
    product to lane ``i-1``'s sum, lane 0 to the accumulator register: ``lanes`` fp32 RNE
    additions per cycle in k order (a combinational path ``lanes`` adders deep).
    ``adder="tree"``: a :class:`~peforge.hw.lmul.tree.ProductTree` sums the beat's products in a
    balanced tree with ``tree_stages`` register stages; one fp32 RNE adder adds its sum to the
    accumulator (``valid`` and ``last`` follow the tree through as many registers). A ``last``
    beat registers the sum out and restarts the accumulator at ``+0``. With ``add_stages=1``
    every adder is registered halfway: the accumulator adder adds a beat to the sum of the beat
    two before it (two partial sums ``acc_0``, ``acc_1`` from ``+0``, the first two beats of a
    dot product taking ``+0``), and a ``combine`` adder adds the two registered partial sums.

    Parameters
    ----------
    config : DotConfig
        Format, multiplier kind, lanes, adder and tree stages.

    Ports
    -----
    i_stream : In(stream.Signature({a[lanes], b[lanes], last}))
        Operand bit patterns, lane 0 first in k order; ``last`` ends the dot product; ``ready``
        is always high.
    o_stream : Out(ValidStream({data}))
        The dot product (fp32 pattern), ``DotConfig.latency`` cycles after its ``last`` beat was
        accepted.
    """

    def __init__(self, config: DotConfig):
        self.config = config
        self.in_layout, self.out_layout = dot_layouts(config)
        super().__init__({"i_stream": In(stream.Signature(self.in_layout)),
                          "o_stream": Out(ValidStream(self.out_layout))})

    def elaborate(self, platform):
        config = self.config
        numerics = config.mac
        m = Module()
        payload = self.i_stream.payload
        acc = Signal(ACC_FORMAT.bits, init=numerics.zero)
        fire = self.i_stream.valid & self.i_stream.ready
        m.d.comb += self.i_stream.ready.eq(1)

        last = payload.last
        if config.adder == "chain":
            total = acc
            for lane in range(config.lanes):
                mac = m.submodules[f"mac{lane}"] = FloatMacUnit(numerics)
                m.d.comb += [mac.a.eq(payload.a[lane]), mac.b.eq(payload.b[lane]),
                             mac.acc.eq(total)]
                total = mac.result
        else:
            tree = m.submodules.tree = ProductTree(numerics, config.lanes, config.tree_stages,
                                                   config.add_stages)
            m.d.comb += [tree.a.eq(payload.a), tree.b.eq(payload.b)]
            depth = config.tree_stages + config.add_stages * tree_levels(config.lanes)
            fire = delayed(m, fire, depth, "valid")
            last = delayed(m, last, depth, "last")
            if config.add_stages:
                self._accumulate_in_two(m, tree.sum, fire, last)
                return m
            adder = m.submodules.accumulate = FloatAdder(ACC_FORMAT)
            m.d.comb += [adder.a.eq(acc), adder.b.eq(tree.sum)]
            total = adder.s

        m.d.sync += self.o_stream.valid.eq(fire & last)
        with m.If(fire & last):
            m.d.sync += [self.o_stream.payload.data.eq(total), acc.eq(numerics.zero)]
        with m.Elif(fire):
            m.d.sync += acc.eq(total)
        return m

    def _accumulate_in_two(self, m, value, fire, last):
        """Two-cycle accumulator adder: beat ``i`` of a dot product adds ``value`` to partial sum
        ``i % 2`` (``+0`` for beats 0 and 1); the cycle after the last beat's sum is written,
        the ``combine`` adder adds the two registered partial sums (``acc_1`` taken as ``+0``
        for a one-beat product)."""
        zero = self.config.mac.zero
        sums = [Signal(ACC_FORMAT.bits, init=zero, name=f"acc_{part}") for part in (0, 1)]
        part, seen = Signal(name="part"), Signal(2, name="seen")  # partial sum; beats (to 2)
        adder = m.submodules.accumulate = FloatAdder(ACC_FORMAT, 1)
        m.d.comb += [adder.a.eq(Mux(seen[1], Mux(part, sums[1], sums[0]), zero)),
                     adder.b.eq(value)]
        with m.If(fire & last):
            m.d.sync += [part.eq(0), seen.eq(0)]
        with m.Elif(fire):
            m.d.sync += [part.eq(~part), seen.eq(Mux(seen[1], 2, seen + 1))]

        summed, summed_part = delayed(m, fire, 1, "summed"), delayed(m, part, 1, "summed_part")
        with m.If(summed):
            with m.If(summed_part):
                m.d.sync += sums[1].eq(adder.s)
            with m.Else():
                m.d.sync += sums[0].eq(adder.s)
        # Two cycles after the last beat entered: both partial sums are registered.
        ends = delayed(m, fire & last, 2, "ends")
        lone = delayed(m, last & (seen == 0), 2, "lone")
        combine = m.submodules.combine = FloatAdder(ACC_FORMAT, 1)
        m.d.comb += [combine.a.eq(sums[0]), combine.b.eq(Mux(lone, zero, sums[1]))]
        combined = delayed(m, ends, 1, "combined")
        m.d.sync += self.o_stream.valid.eq(combined)
        with m.If(combined):
            m.d.sync += self.o_stream.payload.data.eq(combine.s)
