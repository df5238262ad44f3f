"""Runs buffer tiles on the PE array: feeds it from the scratchpads, accumulates its results.

Feeder: the family driver's beats (:mod:`peforge.hw.systolic.driver`) of a tile ``sm x sk x
sn``, read from the scratchpads one cycle ahead (each read port holds its data while the array
stalls, so beats leave back to back):

- ``os``: ``ceil(sm/rows) x ceil(sn/cols)`` array tiles (rows of blocks outer), each ``sk``
  beats of (A column ``k`` of the rows' block, W row ``k`` of the columns' block), ``last`` on
  the ``sk``-th. Rows and columns beyond the tile's edge carry whatever the slot holds: their
  results are never written back.
- ``ws``: for each block of ``cols`` columns, for each block of ``rows`` K steps (``kb``):
  ``rows`` weight beats (W rows ``kb + rows - 1`` down to ``kb``; rows at or past ``sk`` are
  zero and not read), then ``sm`` beats of A row ``i``'s elements ``kb .. kb + rows - 1`` (one
  word of lane ``i % rows``), ``last`` on the ``sm``-th. ``d`` is zero: the partial sums over
  K add up in the output scratchpad, not through the array. Columns beyond the edge as ``os``.
  With float PEs the A elements of K steps at or past ``sk`` are sent as ``+0`` (their weights
  are zero, and zero times a stale Inf is NaN).

Accumulator: each result row (one per cycle on ``o_stream``) is added to its output word, read
the cycle it arrives and written the next (the first K step writes it as is: ``os`` the tile's
first K step, ``ws`` its first block of ``rows`` K steps of the output tile's first K step);
the add wraps modulo ``2**acc_bits`` with integer PEs and is one fp32 RNE addition with float
PEs. A tile is ``finished`` the cycle its last row is written.
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from peforge.models.numerics.floatmac import ACC_FORMAT

from peforge.hw.common.floatmac import FloatAdder
from peforge.hw.common.verilog import index_shape
from peforge.hw.systolic.top import ValidStream, stream_layouts
from peforge.hw.accelerator.walker import DIM_BITS

__all__ = ["TileCompute"]


class TileCompute(wiring.Component):
    """Feeder and accumulator of one PE array (systolic ``os`` or ``ws``, integer or float PEs).

    Ports
    -----
    start : In(1)
        Take a tile (only while ``idle``): ``sm, sk, sn`` : In(16), ``first_k`` : In(1), slot
        bases ``a_base, w_base, c_base`` : In(32) (words), ``a_row_words, w_row_words,
        c_groups`` : In(16).
    idle : Out(1)
        The feeder has issued every beat of its tile.
    a_addr : Out(32), a_en : Out(1), a_data : In(rows x axi bits)
        Input lanes' read ports (one address for all lanes).
    w_addr : Out(32), w_en : Out(1), w_data : In(banks x axi bits)
        Weight banks' read ports (one address for all banks).
    c_raddr : Out(32), c_ren : Out(1), c_rdata : In(cols x acc bits)
    c_waddr : Out(32), c_wen : Out(1), c_wdata : Out(cols x acc bits)
        Output scratchpad ports for accumulation.
    i_stream : Out(array input stream); o_stream : In(array result stream)
    started, finished : Out(1)
        A tile's first beat was accepted; its last row was written.
    busy : Out(1)
        The array is on a tile this cycle (first beat in to last row out).
    """

    def __init__(self, cfg):
        self.cfg = cfg
        pe = cfg.accel.pe
        self.in_layout, self.out_layout = stream_layouts(pe.rows, pe.cols, pe.dataflow, pe.mac)
        lane_bits = cfg.axi_data_bits
        super().__init__({
            "start": In(1), "sm": In(DIM_BITS), "sk": In(DIM_BITS), "sn": In(DIM_BITS),
            "first_k": In(1), "a_base": In(32), "w_base": In(32), "c_base": In(32),
            "a_row_words": In(DIM_BITS), "w_row_words": In(DIM_BITS), "c_groups": In(DIM_BITS),
            "idle": Out(1),
            "a_addr": Out(32), "a_en": Out(1), "a_data": In(cfg.rows * lane_bits),
            "w_addr": Out(32), "w_en": Out(1), "w_data": In(cfg.weight_banks * lane_bits),
            "c_raddr": Out(32), "c_ren": Out(1), "c_rdata": In(cfg.cols * cfg.acc_bits),
            "c_waddr": Out(32), "c_wen": Out(1), "c_wdata": Out(cfg.cols * cfg.acc_bits),
            "i_stream": Out(stream.Signature(self.in_layout)),
            "o_stream": In(ValidStream(self.out_layout)),
            "started": Out(1), "finished": Out(1), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        if self.cfg.accel.pe.dataflow == "os":
            self._os_feeder(m)
        else:
            self._ws_feeder(m)
        self._busy(m)
        self._accumulator(m)
        return m

    def _os_feeder(self, m):
        cfg = self.cfg
        rows, cols, op_bits = cfg.rows, cfg.cols, cfg.op_bits
        per_word = cfg.beat_bytes // cfg.op_bytes          # A elements per lane word
        banks = cfg.weight_banks
        segments = max(1, cfg.beat_bytes // (cols * cfg.op_bytes))  # W rows of cols per word
        active, pending, first = Signal(), Signal(), Signal()
        si, sj, kk = Signal(DIM_BITS), Signal(DIM_BITS), Signal(DIM_BITS)
        sub_rows, sub_cols, depth = Signal(DIM_BITS), Signal(DIM_BITS), Signal(DIM_BITS)
        a_row_base, w_k_base, w_base, a_row_words, w_row_words = (
            Signal(32, name=name) for name in ("a_row_base", "w_k_base", "w_base_word",
                                               "a_row_words_q", "w_row_words_q"))
        a_sel, w_sel, last, beat_first = (Signal(index_shape(per_word)),
                                          Signal(index_shape(segments)), Signal(), Signal())
        advance = self._handshake(m, active, pending)
        with m.If(self.start):
            m.d.sync += [active.eq(1), first.eq(1), si.eq(0), sj.eq(0), kk.eq(0),
                         sub_rows.eq((self.sm + rows - 1) >> exact_log2(rows)),
                         sub_cols.eq((self.sn + cols - 1) >> exact_log2(cols)),
                         depth.eq(self.sk), a_row_base.eq(self.a_base),
                         w_k_base.eq(self.w_base), w_base.eq(self.w_base),
                         a_row_words.eq(self.a_row_words), w_row_words.eq(self.w_row_words)]
        with m.Elif(advance):
            m.d.sync += [a_sel.eq(kk[:exact_log2(per_word)] if per_word > 1 else 0),
                         w_sel.eq(sj[:exact_log2(segments)] if segments > 1 else 0),
                         last.eq(kk + 1 == depth), beat_first.eq(first), first.eq(0),
                         kk.eq(kk + 1), w_k_base.eq(w_k_base + w_row_words)]
            with m.If(kk + 1 == depth):
                m.d.sync += [kk.eq(0), sj.eq(sj + 1), w_k_base.eq(w_base)]
                with m.If(sj + 1 == sub_cols):
                    m.d.sync += [sj.eq(0), si.eq(si + 1),
                                 a_row_base.eq(a_row_base + a_row_words)]
                    with m.If(si + 1 == sub_rows):
                        m.d.sync += active.eq(0)
        m.d.comb += [self.a_en.eq(advance), self.w_en.eq(advance),
                     self.a_addr.eq(a_row_base + (kk >> exact_log2(per_word))),
                     self.w_addr.eq((w_k_base >> exact_log2(banks))
                                    + (sj >> exact_log2(segments)))]

        lane_bits = cfg.axi_data_bits
        payload = self.i_stream.payload
        for i in range(rows):
            lane = self.a_data[i * lane_bits:(i + 1) * lane_bits]
            m.d.comb += payload.a[i].eq(lane.word_select(a_sel, op_bits))
        row = self._weight_row(w_sel)
        for j in range(cols):
            m.d.comb += payload.b[j].eq(row[j * op_bits:(j + 1) * op_bits])
        m.d.comb += payload.last.eq(last)
        self._beat_first = beat_first

    def _ws_feeder(self, m):
        cfg = self.cfg
        rows, cols, op_bits = cfg.rows, cfg.cols, cfg.op_bits
        log_rows = exact_log2(rows)
        per_word = cfg.beat_bytes // cfg.op_bytes          # A elements per lane word
        chunks = per_word // rows                          # rows-element chunks per lane word
        segments = max(1, cfg.beat_bytes // (cols * cfg.op_bytes))  # W rows of cols per word
        active, pending, first, loading = Signal(), Signal(), Signal(), Signal()
        sj, kb, wr, row = (Signal(DIM_BITS, name=name) for name in ("sj", "kb", "wr", "row"))
        sub_cols, depth, height = (Signal(DIM_BITS, name=name)
                                   for name in ("sub_cols", "depth", "height"))
        a_row_base, a_base, w_block, w_k, w_base, a_row_words, w_row_words = (
            Signal(32, name=name) for name in ("a_row_base", "a_base_word", "w_block", "w_k",
                                               "w_base_word", "a_row_words_q", "w_row_words_q"))
        lane_sel, chunk_sel, w_sel = (Signal(index_shape(rows)), Signal(index_shape(chunks)),
                                      Signal(index_shape(segments)))
        load, zero, last, beat_first = Signal(), Signal(), Signal(), Signal()
        a_kept = Signal(rows, name="a_kept")               # lanes of A inside K (floats)
        advance = self._handshake(m, active, pending)
        w_top = w_row_words << log_rows                    # words of rows W rows
        in_k = kb + wr < depth
        with m.If(self.start):
            m.d.sync += [active.eq(1), first.eq(1), loading.eq(1), sj.eq(0), kb.eq(0),
                         wr.eq(rows - 1), row.eq(0),
                         sub_cols.eq((self.sn + cols - 1) >> exact_log2(cols)),
                         depth.eq(self.sk), height.eq(self.sm),
                         a_row_base.eq(self.a_base), a_base.eq(self.a_base),
                         w_base.eq(self.w_base), w_block.eq(self.w_base),
                         w_k.eq(self.w_base + (self.w_row_words << log_rows)
                                - self.w_row_words),
                         a_row_words.eq(self.a_row_words), w_row_words.eq(self.w_row_words)]
        with m.Elif(advance):
            if cfg.float_pe:
                m.d.sync += a_kept.eq(Cat(*(kb + i < depth for i in range(rows))))
            m.d.sync += [load.eq(loading), zero.eq(~in_k), beat_first.eq(first), first.eq(0),
                         lane_sel.eq(row[:log_rows] if rows > 1 else 0),
                         chunk_sel.eq(kb[log_rows:exact_log2(per_word)] if chunks > 1 else 0),
                         w_sel.eq(sj[:exact_log2(segments)] if segments > 1 else 0),
                         last.eq(~loading & (row + 1 == height))]
            with m.If(loading):
                m.d.sync += [wr.eq(wr - 1), w_k.eq(w_k - w_row_words)]
                with m.If(wr == 0):
                    m.d.sync += loading.eq(0)
            with m.Else():
                m.d.sync += row.eq(row + 1)
                if rows > 1:
                    with m.If(row[:log_rows] == rows - 1):
                        m.d.sync += a_row_base.eq(a_row_base + a_row_words)
                else:
                    m.d.sync += a_row_base.eq(a_row_base + a_row_words)
                with m.If(row + 1 == height):
                    # The array tile is over: the next block of K, or of columns.
                    m.d.sync += [row.eq(0), a_row_base.eq(a_base), loading.eq(1),
                                 wr.eq(rows - 1), kb.eq(kb + rows), w_block.eq(w_block + w_top),
                                 w_k.eq(w_block + w_top + w_top - w_row_words)]
                    with m.If(kb + rows >= depth):
                        m.d.sync += [kb.eq(0), sj.eq(sj + 1), w_block.eq(w_base),
                                     w_k.eq(w_base + w_top - w_row_words)]
                        with m.If(sj + 1 == sub_cols):
                            m.d.sync += active.eq(0)
        m.d.comb += [self.a_en.eq(advance & ~loading), self.w_en.eq(advance & loading & in_k),
                     self.a_addr.eq(a_row_base + (kb >> exact_log2(per_word))),
                     self.w_addr.eq((w_k >> exact_log2(cfg.weight_banks))
                                    + (sj >> exact_log2(segments)))]

        payload = self.i_stream.payload
        lane = self.a_data.word_select(lane_sel, cfg.axi_data_bits)
        chunk = lane.word_select(chunk_sel, rows * op_bits) if chunks > 1 else \
            lane[:rows * op_bits]
        for i in range(rows):
            element = chunk[i * op_bits:(i + 1) * op_bits]
            if cfg.float_pe:        # a zero weight times whatever the slot holds may be NaN
                element = Mux(a_kept[i], element, 0)
            m.d.comb += payload.a[i].eq(element)
        weights = Mux(zero, 0, self._weight_row(w_sel))
        for j in range(cols):
            m.d.comb += [payload.b[j].eq(weights[j * op_bits:(j + 1) * op_bits]),
                         payload.d[j].eq(0)]
        m.d.comb += [payload.load.eq(load), payload.last.eq(last)]
        self._beat_first = beat_first

    def _handshake(self, m, active, pending) -> Signal:
        """``advance``: read the next beat (the one ``pending`` on ``i_stream`` is taken or
        there is none); the feeder is ``idle`` once ``active`` falls."""
        advance = Signal()
        m.d.comb += [advance.eq(active & (~pending | self.i_stream.ready)),
                     self.idle.eq(~active), self.i_stream.valid.eq(pending)]
        with m.If(advance):
            m.d.sync += pending.eq(1)
        with m.Elif(self.i_stream.ready):
            m.d.sync += pending.eq(0)
        return advance

    def _weight_row(self, w_sel):
        """The ``cols`` weights of the row read from the weight banks (segment ``w_sel`` of
        the word when a word holds several)."""
        width = self.cfg.cols * self.cfg.op_bits
        if self.w_data.shape().width > width:
            return self.w_data.word_select(w_sel, width)
        return self.w_data[:width]

    def _busy(self, m):
        # Busy from a tile's first beat accepted to its last result row (inclusive).
        on_tile = Signal()
        fire = self.i_stream.valid & self.i_stream.ready
        m.d.comb += self.started.eq(fire & self._beat_first)
        self._last_row = Signal()
        with m.If(self.started):
            m.d.sync += on_tile.eq(1)
        with m.Elif(self._last_row):
            m.d.sync += on_tile.eq(0)
        m.d.comb += self.busy.eq(on_tile | self.started)

    def _accumulator(self, m):
        cfg = self.cfg
        rows, cols, acc_bits = cfg.rows, cfg.cols, cfg.acc_bits
        os = cfg.accel.pe.dataflow == "os"
        # Result rows come as `height` rows per array tile, `mids` array tiles per `outers`:
        # os: rows rows, column blocks, row blocks; ws: sm rows, K blocks, column blocks.
        sub_rows = (self.sm + rows - 1) >> exact_log2(rows)
        sub_cols = (self.sn + cols - 1) >> exact_log2(cols)
        k_blocks = (self.sk + rows - 1) >> exact_log2(rows)
        # The result side's tile, and the one the feeder took after it (if any).
        fields = (("height", DIM_BITS), ("mids", DIM_BITS), ("outers", DIM_BITS),
                  ("first_k", 1), ("c_base", 32), ("c_groups", DIM_BITS))
        current = {name: Signal(width, name=f"out_{name}") for name, width in fields}
        queued = {name: Signal(width, name=f"queued_{name}") for name, width in fields}
        incoming = dict(zip((name for name, _ in fields), (
            rows if os else self.sm, sub_cols if os else k_blocks, sub_rows if os else sub_cols,
            self.first_k, self.c_base, self.c_groups)))
        out_active, queue_full = Signal(), Signal()
        q, mid, outer = Signal(DIM_BITS), Signal(DIM_BITS), Signal(DIM_BITS)
        si_base, q_off = Signal(32), Signal(32)
        row_in = self.o_stream.valid
        tile_end = row_in & (q + 1 == current["height"]) & (mid + 1 == current["mids"]) \
            & (outer + 1 == current["outers"])
        m.d.comb += self._last_row.eq(tile_end)

        def take(record):
            m.d.sync += [current[name].eq(record[name]) for name, _ in fields]
            m.d.sync += [q.eq(0), mid.eq(0), outer.eq(0), si_base.eq(record["c_base"]),
                         q_off.eq(0), out_active.eq(1)]

        with m.If(row_in):
            m.d.sync += [q.eq(q + 1), q_off.eq(q_off + current["c_groups"])]
            with m.If(q + 1 == current["height"]):
                m.d.sync += [q.eq(0), q_off.eq(0), mid.eq(mid + 1)]
                with m.If(mid + 1 == current["mids"]):
                    m.d.sync += [mid.eq(0), outer.eq(outer + 1)]
                    if os:
                        m.d.sync += si_base.eq(si_base + (current["c_groups"]
                                                          << exact_log2(rows)))
        with m.If(tile_end):
            with m.If(queue_full):
                take(queued)
                m.d.sync += queue_full.eq(self.start)
            with m.Elif(self.start):
                take(incoming)
            with m.Else():
                m.d.sync += out_active.eq(0)
        with m.Elif(self.start):
            with m.If(out_active):
                m.d.sync += queue_full.eq(1)
            with m.Else():
                take(incoming)
        with m.If(self.start & (out_active & ~tile_end | queue_full & tile_end)):
            m.d.sync += [queued[name].eq(incoming[name]) for name, _ in fields]


        # Read the row's word as it arrives, add and write it the next cycle.
        stage_valid, stage_first, stage_last = Signal(), Signal(), Signal()
        stage_addr = Signal(32)
        stage_data = Signal(cols * acc_bits)
        address = si_base + q_off + (mid if os else outer)
        first = current["first_k"] if os else current["first_k"] & (mid == 0)
        m.d.comb += [self.c_raddr.eq(address), self.c_ren.eq(row_in & ~first)]
        m.d.sync += [stage_valid.eq(row_in), stage_first.eq(first),
                     stage_last.eq(tile_end), stage_addr.eq(address),
                     stage_data.eq(Cat(*self.o_stream.payload.data))]
        sums = Cat(*(self._add(m, j, self.c_rdata[j * acc_bits:(j + 1) * acc_bits],
                               stage_data[j * acc_bits:(j + 1) * acc_bits])
                     for j in range(cols)))
        m.d.comb += [self.c_wen.eq(stage_valid), self.c_waddr.eq(stage_addr),
                     self.c_wdata.eq(Mux(stage_first, stage_data, sums)),
                     self.finished.eq(stage_valid & stage_last)]

    def _add(self, m, column: int, old, new):
        """``old + new`` of one accumulator: modulo ``2**acc_bits`` (integer PEs), or one fp32
        RNE addition (float PEs: an adder ``add<column>``, combinational)."""
        if not self.cfg.float_pe:
            return (old + new)[:len(old)]
        adder = m.submodules[f"add{column}"] = FloatAdder(ACC_FORMAT)
        m.d.comb += [adder.a.eq(old), adder.b.eq(new)]
        return adder.s
