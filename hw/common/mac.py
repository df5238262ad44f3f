"""Multiply-accumulate units: the pluggable arithmetic inside a processing element.

Every MAC unit has the same signature (:class:`MacSignature`) and is combinational from
``acc`` to ``result``, so an array built around it keeps its timing whatever multiplier it holds;
with ``stages`` register stages after its multiplier, ``result`` adds the product of the operands
of ``stages`` cycles earlier (a PE delays its ``valid`` to match). :func:`mac_unit` maps a
numerics object of :mod:`peforge.models.numerics.mac` to its hardware; a new multiplier registers
its own unit with ``@mac_unit.register``.
"""

from functools import singledispatch

from amaranth import Module, Shape, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from peforge.models.numerics.mac import IntMac

from peforge.hw.common.delays import delayed

__all__ = ["MacSignature", "IntegerMac", "mac_unit", "mac_shapes"]


class MacSignature(wiring.Signature):
    """``result = acc + a * b``, combinational from ``acc`` (see the module docstring for
    ``a * b``).

    Parameters
    ----------
    operand_shape : Shape
        Shape of ``a`` and ``b``.
    acc_shape : Shape
        Shape of ``acc`` and ``result``.
    """

    def __init__(self, operand_shape, acc_shape):
        self.operand_shape = Shape.cast(operand_shape)
        self.acc_shape = Shape.cast(acc_shape)
        super().__init__({
            "a": In(operand_shape),
            "b": In(operand_shape),
            "acc": In(acc_shape),
            "result": Out(acc_shape),
        })


class IntegerMac(wiring.Component):
    """Integer multiply-accumulate, ``result = (acc + a * b) mod 2**acc_width``.

    Parameters
    ----------
    numerics : IntMac
        Operand width and signedness, accumulator width.

    Attributes
    ----------
    a, b : Signal(bits), in
        Operands (signed or unsigned per ``numerics.signed``).
    acc : Signal(acc_bits), in
        Accumulator input.
    result : Signal(acc_bits), out
        The sum, truncated to ``acc_bits`` (two's-complement wrap), of ``acc`` and the product
        of the operands ``stages`` cycles earlier.
    stages : int
        Register stages after the multiplier (named ``product_d<i>``); 0: combinational.
    """

    def __init__(self, numerics: IntMac, stages: int = 0):
        self.numerics, self.stages = numerics, stages
        super().__init__(MacSignature(*mac_shapes(numerics)))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.result.eq(self.acc + delayed(m, self.a * self.b, self.stages, "product"))
        return m


def mac_shapes(numerics) -> tuple[Shape, Shape]:
    """Operand and accumulator shapes of any MAC numerics (from its declared formats)."""
    return tuple(signed(width) if is_signed else unsigned(width)
                 for width, is_signed in (numerics.operand_format, numerics.acc_format))


@singledispatch
def mac_unit(numerics, stages: int = 0) -> wiring.Component:
    """A fresh MAC unit implementing ``numerics`` (one per PE), with ``stages`` register stages
    after its multiplier."""
    raise TypeError(f"no MAC unit is registered for {type(numerics).__name__}")


@mac_unit.register
def _(numerics: IntMac, stages: int = 0) -> wiring.Component:
    return IntegerMac(numerics, stages)
