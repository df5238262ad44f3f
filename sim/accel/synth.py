"""``peforge synth accelerator``: the tile's area in parts, at 45 nm.

- ``array``: the PE array, synthesised as ``peforge synth`` does it
  (:func:`peforge.sim.eda.synth.synth_family`, the same report);
- ``scratchpads``: every scratchpad memory of the tile (:mod:`peforge.hw.accelerator.top`:
  ``rows`` input lanes, the weight banks, the output memory) as one SRAM macro of its own
  bytes, at the SRAM model's area (:func:`peforge.sim.perf.memory.bank_area_mm2`, 45 nm; the
  ports a macro has are not counted);
- the logic around them, synthesised flat with the array and the memories as black boxes
  (:class:`peforge.hw.common.parts.BlackBox`, :class:`~peforge.hw.common.parts.BlackBoxMemory`),
  split by synthesising two of its components alone: ``axi_lite`` the AXI4-Lite register file
  (:class:`peforge.hw.accelerator.regs.RegisterFile`), ``feeder`` the feeder and accumulator
  (:class:`peforge.hw.accelerator.compute.TileCompute`); ``dma_controller`` is the rest of the
  tile's logic: the DMA engine with its AXI4 master, the controller, its tile walkers and
  counters (the logic less those two).

Logic is NAND2 equivalents (:attr:`peforge.sim.eda.synth.AreaReport.nand2_eq`) at the NAND2 of
:data:`NODE` (Nangate 45 nm), the SRAM model's node, so the parts add up. No Liberty mapping.
"""

from dataclasses import dataclass

from peforge.hw.accelerator.compute import TileCompute
from peforge.hw.accelerator.config import AccelConfig
from peforge.hw.accelerator.regs import RegisterFile
from peforge.hw.accelerator.top import TOP_NAME, AcceleratorTile
from peforge.hw.common.parts import BlackBox, BlackBoxMemory, blackbox_module
from peforge.hw.common.verilog import to_verilog
from peforge.sim.eda.synth import NODES, SynthError, synth_family, synthesize
from peforge.sim.families import family
from peforge.sim.perf.memory import bank_area_mm2

__all__ = ["NODE", "TileArea", "tile_area", "format_tile_area"]

#: The node of the logic's area: the SRAM model's 45 nm.
NODE = "nangate45"

#: The parts, in the order reported.
PARTS = ("array", "scratchpads", "dma_controller", "feeder", "axi_lite")


@dataclass(frozen=True)
class TileArea:
    """Area of each part (um2, :data:`PARTS`), the logic parts' NAND2 equivalents and the
    scratchpad macros (``(name, bytes, um2)``)."""

    um2: dict
    nand2_eq: dict
    memories: tuple

    @property
    def total_um2(self) -> float:
        return sum(self.um2.values())


def tile_area(cfg: AccelConfig) -> TileArea:
    """The tile's area in parts (module docstring)."""
    fam, pe = family(cfg.accel.family), cfg.accel.pe
    array = synth_family(fam, pe)
    memories = []

    def memory(**shape):
        memories.append(BlackBoxMemory(**shape))
        return memories[-1]

    stand_in = fam.generator(pe)
    stand_in._MustUse__silence = True       # built for its signature only, never elaborated
    signature = stand_in.signature
    top = AcceleratorTile(cfg, array=BlackBox(signature, "array"), memory=memory)
    verilog = to_verilog(top, TOP_NAME)
    declared = {mem.module: mem.declaration() for mem in memories}
    logic = synthesize(verilog + blackbox_module(signature, "array") + "".join(declared.values()),
                       TOP_NAME)
    alone = {name: synthesize(to_verilog(part, f"{TOP_NAME}_{name}"), f"{TOP_NAME}_{name}")
             for name, part in (("feeder", TileCompute(cfg)), ("axi_lite", RegisterFile()))}
    nand2 = {"array": array.nand2_eq,
             "dma_controller": logic.nand2_eq - sum(r.nand2_eq for r in alone.values()),
             **{name: report.nand2_eq for name, report in alone.items()}}
    if nand2["dma_controller"] <= 0:
        raise SynthError(f"{TOP_NAME}: its logic ({logic.nand2_eq:.0f} NAND2-eq) is not larger "
                         f"than its feeder and register file synthesised alone")
    macros = tuple((name, mem.width * mem.depth // 8, bank_area_mm2(mem.width * mem.depth / 8)
                    * 1e6) for name, mem in zip(_memory_names(cfg), memories))
    um2 = {name: nand2[name] * NODES[NODE].nand2_um2 for name in nand2}
    um2["scratchpads"] = sum(area for _, _, area in macros)
    return TileArea({name: um2[name] for name in PARTS}, nand2, macros)


def _memory_names(cfg: AccelConfig) -> list[str]:
    """The scratchpads in the order the tile builds them."""
    return ([f"input_lane{lane}" for lane in range(cfg.rows)]
            + [f"weight_bank{bank}" for bank in range(cfg.weight_banks)] + ["output"])


#: What each part is, for the report.
_TITLES = {"array": "PE array (as peforge synth)",
           "scratchpads": "scratchpads (SRAM model, 45 nm)",
           "dma_controller": "DMA, AXI4 master, controller",
           "feeder": "feeder and accumulator",
           "axi_lite": "AXI4-Lite register file"}


def format_tile_area(cfg: AccelConfig, area: TileArea) -> str:
    total = area.total_um2
    lines = [f"{TOP_NAME}: {cfg.rows}x{cfg.cols} {cfg.accel.family}, AXI {cfg.axi_data_bits}; "
             f"logic at {NODES[NODE].title} (NAND2-eq x {NODES[NODE].nand2_um2} um2)"]
    for name in PARTS:
        gates = (f", {area.nand2_eq[name]:.0f} NAND2-eq" if name in area.nand2_eq else "")
        lines.append(f"  {_TITLES[name]:<34} {area.um2[name]:12.1f} um2 "
                     f"({area.um2[name] / total:6.1%}{gates})")
    lines.append(f"  {'total':<34} {total:12.1f} um2")
    for name, size, um2 in area.memories:
        lines.append(f"    {name:<14} {size:8d} B {um2:10.1f} um2")
    return "\n".join(lines)
