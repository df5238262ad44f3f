"""LUT tensor-core tile: table lookup instead of multiplication for low-bit weights.

A table precompute unit per activation row turns a group of ``k`` activations into the
``2**(k-1)`` symmetrised partial sums; an ``m x n`` grid of lookup cells indexes its row's table
with its column's folded weight index ``(j, negate)``, one weight bit-plane per cycle, and
accumulates the signed, shifted entry. The tile takes one beat per cycle on ``i_stream``
(valid/ready) and emits one row of results per cycle on ``o_stream`` (valid only).

The maths (tables, folding, plane weights, correction) is :mod:`peforge.models.numerics.lut_table`; the
protocol and cycle counts are documented in :mod:`peforge.models.lut`; the driver that tiles a
GEMM onto it is :mod:`peforge.hw.lut.driver`.
"""

from amaranth import Array, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from peforge.models.lut import LutConfig
from peforge.models.numerics.lut_table import WeightFormat, table_entry_bits

from peforge.hw.common.streams import ValidStream
from peforge.hw.common.verilog import index_shape

__all__ = ["TablePrecompute", "LutCell", "LutArray", "stream_layouts"]


def _table_layout(k: int, abits: int) -> data.ArrayLayout:
    return data.ArrayLayout(signed(table_entry_bits(abits, k)), 1 << (k - 1))


class TablePrecompute(wiring.Component):
    """Combinational table of one activation group: ``table[j] = T(2*j)``.

    ``table[j] = -a[0] + sum_{i=1..k-1} (2*j_{i-1} - 1) * a[i]``, built as a tree that adds
    ``-a[i]`` and ``+a[i]`` to every partial entry of ``a[0..i-1]`` (``2**k - 2`` adders).

    Parameters
    ----------
    k : int
        Activations per group, 2..8.
    abits : int
        Signed activation width.

    Ports
    -----
    a : In(ArrayLayout(signed(abits), k))
        The group's activations.
    table : Out(ArrayLayout(signed(table_entry_bits(abits, k)), 2**(k-1)))
        The symmetrised entries; entry 0 is ``-sum(a)``.
    """

    def __init__(self, k: int, abits: int):
        self.k = k
        super().__init__({"a": In(data.ArrayLayout(signed(abits), k)),
                          "table": Out(_table_layout(k, abits))})

    def elaborate(self, platform):
        m = Module()
        entries = [-self.a[0]]
        for i in range(1, self.k):
            # j bit i-1 selects the sign of a[i]: the entries with that bit clear come first.
            entries = [e - self.a[i] for e in entries] + [e + self.a[i] for e in entries]
        m.d.comb += [self.table[j].eq(entry) for j, entry in enumerate(entries)]
        return m


