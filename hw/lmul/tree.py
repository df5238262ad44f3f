"""The pipelined sum of a beat's products: multipliers, wideners and a balanced fp32 adder tree."""

from amaranth import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from peforge.models.lmul import tree_levels
from peforge.models.numerics.floatmac import ACC_FORMAT, FloatMac

from peforge.hw.common.delays import delayed
from peforge.hw.common.floatmac import FloatAdder, FloatWidener
from peforge.hw.common.floatmul import FloatMultiplier, LMulMultiplier

__all__ = ["ProductTree", "register_levels"]


def register_levels(lanes: int, stages: int) -> set[int]:
    """The levels followed by a register stage: of the ``D = tree_levels(lanes) + 1`` levels
    (0: the multipliers and wideners, ``1..D-1``: the adder levels), level
    ``ceil(j * D / stages) - 1`` for ``j = 1 .. stages``, so the stages cut the tree into runs of
    nearly equal depth and the last one always registers the tree's sum."""
    depth = tree_levels(lanes) + 1
    return {-(-j * depth // stages) - 1 for j in range(1, stages + 1)}


class ProductTree(wiring.Component):
    """``sum`` of the ``lanes`` products ``a[i] * b[i]``, ``stages`` cycles after ``a`` and ``b``.

    Each lane's L-Mul or exact multiplier feeds a :class:`FloatWidener` to fp32; the fp32 values
    are added pairwise by :class:`FloatAdder` s (round to nearest even), ``(p0 + p1),
    (p2 + p3), ...``, an odd last value passed up a level unchanged, down to one sum after
    ``ceil(log2(lanes))`` levels: the order of :func:`peforge.models.lmul.tree_gemm`. Register
    stages follow the levels of :func:`register_levels` (named ``level<l>_<i>``); with
    ``add_stages=1`` every adder also has a register halfway (:class:`FloatAdder`). The latency
    is ``stages + add_stages * ceil(log2(lanes))``; with both 0 the tree is combinational.

    Parameters
    ----------
    numerics : FloatMac
        Operand format and multiplier kind.
    lanes : int
        Products per beat.
    stages : int
        Register stages between levels, ``0 .. ceil(log2(lanes)) + 1``.
    add_stages : int
        Register stages inside each adder, 0 or 1.

    Ports
    -----
    a, b : In(ArrayLayout(format bits, lanes))
        Operand bit patterns.
    sum : Out(32)
        The fp32 pattern of the tree's sum.
    """

    def __init__(self, numerics: FloatMac, lanes: int, stages: int, add_stages: int = 0):
        if not 0 <= stages <= tree_levels(lanes) + 1:
            raise ValueError(f"stages: must be an integer in 0..{tree_levels(lanes) + 1} for "
                             f"{lanes} lanes, got {stages!r}")
        self.numerics, self.lanes, self.stages, self.add_stages = (numerics, lanes, stages,
                                                                   add_stages)
        operands = data.ArrayLayout(numerics.fmt.bits, lanes)
        super().__init__({"a": In(operands), "b": In(operands), "sum": Out(ACC_FORMAT.bits)})

    def elaborate(self, platform):
        numerics = self.numerics
        registered = register_levels(self.lanes, self.stages)
        m = Module()

        def stage(level: int, values: list) -> list:
            if level not in registered:
                return values
            regs = [Signal(ACC_FORMAT.bits, name=f"level{level}_{i}")
                    for i in range(len(values))]
            m.d.sync += [reg.eq(value) for reg, value in zip(regs, values)]
            return regs

        unit = FloatMultiplier if numerics.exact else LMulMultiplier
        values = []
        for lane in range(self.lanes):
            mul = m.submodules[f"mul{lane}"] = unit(numerics.fmt)
            widener = m.submodules[f"widen{lane}"] = FloatWidener(numerics.fmt, ACC_FORMAT)
            m.d.comb += [mul.a.eq(self.a[lane]), mul.b.eq(self.b[lane]), widener.x.eq(mul.p)]
            values.append(widener.y)
        values = stage(0, values)
        for level in range(1, tree_levels(self.lanes) + 1):
            summed = []
            for i in range(0, len(values) - 1, 2):
                adder = m.submodules[f"add{level}_{i // 2}"] = FloatAdder(ACC_FORMAT,
                                                                        self.add_stages)
                m.d.comb += [adder.a.eq(values[i]), adder.b.eq(values[i + 1])]
                summed.append(adder.s)
            passed = [delayed(m, value, self.add_stages, f"pass{level}")     # an odd last one
                      for value in values[len(summed) * 2:]]
            values = stage(level, summed + passed)
        m.d.comb += self.sum.eq(values[0])
        return m
