"""Bit-serial mixture-of-datatype PE array (BitMoD-style) with INT8 activations.

Weight codes enter at the top of each column, where a :class:`TermDecoder` turns the column's
``lanes`` codes into their bit-serial terms, one term index per cycle; the terms flow down the
column and the slot's INT8 activations are broadcast across each row. A slot takes as many cycles
as the most terms its columns' group types need (2, 3 or 4), derived from the slot's ``wtype``
fields when the array takes it. Every
:class:`BitserialPE` adds ``sum_lanes a * term`` (shifted by the term's bit significance) to its
group accumulator, hands each finished group sum to its bit-serial dequantiser (8-bit scale, MSB
first) and keeps the results before (``c_raw``) and after (``c_scaled``) dequantisation.

Numerics, protocol and the cycle formula are documented in :mod:`peforge.models.bitserial`; the
driver that tiles a GEMM onto the array is :mod:`peforge.hw.bitserial.driver`.
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from peforge.models.numerics.bitmod import decode, decompose, terms_per_weight
from peforge.models.bitserial import ACT_BITS, DEQUANT_CYCLES, SCALE_BITS, BitserialConfig

from peforge.hw.common.drain import drain_fsm
from peforge.hw.common.streams import ValidStream

__all__ = ["TERM_LAYOUT", "TermDecoder", "BitserialPE", "BitserialArray", "stream_layouts",
           "slot_terms"]

#: One bit-serial term, ``(-1)**sign * mantissa * 2**exponent`` (the bit significance is
#: per column, see :class:`TermDecoder`); fields as in :data:`peforge.models.numerics.bitmod.TERM_DTYPE`.
TERM_LAYOUT = data.StructLayout({"mantissa": 1, "exponent": 2, "sign": 1})

#: Width of a group's special-value selector (used by fp types; int groups send 0).
SELECTOR_BITS = 2


def type_bits(config: BitserialConfig) -> int:
    """Width of a group's type index (at least 1 bit, so no port is zero-width)."""
    return max(1, (len(config.weight_types) - 1).bit_length())


def stream_layouts(config: BitserialConfig) -> tuple[data.StructLayout, data.StructLayout]:
    """Payload layouts of :class:`BitserialArray`'s input and output streams."""
    rows, cols, lanes = config.rows, config.cols, config.lanes

    def per_column(shape):
        return data.ArrayLayout(shape, cols)

    in_layout = data.StructLayout({
        "a": data.ArrayLayout(data.ArrayLayout(signed(ACT_BITS), lanes), rows),
        "code": per_column(data.ArrayLayout(unsigned(config.code_bits), lanes)),
        "wtype": per_column(unsigned(type_bits(config))),
        "selector": per_column(unsigned(SELECTOR_BITS)),
        "scale": per_column(unsigned(SCALE_BITS)),
        "group_last": 1,
        "last": 1,
    })
    out_layout = data.StructLayout({
        "c_raw": per_column(signed(config.raw_bits)),
        "c_scaled": per_column(signed(config.scaled_bits)),
        "last": 1,
    })
    return in_layout, out_layout


def _term_bits(term) -> int:
    """The bits of one :data:`~peforge.models.numerics.bitmod.TERM_DTYPE` term in :data:`TERM_LAYOUT`."""
    return TERM_LAYOUT.const({name: int(term[name]) for name in ("mantissa", "exponent", "sign")}
                             ).as_value().value


def _fp_table(wtype, values) -> Const:
    """``len(values)`` words of ``2 * TERM_LAYOUT.size`` bits: both terms of each value, first
    term in the low bits."""
    width = TERM_LAYOUT.size
    words = [_term_bits(t0) | _term_bits(t1) << width for t0, t1 in decompose(values, wtype)]
    return Const(sum(word << (2 * width * i) for i, word in enumerate(words)),
                 2 * width * len(words))


