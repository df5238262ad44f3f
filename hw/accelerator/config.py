"""The generated accelerator's configuration: an :class:`~peforge.sim.perf.accelerator.Accelerator`
plus the AXI port, checked for what the RTL can build.

What the RTL supports today (each checked here, the error names the field):

- family ``systolic``, dataflow ``os`` or ``ws``, rows and cols powers of two, with integer PEs
  of 8 or 16 bits and an accumulator of at most 32 bits (C is written to DRAM as 32-bit
  two's-complement words, sign-extended), or float PEs (``pe=lmul`` or ``fp``, e4m3/e5m2 one
  byte, fp16/bf16 two) accumulating in fp32 (C as fp32 patterns; the partial sums of K blocks
  are added in the output scratchpad, one fp32 RNE addition each:
  :func:`peforge.sim.accel.golden.tile_golden`);
- ``axi_data_bits``: a power of two >= 32, at most ``cols * 32`` (one output row group of the
  array fills at least one AXI beat); ``ws`` also needs at least ``rows * bits`` (a beat's
  ``rows`` A elements are in one input lane word);
- scratchpads of the accelerator's SRAM sizes that hold a double-buffered tile of the array
  (``rows x 1 x cols``) in the layout of :mod:`peforge.hw.accelerator.layout`.

Scratchpad words (:mod:`peforge.hw.accelerator.layout`): the input scratchpad is ``rows`` lanes of
AXI-wide words, the weight scratchpad ``weight_banks`` banks of AXI-wide words, the output
(accumulator) scratchpad one memory of ``cols`` accumulators per word.
"""

from dataclasses import dataclass
from fractions import Fraction

from peforge.sim.perf.accelerator import Accelerator
from peforge.sim.perf.scratchpads import ScratchpadWords

__all__ = ["AccelConfig", "C_BYTES"]

#: Bytes of one C element in DRAM: the accumulator, sign-extended to 32 bits.
C_BYTES = 4


def _power_of_two(value: int) -> bool:
    return value >= 1 and value & (value - 1) == 0


@dataclass(frozen=True)
class AccelConfig:
    """The accelerator ``accel`` with an AXI4 master of ``axi_data_bits`` and at most
    ``max_outstanding`` read (and write) bursts in flight; addresses are 32 bits."""

    accel: Accelerator
    axi_data_bits: int = 64
    max_outstanding: int = 64

    def __post_init__(self):
        accel, pe = self.accel, self.accel.pe
        if accel.family != "systolic":
            raise ValueError(f"family: the accelerator RTL supports systolic only, got "
                             f"{accel.family!r}")
        if pe.dataflow not in ("os", "ws"):
            raise ValueError(f"pe.dataflow: the accelerator RTL supports os and ws only, got "
                             f"{pe.dataflow!r}")
        if pe.pe == "int" and pe.bits not in (8, 16):
            raise ValueError(f"pe.bits: the accelerator RTL takes integer PEs of 8 or 16 bits, "
                             f"got {pe.bits!r}")
        if self.acc_bits > 32:
            raise ValueError(f"pe.acc_bits: at most 32 (C is stored as 32-bit words), got "
                             f"{self.acc_bits}")
        for name in ("rows", "cols"):
            if not _power_of_two(getattr(pe, name)):
                raise ValueError(f"pe.{name}: the accelerator RTL needs a power of two, got "
                                 f"{getattr(pe, name)}")
        bits = self.axi_data_bits
        if isinstance(bits, bool) or not isinstance(bits, int) or bits < 32 \
                or not _power_of_two(bits):
            raise ValueError(f"axi_data_bits: must be a power of two >= 32, got {bits!r}")
        if bits > pe.cols * 32:
            raise ValueError(f"axi_data_bits: at most cols * 32 = {pe.cols * 32}, got {bits}")
        if pe.dataflow == "ws" and bits < pe.rows * self.op_bits:
            raise ValueError(f"axi_data_bits: ws needs at least rows * bits = "
                             f"{pe.rows * self.op_bits} (one A row block per lane word), got "
                             f"{bits}")
        if not isinstance(self.max_outstanding, int) or not 1 <= self.max_outstanding <= 256:
            raise ValueError(f"max_outstanding: must be an integer in 1..256, got "
                             f"{self.max_outstanding!r}")
        for name, words in (("input_sram", self.a_lane_words), ("weight_sram", self.w_words),
                            ("output_sram", self.c_words)):
            if words < 2 * self.min_slot_words(name):
                raise ValueError(f"{name}.size_kib: {getattr(accel, name).size_kib} KiB cannot "
                                 f"hold a double-buffered {pe.rows}x1x{pe.cols} tile of the "
                                 f"array")

    # Shapes -----------------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        return self.accel.pe.rows

    @property
    def cols(self) -> int:
        return self.accel.pe.cols

    @property
    def float_pe(self) -> bool:
        """The array's PEs are float MACs (``pe=lmul`` or ``fp``): operands are format bit
        patterns, accumulators fp32 patterns."""
        return self.accel.pe.pe != "int"

    @property
    def op_bits(self) -> int:
        """Bits of an A or W element: the integer width, or the float format's."""
        pe = self.accel.pe
        return pe.mac.fmt.bits if self.float_pe else pe.bits

    @property
    def op_bytes(self) -> int:
        """Bytes of an A or W element in DRAM and in the scratchpads."""
        return self.op_bits // 8

    @property
    def acc_bits(self) -> int:
        return 32 if self.float_pe else self.accel.pe.mac.acc_bits

    @property
    def beat_bytes(self) -> int:
        return self.axi_data_bits // 8

    @property
    def weight_banks(self) -> int:
        """Banks of the weight scratchpad: a row of ``cols`` weights spans this many AXI words."""
        return max(1, self.cols * self.op_bytes // self.beat_bytes)

    @property
    def c_parts(self) -> int:
        """AXI beats per output word (``cols`` 32-bit accumulators)."""
        return self.cols * 4 // self.beat_bytes

    @property
    def scratchpad_words(self) -> ScratchpadWords:
        """The array block and word widths of the scratchpads, as the model counts their
        accesses (:mod:`peforge.sim.perf.scratchpads`): an input lane word and a weight bank
        word are one AXI beat, a weight row read reads every bank, an output word holds
        ``cols`` accumulators; the array's dataflow decides how it walks them."""
        return ScratchpadWords(self.rows, self.cols, self.beat_bytes,
                               self.weight_banks * self.beat_bytes,
                               Fraction(self.cols * self.acc_bits, 8), self.accel.pe.dataflow)

    # Depths (words) ---------------------------------------------------------------------------
    @property
    def a_lane_words(self) -> int:
        return self.accel.input_sram.size_bytes // (self.rows * self.beat_bytes)

    @property
    def w_words(self) -> int:
        """Words of the whole weight scratchpad (all banks), a multiple of the banks."""
        return self.accel.weight_sram.size_bytes // (self.weight_banks * self.beat_bytes) \
            * self.weight_banks

    @property
    def c_words(self) -> int:
        return self.accel.output_sram.size_bytes // (self.cols * 4)

    def min_slot_words(self, sram: str) -> int:
        return {"input_sram": 1, "weight_sram": self.weight_banks,
                "output_sram": self.rows}[sram]