class LutCell(wiring.Component):
    """One lookup-accumulate cell: ``acc <- (first ? 0 : acc) + (+/-table[j]) << shift``.

    Parameters
    ----------
    table_layout : data.ArrayLayout
        Layout of its row's table (``2**(k-1)`` signed entries).
    max_shift : int
        Largest plane shift, ``log2`` of the largest plane-weight magnitude.
    acc_bits : int
        Accumulator width; sums wrap modulo ``2**acc_bits``.

    Ports
    -----
    table : In(table_layout)
        Its row's table register.
    j : In(k - 1); negate : In(1)
        Folded index of its column's weight bits in this plane; ``negate`` already includes the
        sign of the plane weight.
    shift : In(range(max_shift + 1)), at least 1 bit
        ``log2 |c_b|`` of the plane.
    en : In(1); first : In(1)
        Accumulate this cycle; start from zero (first plane of a tile).
    acc : Out(signed(acc_bits))
        The accumulator register (the doubled partial result).
    """

    def __init__(self, table_layout: data.ArrayLayout, max_shift: int, acc_bits: int):
        super().__init__({
            "table": In(table_layout), "j": In(range(table_layout.length)), "negate": In(1),
            "shift": In(index_shape(max_shift + 1)), "en": In(1), "first": In(1),
            "acc": Out(signed(acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        entry = Signal.like(self.table[0])
        m.d.comb += entry.eq(self.table[self.j])
        term = Mux(self.negate, -entry, entry) << self.shift
        with m.If(self.en):
            m.d.sync += self.acc.eq(Mux(self.first, 0, self.acc) + term)
        return m


class LutArray(wiring.Component):
    """An ``m x n`` LUT tile with table precompute, bit-serial lookups and a result drain.

    Parameters
    ----------
    m, n : int
        Tile rows (activation rows) and columns (weight columns).
    k : int
        Activations per table group, 2..8.
    abits : int
        Signed activation width.
    fmt : WeightFormat
        Weight format: ``fmt.wbits`` planes per group with plane weights ``fmt.plane_weights``
        and the activation-sum correction ``fmt.correction``.
    acc_bits : int
        Accumulator width; results are ``acc_bits - 1`` bits.

    Ports
    -----
    i_stream : In(stream.Signature(...))
        Payload ``a`` (``m x k`` signed activations: the group of each row, read on a group's
        first beat), ``idx`` (``n`` folded indices ``{j: k-1 bits, negate: 1}``: this plane of
        each column), ``last`` (final beat of the tile). Beats follow plane ``b = 0..wbits-1``
        within a group, groups in order; a tile is a whole number of groups. ``ready`` is low
        for ``m - 1`` cycles after a tile's last beat. Latency: the tile's last beat is
        looked up in the next cycle, its result rows leave in the ``m`` cycles after that.
    o_stream : Out(ValidStream(...))
        Payload ``data`` (``n`` signed ``acc_bits - 1``-bit results: one row of the tile) and
        ``last`` (final row of the tile); ``m`` beats per tile, row 0 first.
    """

    def __init__(self, m: int, n: int, k: int, abits: int, fmt: WeightFormat, acc_bits: int):
        self.m, self.n, self.k, self.abits, self.fmt, self.acc_bits = m, n, k, abits, fmt, acc_bits
        self.in_layout, self.out_layout = stream_layouts(m, n, k, abits, acc_bits)
        super().__init__({
            "i_stream": In(stream.Signature(self.in_layout)),
            "o_stream": Out(ValidStream(self.out_layout)),
        })

    @classmethod
    def from_config(cls, config: LutConfig) -> "LutArray":
        return cls(config.m, config.n, config.k, config.abits, config.weight_format,
                   config.acc_bits)

    def elaborate(self, platform):
        m = Module()
        rows, cols, planes = self.m, self.n, self.fmt.wbits
        table_layout = _table_layout(self.k, self.abits)
        shifts = [abs(c).bit_length() - 1 for c in self.fmt.plane_weights]
        payload = self.i_stream.payload
        fire = Signal()
        m.d.comb += fire.eq(self.i_stream.valid & self.i_stream.ready)

        # Stage 0, on an accepted beat: count planes, build the tables on a group's first plane,
        # register the plane's indices and what its plane weight means for the lookups.
        plane = Signal(index_shape(planes))
        first = Signal(init=1)                      # the next accepted beat starts a tile
        with m.If(fire):
            m.d.sync += [plane.eq(Mux(plane == planes - 1, 0, plane + 1)),
                         first.eq(payload.last)]
        tables = [Signal(table_layout, name=f"table_{r}") for r in range(rows)]
        for r, table in enumerate(tables):
            m.submodules[f"precompute_{r}"] = unit = TablePrecompute(self.k, self.abits)
            m.d.comb += unit.a.eq(payload.a[r])
            with m.If(fire & (plane == 0)):
                m.d.sync += table.eq(unit.table)
        idx = Signal.like(payload.idx)
        shift = Signal(index_shape(max(shifts) + 1))
        subtract = Signal()                         # negative plane weight (signed sign plane)
        en, first_1, group_1, last_1 = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [en.eq(fire), first_1.eq(first), group_1.eq(plane == 0),
                     last_1.eq(payload.last)]
        with m.If(fire):
            m.d.sync += idx.eq(payload.idx)
            with m.Switch(plane):
                for b, c in enumerate(self.fmt.plane_weights):
                    with m.Case(b):
                        m.d.sync += [shift.eq(shifts[b]), subtract.eq(c < 0)]

        # Stage 1: every cell looks up, negates, shifts and accumulates; each row also sums its
        # activations (-table[0]) once per group for the correction, applied at the output.
        cells = [[LutCell(table_layout, max(shifts), self.acc_bits) for _ in range(cols)]
                 for _ in range(rows)]
        for r, c in _grid(rows, cols):
            m.submodules[f"cell_{r}_{c}"] = cell = cells[r][c]
            m.d.comb += [cell.table.eq(tables[r]), cell.j.eq(idx[c].j),
                         cell.negate.eq(idx[c].negate ^ subtract), cell.shift.eq(shift),
                         cell.en.eq(en), cell.first.eq(first_1)]
        row = Signal(index_shape(rows))            # the row being drained
        if self.fmt.correction:
            act_sums = [Signal(signed(self.acc_bits), name=f"act_sum_{r}") for r in range(rows)]
            for act_sum, table in zip(act_sums, tables):
                with m.If(en & group_1):
                    m.d.sync += act_sum.eq(Mux(first_1, 0, act_sum) - table[0])
            correction = Array(act_sums)[row] * self.fmt.correction
        else:
            correction = 0

        # Drain: m rows, one per cycle, from the cycle after the tile's last lookup; the input
        # stalls so that the next tile's first lookup follows the last row's read. The next
        # tile's last lookup may fall in a drain's final cycle (tiles of one beat), so starting
        # a drain takes precedence over ending one.
        draining = Signal()
        with m.If(draining):
            m.d.sync += row.eq(Mux(row == rows - 1, 0, row + 1))
            with m.If(row == rows - 1):
                m.d.sync += draining.eq(0)
        with m.If(en & last_1):
            m.d.sync += draining.eq(1)
        for c in range(cols):
            doubled = Array(cells[r][c].acc for r in range(rows))[row] + correction
            m.d.comb += self.o_stream.payload.data[c].eq(doubled[1:self.acc_bits])
        m.d.comb += [self.o_stream.valid.eq(draining),
                     self.o_stream.payload.last.eq(row == rows - 1)]
        if rows == 1:
            m.d.comb += self.i_stream.ready.eq(1)
        else:
            stall = Signal(range(rows))
            m.d.comb += self.i_stream.ready.eq(stall == 0)
            with m.If(fire & payload.last):
                m.d.sync += stall.eq(rows - 1)
            with m.Elif(stall != 0):
                m.d.sync += stall.eq(stall - 1)
        return m


def stream_layouts(m: int, n: int, k: int, abits: int, acc_bits: int):
    """Payload layouts of :class:`LutArray`'s input and output streams."""
    index = data.StructLayout({"j": k - 1, "negate": 1})
    return (data.StructLayout({"a": data.ArrayLayout(data.ArrayLayout(signed(abits), k), m),
                               "idx": data.ArrayLayout(index, n), "last": 1}),
            data.StructLayout({"data": data.ArrayLayout(signed(acc_bits - 1), n), "last": 1}))


def _grid(rows, cols):
    return ((r, c) for r in range(rows) for c in range(cols))