class TermDecoder(wiring.Component):
    """Column-top decoder: term ``term_index`` of each of a column's ``lanes`` weight codes.

    Combinational. The terms are those of :func:`peforge.models.numerics.bitmod.decompose`: int types are
    Booth-encoded from the code sign-extended to 8 bits (digits beyond the type's own are zero),
    fp types look up the leading-one split of the code's magnitude or, for the special code, of
    the selected special value; term indices past a type's term count give zero terms.

    Parameters
    ----------
    config : BitserialConfig
        Allowed types (``config.wtypes``), ``lanes`` and terms per slot.

    Ports
    -----
    code : In(ArrayLayout(unsigned(config.code_bits), lanes))
        Weight codes; a narrower type uses the low bits.
    wtype : In(type_bits)
        The group's type, an index into ``config.wtypes``.
    selector : In(2)
        The group's special-value selector (fp types).
    term_index : In(range(config.terms))
        Which term, 0 first.
    terms : Out(ArrayLayout(TERM_LAYOUT, lanes))
        The terms' sign, exponent (0..3) and mantissa.
    shift : Out(range(config.terms))
        Half the terms' bit significance: ``term_index`` for int types (Booth digit ``i`` weighs
        ``4**i``), 0 for fp types.
    """

    def __init__(self, config: BitserialConfig):
        self._types = config.weight_types
        self._lanes = config.lanes
        self._terms = config.terms
        super().__init__({
            "code": In(data.ArrayLayout(unsigned(config.code_bits), config.lanes)),
            "wtype": In(type_bits(config)),
            "selector": In(SELECTOR_BITS),
            "term_index": In(range(config.terms)),
            "terms": Out(data.ArrayLayout(TERM_LAYOUT, config.lanes)),
            "shift": Out(range(config.terms)),
        })

    def elaborate(self, platform):
        m = Module()
        t = self.term_index
        ints = [(index, wtype) for index, wtype in enumerate(self._types) if wtype.family == "int"]
        for lane in range(self._lanes):
            code = self.code[lane]
            booth = self._booth_term(m, code, lane, ints) if ints else None
            with m.Switch(self.wtype):
                for index, wtype in enumerate(self._types):
                    with m.Case(index):
                        if wtype.family == "int":
                            m.d.comb += self.terms[lane].eq(booth)
                        else:
                            m.d.comb += self.terms[lane].eq(self._fp_term(code, wtype, t))
        with m.Switch(self.wtype):
            for index, wtype in enumerate(self._types):
                with m.Case(index):
                    m.d.comb += self.shift.eq(t if wtype.family == "int" else 0)
        return m

    def _booth_term(self, m: Module, code, lane: int, ints):
        """Radix-4 Booth digit ``term_index`` of the code read as the group's int type (one of
        ``ints``, ``(index, type)`` pairs); one encoder serves every int type."""
        term = Signal(TERM_LAYOUT, name=f"booth{lane}")
        pattern = Signal(signed(8), name=f"pattern{lane}")
        with m.Switch(self.wtype):
            for index, wtype in ints:
                with m.Case(index):
                    m.d.comb += pattern.eq(code[:wtype.code_bits].as_signed())
        # Digit i = b[2i-1] + b[2i] - 2*b[2i+1] with b[-1] = 0.
        window = Cat(Const(0, 1), pattern).bit_select(self.term_index * 2, 3)
        low, mid, high = window[0], window[1], window[2]
        m.d.comb += [term.sign.eq(high & ~(mid & low)),
                     term.mantissa.eq(~((high & mid & low) | ~(high | mid | low))),
                     term.exponent.eq((mid == low) & (mid != high))]
        return term

    def _fp_term(self, code, wtype, t):
        """Leading-one term ``t`` of an fp code (zero for ``t >= 2``)."""
        bits = wtype.code_bits
        special_code = 1 << (bits - 1)
        regular = _fp_table(wtype, decode(list(range(1 << bits)), wtype, 0))
        special = _fp_table(wtype, decode([special_code] * 4, wtype, [0, 1, 2, 3]))
        own = code[:bits]
        pair = Mux(own == special_code, special.word_select(self.selector, 2 * TERM_LAYOUT.size),
                   regular.word_select(own, 2 * TERM_LAYOUT.size))
        padded = Cat(pair, Const(0, TERM_LAYOUT.size * max(0, self._terms - 2)))
        return TERM_LAYOUT(padded.word_select(t, TERM_LAYOUT.size))


