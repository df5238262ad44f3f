"""The systolic array built from shared parts, each converted once: its PE, its blocks of PEs,
its skews and its delay lines.

Same ports, registers and logic as :class:`~peforge.hw.systolic.top.SystolicArray` in place; the
PE grid is one :class:`~peforge.hw.systolic.grid.PeBlock`, each block two smaller ones down to
the PE, and each skew a :class:`~peforge.hw.common.delays.Skew` of halves. Every distinct part
is one Verilog module (:mod:`peforge.hw.common.hierarchy`): a ``2**n x 2**n`` array holds
``2 * n + 1`` block modules instead of ``4**n`` PE copies, and its skews ``O(n**2)`` small
modules instead of ``4**n`` registers in the top.
"""

from amaranth import unsigned

from peforge.hw.common.delays import DelayLine, Skew
from peforge.hw.common.hierarchy import PartLibrary
from peforge.hw.systolic.grid import PeBlock
from peforge.hw.systolic.top import SystolicArray

__all__ = ["SharedParts", "shared_pe_array"]


class SharedParts:
    """The parts of one array from ``library``, for ``SystolicArray(parts=...)``: named
    ``pe``, ``block_<rows>x<cols>``, ``skew_<lanes>x<width>`` and ``line_<width>x<cycles>``."""

    def __init__(self, library: PartLibrary, dataflow: str, numerics, mul_stages: int = 0,
                 add_stages: int = 0):
        self._library, self._numerics = library, numerics
        self._pe_class = SystolicArray.pe_class(dataflow, add_stages)
        self._make_pe = SystolicArray.pe_factory(dataflow, mul_stages, add_stages)

    def pe(self):
        return self._library.part("pe", lambda: self._make_pe(self._numerics))

    def block(self, rows: int, cols: int):
        return self._library.part(f"block_{rows}x{cols}", lambda: PeBlock(
            rows, cols, self._pe_class, self._numerics, pe=self.pe, block=self.block))

    def skew(self, lanes: int, width: int):
        return self._library.part(f"skew_{lanes}x{width}", lambda: Skew(
            lanes, width, skew=self.skew, line=self.line))

    def line(self, width: int, cycles: int):
        return self._library.part(f"line_{width}x{cycles}", lambda: DelayLine(
            unsigned(width), cycles, line=self.line))


def shared_pe_array(config, library: PartLibrary) -> SystolicArray:
    """The array of ``config`` built from :class:`SharedParts` of ``library``."""
    return SystolicArray.from_config(config, parts=SharedParts(
        library, config.dataflow, config.mac, config.mul_stages, config.add_stages))
