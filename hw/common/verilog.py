"""Verilog from an Amaranth component, stable enough to diff and to hash."""

from amaranth import Value
from amaranth.back import verilog
from amaranth.lib import wiring

__all__ = ["to_verilog", "port_table", "index_shape"]


def to_verilog(component: wiring.Component, name: str) -> str:
    """The component as one Verilog module ``name`` (submodules included), without source
    locations, so the text depends only on the generator and its parameters."""
    return verilog.convert(component, name=name, emit_src=False)


def port_table(component: wiring.Component) -> list[dict]:
    """Top-level Verilog ports: name (as Amaranth flattens it), direction and width.

    ``clk`` and ``rst`` (active-high synchronous reset) are added by the conversion.
    """
    ports = [{"name": "clk", "direction": "input", "width": 1, "meaning": "clock"},
             {"name": "rst", "direction": "input", "width": 1,
              "meaning": "synchronous reset, active high"}]
    for path, member, value in component.signature.flatten(component):
        ports.append({
            "name": "__".join(str(part) for part in path),
            "direction": "input" if member.flow == wiring.In else "output",
            "width": len(Value.cast(value)),
        })
    return ports


def index_shape(count: int) -> range:
    """Shape of an index in ``range(count)``, at least one bit wide: Verilog has no zero-width
    vectors (Amaranth writes ``[-1:0]``, a Verilator ASCRANGE error), and the constant bit of a
    one-value index is left to synthesis."""
    return range(max(count, 2))
