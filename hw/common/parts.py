"""Stand-ins for composing a top's area from parts synthesised once each.

Area composition (:mod:`peforge.sim.eda.synth`) synthesises a repeated part (a PE) once and the top
with every copy of that part replaced by a :class:`BlackBox`: an instance of an empty Verilog
module whose ports are the part's signature. :func:`blackbox_module` declares that module for the
synthesis tool (``(* blackbox *)``), so the logic around the copies is kept and the copies
themselves count nothing. :class:`Trimmed` is a part as the top uses it at an edge (outputs that
nothing reads left open, inputs tied to constants), so synthesis removes what flat synthesis of
the top would remove there. :class:`BlackBoxMemory` stands in for a memory the same way, so that
a memory macro can be costed apart from the logic around it.
"""

from amaranth import ClockSignal, Module, Shape, Signal, Value, unsigned
from amaranth.hdl import Instance
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BlackBox", "BlackBoxMemory", "Trimmed", "WeightNarrowed", "blackbox_module",
           "BLACKBOX_PREFIX"]

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


class _Port:
    """A memory port as :class:`BlackBoxMemory` hands it out: ``addr``, ``data`` and ``en``."""

    def __init__(self, addr_bits: int, data_bits: int, name: str):
        self.addr = Signal(addr_bits, name=f"{name}_addr")
        self.data = Signal(data_bits, name=f"{name}_data")
        self.en = Signal(name=f"{name}_en")


class BlackBoxMemory(wiring.Component):
    """A stand-in for :class:`amaranth.lib.memory.Memory` ``(shape=, depth=, init=)`` with the
    ports a design asks of it (:meth:`write_port`, :meth:`read_port`: ``addr``, ``data``,
    ``en``, clocked by ``sync``): an instance of the empty module :attr:`module`
    (``peforge_blackbox_memory_<bits>x<depth>_<W>w<R>r``), declared by :meth:`declaration`.

    Attributes
    ----------
    width, depth : int
        Bits per word and words (``init`` is taken and ignored: a black box holds nothing).
    """

    def __init__(self, *, shape, depth: int, init=()):
        self.width, self.depth = Shape.cast(shape).width, depth
        self._writes, self._reads = [], []
        super().__init__(wiring.Signature({}))

    def _port(self, ports: list, kind: str) -> _Port:
        port = _Port(max(1, (self.depth - 1).bit_length()), self.width, f"{kind}{len(ports)}")
        ports.append(port)
        return port

    def write_port(self) -> _Port:
        return self._port(self._writes, "w")

    def read_port(self) -> _Port:
        """A read port of one cycle latency (``data`` is the word at ``addr`` of the cycle
        before ``en`` was high)."""
        return self._port(self._reads, "r")

    @property
    def module(self) -> str:
        return (f"{BLACKBOX_PREFIX}memory_{self.width}x{self.depth}_{len(self._writes)}w"
                f"{len(self._reads)}r")

    def _ports(self):
        yield "clk", wiring.In, ClockSignal()
        for kind, ports in (("w", self._writes), ("r", self._reads)):
            for number, port in enumerate(ports):
                data_flow = wiring.In if kind == "w" else wiring.Out
                yield f"{kind}{number}_addr", wiring.In, port.addr
                yield f"{kind}{number}_en", wiring.In, port.en
                yield f"{kind}{number}_data", data_flow, port.data

    def declaration(self) -> str:
        """Verilog of the empty module, marked ``(* blackbox *)``."""
        ports = list(self._ports())
        return _declaration(self.module, [(name, flow, 1 if name == "clk" else len(value))
                                          for name, flow, value in ports])

    def elaborate(self, platform):
        return Instance(self.module, **{("i_" if flow == wiring.In else "o_") + name: value
                                        for name, flow, value in self._ports()})


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
        _forward(m, self, part)
        for name, value in self._tied.items():
            m.d.comb += getattr(part, name).eq(value)
        return m


class WeightNarrowed(wiring.Component):
    """An output-stationary PE (possibly :class:`~peforge.hw.common.parts.Trimmed`) whose weight
    operand is ``wbits`` unsigned bits: ``b_in`` is zero-extended into the PE's signed operand,
    ``b_out`` (when the part has it) is its low ``wbits`` bits. Synthesis then removes the
    constant upper bits of the multiplier and of the forwarding register.

    Parameters
    ----------
    part : wiring.Component
        The PE, with top-level ports ``b_in`` and optionally ``b_out``.
    wbits : int
        Weight code width, 1..7 (the codes must fit the PE's signed operand).
    """

    def __init__(self, part: wiring.Component, wbits: int):
        members = part.signature.members
        if "b_in" not in members:
            raise ValueError("part: has no b_in port to narrow")
        width = len(part.b_in)
        if not 1 <= wbits < width:
            raise ValueError(f"wbits: must be in 1..{width - 1} for a {width}-bit signed "
                             f"operand, got {wbits}")
        self._part = part
        narrowed = {"b_in": In(unsigned(wbits)), "b_out": Out(unsigned(wbits))}
        super().__init__(wiring.Signature({name: narrowed.get(name, member)
                                           for name, member in members.items()}))

    def elaborate(self, platform):
        m = Module()
        m.submodules.part = part = self._part
        _forward(m, self, part)
        return m


def _forward(m: Module, outer: wiring.Component, part: wiring.Component) -> None:
    """Connect every port of ``outer`` to the same-named port of ``part``: inputs are extended
    into the part's shape, outputs keep the low bits that ``outer`` declares."""
    for name, member in outer.signature.members.items():
        if member.flow == wiring.In:
            m.d.comb += getattr(part, name).eq(getattr(outer, name))
        else:
            m.d.comb += getattr(outer, name).eq(getattr(part, name)[:len(getattr(outer, name))])


def blackbox_module(signature: wiring.Signature, name: str) -> str:
    """Verilog declaration of the empty module that :class:`BlackBox` ``(signature, name)``
    instantiates, marked ``(* blackbox *)``."""
    return _declaration(BLACKBOX_PREFIX + name,
                        [(port, flow, len(Value.cast(value)))
                         for port, flow, value in _ports(signature, signature.create())])


def _declaration(module: str, ports) -> str:
    """``(* blackbox *)`` Verilog of the empty ``module`` with ``(name, flow, width)`` ports."""
    lines = [f"(* blackbox *)\nmodule {module}({', '.join(p for p, _, _ in ports)});"]
    for port, flow, width in ports:
        vector = f"[{width - 1}:0] " if width > 1 else ""
        lines.append(f"  {'input' if flow == wiring.In else 'output'} {vector}{port};")
    lines.append("endmodule\n")
    return "\n".join(lines)


def _ports(signature, interface):
    for path, member, value in signature.flatten(interface):
        yield "__".join(str(part) for part in path), member.flow, value
