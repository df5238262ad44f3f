"""Stand-ins for composing a top's area from parts synthesised once each.

Area composition (:mod:`peforge.sim.synth`) synthesises a repeated part (a PE) once and the top
with every copy of that part replaced by a :class:`BlackBox`: an instance of an empty Verilog
module whose ports are the part's signature. :func:`blackbox_module` declares that module for the
synthesis tool (``(* blackbox *)``), so the logic around the copies is kept and the copies
themselves count nothing. :class:`Trimmed` is a part as the top uses it at an edge (outputs that
nothing reads left open, inputs tied to constants), so synthesis removes what flat synthesis of
the top would remove there.
"""

from amaranth import Module, Value
from amaranth.hdl import Instance
from amaranth.lib import wiring

__all__ = ["BlackBox", "Trimmed", "blackbox_module", "BLACKBOX_PREFIX"]

#: Every black-box module name starts with this, so a synthesis script can select them all.
BLACKBOX_PREFIX = "peforge_blackbox_"


class BlackBox(wiring.Component):
    """A stand-in with ``signature``'s ports that instantiates the empty module
    ``peforge_blackbox_<name>``.

    Parameters
    ----------
    signature : wiring.Signature
        Ports of the part it stands for (flattened names join the path with ``__``).
    name : str
        Part name, a Verilog identifier.
    """

    def __init__(self, signature: wiring.Signature, name: str):
        if not name.isidentifier():
            raise ValueError(f"name: must be a Verilog identifier, got {name!r}")
        self.module = BLACKBOX_PREFIX + name
        super().__init__(signature)

    def elaborate(self, platform):
        ports = {("i_" if flow == wiring.In else "o_") + port: value
                 for port, flow, value in _ports(self.signature, self)}
        return Instance(self.module, **ports)


class Trimmed(wiring.Component):
    """``part`` with the outputs ``unused`` left open and the inputs of ``tied`` held constant.

    Parameters
    ----------
    part : wiring.Component
        The part (its ports must be top-level members, not nested interfaces).
    unused : iterable of str
        Output ports that nothing reads where the part sits.
    tied : dict of str to int
        Input ports driven by a constant there.

    The trimmed component has the remaining ports of ``part``, passed straight through.
    """

    def __init__(self, part: wiring.Component, *, unused=(), tied=None):
        tied = dict(tied or {})
        members = part.signature.members
        for name in unused:
            if name not in members or members[name].flow != wiring.Out:
                raise ValueError(f"unused: {name!r} is not an output port of the part")
        for name in tied:
            if name not in members or members[name].flow != wiring.In:
                raise ValueError(f"tied: {name!r} is not an input port of the part")
        self._part, self._tied = part, tied
        super().__init__(wiring.Signature({name: member for name, member in members.items()
                                           if name not in tied and name not in set(unused)}))

    def elaborate(self, platform):
        m = Module()
        m.submodules.part = part = self._part
        for name, member in self.signature.members.items():
            if member.flow == wiring.In:
                m.d.comb += getattr(part, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(part, name))
        for name, value in self._tied.items():
            m.d.comb += getattr(part, name).eq(value)
        return m


def blackbox_module(signature: wiring.Signature, name: str) -> str:
    """Verilog declaration of the empty module that :class:`BlackBox` ``(signature, name)``
    instantiates, marked ``(* blackbox *)``."""
    ports = list(_ports(signature, signature.create()))
    lines = [f"(* blackbox *)\nmodule {BLACKBOX_PREFIX}{name}({', '.join(p for p, _, _ in ports)});"]
    for port, flow, value in ports:
        width = len(Value.cast(value))
        vector = f"[{width - 1}:0] " if width > 1 else ""
        lines.append(f"  {'input' if flow == wiring.In else 'output'} {vector}{port};")
    lines.append("endmodule\n")
    return "\n".join(lines)


def _ports(signature, interface):
    for path, member, value in signature.flatten(interface):
        yield "__".join(str(part) for part in path), member.flow, value
