"""The DRAM behind the accelerator's AXI4 port in simulation: cocotbext-axi's ``AxiRam`` with
its channels paused to give the accelerator's ``dram`` section.

What is modelled, cycle by cycle (:class:`DramShaper`):

- latency: AxiRam answers a read burst's AR with its first R beat two edges later and a write
  burst's last W beat with its B response two edges later; the shaper adds ``latency_cycles``
  to both (:data:`RAM_CYCLES` + latency edges from the AR to the first R beat, from the last W
  beat to B);
- bandwidth: reads and writes share one channel of ``bytes_per_cycle``: while a read burst is
  due or a W beat is offered, a credit grows by that many bytes per cycle (capped at one beat;
  it empties when the channel idles), and each R or W beat spends one whole beat, so ``n``
  beats take ``n * beat / rate`` cycles when that is whole; an ideal DRAM (``inf``) or one at
  least as wide as the bus passes a beat per cycle. R and B are held back by their channels'
  ``pause``; W by the sink's ``full`` (:meth:`DramShaper._hold_w`), because cocotbext-axi's
  ``StreamSink`` reads ``pause`` just after a clock edge while it is awake, a cycle before
  the shaper has decided, which let W beats pass in pairs (one cycle short on an odd count);
- bursts are served in order (one ID); the address channels are never paused, and the RAM
  queues up to :data:`QUEUE_LIMIT` requests and beats per channel.

Not modelled: banks, rows, refresh, read/write turnaround.
"""

import math
from collections import deque
from fractions import Fraction

import cocotb
from cocotb.triggers import FallingEdge

__all__ = ["DramShaper", "QUEUE_LIMIT", "RAM_CYCLES"]

#: Edges AxiRam itself takes from an AR handshake to the first R beat, and from the last W beat
#: to the B response.
RAM_CYCLES = 2

#: Requests and beats each of the RAM's channels holds (AxiRam's default is 2).
QUEUE_LIMIT = 4096


class DramShaper:
    """Shapes ``ram`` (an ``AxiRam`` on ``dut``'s port ``prefix``) to ``bytes_per_cycle`` and
    ``latency_cycles``.

    It runs at every falling edge, when the channels' ``valid`` and ``ready`` are settled, so it
    knows which handshakes the next rising edge ``e`` completes, and it sets the pauses the RAM's
    channels read at that edge: whether a beat may complete at edge ``e + 1``."""

    def __init__(self, dut, ram, prefix: str, beat_bytes: int, bytes_per_cycle: float,
                 latency_cycles: int):
        self.dut, self.ram = dut, ram
        self.beat = beat_bytes
        self.rate = None if math.isinf(bytes_per_cycle) else Fraction(str(bytes_per_cycle))
        self.latency = latency_cycles
        self.credit = Fraction(0)
        self.edge = 0
        self.read_due: deque[int] = deque()
        self.write_due: deque[int] = deque()
        self._signals = {name: getattr(dut, f"{prefix}_{name}") for name in (
            "arvalid", "arready", "rvalid", "rready", "rlast", "wvalid", "wready", "wlast",
            "bvalid", "bready")}
        # AxiRam holds two requests and two beats per channel; a DRAM with latency keeps many
        # bursts in flight, so its queues take as many as the master may issue.
        for channel in (ram.read_if.ar_channel, ram.read_if.r_channel, ram.write_if.aw_channel,
                        ram.write_if.w_channel, ram.write_if.b_channel):
            channel.queue_occupancy_limit = QUEUE_LIMIT
        self._w_hold = True
        w_sink = ram.write_if.w_channel
        w_full = w_sink.full
        w_sink.full = lambda: self._w_hold or w_full()
        cocotb.start_soon(self._run())

    def _hold_w(self, hold: bool) -> None:
        """Hold the W channel back at the next edge (the sink's ``full``, which it reads at the
        edge itself) and wake the sink when that changes, as a ``pause`` change would."""
        if hold != self._w_hold:
            self._w_hold = hold
            self.ram.write_if.w_channel.wake_event.set()

    def _fires(self, valid: str, ready: str) -> bool:
        return bool(self._signals[valid].value) and bool(self._signals[ready].value)

    async def _run(self):
        while True:
            await FallingEdge(self.dut.clk)
            self.edge += 1
            edge = self.edge
            if self._fires("arvalid", "arready"):
                self.read_due.append(edge + RAM_CYCLES + self.latency)
            r_beat = self._fires("rvalid", "rready")
            w_beat = self._fires("wvalid", "wready")
            if r_beat and self._signals["rlast"].value:
                self.read_due.popleft()
            if w_beat and self._signals["wlast"].value:
                self.write_due.append(edge + RAM_CYCLES + self.latency)
            if self._fires("bvalid", "bready"):
                self.write_due.popleft()
            read_due = bool(self.read_due) and self.read_due[0] <= edge + 1
            write_due = bool(self.write_due) and self.write_due[0] <= edge + 1
            # The channel works from the edge a read burst is due, or while W beats are offered.
            busy = (bool(self.read_due) and self.read_due[0] <= edge) \
                or bool(self._signals["wvalid"].value)
            if self.rate is not None:
                gained = min(Fraction(self.beat), self.credit + self.rate) if busy else 0
                self.credit = max(Fraction(0), gained - self.beat * (r_beat + w_beat))
            flowing = self.rate is None or min(self.beat, self.credit + self.rate) >= self.beat
            self.ram.read_if.r_channel.pause = not (flowing and read_due)
            self._hold_w(not flowing)
            self.ram.write_if.b_channel.pause = not write_due
