"""The controller: checks a descriptor, then runs its tiled GEMM in the performance model's
schedule (:mod:`peforge.sim.perf.pipeline`).

- DMA, one command at a time, in the order the model's DRAM channel serves them: the loads of
  tile 0, then for each tile ``t`` the loads of tile ``t + 1`` (issued once tile ``t`` has its
  operands, i.e. its first beat entered the array) and then, if ``t`` is a last K step, the
  write-back of its output tile (issued once ``t`` is finished);
- compute: tile ``t`` starts once its loads are done, the feeder is free and (first K step) one
  of the two output slots is free.

A descriptor the hardware cannot run (:func:`peforge.hw.accelerator.layout.descriptor_problems`
lists the same checks) sets ``illegal`` and ``done`` one cycle after start, with no DRAM access.
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from peforge.hw.accelerator.config import C_BYTES
from peforge.hw.accelerator.regs import COUNTERS, DESCRIPTOR
from peforge.hw.accelerator.walker import DIM_BITS, TileWalker

__all__ = ["Controller", "DONE_GAP"]

#: Idle cycles the DMA leaves after each command. A command starts 3 cycles after the event it
#: waits for (a tile's first beat, a tile's last result written, or the previous command's
#: done), and a tile's first beat enters the array 3 cycles after its loads are done; with
#: these 3 more cycles, every DMA command costs the same fixed time beyond its latency and
#: beats, which the model's one-transfer-at-a-time DRAM channel can express as latency.
DONE_GAP = 3


class Controller(wiring.Component):
    """Sequences ``reader``, ``writer`` and ``compute`` (driving their command inputs).

    Ports
    -----
    <descriptor name> : In(32)
        The register file's descriptor.
    start, clear : In(1)
    busy, done, illegal : Out(1)
    <counter name> : Out(32)
    """

    def __init__(self, cfg, reader, writer, compute):
        self.cfg, self.reader, self.writer, self.compute = cfg, reader, writer, compute
        members = {"start": In(1), "clear": In(1), "busy": Out(1), "done": Out(1),
                   "illegal": Out(1)}
        members.update({name: In(32) for name, _, _ in DESCRIPTOR})
        members.update({name: Out(32) for name, _, _ in COUNTERS})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.dma_walker = dma_tiles = TileWalker()
        m.submodules.compute_walker = cpu_tiles = TileWalker()
        for walker in (dma_tiles, cpu_tiles):
            for name in ("m", "k", "n", "tm", "tk", "tn"):
                m.d.comb += getattr(walker, name).eq(getattr(self, name))
            m.d.comb += walker.order.eq(self.order)
        sizes = self._slots(m)
        legal = self._legal(m, sizes)

        running = Signal()
        with m.If(self.clear):
            m.d.sync += [self.done.eq(0), self.illegal.eq(0)]
        m.d.comb += self.busy.eq(running)
        self._counters(m, running)
        reader, writer, compute = self.reader, self.writer, self.compute

        # Tiles loaded, issued to the compute engine, started, finished; output slots.
        loaded, issued, started, finished = (Signal(32, name=name) for name in (
            "loaded", "issued", "started", "finished"))
        out_issued, written = Signal(32), Signal(32)
        m.d.sync += [started.eq(started + compute.started),
                     finished.eq(finished + compute.finished)]

        # Compute: issue tile `issued` when it is loaded and it can take an output slot.
        all_issued = Signal()
        slot_free = ~cpu_tiles.first_k | (out_issued < written + 2)
        issue = Signal()
        m.d.comb += issue.eq(running & ~all_issued & compute.idle & (loaded > issued)
                             & slot_free & ~self.start)
        m.d.comb += [compute.start.eq(issue), compute.sm.eq(cpu_tiles.sm),
                     compute.sk.eq(cpu_tiles.sk), compute.sn.eq(cpu_tiles.sn),
                     compute.first_k.eq(cpu_tiles.first_k),
                     compute.a_base.eq(Mux(cpu_tiles.a_slot, sizes["a_slot"], 0)),
                     compute.w_base.eq(Mux(cpu_tiles.w_slot, sizes["w_slot"], 0)),
                     compute.c_base.eq(Mux(cpu_tiles.c_slot, sizes["c_slot"], 0)),
                     compute.a_row_words.eq(sizes["a_row_words"]),
                     compute.w_row_words.eq(sizes["w_row_words"]),
                     compute.c_groups.eq(sizes["c_groups"])]
        with m.If(issue):
            m.d.sync += [issued.eq(issued + 1), out_issued.eq(out_issued + cpu_tiles.first_k)]
            with m.If(cpu_tiles.last_tile):
                m.d.sync += all_issued.eq(1)
            with m.Else():
                m.d.comb += cpu_tiles.advance.eq(1)

        # Write-back records of issued tiles, taken when they finish.
        record = [("m0", DIM_BITS), ("n0", DIM_BITS), ("sm", DIM_BITS), ("sn", DIM_BITS),
                  ("c_slot", 1), ("last_k", 1)]
        width = sum(bits for _, bits in record)
        m.submodules.records = records = SyncFIFO(width=width, depth=3)
        m.d.comb += [records.w_en.eq(issue), records.r_en.eq(compute.finished),
                     records.w_data.eq(Cat(*(getattr(cpu_tiles, name) for name, _ in record)))]
        done_tile = {name: Signal(bits, name=f"done_{name}") for name, bits in record}
        with m.If(compute.finished):
            m.d.sync += [signal.eq(value) for signal, value in
                         zip(done_tile.values(), _unpack(records.r_data, record))]

        # The DMA's command order.
        tile, last_tile = Signal(32), Signal()
        wb = {name: Signal(bits, name=f"wb_{name}") for name, bits in (
            ("address", 32), ("rows", DIM_BITS), ("beats", DIM_BITS + 1),
            ("last_bytes", DIM_BITS), ("slot_base", 32), ("groups", DIM_BITS))}
        w, ab, log_w = cfg.beat_bytes, cfg.op_bytes, exact_log2(cfg.beat_bytes)
        m.d.comb += [
            reader.load_a.eq(dma_tiles.load_a), reader.load_w.eq(dma_tiles.load_w),
            reader.a_address.eq(self.a_base + dma_tiles.m0 * self.a_stride
                                + dma_tiles.k0 * ab),
            reader.w_address.eq(self.w_base + dma_tiles.k0 * self.w_stride
                                + dma_tiles.n0 * ab),
            reader.a_stride.eq(self.a_stride), reader.w_stride.eq(self.w_stride),
            reader.a_rows.eq(dma_tiles.sm), reader.w_rows.eq(dma_tiles.sk),
            reader.a_beats.eq((dma_tiles.sk * ab + w - 1) >> log_w),
            reader.w_beats.eq((dma_tiles.sn * ab + w - 1) >> log_w),
            reader.a_slot_base.eq(Mux(dma_tiles.a_slot, sizes["a_slot"], 0)),
            reader.w_slot_base.eq(Mux(dma_tiles.w_slot, sizes["w_slot"], 0)),
            reader.a_row_words.eq(sizes["a_row_words"]),
            reader.w_row_words.eq(sizes["w_row_words"]),
            writer.stride.eq(self.c_stride),
            *(getattr(writer, name).eq(signal) for name, signal in wb.items()),
        ]
        # A command is over on the cycle after its last R beat (registered, so that reads and
        # writes take alike from address to done) or on its last B response.
        read_done = Signal()
        m.d.sync += read_done.eq(reader.done)
        with m.If(read_done):
            m.d.sync += loaded.eq(loaded + 1)
        with m.If(writer.done):
            m.d.sync += written.eq(written + 1)
        gap, after_gap = Signal(range(DONE_GAP + 1)), Signal()

        def load_next(index):
            """Tile `index` is the DMA walker's: load tile index + 1 once `index` started."""
            with m.If(dma_tiles.last_tile):
                m.d.sync += last_tile.eq(1)
                m.next = "WB_WAIT"
            with m.Elif(started > index):
                m.d.comb += dma_tiles.advance.eq(1)
                m.next = "LOAD"
            with m.Else():
                m.next = "NEXT"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [self.done.eq(0), self.illegal.eq(0)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(legal):
                    m.d.comb += [dma_tiles.restart.eq(1), cpu_tiles.restart.eq(1)]
                    m.d.sync += [running.eq(1), loaded.eq(0), issued.eq(0), started.eq(0),
                                 finished.eq(0), out_issued.eq(0), written.eq(0), tile.eq(0),
                                 all_issued.eq(0), last_tile.eq(0)]
                    m.next = "LOAD"
                with m.Else():
                    m.d.sync += [self.done.eq(1), self.illegal.eq(1)]
                    m.next = "IDLE"
            with m.State("LOAD"):
                m.d.comb += reader.start.eq(1)
                m.next = "LOADING"
            with m.State("LOADING"):
                with m.If(read_done):
                    m.d.sync += [gap.eq(DONE_GAP), after_gap.eq(loaded != 0)]
                    m.next = "GAP"
            with m.State("GAP"):
                # Idle cycles after each command: a command then starts as long after the one
                # before it finished as after the event it waited for (see DONE_GAP).
                m.d.sync += gap.eq(gap - 1)
                with m.If(gap == 1):
                    with m.If(after_gap):
                        m.next = "WB_WAIT"
                    with m.Elif(dma_tiles.last_tile):
                        # Nothing more to load: the next command is the write-back.
                        m.d.sync += last_tile.eq(1)
                        m.next = "WB_WAIT"
                    with m.Else():
                        m.next = "NEXT"
            with m.State("NEXT"):
                load_next(tile)
            with m.State("WB_WAIT"):
                with m.If(finished > tile):
                    m.d.sync += [
                        wb["address"].eq(self.c_base + done_tile["m0"] * self.c_stride
                                         + done_tile["n0"] * C_BYTES),
                        wb["rows"].eq(done_tile["sm"]),
                        wb["beats"].eq((done_tile["sn"] * C_BYTES + w - 1) >> log_w),
                        wb["last_bytes"].eq(Mux((done_tile["sn"] * C_BYTES)[:log_w] == 0, w,
                                                (done_tile["sn"] * C_BYTES)[:log_w])),
                        wb["slot_base"].eq(Mux(done_tile["c_slot"], sizes["c_slot"], 0)),
                        wb["groups"].eq(sizes["c_groups"])]
                    with m.If(done_tile["last_k"]):
                        m.next = "WRITE"
                    with m.Else():
                        m.d.sync += tile.eq(tile + 1)
                        load_next(tile + 1)
            with m.State("WRITE"):
                m.d.comb += writer.start.eq(1)
                m.next = "WRITING"
            with m.State("WRITING"):
                with m.If(writer.done):
                    with m.If(last_tile):
                        m.d.sync += [running.eq(0), self.done.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [tile.eq(tile + 1), gap.eq(DONE_GAP), after_gap.eq(0)]
                        m.next = "GAP"
        return m

    def _slots(self, m) -> dict:
        """Scratchpad words per row and per slot (:func:`peforge.hw.accelerator.layout.slots`),
        registered while checking."""
        cfg = self.cfg
        log_w, ab = exact_log2(cfg.beat_bytes), cfg.op_bytes
        log_banks, log_rows = exact_log2(cfg.weight_banks), exact_log2(cfg.rows)
        sub_rows = (self.tm[:DIM_BITS] + cfg.rows - 1) >> log_rows
        a_row = (self.tk[:DIM_BITS] * ab + cfg.beat_bytes - 1) >> log_w
        w_row = (((self.tn[:DIM_BITS] * ab + cfg.beat_bytes - 1) >> log_w)
                 + cfg.weight_banks - 1) >> log_banks << log_banks
        groups = (self.tn[:DIM_BITS] + cfg.cols - 1) >> exact_log2(cfg.cols)
        values = {"a_row_words": a_row, "a_slot": sub_rows * a_row, "w_row_words": w_row,
                  "w_slot": self.tk[:DIM_BITS] * w_row, "c_groups": groups,
                  "c_slot": (sub_rows << log_rows) * groups}
        self._slot_values = values
        registers = {name: Signal(32 if "slot" in name else DIM_BITS, name=name)
                     for name in values}
        m.d.sync += [registers[name].eq(value) for name, value in values.items()]
        return registers

    def _legal(self, m, sizes) -> Signal:
        """The descriptor checks of :func:`peforge.hw.accelerator.layout.descriptor_problems`,
        on the registers as they are (combinational)."""
        cfg, values = self.cfg, self._slot_values
        w, ab, bits = cfg.beat_bytes, cfg.op_bytes, cfg.op_bits
        mask = w - 1
        checks = [(getattr(self, name) != 0) & (getattr(self, name)[DIM_BITS:] == 0)
                  for name in ("m", "k", "n", "tm", "tk", "tn")]
        checks += [self.order < 2, self.a_bits == bits, self.w_bits == bits]
        checks += [(getattr(self, name) & mask) == 0
                   for name in ("a_base", "w_base", "c_base", "a_stride", "w_stride",
                                "c_stride")]
        checks += [self.a_stride >= self.k * ab, self.w_stride >= self.n * ab,
                   self.c_stride >= self.n * C_BYTES,
                   (self.tk >= self.k) | (((self.tk * ab) & mask) == 0)]
        tn_ok = ((self.tn * ab) & mask) == 0
        if cfg.weight_banks > 1:
            tn_ok = tn_ok & ((self.tn & (cfg.cols - 1)) == 0)
        checks += [(self.tn >= self.n) | tn_ok,
                   2 * values["a_slot"] <= cfg.a_lane_words,
                   2 * values["w_slot"] <= cfg.w_words,
                   2 * values["c_slot"] <= cfg.c_words]
        legal = Signal()
        m.d.comb += legal.eq(_all(checks))
        return legal

    def _counters(self, m, running):
        cfg, reader, writer, compute = self.cfg, self.reader, self.writer, self.compute
        increments = {
            "cycles": 1, "busy_cycles": compute.busy,
            "dram_read_bytes": Mux(reader.beat, cfg.beat_bytes, 0),
            "dram_write_bytes": writer.beat_bytes,
            "input_sram_writes": reader.a_write,
            "input_sram_reads": Mux(compute.a_en, cfg.rows, 0),
            "weight_sram_writes": reader.w_write, "weight_sram_reads": compute.w_en,
            "output_sram_reads": compute.c_ren + writer.read,
            "output_sram_writes": compute.c_wen,
        }
        with m.If(self.start):
            m.d.sync += [getattr(self, name).eq(0) for name, _, _ in COUNTERS]
        with m.Elif(running):
            m.d.sync += [getattr(self, name).eq(getattr(self, name) + step)
                         for name, step in increments.items()]


def _unpack(bits, record):
    start = 0
    for _, width in record:
        yield bits[start:start + width]
        start += width


def _all(checks):
    result = checks[0]
    for check in checks[1:]:
        result = result & check
    return result
