"""The bit-serial array built from shared parts, each converted once: its PE and its column-top
term decoder.

Same ports, registers and logic as :class:`~peforge.hw.bitserial.top.BitserialArray` in place,
and the same instance names (``pe_<row>_<col>``, ``decoder_<col>``); every distinct part is one
Verilog module (:mod:`peforge.hw.common.hierarchy`), so a 64 x 64 array of 16 lanes is three
modules (top, PE, decoder) instead of 4,161, and 33 MB of Verilog instead of 100 MB (the top
still wires 4,096 PE instances, about 8 kB each).
"""

from peforge.hw.bitserial.top import BitserialArray, BitserialPE, TermDecoder
from peforge.hw.common.hierarchy import PartLibrary

__all__ = ["SharedParts", "shared_bitserial_array"]


class SharedParts:
    """The parts of one array from ``library``, for ``BitserialArray(parts=...)``: named ``pe``
    and ``decoder``."""

    def __init__(self, library: PartLibrary, config):
        self._library, self._config = library, config

    def pe(self):
        return self._library.part("pe", lambda: BitserialPE(self._config))

    def decoder(self):
        return self._library.part("decoder", lambda: TermDecoder(self._config))


def shared_bitserial_array(config, library: PartLibrary) -> BitserialArray:
    """The array of ``config`` built from :class:`SharedParts` of ``library``."""
    return BitserialArray.from_config(config, parts=SharedParts(library, config))
