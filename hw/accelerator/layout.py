"""Where operands live: the DRAM layout a descriptor describes, and the scratchpad slots.

DRAM (little-endian bytes, addresses and row strides multiples of the AXI width): A is ``M x K``
row-major, W is ``K x N`` row-major, both of ``bits / 8``-byte two's-complement elements; C is
``M x N`` row-major of 32-bit elements (the accumulator sign-extended). The DMA reads whole AXI
beats, so a row whose bytes are not a multiple of the AXI width is read up to the end of its last
beat (the padding of the row stride); it writes C with byte strobes, so it writes exactly C.

Scratchpads (double-buffered: slot ``s`` of each starts at ``s * slot words``):

- input: ``rows`` lanes of AXI words; row ``r`` of an A block is in lane ``r % rows`` at word
  ``(r // rows) * a_row_words``, ``a_row_words = ceil(tk * bytes / axi_bytes)`` words long;
- weight: one array of AXI words over ``weight_banks`` banks (word ``w`` in bank ``w % banks``
  at ``w // banks``); row ``k`` of a W block starts at word ``k * w_row_words``,
  ``w_row_words = ceil(tn * bytes / axi_bytes)`` rounded up to a multiple of the banks;
- output: words of ``cols`` accumulators; row ``r``, column group ``g`` of an output tile at word
  ``r * c_groups + g``, ``c_groups = ceil(tn / cols)``; an output tile slot holds
  ``ceil(tm / rows) * rows`` rows.
"""

from dataclasses import dataclass

from peforge.hw.accelerator.config import C_BYTES, AccelConfig

__all__ = ["Descriptor", "Slots", "slots", "descriptor_problems"]


@dataclass(frozen=True)
class Descriptor:
    """A GEMM as the register file takes it (byte addresses and strides; tile sizes; order
    0 ``mn``, 1 ``nm``)."""

    a_base: int
    w_base: int
    c_base: int
    m: int
    k: int
    n: int
    a_stride: int
    w_stride: int
    c_stride: int
    tm: int
    tk: int
    tn: int
    order: int
    a_bits: int
    w_bits: int


@dataclass(frozen=True)
class Slots:
    """Words of a scratchpad row and slot for a tiling (the module docstring)."""

    a_row_words: int
    a_slot: int
    w_row_words: int
    w_slot: int
    c_groups: int
    c_slot: int


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def slots(cfg: AccelConfig, tm: int, tk: int, tn: int) -> Slots:
    w, banks = cfg.beat_bytes, cfg.weight_banks
    a_row = _ceil_div(tk * cfg.op_bytes, w)
    w_row = _ceil_div(_ceil_div(tn * cfg.op_bytes, w), banks) * banks
    groups = _ceil_div(tn, cfg.cols)
    sub_rows = _ceil_div(tm, cfg.rows)
    return Slots(a_row, sub_rows * a_row, w_row, tk * w_row, groups,
                 sub_rows * cfg.rows * groups)


def descriptor_problems(cfg: AccelConfig, d: Descriptor) -> list[str]:
    """Why the controller would flag ``d`` illegal (empty: it runs); the same checks as
    :class:`peforge.hw.accelerator.controller.Controller`'s."""
    problems = []
    for name in ("m", "k", "n", "tm", "tk", "tn"):
        if not 1 <= getattr(d, name) <= 0xFFFF:
            problems.append(f"{name}: must be in 1..65535, got {getattr(d, name)}")
    if problems:
        return problems
    w, ab, bits = cfg.beat_bytes, cfg.op_bytes, cfg.op_bits
    if d.order not in (0, 1):
        problems.append(f"order: must be 0 (mnk) or 1 (nmk): the tile runs K innermost, got {d.order}")
    for name in ("a_bits", "w_bits"):
        if getattr(d, name) != bits:
            problems.append(f"{name}: the array takes {bits}-bit operands, got "
                            f"{getattr(d, name)}")
    for name in ("a_base", "w_base", "c_base", "a_stride", "w_stride", "c_stride"):
        if getattr(d, name) % w:
            problems.append(f"{name}: must be a multiple of the AXI width ({w} bytes), got "
                            f"{getattr(d, name)}")
    for name, need in (("a_stride", d.k * ab), ("w_stride", d.n * ab),
                       ("c_stride", d.n * C_BYTES)):
        if getattr(d, name) < need:
            problems.append(f"{name}: must be >= {need} bytes, got {getattr(d, name)}")
    if d.tk < d.k and d.tk * ab % w:
        problems.append(f"tk: a split K needs tk * {ab} bytes to be a multiple of {w}")
    if d.tn < d.n and (d.tn * ab % w or d.tn % cfg.cols and cfg.weight_banks > 1):
        problems.append(f"tn: a split N needs tn * {ab} bytes to be a multiple of {w}"
                        + (f" and tn a multiple of {cfg.cols}" if cfg.weight_banks > 1 else ""))
    s = slots(cfg, d.tm, d.tk, d.tn)
    for name, need, have in (("input", s.a_slot, cfg.a_lane_words),
                             ("weight", s.w_slot, cfg.w_words),
                             ("output", s.c_slot, cfg.c_words)):
        if 2 * need > have:
            problems.append(f"tile: two {d.tm}x{d.tk}x{d.tn} slots need {2 * need} words of the "
                            f"{name} scratchpad, which has {have}")
    return problems
