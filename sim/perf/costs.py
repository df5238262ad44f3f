"""What one MAC, one SRAM or DRAM byte and one second cost on an accelerator, at 45 nm.

- PE array: the family's dynamic energy per MAC, measured on its own RTL under the accelerator's
  operand ``stats`` (:func:`peforge.sim.eda.energy.op_energy`, looked up once per family, reduced
  configuration and statistics in this process); the array's leakage and area are the measured
  top's times ``pes / measured pes``;
- SRAMs: energy per byte read and written, leakage and area
  (:func:`peforge.sim.perf.memory.sram_cost`: size, port width and banks);
- DRAM: 8 bits per byte at the DRAM type's energy per bit
  (:data:`peforge.sim.perf.memory.DRAM_TYPES`, from ``dram.name``).

Only the energy columns of :mod:`peforge.sim.perf.model` need these: cycles never do.
"""

from dataclasses import dataclass
from functools import lru_cache

from peforge.sim.eda import energy

from peforge.sim.families import family
from peforge.sim.perf.accelerator import Accelerator
from peforge.sim.perf.memory import DRAM_TYPES, SramCost, dram_type, sram_cost

__all__ = ["AcceleratorCosts", "accelerator_costs", "SRAMS"]

#: The SRAMs of an accelerator, as named in its fields (``<name>_sram``) and in the energy columns.
SRAMS = ("input", "weight", "output")


@dataclass(frozen=True)
class AcceleratorCosts:
    """What one MAC, one SRAM or DRAM byte and one second cost on an accelerator (45 nm).

    Attributes
    ----------
    pj_per_mac : float
        Dynamic energy of the PE array per useful MAC (pJ).
    srams : dict of str to SramCost
        Per SRAM of :data:`SRAMS`: energy per byte read and written, leakage, area.
    dram_pj_per_byte : float
        Energy per byte read from or written to DRAM (pJ).
    array_leakage_mw, array_area_mm2 : float
        Leakage (mW) and area (mm2) of the whole PE array.
    """

    pj_per_mac: float
    srams: dict
    dram_pj_per_byte: float
    array_leakage_mw: float
    array_area_mm2: float

    @property
    def leakage_mw(self) -> float:
        """PE array and SRAM leakage (mW)."""
        return self.array_leakage_mw + sum(cost.leakage_mw for cost in self.srams.values())

    @property
    def area_mm2(self) -> float:
        """PE array and SRAM area (mm2)."""
        return self.array_area_mm2 + sum(cost.area_mm2 for cost in self.srams.values())


@lru_cache(maxsize=256)
def _op_energy(family_name: str, config, stats: str) -> "energy.OpEnergy":
    """The family's energy per MAC (cached on disk by :mod:`peforge.sim.eda.energy`, and here per
    process: sweeps ask for the same array thousands of times). ``config`` is the family's
    reduced configuration (``energy_config``, what :func:`peforge.sim.eda.energy.op_energy`
    measures), so arrays that differ only in size share one look-up."""
    return energy.op_energy(family_name, config, stats=stats)


def accelerator_costs(accel: Accelerator) -> AcceleratorCosts:
    """The unit costs of ``accel``'s PE array (measured on a reduced top of the same PE and
    scaled by ``pes``), SRAMs and DRAM (module docstring)."""
    op, scale = _array_energy(accel.family, accel.pe, accel.stats)
    srams: dict[str, SramCost] = {}
    for name in SRAMS:
        sram = getattr(accel, f"{name}_sram")
        srams[name] = sram_cost(sram.size_bytes, sram.width_bytes, sram.banks)
    return AcceleratorCosts(op.pj_per_mac, srams,
                            8 * DRAM_TYPES[dram_type(accel.dram.name)].pj_per_bit,
                            op.leakage_uw * scale / 1e3, op.area_um2 * scale / 1e6)


@lru_cache(maxsize=1024)
def _array_energy(family_name: str, pe, stats: str) -> tuple["energy.OpEnergy", float]:
    """The energy per MAC of a PE array's reduced top, and the array's PEs over the top's."""
    fam = family(family_name)
    op = _op_energy(family_name, fam.energy_config(pe), stats)
    return op, fam.pes(pe) / op.pes
