"""Combinational float MAC unit: an L-Mul or exact multiplier, exact widening, an RNE adder.

:class:`FloatMacUnit` implements :class:`peforge.models.numerics.floatmac.FloatMac` bit for bit and is
registered with :func:`peforge.hw.common.mac.mac_unit`, so a systolic array takes it unchanged. Its parts
are :class:`FloatWidener` (exact conversion to a wider format) and :class:`FloatAdder` (IEEE 754
addition, round to nearest even, subnormals kept, canonical NaN).
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from peforge.models.numerics.floatfmt import FloatFormat, Specials
from peforge.models.numerics.floatmac import ACC_FORMAT, FloatMac

from peforge.hw.common.delays import delayed
from peforge.hw.common.floatmul import FloatMultiplier, LMulMultiplier, float_layout
from peforge.hw.common.mac import MacSignature, mac_shapes, mac_unit

__all__ = ["FloatWidener", "FloatAdder", "FloatMacUnit"]


def _leading_zeros(m: Module, value, name: str) -> Signal:
    """Leading zeros of ``value`` (its width if zero), as a combinational signal."""
    width = len(value)
    count = Signal(range(width + 1), name=name)
    m.d.comb += count.eq(width)
    for i in range(width):                  # the highest set bit is assigned last and wins
        with m.If(value[i]):
            m.d.comb += count.eq(width - 1 - i)
    return count


class FloatWidener(wiring.Component):
    """Exact conversion of a pattern of ``src`` to a pattern of the wider IEEE format ``dst``.

    Normals are re-biased; subnormals of ``src`` are normalised when ``dst`` has a wider exponent
    range (kept subnormal when the ranges are equal); signed zeros and infinities are kept; NaN
    becomes ``dst``'s canonical NaN with sign 0. Combinational.

    Parameters
    ----------
    src, dst : FloatFormat
        ``dst`` must have at least ``src``'s exponent and fraction widths and IEEE specials.

    Attributes
    ----------
    x : Signal(src.bits), in
    y : Signal(dst.bits), out
    """

    def __init__(self, src: FloatFormat, dst: FloatFormat):
        if (dst.exp_bits < src.exp_bits or dst.man_bits < src.man_bits
                or dst.specials is not Specials.IEEE):
            raise ValueError(f"dst: {dst.name} cannot hold every value of {src.name}")
        self.src, self.dst = src, dst
        super().__init__({"x": In(src.bits), "y": Out(dst.bits)})

    def elaborate(self, platform):
        src, dst = self.src, self.dst
        m = Module()
        x = float_layout(src)(self.x)
        em = self.x[:src.exp_bits + src.man_bits]
        up = dst.man_bits - src.man_bits
        mag = Signal(dst.bits - 1)

        if src.specials is Specials.FN:
            nan, inf = em == src.nan, Const(0)
        else:
            nan, inf = em > src.inf, em == src.inf
        rebias = dst.bias - src.bias
        lz = _leading_zeros(m, x.man, "lz")    # used when src subnormals are dst normals
        with m.If(nan):
            m.d.comb += mag.eq(dst.nan)
        with m.Elif(inf):
            m.d.comb += mag.eq(dst.inf)
        with m.Elif(x.exp != 0):
            m.d.comb += mag.eq(Cat(Const(0, up), x.man, x.exp + rebias))
        if rebias:
            with m.Elif(x.man != 0):
                # man * 2**(1 - bias - m) has its leading one at bit m-1-lz: 1.f * 2**(-bias - lz).
                shifted = (x.man << (lz + 1))[:src.man_bits]
                m.d.comb += mag.eq(Cat(Const(0, up), shifted, rebias - lz))
        with m.Else():                       # zero, or a subnormal kept subnormal
            m.d.comb += mag.eq(Cat(Const(0, up), x.man))
        m.d.comb += self.y.eq(Mux(nan, mag, Cat(mag, x.sign)))
        return m


class FloatAdder(wiring.Component):
    """IEEE 754 addition of two patterns of ``fmt``: round to nearest even, subnormals kept.

    The operands are swapped so that ``|a| >= |b|``; ``b``'s significand is shifted right by the
    exponent difference into three extra bits (guard, round and a sticky bit ORed from everything
    shifted further), added or subtracted, normalised (right by one on a carry, else left by the
    leading zeros, but not below the smallest normal exponent: a subnormal sum is exact) and
    rounded from the guard and sticky bits; a rounding carry ripples into the exponent.

    Special values: a NaN operand or ``Inf + (-Inf)`` gives the canonical NaN with sign 0; an Inf
    operand gives that Inf; overflow gives Inf; an exact zero sum is ``-0`` only when both
    operands are negative, else ``+0``. Combinational with ``stages=0``; with ``stages=1`` a
    register (``summed_*``, ``man + 5 + exp + 4`` bits) follows the addition of the aligned
    significands (before the normalisation), so ``s`` is the sum of the operands one cycle
    earlier. The arithmetic is the same.

    Parameters
    ----------
    fmt : FloatFormat
        An IEEE format (fp32 in the MAC unit).
    stages : int
        0 or 1: register stages between the addition and the normalisation.

    Attributes
    ----------
    a, b : Signal(fmt.bits), in
    s : Signal(fmt.bits), out
        The rounded sum.
    """

    EXTRA = 3   # guard, round, sticky

    def __init__(self, fmt: FloatFormat, stages: int = 0):
        if fmt.specials is not Specials.IEEE:
            raise ValueError(f"fmt: must have IEEE specials, got {fmt.name}")
        if stages not in (0, 1):
            raise ValueError(f"stages: must be 0 or 1, got {stages!r}")
        self.fmt, self.stages = fmt, stages
        super().__init__({"a": In(fmt.bits), "b": In(fmt.bits), "s": Out(fmt.bits)})

    def elaborate(self, platform):
        fmt, extra = self.fmt, self.EXTRA
        man = fmt.man_bits
        sig_bits = man + 1 + extra               # aligned significand: hidden bit, fraction, GRS
        m = Module()

        # Order by magnitude: big >= small.
        width = fmt.bits - 1
        swap = self.b[:width] > self.a[:width]
        big = float_layout(fmt)(Mux(swap, self.b, self.a))
        small = float_layout(fmt)(Mux(swap, self.a, self.b))
        exp_big = Mux(big.exp == 0, 1, big.exp)
        exp_small = Mux(small.exp == 0, 1, small.exp)
        subtract = big.sign ^ small.sign

        # Align the smaller significand; everything shifted below the GRS bits is ORed as sticky.
        sig_big = Cat(Const(0, extra), big.man, big.exp != 0)
        sig_small = Cat(Const(0, extra), small.man, small.exp != 0)
        diff = Signal(range(1 << fmt.exp_bits))
        m.d.comb += diff.eq(exp_big - exp_small)
        spread = Signal(2 * sig_bits)
        m.d.comb += spread.eq(Cat(Const(0, sig_bits), sig_small) >> Mux(diff > sig_bits,
                                                                         sig_bits, diff))
        aligned = Cat(spread[sig_bits] | spread[:sig_bits].any(), spread[sig_bits + 1:])

        # Special values, decided from the operands.
        nan_big, nan_small = big.exp.all() & (big.man != 0), small.exp.all() & (small.man != 0)
        inf_big, inf_small = big.exp.all() & (big.man == 0), small.exp.all() & (small.man == 0)
        nan = nan_big | nan_small | (inf_big & inf_small & subtract)

        total = Signal(sig_bits + 1)
        m.d.comb += total.eq(Mux(subtract, sig_big - aligned, sig_big + aligned))

        # The pipeline register (stages=1) between the addition and the normalisation.
        def stage(value, name):
            return delayed(m, value, self.stages, f"summed_{name}")
        total, exp_big = stage(total, "total"), stage(exp_big, "exp")
        sign_big = stage(big.sign, "sign")
        both_negative = stage(big.sign & small.sign, "negative")
        nan, inf_big = stage(nan, "nan"), stage(inf_big, "inf")

        # Normalise to the leading one at bit sig_bits - 1 (the hidden bit), not below exponent 1.
        lz = _leading_zeros(m, total, "sum_lz")
        shift = Signal(range(sig_bits + 2))
        m.d.comb += shift.eq(Mux(lz > exp_big, exp_big - 1, lz - 1))
        normal = Signal(sig_bits)
        exp = Signal(range(1 << (fmt.exp_bits + 1)))
        with m.If(total[sig_bits]):
            m.d.comb += [normal.eq(Cat(total[1] | total[0], total[2:])), exp.eq(exp_big + 1)]
        with m.Else():
            m.d.comb += [normal.eq(total << shift), exp.eq(exp_big - shift)]

        kept = normal[extra:]
        guard = normal[extra - 1]
        sticky = normal[:extra - 1].any()
        rounded = Signal(fmt.bits + 1)
        m.d.comb += rounded.eq(((exp - 1) << man) + kept + (guard & (sticky | kept[0])))

        mag = Signal(width)
        sign = Signal()
        m.d.comb += sign.eq(sign_big)
        with m.If(nan):
            m.d.comb += [mag.eq(fmt.nan), sign.eq(0)]
        with m.Elif(inf_big):
            m.d.comb += mag.eq(fmt.inf)
        with m.Elif(total == 0):
            m.d.comb += [mag.eq(0), sign.eq(both_negative)]
        with m.Elif(rounded >= fmt.inf):
            m.d.comb += mag.eq(fmt.inf)
        with m.Else():
            m.d.comb += mag.eq(rounded)
        m.d.comb += self.s.eq(Cat(mag, sign))
        return m


class FloatMacUnit(wiring.Component):
    """``result = acc + widen(a * b)`` of :class:`~peforge.models.numerics.floatmac.FloatMac`.

    An :class:`~peforge.hw.common.floatmul.LMulMultiplier` or
    :class:`~peforge.hw.common.floatmul.FloatMultiplier` of the operand format, a :class:`FloatWidener`
    to fp32 and an fp32 :class:`FloatAdder`; combinational with ``stages=0``, else the widened
    product passes ``stages`` registers (``product_d<i>``, 32 bits) before the adder: ``result``
    adds the product of the operands ``stages`` cycles earlier. The arithmetic is the same.
    With ``add_stages=1`` the adder is registered halfway (:class:`FloatAdder`): ``result`` is
    the sum of the adder's inputs one cycle earlier, and while ``combine`` is high the adder
    takes ``addend`` in place of the product (a PE adding its two partial sums).

    Parameters
    ----------
    numerics : FloatMac
        Operand format and multiplier kind.
    stages : int
        Register stages between the widened product and the adder.
    add_stages : int
        Register stages inside the adder, 0 or 1 (1 adds the ``combine`` and ``addend`` ports).

    Attributes
    ----------
    a, b : Signal(format bits), in
        Operand bit patterns.
    acc : Signal(32), in
        Accumulator (fp32 pattern).
    result : Signal(32), out
        The rounded sum (fp32 pattern).
    combine : Signal(1), in; addend : Signal(32), in
        ``add_stages=1`` only: add ``addend`` to ``acc`` instead of the product.
    """

    def __init__(self, numerics: FloatMac, stages: int = 0, add_stages: int = 0):
        self.numerics, self.stages, self.add_stages = numerics, stages, add_stages
        signature = MacSignature(*mac_shapes(numerics))
        if add_stages:
            signature = wiring.Signature({**signature.members, "combine": In(1),
                                          "addend": In(ACC_FORMAT.bits)})
        super().__init__(signature)

    def elaborate(self, platform):
        fmt = self.numerics.fmt
        m = Module()
        m.submodules.multiplier = mul = (FloatMultiplier if self.numerics.exact
                                         else LMulMultiplier)(fmt)
        m.submodules.widener = widener = FloatWidener(fmt, ACC_FORMAT)
        m.submodules.adder = adder = FloatAdder(ACC_FORMAT, self.add_stages)
        product = delayed(m, widener.y, self.stages, "product")
        if self.add_stages:
            product = Mux(self.combine, self.addend, product)
        m.d.comb += [mul.a.eq(self.a), mul.b.eq(self.b), widener.x.eq(mul.p),
                     adder.a.eq(self.acc), adder.b.eq(product), self.result.eq(adder.s)]
        return m


@mac_unit.register
def _(numerics: FloatMac, stages: int = 0) -> wiring.Component:
    return FloatMacUnit(numerics, stages)
