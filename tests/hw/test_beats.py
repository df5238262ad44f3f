"""BeatCodec gives Amaranth's own bits and field values (``layout.const`` / ``from_bits``), the
independent reference, on random nested layouts and values (out-of-range values included)."""

import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data
from hypothesis import given, settings
from hypothesis import strategies as st

from peforge.hw.common.beats import BeatCodec
from peforge.hw.systolic.top import stream_layouts
from peforge.models.numerics.mac import IntMac

plain = st.builds(lambda width, is_signed: signed(width) if is_signed else unsigned(width),
                  st.integers(1, 20), st.booleans())
layouts = st.recursive(
    plain,
    lambda inner: st.one_of(
        st.builds(data.ArrayLayout, inner, st.integers(1, 4)),
        st.dictionaries(st.sampled_from("abcde"), inner, min_size=1, max_size=4)
        .map(data.StructLayout)),
    max_leaves=12)


def values_of(shape):
    """A strategy of values for ``shape`` (structs may leave fields out, arrays elements)."""
    if isinstance(shape, data.StructLayout):
        return st.fixed_dictionaries({}, optional={name: values_of(field.shape)
                                                   for name, field in shape})
    if isinstance(shape, data.ArrayLayout):
        return st.lists(values_of(shape.elem_shape), max_size=shape.length)
    return st.integers(-(1 << (shape.width + 2)), 1 << (shape.width + 2))


def amaranth_values(shape, view):
    """The values Amaranth's ``from_bits`` view reads, as dicts, lists and ints."""
    if isinstance(shape, data.StructLayout):
        return {name: amaranth_values(field.shape, view[name]) for name, field in shape}
    if isinstance(shape, data.ArrayLayout):
        return [amaranth_values(shape.elem_shape, view[i]) for i in range(shape.length)]
    return int(view)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_pack_and_unpack_match_amaranth(drawn):
    layout = drawn.draw(layouts)
    if not isinstance(layout, data.Layout):
        layout = data.StructLayout({"x": layout})
    values = drawn.draw(values_of(layout))
    codec = BeatCodec(layout)
    bits = codec.pack(values)
    assert bits == layout.const(values).as_value().value
    raw = drawn.draw(st.integers(0, (1 << layout.size) - 1))
    assert codec.unpack(raw) == amaranth_values(layout, layout.from_bits(raw))


def test_systolic_beat_by_hand():
    """A 2 x 2 int8 os beat: a = [1, -1], b = [2, 3], last; packed a0 | a1 << 8 | b0 << 16 ..."""
    in_layout, out_layout = stream_layouts(2, 2, "os", IntMac(8, True, 32))
    codec = BeatCodec(in_layout)
    assert codec.pack({"a": [1, -1], "b": [2, 3], "last": 1}) == 0x1_03_02_FF_01
    assert BeatCodec(out_layout).unpack((1 << 64) | (5 << 32) | 0xFFFF_FFFF) == \
        {"data": [-1, 5], "last": 1}


def test_bad_values_raise():
    codec = BeatCodec(data.StructLayout({"a": data.ArrayLayout(unsigned(4), 2)}))
    with pytest.raises(ValueError, match="no field 'z'"):
        codec.pack({"z": 1})
    with pytest.raises(ValueError, match="array of 2 elements given 3"):
        codec.pack({"a": [1, 2, 3]})
    with pytest.raises(TypeError):
        codec.pack({"a": [1.5]})
