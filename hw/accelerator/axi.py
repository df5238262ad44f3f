"""AXI4 and AXI4-Lite port signatures, from the master's side.

Member names are AXI's (``awaddr``, ``wstrb``, ...), so a Verilog top with a port ``m_axi`` has
ports ``m_axi__awaddr`` ... that cocotbext-axi finds with the prefix ``m_axi_``. IDs are one bit
and always 0 (responses come back in order); no user signals, locks, caches or QoS.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Axi4Signature", "AxiLiteSignature", "BURST_INCR", "MAX_BURST_BEATS", "BOUNDARY"]

#: AxBURST of an incrementing burst.
BURST_INCR = 1
#: AXI4 INCR bursts carry at most 256 beats and never cross a 4 KiB boundary.
MAX_BURST_BEATS = 256
BOUNDARY = 4096


class Axi4Signature(wiring.Signature):
    """An AXI4 master port: ``addr_bits`` addresses, ``data_bits`` data (a power of two)."""

    def __init__(self, addr_bits: int, data_bits: int):
        strb = data_bits // 8
        super().__init__({
            "awid": Out(1), "awaddr": Out(addr_bits), "awlen": Out(8), "awsize": Out(3), "awburst": Out(2),
            "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_bits), "wstrb": Out(strb), "wlast": Out(1), "wvalid": Out(1),
            "wready": In(1),
            "bid": In(1), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "arid": Out(1), "araddr": Out(addr_bits), "arlen": Out(8), "arsize": Out(3), "arburst": Out(2),
            "arvalid": Out(1), "arready": In(1),
            "rid": In(1), "rdata": In(data_bits), "rresp": In(2), "rlast": In(1), "rvalid": In(1),
            "rready": Out(1),
        })


class AxiLiteSignature(wiring.Signature):
    """An AXI4-Lite master port of 32-bit data and ``addr_bits`` addresses."""

    def __init__(self, addr_bits: int):
        super().__init__({
            "awid": Out(1), "awaddr": Out(addr_bits), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(32), "wstrb": Out(4), "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_bits), "arvalid": Out(1), "arready": In(1),
            "rdata": In(32), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })
