"""The AXI4-Lite register file: the GEMM descriptor, start/done, status and counters.

Every register is 32 bits at a word offset (:data:`DESCRIPTOR`, :data:`COUNTERS`); the map is
what the manifest documents. ``CTRL`` (0x00, write only): bit 0 starts the GEMM described by the
descriptor registers (ignored while busy), bit 1 clears ``done`` and the interrupt. ``STATUS``
(0x04, read only): bit 0 busy, bit 1 done, bit 2 illegal descriptor (set with done, without any
DRAM access, when the controller cannot run the descriptor). The interrupt line is ``done``.
Counters (read only) are cleared by start and count until done.

One write and one read are served at a time: a write takes its address and data together and
answers OKAY one cycle later; a read answers one cycle after its address. Unmapped addresses read
as 0 and ignore writes.
"""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from peforge.hw.accelerator.axi import AxiLiteSignature

__all__ = ["RegisterFile", "DESCRIPTOR", "COUNTERS", "CTRL", "STATUS", "register_map",
           "ADDR_BITS"]

CTRL, STATUS = 0x00, 0x04
ADDR_BITS = 8

#: Descriptor registers: name, offset, meaning.
DESCRIPTOR = (
    ("a_base", 0x08, "DRAM byte address of A (M x K, row-major), a multiple of the AXI width"),
    ("w_base", 0x0C, "DRAM byte address of W (K x N, row-major), a multiple of the AXI width"),
    ("c_base", 0x10, "DRAM byte address of C (M x N, row-major, 32-bit elements)"),
    ("m", 0x14, "M"), ("k", 0x18, "K"), ("n", 0x1C, "N"),
    ("a_stride", 0x20, "bytes between rows of A (multiple of the AXI width, >= K * elem)"),
    ("w_stride", 0x24, "bytes between rows of W (multiple of the AXI width, >= N * elem)"),
    ("c_stride", 0x28, "bytes between rows of C (multiple of the AXI width, >= N * 4)"),
    ("tm", 0x2C, "buffer tile rows of A and C"), ("tk", 0x30, "buffer tile depth"),
    ("tn", 0x34, "buffer tile columns of W and C"),
    ("order", 0x38, "outer loop order: 0 mn (M outermost), 1 nm; K is innermost"),
    ("a_bits", 0x3C, "A element bits (must equal the array's)"),
    ("w_bits", 0x40, "W element bits (must equal the array's)"),
)

#: Read-only counters: name, offset, meaning.
COUNTERS = (
    ("cycles", 0x50, "cycles from the start write to done"),
    ("busy_cycles", 0x54, "cycles the array spends on tiles: first beat in to last row out"),
    ("dram_read_bytes", 0x58, "bytes of R beats (whole beats)"),
    ("dram_write_bytes", 0x5C, "bytes written (W beats' strobed bytes)"),
    ("input_sram_writes", 0x60, "input scratchpad word writes (one per R beat of A)"),
    ("input_sram_reads", 0x64, "input scratchpad lane-word reads (rows per array beat)"),
    ("weight_sram_writes", 0x68, "weight scratchpad word writes (one per R beat of W)"),
    ("weight_sram_reads", 0x6C, "weight scratchpad row reads (one per array beat)"),
    ("output_sram_reads", 0x70, "output scratchpad word reads (accumulation and write-back)"),
    ("output_sram_writes", 0x74, "output scratchpad word writes (one per result row)"),
)


def register_map() -> list[dict]:
    """The map as the manifest lists it."""
    return ([{"name": "ctrl", "offset": CTRL, "access": "w",
              "meaning": "bit 0 start, bit 1 clear done and interrupt"},
             {"name": "status", "offset": STATUS, "access": "r",
              "meaning": "bit 0 busy, bit 1 done, bit 2 illegal descriptor"}]
            + [{"name": n, "offset": o, "access": "rw", "meaning": d} for n, o, d in DESCRIPTOR]
            + [{"name": n, "offset": o, "access": "r", "meaning": d} for n, o, d in COUNTERS])


class RegisterFile(wiring.Component):
    """AXI4-Lite slave holding the descriptor.

    Ports
    -----
    bus : In(AxiLiteSignature(8))
    <descriptor name> : Out(32)
        Each descriptor register.
    start : Out(1)
        One-cycle pulse on a CTRL write with bit 0 set while not busy.
    clear : Out(1)
        One-cycle pulse on a CTRL write with bit 1 set.
    busy, done, illegal : In(1)
        Status bits.
    <counter name> : In(32)
        Each counter.
    """

    def __init__(self):
        members = {"bus": In(AxiLiteSignature(ADDR_BITS)), "start": Out(1), "clear": Out(1),
                   "busy": In(1), "done": In(1), "illegal": In(1)}
        members.update({name: Out(32) for name, _, _ in DESCRIPTOR})
        members.update({name: In(32) for name, _, _ in COUNTERS})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        write = Signal()
        m.d.comb += [bus.awready.eq(write), bus.wready.eq(write),
                     write.eq(bus.awvalid & bus.wvalid & ~bus.bvalid)]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        with m.If(write):
            m.d.sync += bus.bvalid.eq(1)
            with m.Switch(bus.awaddr):
                with m.Case(CTRL):
                    m.d.comb += [self.start.eq(bus.wdata[0] & ~self.busy),
                                 self.clear.eq(bus.wdata[1])]
                for name, offset, _ in DESCRIPTOR:
                    with m.Case(offset):
                        m.d.sync += getattr(self, name).eq(bus.wdata)

        m.d.comb += bus.arready.eq(~bus.rvalid)
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        with m.If(bus.arvalid & ~bus.rvalid):
            m.d.sync += [bus.rvalid.eq(1), bus.rdata.eq(0)]
            with m.Switch(bus.araddr):
                with m.Case(STATUS):
                    m.d.sync += bus.rdata.eq(self.busy | (self.done << 1) | (self.illegal << 2))
                for name, offset, _ in DESCRIPTOR + COUNTERS:
                    with m.Case(offset):
                        m.d.sync += bus.rdata.eq(getattr(self, name))
        return m
