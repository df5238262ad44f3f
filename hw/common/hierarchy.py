"""Verilog that grows with the distinct parts of a top, not with its copies.

Amaranth writes one Verilog module per submodule instance: a 128 x 128 array of one PE comes out
as 32,769 modules. A :class:`PartLibrary` converts each distinct part once (its own module and
submodules, named after the part) and hands out :class:`SharedInstance` stand-ins with the
part's signature that instantiate that module; a part may itself be built from stand-ins of
other parts (a block of PEs from two smaller blocks). :func:`hierarchical_verilog` converts a top
built with the stand-ins and writes it and every part in one yosys run. The result simulates and
synthesises as the flat conversion does (same registers, same reset values, same logic, placed in
the parts' modules instead of per-copy ones), which ``tests/hw/test_hierarchy.py`` checks with a
yosys equivalence proof on small arrays.
"""

import re
from collections.abc import Callable

from amaranth.back import rtlil
# Amaranth's own RTLIL-to-Verilog step (the one ``verilog.convert`` ends with), called once for
# the top and all its parts: a yosys run per part costs about 0.8 s.
from amaranth.back.verilog import _convert_rtlil_text
from amaranth.hdl import ClockSignal, Instance, ResetSignal
from amaranth.lib import wiring

__all__ = ["PartLibrary", "SharedInstance", "hierarchical_verilog", "HIERARCHICAL_TOPS",
           "HIERARCHICAL_MIN_PES"]


#: Families whose top has a shared-part form: family name -> ``(module path, function)`` of
#: ``(config, library) -> top``. Generation uses it from :data:`HIERARCHICAL_MIN_PES` PEs on
#: (:func:`peforge.sim.rtl.flow.generate`); the energy flow's reduced tops stay flat.
HIERARCHICAL_TOPS = {"systolic": ("peforge.hw.systolic.hierarchical", "shared_pe_array"),
                     "bitserial": ("peforge.hw.bitserial.hierarchical", "shared_bitserial_array")}

#: PEs (:meth:`~peforge.sim.families.Family.pes`) from which ``generate`` writes the shared-part
#: form: 32 x 32 systolic arrays and 16 x 16 bit-serial ones of 4 lanes and up (smaller ones stay
#: byte-identical to before).
HIERARCHICAL_MIN_PES = 1024


class SharedInstance(wiring.Component):
    """A stand-in with ``signature``'s ports that instantiates the Verilog module ``module``.

    ``clocked``: the module has ``clk`` and ``rst`` ports (the part has synchronous logic); they
    are driven by the domain ``sync`` of the stand-in's place.
    """

    def __init__(self, signature: wiring.Signature, module: str, clocked: bool):
        self.module, self._clocked = module, clocked
        super().__init__(signature)

    def elaborate(self, platform):
        ports = {("i_" if member.flow == wiring.In else "o_") + "__".join(map(str, path)): value
                 for path, member, value in self.signature.flatten(self)}
        if self._clocked:
            ports.update(i_clk=ClockSignal(), i_rst=ResetSignal())
        return Instance(self.module, **ports)


class PartLibrary:
    """Distinct parts of one top, each converted once.

    Parameters
    ----------
    prefix : str
        Module names are ``<prefix>_<part name>`` (Verilog identifiers), so two tops' libraries
        do not collide when their files are read together.
    """

    def __init__(self, prefix: str):
        self.prefix = prefix
        self._parts: dict = {}

    def part(self, name: str, build: Callable[[], wiring.Component]) -> SharedInstance:
        """A stand-in for the part ``name``; ``build()`` makes the part the first time only, so
        every part of one name must be the same design."""
        if not name.isidentifier():
            raise ValueError(f"name: must be a Verilog identifier, got {name!r}")
        if name not in self._parts:
            component = build()
            module = f"{self.prefix}_{name}"
            text = rtlil.convert(component, name=module, emit_src=False)
            text = text.replace("attribute \\top 1\n", "", 1)  # only the real top carries it
            own = re.search(rf"^module \\{re.escape(module)}\n.*?^end$", text,
                            re.MULTILINE | re.DOTALL).group(0)
            clocked = re.search(r"^ *wire width 1 input \d+ +\\clk$", own, re.MULTILINE)
            self._parts[name] = (component.signature, module, clocked is not None, text)
        signature, module, clocked, _ = self._parts[name]
        return SharedInstance(signature, module, clocked)

    def rtlil(self) -> str:
        """The RTLIL of every part converted so far."""
        return "".join(text for _, _, _, text in self._parts.values())


def hierarchical_verilog(top: wiring.Component, library: PartLibrary, name: str) -> str:
    """Verilog of ``top`` (module ``name``), built with stand-ins from ``library``, followed by
    the modules of the parts it took from there."""
    text = rtlil.convert(top, name=name, emit_src=False) + library.rtlil()
    return _convert_rtlil_text(text)
