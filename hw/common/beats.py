"""Stream beats as plain integers: packing field values into a payload and back, fast.

A driver turns every beat of a job into the bits of its payload layout. Amaranth's
``layout.const(values).as_value().value`` and ``layout.from_bits(bits)`` do that through
``Const`` objects at about 4 ms per beat of an 8 x 8 systolic array, which made the driver, not
the simulator, the cost of a bulk run (:mod:`peforge.sim.rtl.bulk`: 62 s of Python for 8,368
simulated cycles). :class:`BeatCodec` compiles a layout once into shifts and masks and gives the
same bits and the same field values.

Supported shapes: :class:`~amaranth.lib.data.StructLayout` (a mapping of field values; fields left
out are zero), :class:`~amaranth.lib.data.ArrayLayout` (a sequence, at most its length; missing
elements are zero) and plain shapes (an integer, wrapped to the field's width as ``Const`` does;
signed fields unpack to negative integers).
"""

from collections.abc import Callable, Mapping
from operator import index

from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["BeatCodec"]


class BeatCodec:
    """Packs values into the bits of ``layout`` and unpacks bits into values.

    ``unpack`` gives a dict per struct, a list per array and an int per plain field.
    """

    def __init__(self, layout):
        self.layout = layout
        self.width, self._pack, self._unpack = _compile(layout)

    def pack(self, values) -> int:
        """The payload bits of ``values`` (what ``layout.const(values).as_value().value`` is)."""
        return self._pack(values)

    def unpack(self, bits: int):
        """The field values of payload ``bits`` (what ``layout.from_bits(bits)`` reads)."""
        return self._unpack(bits)


def _compile(shape) -> tuple[int, Callable, Callable]:
    """``(width, pack, unpack)`` of ``shape``; ``pack`` returns bits already masked to width."""
    if isinstance(shape, data.StructLayout):
        return _compile_struct(shape)
    if isinstance(shape, data.ArrayLayout):
        return _compile_array(shape)
    if isinstance(shape, data.Layout):
        raise TypeError(f"layout: {type(shape).__name__} is not supported (struct, array or "
                        "plain shapes only)")
    return _compile_plain(Shape.cast(shape))


def _compile_plain(shape: Shape):
    width, signed = shape.width, shape.signed
    mask, sign = (1 << width) - 1, 1 << (width - 1) if width else 0

    def pack(value) -> int:
        return index(value) & mask

    def unpack(bits: int) -> int:
        bits &= mask
        return bits - (sign << 1) if signed and bits & sign else bits

    return width, pack, unpack


def _compile_array(layout: data.ArrayLayout):
    elem_width, elem_pack, elem_unpack = _compile(layout.elem_shape)
    length, mask = layout.length, (1 << elem_width) - 1

    def pack(values) -> int:
        values = list(values)
        if len(values) > length:
            raise ValueError(f"array of {length} elements given {len(values)} values")
        bits = 0
        for i, value in enumerate(values):
            bits |= elem_pack(value) << (i * elem_width)
        return bits

    def unpack(bits: int) -> list:
        return [elem_unpack((bits >> (i * elem_width)) & mask) for i in range(length)]

    return layout.size, pack, unpack


def _compile_struct(layout: data.StructLayout):
    fields = {}
    for name, field in layout:
        width, field_pack, field_unpack = _compile(field.shape)
        fields[name] = (field.offset, (1 << width) - 1, field_pack, field_unpack)

    def pack(values: Mapping) -> int:
        bits = 0
        for name, value in values.items():
            if name not in fields:
                raise ValueError(f"payload has no field {name!r} (fields: {', '.join(fields)})")
            offset, _, field_pack, _ = fields[name]
            bits |= field_pack(value) << offset
        return bits

    def unpack(bits: int) -> dict:
        return {name: field_unpack((bits >> offset) & mask)
                for name, (offset, mask, _, field_unpack) in fields.items()}

    return layout.size, pack, unpack
