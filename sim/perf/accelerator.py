"""An accelerator: one PE array of any family, on-chip SRAMs, a DMA engine and DRAM.

All of it is one frozen, validated configuration (:class:`Accelerator`) that loads from YAML::

    family: systolic
    pe: {rows: 32, cols: 32, dataflow: os}
    clock_mhz: 1000
    input_sram: {size_kib: 256, width_bytes: 64, banks: 4}
    weight_sram: {size_kib: 256}
    output_sram: {size_kib: 64}
    dram: {name: ddr4-3200, bytes_per_cycle: 25.6, latency_cycles: 100}
    timing: rtl
    stats: gaussian

``dram.name`` is ``TYPE`` or ``TYPE-RATE`` with a DRAM type of :data:`peforge.sim.perf.memory.DRAM_TYPES`
(its energy per bit); ``stats`` are the operand statistics of the PE array's energy per MAC
(:data:`peforge.models.operand_stats.STATS`). Errors name the offending key
(``dram.bytes_per_cycle: must be > 0, got 0``).
"""

import math
from dataclasses import dataclass, field, fields, replace

import yaml

from peforge.models.operand_stats import STATS
from peforge.sim.families import family
from peforge.sim.perf.memory import dram_type

__all__ = ["Sram", "Dram", "Accelerator", "TIMINGS", "load_accelerator"]

#: Compute timing of the array: ``rtl`` is the family's cycle model (equal to the RTL);
#: ``scalesim-os/ws/is`` reproduce SCALE-Sim 3.0's compute cycles (systolic family only).
TIMINGS = ("rtl", "scalesim-os", "scalesim-ws", "scalesim-is")


def _positive(prefix: str, name: str, value, *, integer: bool = True, infinite: bool = False):
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not value > 0 or (
            math.isinf(value) and not infinite):
        kind = "a positive integer" if integer else "a number > 0"
        raise ValueError(f"{prefix}{name}: must be {kind}, got {value!r}")


@dataclass(frozen=True)
class Sram:
    """An on-chip buffer: ``size_kib`` KiB, ``banks`` banks of ``width_bytes`` each."""

    size_kib: int = 256
    width_bytes: int = 64
    banks: int = 4

    def validate(self, prefix: str) -> None:
        for name in ("size_kib", "width_bytes", "banks"):
            _positive(prefix, name, getattr(self, name))

    @property
    def size_bytes(self) -> int:
        return self.size_kib * 1024

    @property
    def bytes_per_cycle(self) -> int:
        """Port bandwidth: one access of ``width_bytes`` per bank per cycle."""
        return self.width_bytes * self.banks


@dataclass(frozen=True)
class Dram:
    """Off-chip memory: ``name`` (``TYPE`` or ``TYPE-RATE``, the type sets the energy per bit,
    :data:`peforge.sim.perf.memory.DRAM_TYPES`), ``bytes_per_cycle`` at the accelerator clock (``inf``
    for an ideal memory) and a fixed ``latency_cycles`` per transfer."""

    name: str = "ddr4-3200"
    bytes_per_cycle: float = 25.6
    latency_cycles: int = 100

    def validate(self, prefix: str) -> None:
        dram_type(self.name)
        _positive(prefix, "bytes_per_cycle", self.bytes_per_cycle, integer=False, infinite=True)
        if isinstance(self.latency_cycles, bool) or not isinstance(self.latency_cycles, int) \
                or self.latency_cycles < 0:
            raise ValueError(f"{prefix}latency_cycles: must be an integer >= 0, "
                             f"got {self.latency_cycles!r}")


@dataclass(frozen=True)
class Accelerator:
    """One PE array (``family`` with its configuration ``pe``) plus memories, at ``clock_mhz``;
    ``stats`` are the operand statistics its energy per MAC is measured on."""

    family: str
    pe: object
    clock_mhz: float = 1000.0
    input_sram: Sram = field(default_factory=Sram)
    weight_sram: Sram = field(default_factory=Sram)
    output_sram: Sram = field(default_factory=lambda: Sram(size_kib=64))
    dram: Dram = field(default_factory=Dram)
    timing: str = "rtl"
    stats: str = "gaussian"

    def __post_init__(self):
        fam = family(self.family)
        if not isinstance(self.pe, fam.config):
            raise ValueError(f"pe: must be a {fam.config.__name__}, got {type(self.pe).__name__}")
        _positive("", "clock_mhz", self.clock_mhz, integer=False)
        for name in ("input_sram", "weight_sram", "output_sram"):
            getattr(self, name).validate(f"{name}.")
        self.dram.validate("dram.")
        if self.timing not in TIMINGS:
            raise ValueError(f"timing: must be one of {', '.join(TIMINGS)}, got {self.timing!r}")
        if self.timing != "rtl" and self.family != "systolic":
            raise ValueError(f"timing: {self.timing} applies to the systolic family only")
        if self.stats not in STATS:
            raise ValueError(f"stats: must be one of {', '.join(STATS)}, got {self.stats!r}")
        if fam.pes is None:
            raise ValueError(f"family: {self.family} declares no PE count, so it cannot be "
                             f"modelled yet")

    @property
    def pes(self) -> int:
        return family(self.family).pes(self.pe)


def _check_keys(cls, values: dict, prefix: str) -> None:
    known = {f.name for f in fields(cls)}
    for key in values:
        if key not in known:
            raise ValueError(f"{prefix}{key}: unknown key (known: {', '.join(sorted(known))})")


def load_accelerator(source) -> Accelerator:
    """An :class:`Accelerator` from a YAML file path or an already parsed mapping.

    Keys not given keep the accelerator's defaults, within a memory section too:
    ``output_sram: {banks: 2}`` keeps the output SRAM's 64 KiB."""
    if isinstance(source, dict):
        values = source
    else:
        with open(source) as handle:
            values = yaml.safe_load(handle)
        if not isinstance(values, dict):
            raise ValueError(f"config: {source} must hold a mapping of keys")
    values = dict(values)
    if "family" not in values:
        raise ValueError("family: missing (the PE family of the accelerator)")
    fam = family(values["family"])
    base = Accelerator(fam.name, fam.make_config(**(values.pop("pe", None) or {})))
    for name, cls in (("input_sram", Sram), ("weight_sram", Sram), ("output_sram", Sram),
                      ("dram", Dram)):
        if name in values:
            if not isinstance(values[name], dict):
                raise ValueError(f"{name}: must be a mapping, got {values[name]!r}")
            _check_keys(cls, values[name], f"{name}.")
            values[name] = replace(getattr(base, name), **values[name])
    _check_keys(Accelerator, values, "")
    return replace(base, **values)