class BitserialPE(wiring.Component):
    """One output-stationary bit-serial PE with a group accumulator and a bit-serial dequantiser.

    Parameters
    ----------
    config : BitserialConfig
        ``lanes`` and the accumulator widths (``group_bits``, ``raw_bits``, ``scaled_bits``).

    Ports
    -----
    a : In(ArrayLayout(signed(8), lanes))
        The row's activations of the current slot.
    terms : In(ArrayLayout(TERM_LAYOUT, lanes)); shift : In(range(terms))
        The column's current terms, of bit significance ``2 * shift``.
    step : In(1)
        A term cycle: ``g = (fresh ? 0 : group_acc) + (sum_lanes a * term << 2*shift)`` is
        registered in the group accumulator and the same addend added to ``c_raw``.
    fresh : In(1)
        First term of a group: the group accumulator restarts from zero.
    group_end : In(1)
        Last term of a group: ``g`` (the group sum) is held for the dequantiser.
    dq_step : In(1); scale_bit : In(1)
        A dequantiser cycle with the next scale bit, MSB first: ``p = 2*product + bit*held``.
    dq_last : In(1)
        The 8th dequantiser cycle: ``p`` (= held * scale) is added to ``c_scaled``, ``product``
        clears.
    drain : In(1); raw_in : In(signed(raw_bits)); scaled_in : In(signed(scaled_bits))
        Shift mode: the accumulators load the values of the PE below.
    c_raw : Out(signed(raw_bits)); c_scaled : Out(signed(scaled_bits))
        The accumulators (registers); sums wrap in two's complement.

    Every update takes effect at the clock edge; nothing is combinational from input to output.
    """

    def __init__(self, config: BitserialConfig):
        self._terms = config.terms
        self._group_bits = config.group_bits
        super().__init__({
            "a": In(data.ArrayLayout(signed(ACT_BITS), config.lanes)),
            "terms": In(data.ArrayLayout(TERM_LAYOUT, config.lanes)),
            "shift": In(range(config.terms)),
            "step": In(1), "fresh": In(1), "group_end": In(1),
            "dq_step": In(1), "scale_bit": In(1), "dq_last": In(1),
            "drain": In(1),
            "raw_in": In(signed(config.raw_bits)), "scaled_in": In(signed(config.scaled_bits)),
            "c_raw": Out(signed(config.raw_bits)), "c_scaled": Out(signed(config.scaled_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        group_acc = Signal(signed(self._group_bits))
        held = Signal(signed(self._group_bits))
        product = Signal(signed(self._group_bits + SCALE_BITS))

        lane_sum = 0
        for a, term in zip(self.a, self.terms):
            magnitude = a << term.exponent
            lane_sum += Mux(term.mantissa, Mux(term.sign, -magnitude, magnitude), 0)
        addend = Signal((lane_sum << 2 * (self._terms - 1)).shape())
        group_sum = Signal(signed(self._group_bits))
        partial = Signal(signed(self._group_bits + SCALE_BITS))
        m.d.comb += [addend.eq(lane_sum << (self.shift * 2)),
                     group_sum.eq(Mux(self.fresh, 0, group_acc) + addend),
                     partial.eq((product << 1) + Mux(self.scale_bit, held, 0))]

        with m.If(self.step):
            m.d.sync += group_acc.eq(group_sum)
        with m.If(self.group_end):
            m.d.sync += held.eq(group_sum)
        with m.If(self.dq_step):
            m.d.sync += product.eq(Mux(self.dq_last, 0, partial))
        with m.If(self.drain):
            m.d.sync += [self.c_raw.eq(self.raw_in), self.c_scaled.eq(self.scaled_in)]
        with m.Else():
            with m.If(self.step):
                m.d.sync += self.c_raw.eq(self.c_raw + addend)
            with m.If(self.dq_last):
                m.d.sync += self.c_scaled.eq(self.c_scaled + partial)
        return m


def slot_terms(m: Module, config: BitserialConfig, wtypes) -> Signal:
    """Combinational, added to ``m``: the terms (cycles) of a slot, the most that the group types
    ``wtypes`` (one index per column, into ``config.wtypes``) need; an index past the allowed
    types counts as the fewest. ``range(config.terms + 1)`` wide."""
    terms = Signal(range(config.terms + 1))
    counts = [terms_per_weight(t) for t in config.weight_types]
    m.d.comb += terms.eq(min(counts))
    # Ascending, so that the most terms any column needs is assigned last and wins.
    for count in sorted(set(counts))[1:]:
        indices = [index for index, c in enumerate(counts) if c == count]
        with m.If(Cat(wtype == index for wtype in wtypes for index in indices).any()):
            m.d.comb += terms.eq(count)
    return terms


class BitserialArray(wiring.Component):
    """A ``rows x cols`` output-stationary bit-serial array with column-top term decoders.

    Parameters
    ----------
    config : BitserialConfig
    parts : optional
        Shared parts (:class:`~peforge.hw.bitserial.hierarchical.SharedParts`): ``pe()`` and
        ``decoder()`` give stand-ins for a :class:`BitserialPE` and a :class:`TermDecoder` of
        ``config``; None: every copy is its own component.

    Ports
    -----
    i_stream : In(stream.Signature(...))
        One slot per beat: ``a`` (rows x lanes INT8 activations: ``A[row, k0:k0+lanes]``),
        ``code`` (cols x lanes weight codes: ``codes[k0:k0+lanes, col]``), per column the group's
        ``wtype`` (index into ``config.wtypes``), ``selector`` (2 bits, 0 for int types) and
        ``scale`` (8-bit code; read on the group's last beat), ``group_last`` (last slot of a
        group) and ``last`` (last slot of the tile; also ends the group). A slot takes ``T``
        cycles, the most terms of its columns' types (:func:`slot_terms` of ``wtype``: fp3, fp4,
        int3, int4 2, int6 3, int8 4). ``ready`` is high when the array is idle or in the last
        term cycle of a slot that is not the tile's last: beats are taken every ``T`` cycles.
        A group's dequantisation runs in the 8 cycles after its last term, while the next group
        accumulates; it never stalls, because :class:`BitserialConfig` rejects groups that last
        fewer than 8 cycles at the fastest allowed type.
    o_stream : Out(ValidStream(...))
        ``rows`` beats per tile, row 0 first, right after the 8 dequantiser cycles that follow
        the tile's last term cycle: ``c_raw`` and ``c_scaled`` (cols accumulators each, see
        :mod:`peforge.models.bitserial`) and ``last`` (final row of the tile).
    """

    def __init__(self, config: BitserialConfig, *, parts=None):
        self.config, self.parts = config, parts
        self.in_layout, self.out_layout = stream_layouts(config)
        super().__init__({
            "i_stream": In(stream.Signature(self.in_layout)),
            "o_stream": Out(ValidStream(self.out_layout)),
        })

    @classmethod
    def from_config(cls, config: BitserialConfig, *, parts=None) -> "BitserialArray":
        return cls(config, parts=parts)

    def elaborate(self, platform):
        m = Module()
        config = self.config
        rows, cols = config.rows, config.cols
        if self.parts is None:
            make_decoder, make_pe = (lambda: TermDecoder(config)), (lambda: BitserialPE(config))
        else:
            make_decoder, make_pe = self.parts.decoder, self.parts.pe
        decoders = [make_decoder() for _ in range(cols)]
        pes = [[make_pe() for _ in range(cols)] for _ in range(rows)]
        for j, decoder in enumerate(decoders):
            m.submodules[f"decoder_{j}"] = decoder
        for i in range(rows):
            for j in range(cols):
                m.submodules[f"pe_{i}_{j}"] = pes[i][j]

        # The slot register holds the beat being processed; term_index counts its terms up to
        # final_term, the slot's last term index.
        slot = Signal(self.in_layout)
        busy = Signal()
        term_index = Signal(range(config.terms))
        final_term = Signal(range(config.terms))
        fire = Signal()
        last_term = Signal()
        group_end = Signal()
        fresh = Signal(init=1)
        dequant = Signal(range(DEQUANT_CYCLES + 1))
        scales = [Signal(SCALE_BITS, name=f"scale{j}") for j in range(cols)]
        drain = Signal()
        m.d.comb += [fire.eq(self.i_stream.valid & self.i_stream.ready),
                     last_term.eq(busy & (term_index == final_term)),
                     group_end.eq(last_term & (slot.group_last | slot.last))]

        for j, decoder in enumerate(decoders):
            m.d.comb += [decoder.code.eq(slot.code[j]), decoder.wtype.eq(slot.wtype[j]),
                         decoder.selector.eq(slot.selector[j]), decoder.term_index.eq(term_index)]
        for i in range(rows):
            for j in range(cols):
                pe = pes[i][j]
                below = pes[i + 1][j] if i + 1 < rows else None
                m.d.comb += [
                    pe.a.eq(slot.a[i]), pe.terms.eq(decoders[j].terms),
                    pe.shift.eq(decoders[j].shift),
                    pe.step.eq(busy), pe.fresh.eq(fresh), pe.group_end.eq(group_end),
                    pe.dq_step.eq(dequant != 0), pe.dq_last.eq(dequant == 1),
                    pe.scale_bit.eq(scales[j][-1]), pe.drain.eq(drain),
                    pe.raw_in.eq(below.c_raw if below else 0),
                    pe.scaled_in.eq(below.c_scaled if below else 0),
                ]
        for j in range(cols):
            m.d.comb += [self.o_stream.payload.c_raw[j].eq(pes[0][j].c_raw),
                         self.o_stream.payload.c_scaled[j].eq(pes[0][j].c_scaled)]

        incoming_terms = slot_terms(m, config, self.i_stream.payload.wtype)
        with m.If(fire):
            m.d.sync += [slot.eq(self.i_stream.payload), busy.eq(1), term_index.eq(0),
                         final_term.eq(incoming_terms - 1)]
        with m.Elif(last_term):
            m.d.sync += busy.eq(0)
        with m.Elif(busy):
            m.d.sync += term_index.eq(term_index + 1)
        with m.If(busy):
            m.d.sync += fresh.eq(group_end)
        # The dequantiser of a group runs in the 8 cycles after its last term; the scale codes
        # shift out MSB first.
        with m.If(group_end):
            m.d.sync += dequant.eq(DEQUANT_CYCLES)
            m.d.sync += [scale.eq(slot.scale[j]) for j, scale in enumerate(scales)]
        with m.Elif(dequant != 0):
            m.d.sync += dequant.eq(dequant - 1)
            m.d.sync += [scale.eq(scale << 1) for scale in scales]

        drain_fsm(m, rows=rows, i_ready=self.i_stream.ready,
                  ready=~busy | ((term_index == final_term) & ~slot.last),
                  tile_end=last_term & slot.last, drain=drain, o_stream=self.o_stream,
                  wait_state="DEQUANT", wait_end=dequant == 1)
        return m
