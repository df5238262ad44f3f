"""The DRAM behind the accelerator's AXI4 port in simulation: cocotbext-axi's ``AxiRam`` with
its channels paused to give the accelerator's ``dram`` section.

What is modelled, cycle by cycle (one shaper coroutine samples the handshakes at every rising
edge and sets the RAM's channel pauses for the next cycle):

- latency: the beats of a read burst may leave ``latency_cycles`` cycles after its AR handshake
  at the earliest; a write burst's B response leaves ``latency_cycles`` cycles after its last W
  beat at the earliest (on top of AxiRam's own pipeline, a few cycles);
- bandwidth: reads and writes share one channel of ``bytes_per_cycle``: a credit grows by that
  many bytes per cycle (capped at one beat) and each R or W beat spends one whole beat's bytes,
  so with a rate below the bus width a beat passes every ``beat / rate`` cycles; an ideal DRAM
  (``inf``) or one at least as wide as the bus passes a beat per cycle;
- bursts are served in order (one ID); the address channels are never paused.

Not modelled: banks, rows, refresh, read/write turnaround.
"""

import math
from collections import deque
from fractions import Fraction

import cocotb
from cocotb.triggers import RisingEdge

__all__ = ["DramShaper"]


class DramShaper:
    """Shapes ``ram`` (an ``AxiRam`` on ``dut``'s port ``prefix``) to ``bytes_per_cycle`` and
    ``latency_cycles``."""

    def __init__(self, dut, ram, prefix: str, beat_bytes: int, bytes_per_cycle: float,
                 latency_cycles: int):
        self.dut, self.ram, self.prefix = dut, ram, prefix
        self.beat = beat_bytes
        self.rate = None if math.isinf(bytes_per_cycle) else Fraction(str(bytes_per_cycle))
        self.latency = latency_cycles
        self.credit = Fraction(beat_bytes)
        self.cycle = 0
        self.read_due: deque[int] = deque()
        self.write_due: deque[int] = deque()
        self._signals = {name: getattr(dut, f"{prefix}_{name}") for name in (
            "arvalid", "arready", "rvalid", "rready", "rlast", "wvalid", "wready", "wlast",
            "bvalid", "bready")}
        self._apply()
        cocotb.start_soon(self._run())

    def _fired(self, valid: str, ready: str) -> bool:
        return bool(self._signals[valid].value) and bool(self._signals[ready].value)

    async def _run(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1
            if self._fired("arvalid", "arready"):
                self.read_due.append(self.cycle + self.latency)
            r_beat = self._fired("rvalid", "rready")
            w_beat = self._fired("wvalid", "wready")
            if r_beat and self._signals["rlast"].value:
                self.read_due.popleft()
            if w_beat and self._signals["wlast"].value:
                self.write_due.append(self.cycle + self.latency)
            if self._fired("bvalid", "bready"):
                self.write_due.popleft()
            if self.rate is not None:
                self.credit = min(Fraction(self.beat),
                                  self.credit + self.rate - self.beat * (r_beat + w_beat))
            self._apply()

    def _apply(self):
        flowing = self.rate is None or self.credit >= self.beat
        read_ready = bool(self.read_due) and self.read_due[0] <= self.cycle + 1
        write_ready = bool(self.write_due) and self.write_due[0] <= self.cycle + 1
        self.ram.read_if.r_channel.pause = not (flowing and read_ready)
        self.ram.write_if.w_channel.pause = not flowing
        self.ram.write_if.b_channel.pause = not write_ready
