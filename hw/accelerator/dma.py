"""The DMA engine: A and W blocks from DRAM into the scratchpads, output tiles back.

Each command is a set of rows (row address, beats per row; rows ``stride`` bytes apart). The
address side issues one INCR burst per cycle while fewer than ``max_outstanding`` are in flight,
each as long as the row allows, at most 256 beats and never across a 4 KiB boundary; data comes
back in order (one ID), so the data side walks the same rows beat by beat. A command is done on
its last R beat (reads) or its last B response (writes); ``done`` pulses that cycle.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from peforge.hw.accelerator.axi import BOUNDARY, BURST_INCR, MAX_BURST_BEATS
from peforge.hw.accelerator.walker import DIM_BITS
from peforge.hw.common.verilog import index_shape

__all__ = ["RowBursts", "DmaReader", "DmaWriter"]

ADDR_BITS = 32


class RowBursts:
    """The address side of a command: rows of ``beats`` beats from ``address``, ``stride`` apart,
    cut into bursts. Call :meth:`begin` (comb, in the cycle a command starts) and :meth:`fire`
    (the burst was accepted)."""

    def __init__(self, m: Module, beat_bytes: int, name: str):
        self.m, self.log_beat = m, exact_log2(beat_bytes)
        self.active = Signal(name=f"{name}_active")
        self.address = Signal(ADDR_BITS, name=f"{name}_address")
        self.row_address = Signal(ADDR_BITS, name=f"{name}_row_address")
        self.left = Signal(DIM_BITS + 1, name=f"{name}_left")
        self.row = Signal(DIM_BITS, name=f"{name}_row")
        self.rows = Signal(DIM_BITS, name=f"{name}_rows")
        self.beats = Signal(DIM_BITS + 1, name=f"{name}_beats")
        self.stride = Signal(ADDR_BITS, name=f"{name}_stride")
        to_boundary = (BOUNDARY - self.address[:exact_log2(BOUNDARY)]) >> self.log_beat
        limit = Mux(to_boundary < MAX_BURST_BEATS, to_boundary, MAX_BURST_BEATS)
        self.length = Signal(range(MAX_BURST_BEATS + 1), name=f"{name}_length")
        m.d.comb += self.length.eq(Mux(self.left < limit, self.left, limit))

    def begin(self, address, rows, beats, stride):
        self.m.d.sync += [self.active.eq(1), self.address.eq(address),
                          self.row_address.eq(address), self.left.eq(beats), self.row.eq(0),
                          self.rows.eq(rows), self.beats.eq(beats), self.stride.eq(stride)]

    def fire(self):
        m = self.m
        with m.If(self.left == self.length):
            next_row = self.row_address + self.stride
            m.d.sync += [self.row.eq(self.row + 1), self.row_address.eq(next_row),
                         self.address.eq(next_row), self.left.eq(self.beats)]
            with m.If(self.row + 1 == self.rows):
                m.d.sync += self.active.eq(0)
        with m.Else():
            m.d.sync += [self.address.eq(self.address + (self.length << self.log_beat)),
                         self.left.eq(self.left - self.length)]


class DmaReader(wiring.Component):
    """Loads a tile's A block (if ``load_a``) then its W block (if ``load_w``).

    Ports
    -----
    start : In(1)
        Begin a command with the inputs below (held until ``done``).
    a_address, w_address : In(32)
        DRAM address of the blocks' first rows; ``a_stride, w_stride`` : In(32).
    a_rows, a_beats, w_rows, w_beats : In(16)
        Rows of each block and AXI beats per row.
    a_slot_base, w_slot_base : In(32)
        First scratchpad word of each block's slot; ``a_row_words`` : In(16), and
        ``w_row_words`` : In(16) the words from one W row to the next.
    axi : the AR and R members of an AXI4 master (``ar*``, ``r*``).
    a_write, w_write : Out(1); a_lane : Out(16); a_word, w_word : Out(32); data : Out(axi bits)
        Scratchpad writes: word ``a_word`` of input lane ``a_lane``, word ``w_word`` of the weight
        scratchpad.
    beat : Out(1)
        An R beat arrived (for the byte counter).
    done : Out(1)
        The command's last beat arrived.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        bits = cfg.axi_data_bits
        super().__init__({
            "start": In(1), "load_a": In(1), "load_w": In(1),
            "a_address": In(ADDR_BITS), "w_address": In(ADDR_BITS),
            "a_stride": In(ADDR_BITS), "w_stride": In(ADDR_BITS),
            "a_rows": In(DIM_BITS), "a_beats": In(DIM_BITS + 1),
            "w_rows": In(DIM_BITS), "w_beats": In(DIM_BITS + 1),
            "a_slot_base": In(32), "w_slot_base": In(32),
            "a_row_words": In(DIM_BITS), "w_row_words": In(DIM_BITS),
            "araddr": Out(ADDR_BITS), "arlen": Out(8), "arsize": Out(3), "arburst": Out(2),
            "arvalid": Out(1), "arready": In(1),
            "rdata": In(bits), "rlast": In(1), "rvalid": In(1), "rready": Out(1),
            "a_write": Out(1), "w_write": Out(1), "a_lane": Out(DIM_BITS), "a_word": Out(32),
            "w_word": Out(32), "data": Out(bits), "beat": Out(1), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        bursts = RowBursts(m, cfg.beat_bytes, "ar")
        # The address side: A rows, then W rows.
        ar_on_w = Signal()
        outstanding = Signal(range(cfg.max_outstanding + 1))
        ar_fire, r_fire = Signal(), Signal()
        m.d.comb += [self.arvalid.eq(bursts.active & (outstanding < cfg.max_outstanding)),
                     self.araddr.eq(bursts.address), self.arlen.eq(bursts.length - 1),
                     self.arsize.eq(exact_log2(cfg.beat_bytes)), self.arburst.eq(BURST_INCR),
                     ar_fire.eq(self.arvalid & self.arready),
                     r_fire.eq(self.rvalid & self.rready)]
        m.d.sync += outstanding.eq(outstanding + ar_fire - (r_fire & self.rlast))
        with m.If(self.start):
            with m.If(self.load_a):
                bursts.begin(self.a_address, self.a_rows, self.a_beats, self.a_stride)
                m.d.sync += ar_on_w.eq(0)
            with m.Else():
                bursts.begin(self.w_address, self.w_rows, self.w_beats, self.w_stride)
                m.d.sync += ar_on_w.eq(1)
        with m.Elif(ar_fire):
            bursts.fire()
            with m.If((bursts.left == bursts.length) & (bursts.row + 1 == bursts.rows)
                      & ~ar_on_w & self.load_w):
                bursts.begin(self.w_address, self.w_rows, self.w_beats, self.w_stride)
                m.d.sync += ar_on_w.eq(1)

        # The data side walks the same rows: (phase, row, word) and the row's first word.
        r_active, r_on_w = Signal(), Signal()
        r_row = Signal(DIM_BITS)
        r_word = Signal(DIM_BITS + 1)
        r_base = Signal(32)
        last_word = r_word + 1 == Mux(r_on_w, self.w_beats, self.a_beats)
        last_row = r_row + 1 == Mux(r_on_w, self.w_rows, self.a_rows)
        lane = Signal(DIM_BITS)
        m.d.comb += [self.rready.eq(1), self.data.eq(self.rdata), self.beat.eq(r_fire),
                     lane.eq(r_row & (cfg.rows - 1)), self.a_lane.eq(lane),
                     self.a_word.eq(r_base + r_word), self.w_word.eq(r_base + r_word),
                     self.a_write.eq(r_fire & ~r_on_w), self.w_write.eq(r_fire & r_on_w)]
        with m.If(self.start):
            m.d.sync += [r_active.eq(1), r_on_w.eq(~self.load_a), r_row.eq(0), r_word.eq(0),
                         r_base.eq(Mux(self.load_a, self.a_slot_base, self.w_slot_base))]
        with m.Elif(r_fire & r_active):
            m.d.sync += r_word.eq(r_word + 1)
            with m.If(last_word):
                m.d.sync += [r_word.eq(0), r_row.eq(r_row + 1)]
                with m.If(r_on_w):
                    m.d.sync += r_base.eq(r_base + self.w_row_words)
                with m.Elif(lane == cfg.rows - 1):
                    m.d.sync += r_base.eq(r_base + self.a_row_words)
                with m.If(last_row):
                    with m.If(~r_on_w & self.load_w):
                        m.d.sync += [r_on_w.eq(1), r_row.eq(0), r_base.eq(self.w_slot_base)]
                    with m.Else():
                        m.d.sync += r_active.eq(0)
                        m.d.comb += self.done.eq(1)
        return m


class DmaWriter(wiring.Component):
    """Writes an output tile (``rows`` rows of ``beats`` beats, the last ``last_bytes`` wide)
    from the output scratchpad to DRAM.

    Ports
    -----
    start : In(1); address, stride : In(32); rows, beats : In(16); last_bytes : In(16)
    slot_base : In(32); groups : In(16)
        First output word of the tile's slot; words per tile row.
    axi : the AW, W and B members of an AXI4 master.
    read_addr : Out(32); read_en : Out(1); read_data : In(cols * acc_bits)
        The output scratchpad's write-back read port (one cycle latency; holds when not enabled).
    beat_bytes : Out(16)
        Strobed bytes of a W beat accepted this cycle (0: none).
    read : Out(1)
        An output word read this cycle.
    done : Out(1)
        The last B response arrived.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        bits = cfg.axi_data_bits
        super().__init__({
            "start": In(1), "address": In(ADDR_BITS), "stride": In(ADDR_BITS),
            "rows": In(DIM_BITS), "beats": In(DIM_BITS + 1), "last_bytes": In(DIM_BITS),
            "slot_base": In(32), "groups": In(DIM_BITS),
            "awaddr": Out(ADDR_BITS), "awlen": Out(8), "awsize": Out(3), "awburst": Out(2),
            "awvalid": Out(1), "awready": In(1),
            "wdata": Out(bits), "wstrb": Out(bits // 8), "wlast": Out(1), "wvalid": Out(1),
            "wready": In(1), "bvalid": In(1), "bready": Out(1),
            "read_addr": Out(32), "read_en": Out(1),
            "read_data": In(cfg.cols * cfg.acc_bits),
            "beat_bytes": Out(DIM_BITS), "read": Out(1), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        beat, parts = cfg.beat_bytes, cfg.c_parts
        log_parts = exact_log2(parts)
        aw = RowBursts(m, beat, "aw")
        in_flight = Signal(range(cfg.max_outstanding + 1))
        aw_fire, w_fire, b_fire = Signal(), Signal(), Signal()
        m.d.comb += [self.awvalid.eq(aw.active & (in_flight < cfg.max_outstanding)),
                     self.awaddr.eq(aw.address), self.awlen.eq(aw.length - 1),
                     self.awsize.eq(exact_log2(beat)), self.awburst.eq(BURST_INCR),
                     aw_fire.eq(self.awvalid & self.awready),
                     w_fire.eq(self.wvalid & self.wready), self.bready.eq(1),
                     b_fire.eq(self.bvalid)]
        m.d.sync += in_flight.eq(in_flight + aw_fire - b_fire)
        with m.If(self.start):
            aw.begin(self.address, self.rows, self.beats, self.stride)
        with m.Elif(aw_fire):
            aw.fire()

        # The data side: the same rows and bursts, beat by beat; each beat re-reads its word.
        wb = RowBursts(m, beat, "w")
        w_beat = Signal(DIM_BITS + 1)
        burst_left = Signal(range(MAX_BURST_BEATS + 1))
        row_base = Signal(32)
        pending = Signal()
        part, strobe_bytes, last = Signal(index_shape(parts)), Signal(range(beat + 1)), Signal()
        advance = Signal()
        m.d.comb += advance.eq(wb.active & (~pending | self.wready))
        burst_end = Mux(burst_left == 0, wb.length, burst_left) == 1
        last_beat = w_beat + 1 == self.beats
        with m.If(self.start):
            wb.begin(self.address, self.rows, self.beats, self.stride)
            m.d.sync += [w_beat.eq(0), burst_left.eq(0), row_base.eq(self.slot_base)]
        with m.Elif(advance):
            m.d.sync += [part.eq(w_beat[:log_parts] if log_parts else 0),
                         strobe_bytes.eq(Mux(last_beat, self.last_bytes, beat)),
                         last.eq(burst_end), w_beat.eq(w_beat + 1),
                         burst_left.eq(Mux(burst_left == 0, wb.length, burst_left) - 1)]
            with m.If(burst_end):
                wb.fire()
            with m.If(last_beat):
                m.d.sync += [w_beat.eq(0), row_base.eq(row_base + self.groups)]
        with m.If(advance):
            m.d.sync += pending.eq(1)
        with m.Elif(self.wready):
            m.d.sync += pending.eq(0)
        m.d.comb += [self.read_en.eq(advance), self.read.eq(advance),
                     self.read_addr.eq(row_base + (w_beat >> log_parts))]

        # A beat: 32-bit sign-extended accumulators of part `part` of the word.
        lanes = [self.read_data[j * cfg.acc_bits:(j + 1) * cfg.acc_bits] for j in range(cfg.cols)]
        wide = Cat(*(_sign_extend(lane, 32) for lane in lanes))
        lane_bits = beat * 8
        m.d.comb += [self.wvalid.eq(pending), self.wlast.eq(last),
                     self.wdata.eq(wide.word_select(part, lane_bits)),
                     self.wstrb.eq((Const(1, beat + 1) << strobe_bytes) - 1),
                     self.beat_bytes.eq(Mux(w_fire, strobe_bytes, 0))]

        # Done when every burst was issued, every beat sent and every response back.
        m.d.comb += self.done.eq(~self.start & ~aw.active & ~wb.active & ~pending & b_fire
                                 & (in_flight == 1) & ~aw_fire)
        return m


def _sign_extend(value, width: int):
    """``value`` (at most ``width`` bits) sign-extended to ``width`` bits."""
    if len(value) == width:
        return value
    return Cat(value, value[-1].replicate(width - len(value)))
