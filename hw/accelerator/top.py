"""The accelerator tile: a family's PE array, unchanged, with scratchpads, DMA, controller, an
AXI4-Lite register file and one AXI4 master port.

Ports (Verilog names): ``s_axil__*`` the register interface (:mod:`peforge.hw.accelerator.regs`),
``m_axi__*`` the DRAM port (:mod:`peforge.hw.accelerator.axi`), ``irq`` high while ``done``.
Scratchpads are :class:`amaranth.lib.memory.Memory` instances (one write port each, read ports
of one cycle latency), so synthesis sees memories; their layout is
:mod:`peforge.hw.accelerator.layout`'s.
"""

from amaranth import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from peforge.sim.families import family

from peforge.hw.accelerator.axi import Axi4Signature, AxiLiteSignature
from peforge.hw.accelerator.compute import TileCompute
from peforge.hw.accelerator.controller import Controller
from peforge.hw.accelerator.dma import ADDR_BITS, DmaReader, DmaWriter
from peforge.hw.accelerator.regs import ADDR_BITS as REG_ADDR_BITS, COUNTERS, DESCRIPTOR, \
    RegisterFile

__all__ = ["AcceleratorTile", "TOP_NAME"]

TOP_NAME = "accelerator_tile"


class AcceleratorTile(wiring.Component):
    """The whole accelerator of ``cfg`` (:class:`peforge.hw.accelerator.config.AccelConfig`).

    Ports
    -----
    s_axil : In(AxiLiteSignature(8))
    m_axi : Out(Axi4Signature(32, cfg.axi_data_bits))
    irq : Out(1)
    """

    def __init__(self, cfg, *, array=None, memory=Memory):
        """``array``: the PE array component (default the family's generator of the
        configuration); ``memory``: what builds each scratchpad, called as
        ``memory(shape=, depth=, init=)`` (default :class:`~amaranth.lib.memory.Memory`; the
        area report passes black boxes, :class:`peforge.hw.common.parts.BlackBoxMemory`)."""
        self.cfg, self._memory = cfg, memory
        self._array = array or family(cfg.accel.family).generator(cfg.accel.pe)
        super().__init__({"s_axil": In(AxiLiteSignature(REG_ADDR_BITS)),
                          "m_axi": Out(Axi4Signature(ADDR_BITS, cfg.axi_data_bits)),
                          "irq": Out(1)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.regs = regs = RegisterFile()
        m.submodules.reader = reader = DmaReader(cfg)
        m.submodules.writer = writer = DmaWriter(cfg)
        m.submodules.compute = compute = TileCompute(cfg)
        m.submodules.controller = controller = Controller(cfg, reader, writer, compute)
        m.submodules.array = array = self._array

        wiring.connect(m, wiring.flipped(self.s_axil), regs.bus)
        for name, _, _ in DESCRIPTOR:
            m.d.comb += getattr(controller, name).eq(getattr(regs, name))
        for name, _, _ in COUNTERS:
            m.d.comb += getattr(regs, name).eq(getattr(controller, name))
        m.d.comb += [controller.start.eq(regs.start), controller.clear.eq(regs.clear),
                     regs.busy.eq(controller.busy), regs.done.eq(controller.done),
                     regs.illegal.eq(controller.illegal), self.irq.eq(controller.done)]

        axi = self.m_axi
        for name in ("araddr", "arlen", "arsize", "arburst", "arvalid", "rready"):
            m.d.comb += getattr(axi, name).eq(getattr(reader, name))
        for name in ("arready", "rdata", "rlast", "rvalid"):
            m.d.comb += getattr(reader, name).eq(getattr(axi, name))
        for name in ("awaddr", "awlen", "awsize", "awburst", "awvalid", "wdata", "wstrb",
                     "wlast", "wvalid", "bready"):
            m.d.comb += getattr(axi, name).eq(getattr(writer, name))
        for name in ("awready", "wready", "bvalid"):
            m.d.comb += getattr(writer, name).eq(getattr(axi, name))

        wiring.connect(m, compute.i_stream, array.i_stream)
        wiring.connect(m, array.o_stream, compute.o_stream)
        self._scratchpads(m, reader, writer, compute)
        return m

    def _scratchpads(self, m, reader, writer, compute):
        cfg = self.cfg
        bits = cfg.axi_data_bits
        for lane in range(cfg.rows):
            m.submodules[f"input_lane{lane}"] = memory = self._memory(
                shape=unsigned(bits), depth=cfg.a_lane_words, init=[])
            write, read = memory.write_port(), memory.read_port()
            m.d.comb += [write.addr.eq(reader.a_word), write.data.eq(reader.data),
                         write.en.eq(reader.a_write & (reader.a_lane == lane)),
                         read.addr.eq(compute.a_addr), read.en.eq(compute.a_en),
                         compute.a_data[lane * bits:(lane + 1) * bits].eq(read.data)]
        banks, log_banks = cfg.weight_banks, exact_log2(cfg.weight_banks)
        for bank in range(banks):
            m.submodules[f"weight_bank{bank}"] = memory = self._memory(
                shape=unsigned(bits), depth=cfg.w_words // banks, init=[])
            write, read = memory.write_port(), memory.read_port()
            m.d.comb += [write.addr.eq(reader.w_word >> log_banks), write.data.eq(reader.data),
                         write.en.eq(reader.w_write & ((reader.w_word & (banks - 1)) == bank)),
                         read.addr.eq(compute.w_addr), read.en.eq(compute.w_en),
                         compute.w_data[bank * bits:(bank + 1) * bits].eq(read.data)]
        m.submodules.output = memory = self._memory(shape=unsigned(cfg.cols * cfg.acc_bits),
                                              depth=cfg.c_words, init=[])
        write, accumulate, drain = memory.write_port(), memory.read_port(), memory.read_port()
        m.d.comb += [write.addr.eq(compute.c_waddr), write.data.eq(compute.c_wdata),
                     write.en.eq(compute.c_wen),
                     accumulate.addr.eq(compute.c_raddr), accumulate.en.eq(compute.c_ren),
                     compute.c_rdata.eq(accumulate.data),
                     drain.addr.eq(writer.read_addr), drain.en.eq(writer.read_en),
                     writer.read_data.eq(drain.data)]
