"""Combinational floating-point multipliers for any :class:`~peforge.models.numerics.floatfmt.FloatFormat`.

:class:`LMulMultiplier` is the L-Mul approximate multiplier (one integer adder over the
``{exponent, fraction}`` fields) and :class:`FloatMultiplier` the exact multiplier with
round-to-nearest-even. Both follow the special-value policy of :mod:`peforge.models.numerics.lmul`, whose
:func:`~peforge.models.numerics.lmul.lmul_multiply` and :func:`~peforge.models.numerics.lmul.exact_multiply` are
their bit-exact golden models.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from peforge.models.numerics.floatfmt import FloatFormat
from peforge.models.numerics.lmul import lmul_constant

__all__ = ["float_layout", "LMulMultiplier", "FloatMultiplier"]


def float_layout(fmt: FloatFormat) -> data.StructLayout:
    """Bit fields of ``fmt``: ``man`` (``man_bits``, LSBs), ``exp`` (``exp_bits``), ``sign`` (1)."""
    return data.StructLayout({"man": fmt.man_bits, "exp": fmt.exp_bits, "sign": 1})


class LMulMultiplier(wiring.Component):
    """L-Mul approximate float multiplier: ``p = {a.sign ^ b.sign, EM_a + EM_b - C}``.

    ``EM`` is the ``exp_bits + man_bits``-bit field below the sign and
    ``C = (bias << man_bits) - 2**(man_bits - l(man_bits))``. The add is exact: there is no
    rounding step, a fraction carry ripples into the exponent. Combinational, 0 cycles of latency.

    Special values (the policy of :mod:`peforge.models.numerics.lmul`): an Inf or NaN operand gives the
    canonical NaN (so ``0 * Inf`` is NaN); an operand with exponent field 0 (zero, subnormal)
    gives zero; a negative sum gives zero; a sum above the largest finite pattern gives the
    largest finite value. The sign is always ``a.sign ^ b.sign``.

    Parameters
    ----------
    fmt : FloatFormat
        Format of the operands and of the product.

    Attributes
    ----------
    a, b : Signal(fmt.bits), in
        Operand bit patterns.
    p : Signal(fmt.bits), out
        Product bit pattern.
    """

    def __init__(self, fmt: FloatFormat):
        self.fmt = fmt
        super().__init__({"a": In(fmt.bits), "b": In(fmt.bits), "p": Out(fmt.bits)})

    def elaborate(self, platform):
        fmt = self.fmt
        width = fmt.exp_bits + fmt.man_bits
        m = Module()

        a, b = float_layout(fmt)(self.a), float_layout(fmt)(self.b)
        em_a, em_b = self.a[:width], self.b[:width]
        total = Signal(range(-lmul_constant(fmt), 2 ** (width + 1) - lmul_constant(fmt)))
        mag = Signal(width)

        m.d.comb += total.eq(em_a + em_b - lmul_constant(fmt))
        with m.If((em_a > fmt.max_finite) | (em_b > fmt.max_finite)):
            m.d.comb += mag.eq(fmt.nan)
        with m.Elif((a.exp == 0) | (b.exp == 0) | (total < 0)):
            m.d.comb += mag.eq(0)
        with m.Elif(total > fmt.max_finite):
            m.d.comb += mag.eq(fmt.max_finite)
        with m.Else():
            m.d.comb += mag.eq(total)
        m.d.comb += self.p.eq(Cat(mag, a.sign ^ b.sign))
        return m


class FloatMultiplier(wiring.Component):
    """Exact float multiplier: the product rounded to nearest, ties to even.

    Subnormal operands and results are handled exactly (no flushing). The ``2 (man_bits + 1)``-bit
    significand product is normalised by a leading-zero count, shifted right to the result's
    quantum (further for subnormal results) and rounded from its guard and sticky bits; a rounding
    carry ripples into the exponent. Combinational, 0 cycles of latency.

    Special values (those of the format, as :func:`peforge.models.numerics.lmul.exact_multiply`): NaN
    operands and ``0 * Inf`` give the canonical NaN; an Inf operand gives Inf; overflow gives Inf,
    or NaN for a format without Inf (OCP e4m3). The sign is always ``a.sign ^ b.sign``.

    Parameters
    ----------
    fmt : FloatFormat
        Format of the operands and of the product.

    Attributes
    ----------
    a, b : Signal(fmt.bits), in
        Operand bit patterns.
    p : Signal(fmt.bits), out
        Product bit pattern.
    """

    def __init__(self, fmt: FloatFormat):
        self.fmt = fmt
        super().__init__({"a": In(fmt.bits), "b": In(fmt.bits), "p": Out(fmt.bits)})

    def elaborate(self, platform):
        fmt = self.fmt
        man, width = fmt.man_bits, fmt.exp_bits + fmt.man_bits
        prod_bits = 2 * (man + 1)               # significand product, leading one at the top
        m = Module()

        a, b = float_layout(fmt)(self.a), float_layout(fmt)(self.b)
        em_a, em_b = self.a[:width], self.b[:width]

        # Special operands.
        zero = (em_a == 0) | (em_b == 0)
        if fmt.inf is None:
            nan = (em_a == fmt.nan) | (em_b == fmt.nan)
            inf = Const(0)
        else:
            inf_a, inf_b = em_a == fmt.inf, em_b == fmt.inf
            nan = ((em_a > fmt.inf) | (em_b > fmt.inf)
                   | (inf_a & (em_b == 0)) | (inf_b & (em_a == 0)))
            inf = inf_a | inf_b

        # Significand product, normalised so that its leading one is the top bit.
        product = Signal(prod_bits)
        leading_zeros = Signal(range(prod_bits))
        normalised = Signal(prod_bits)
        m.d.comb += product.eq(Cat(a.man, a.exp != 0) * Cat(b.man, b.exp != 0))
        for i in range(prod_bits):              # the highest set bit is assigned last and wins
            with m.If(product[i]):
                m.d.comb += leading_zeros.eq(prod_bits - 1 - i)
        m.d.comb += normalised.eq(product << leading_zeros)

        # Biased exponent of the normalised product; below 1 the result is subnormal.
        exp_a, exp_b = Mux(a.exp == 0, 1, a.exp), Mux(b.exp == 0, 1, b.exp)
        max_exp = 2 * ((1 << fmt.exp_bits) - 1) - fmt.bias + 1
        exp = Signal(range(2 - fmt.bias + 1 - prod_bits, max_exp + 1))
        m.d.comb += exp.eq(exp_a + exp_b - fmt.bias + 1 - leading_zeros)

        # Position of the guard bit: man bits are kept below the leading one, more when
        # subnormal; from prod_bits on, everything (even the leading one) is below the guard.
        guard_pos = Signal(range(prod_bits + 1))
        with m.If(exp >= 1):
            m.d.comb += guard_pos.eq(man)
        with m.Elif(exp > man + 1 - prod_bits):
            m.d.comb += guard_pos.eq(man + 1 - exp)
        with m.Else():
            m.d.comb += guard_pos.eq(prod_bits)
        kept = normalised >> (guard_pos + 1)
        guard = (normalised >> guard_pos)[0]
        sticky = (normalised & ((1 << guard_pos) - 1)).any()
        round_up = guard & (sticky | kept[0])

        # kept holds the hidden bit of a normal result, so it carries the exponent from exp - 1
        # to exp, and a rounding carry ripples on into the exponent field.
        rounded = Signal(width + 2)
        m.d.comb += rounded.eq((Mux(exp >= 1, exp - 1, 0) << man) + kept + round_up)

        mag = Signal(width)
        overflow = fmt.nan if fmt.inf is None else fmt.inf
        with m.If(nan):
            m.d.comb += mag.eq(fmt.nan)
        with m.Elif(inf):
            m.d.comb += mag.eq(overflow)
        with m.Elif(zero):
            m.d.comb += mag.eq(0)
        with m.Elif(rounded > fmt.max_finite):
            m.d.comb += mag.eq(overflow)
        with m.Else():
            m.d.comb += mag.eq(rounded)
        m.d.comb += self.p.eq(Cat(mag, a.sign ^ b.sign))
        return m
