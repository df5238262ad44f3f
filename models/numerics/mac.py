"""Numerics of the multiply-accumulate inside a processing element.

A MAC numerics object says what one PE computes, ``acc' = acc + a * b``, with its operand and
accumulator encodings (``operand_format``, ``acc_format``: width and signedness of the bits) and
the accumulator's ``zero``. Arrays (the systolic family) are written against this interface only, so a
new multiplier (L-Mul, exact float) drops into the same array by providing another numerics object
and its hardware counterpart (:mod:`peforge.hw.common.mac`).

The order of accumulation is part of the contract: an output is ``zero`` folded with
``mac(acc, a[k], b[k])`` for ``k = 0, 1, ..., K-1``. Integer MACs are order-independent (modular
arithmetic); float MACs are not, and their :meth:`gemm` must follow that order.
"""

from dataclasses import dataclass

import numpy as np

from peforge.models.integer import int_range, wrap

__all__ = ["IntMac"]


@dataclass(frozen=True)
class IntMac:
    """Integer MAC: ``acc' = (acc + a * b) mod 2**acc_bits``.

    Parameters
    ----------
    bits : int
        Operand width; both operands share it.
    signed : bool
        Two's-complement operands and accumulator when true, unsigned otherwise.
    acc_bits : int
        Accumulator width. Sums that leave its range wrap (two's complement when signed).
    """

    bits: int
    signed: bool
    acc_bits: int

    zero = 0

    @property
    def operand_format(self) -> tuple[int, bool]:
        """``(width, signed)`` of each operand's encoding."""
        return self.bits, self.signed

    @property
    def acc_format(self) -> tuple[int, bool]:
        """``(width, signed)`` of the accumulator's encoding."""
        return self.acc_bits, self.signed

    @property
    def operand_range(self) -> tuple[int, int]:
        return int_range(self.bits, self.signed)

    def mac(self, acc, a, b) -> np.ndarray:
        """One accumulation step, element-wise, with the accumulator's wrap."""
        return wrap(np.asarray(acc, dtype=object) + np.asarray(a, dtype=object)
                    * np.asarray(b, dtype=object), self.acc_bits, self.signed)

    def gemm(self, a: np.ndarray, b: np.ndarray, d: np.ndarray | None = None) -> np.ndarray:
        """``d + a @ b`` as the accumulator holds it (wrapped); ``d`` defaults to zero."""
        low, high = self.operand_range
        for name, x in (("a", a), ("b", b)):
            if x.size and (x.min() < low or x.max() > high):
                raise ValueError(f"{name}: operands must be in {low}..{high}")
        # |a @ b| < 2**62 for operands of up to 16 bits and K < 2**29: int64 is exact.
        acc = a.astype(np.int64) @ b.astype(np.int64)
        if d is not None:
            acc = acc.astype(object) + d.astype(object)
        return wrap(acc, self.acc_bits, self.signed)
