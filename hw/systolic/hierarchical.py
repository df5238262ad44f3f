"""The systolic array with its PE converted once and placed as an instance in every position.

Same ports, registers and logic as :class:`~peforge.hw.systolic.top.SystolicArray`; the Verilog
holds the PE module once instead of ``rows x cols`` copies (:mod:`peforge.hw.common.hierarchy`).
"""

from peforge.hw.common.hierarchy import PartLibrary
from peforge.hw.systolic.top import SystolicArray

__all__ = ["shared_pe_array"]


def shared_pe_array(config, library: PartLibrary) -> SystolicArray:
    """The array of ``config`` whose PEs are instances of one ``pe`` part of ``library``."""
    pe = SystolicArray.pe_factory(config.dataflow, config.mul_stages)
    return SystolicArray.from_config(
        config, pe=lambda numerics: library.part("pe", lambda: pe(numerics)))
