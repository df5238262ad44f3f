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
    vector: {lanes: 64, softmax: 0.25}    # optional: times the work that is not a GEMM

SRAM sizes not given (a section without ``size_kib``, or no section) follow the array
(:func:`default_sram_kib`): each SRAM holds two tiles of ``T x T`` elements, A and W at 8 bits
and outputs at 32 (the widths GEMMs move at), with ``T`` four times the array's side rounded up
to a power of two (``sqrt(pes)``, at least 16), and never less than 256/256/64 KiB. A 128 x 128
systolic array gets 512 KiB input and weight SRAMs and a 2 MiB output SRAM; an 8 x 8 array
256/256/64 KiB.

``dram.name`` is ``TYPE`` or ``TYPE-RATE`` with a DRAM type of :data:`peforge.sim.perf.memory.DRAM_TYPES`
(its energy per bit); ``stats`` are the operand statistics of the PE array's energy per MAC
(:data:`peforge.models.operand_stats.STATS`). Errors name the offending key
(``dram.bytes_per_cycle: must be > 0, got 0``).

``clock_mhz: auto`` clocks the accelerator at its PE array's static-timing Fmax
(:func:`auto_clock_mhz`): OpenSTA's worst register-to-register path on the default Liberty
(:mod:`peforge.sim.eda.timing`), rounded down to 0.1 MHz, cached per PE configuration and
Liberty content.
"""

import math
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache

from peforge.models.operand_stats import STATS
from peforge.sim.families import family
from peforge.sim.perf.memory import dram_type

__all__ = ["Sram", "ArraySizedSram", "Dram", "VectorUnit", "Accelerator", "TIMINGS",
           "load_accelerator", "default_sram_kib", "MIN_SRAM_KIB", "AUTO_CLOCK",
           "auto_clock_mhz", "auto_clock_liberty", "with_clock"]

#: The ``clock_mhz`` value that asks for the PE array's static-timing Fmax.
AUTO_CLOCK = "auto"

#: Compute timing of the array: ``rtl`` is the family's cycle model (equal to the RTL);
#: ``scalesim-os/ws/is`` reproduce SCALE-Sim 3.0's compute cycles (systolic family only).
TIMINGS = ("rtl", "scalesim-os", "scalesim-ws", "scalesim-is")


def _positive(prefix: str, name: str, value, *, integer: bool = True, infinite: bool = False):
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not value > 0 or (
            math.isinf(value) and not infinite):
        kind = "a positive integer" if integer else "a number > 0"
        raise ValueError(f"{prefix}{name}: must be {kind}, got {value!r}")


#: The smallest default sizes (KiB) of the input, weight and output SRAMs.
MIN_SRAM_KIB = {"input_sram": 256, "weight_sram": 256, "output_sram": 64}

#: Bits of an A, W and output element in the default sizing rule.
_RULE_BITS = {"input_sram": 8, "weight_sram": 8, "output_sram": 32}


def default_sram_kib(pes: int) -> dict[str, int]:
    """The default SRAM sizes (KiB) of an array of ``pes`` PEs (module docstring): two ``T x T``
    tiles at 8-bit A and W and 32-bit outputs, ``T = 4 * 2**ceil(log2(sqrt(pes)))`` (at least
    16), and at least :data:`MIN_SRAM_KIB`."""
    side = 1 << max(2, math.isqrt(pes - 1).bit_length()) if pes > 1 else 4
    tile = 4 * side
    return {name: max(MIN_SRAM_KIB[name], -(-2 * tile * tile * bits // 8 // 1024))
            for name, bits in _RULE_BITS.items()}


@dataclass(frozen=True)
class Sram:
    """An on-chip buffer: ``size_kib`` KiB (None: sized by its accelerator, :func:`default_sram_kib`),
    ``banks`` banks of ``width_bytes`` each."""

    size_kib: int | None = None
    width_bytes: int = 64
    banks: int = 4

    def validate(self, prefix: str) -> None:
        for name in ("size_kib", "width_bytes", "banks"):
            _positive(prefix, name, getattr(self, name))

    def __eq__(self, other):
        # An ArraySizedSram equals the Sram of the same fields: they differ only in what
        # happens when their accelerator's array changes.
        if not isinstance(other, Sram):
            return NotImplemented
        return (self.size_kib, self.width_bytes, self.banks) == (
            other.size_kib, other.width_bytes, other.banks)

    def __hash__(self):
        return hash((self.size_kib, self.width_bytes, self.banks))

    @property
    def size_bytes(self) -> int:
        return self.size_kib * 1024

    @property
    def bytes_per_cycle(self) -> int:
        """Port bandwidth: one access of ``width_bytes`` per bank per cycle."""
        return self.width_bytes * self.banks


class ArraySizedSram(Sram):
    """An :class:`Sram` whose size was not given but follows its accelerator's array
    (:func:`default_sram_kib`): it is sized again when the array changes (``replace(accel,
    pe=...)``). Its fields, and so its stored form, are a plain Sram's, and it equals the Sram of
    the same fields."""


@dataclass(frozen=True)
class Dram:
    """Off-chip memory: ``name`` (``TYPE`` or ``TYPE-RATE``, the type sets the energy per bit,
    :data:`peforge.sim.perf.memory.DRAM_TYPES`), ``bytes_per_cycle`` at the accelerator clock (``inf``
    for an ideal memory) and a fixed ``latency_cycles`` per transfer.

    ``beat_bytes``: None, transfers move exactly their bytes; an integer, the DMA moves each row
    of a block (an A row of a tile's K block, a W row of its N block, an output row) as whole
    beats of that many bytes from an aligned start, as the generated tile's AXI DMA does
    (:mod:`peforge.hw.accelerator.dma`): a row of ``b`` bytes takes ``ceil(b / beat_bytes)``
    beats of the channel. Reads count those whole beats; writes are strobed, so they count
    their bytes but take whole beats of time."""

    name: str = "ddr4-3200"
    bytes_per_cycle: float = 25.6
    latency_cycles: int = 100
    beat_bytes: int | None = None

    def validate(self, prefix: str) -> None:
        dram_type(self.name)
        _positive(prefix, "bytes_per_cycle", self.bytes_per_cycle, integer=False, infinite=True)
        if self.beat_bytes is not None:
            _positive(prefix, "beat_bytes", self.beat_bytes)
        if isinstance(self.latency_cycles, bool) or not isinstance(self.latency_cycles, int) \
                or self.latency_cycles < 0:
            raise ValueError(f"{prefix}latency_cycles: must be an integer >= 0, "
                             f"got {self.latency_cycles!r}")


@dataclass(frozen=True)
class VectorUnit:
    """A SIMD unit beside the PE array that runs the work that is not a GEMM
    (:class:`peforge.sim.perf.workloads.VectorOp`): ``lanes`` lanes, each finishing the given
    number of elements per cycle of each class of :data:`peforge.sim.perf.workloads.VECTOR_KINDS`
    (assumed rates, not measured on RTL: peforge has no vector unit RTL). Its timing is
    :mod:`peforge.sim.perf.vector`."""

    lanes: int = 64
    elementwise: float = 1.0
    activation: float = 0.25
    softmax: float = 0.25
    norm: float = 0.25
    reduction: float = 1.0

    def validate(self, prefix: str) -> None:
        _positive(prefix, "lanes", self.lanes)
        for name in ("elementwise", "activation", "softmax", "norm", "reduction"):
            _positive(prefix, name, getattr(self, name), integer=False)


@dataclass(frozen=True)
class Accelerator:
    """One PE array (``family`` with its configuration ``pe``) plus memories, at ``clock_mhz``;
    ``stats`` are the operand statistics its energy per MAC is measured on."""

    family: str
    pe: object
    clock_mhz: float = 1000.0
    input_sram: Sram = field(default_factory=Sram)
    weight_sram: Sram = field(default_factory=Sram)
    output_sram: Sram = field(default_factory=Sram)
    dram: Dram = field(default_factory=Dram)
    timing: str = "rtl"
    stats: str = "gaussian"
    vector: VectorUnit | None = None

    def __post_init__(self):
        fam = family(self.family)
        if not isinstance(self.pe, fam.config):
            raise ValueError(f"pe: must be a {fam.config.__name__}, got {type(self.pe).__name__}")
        _positive("", "clock_mhz", self.clock_mhz, integer=False)
        if fam.pes is None:
            raise ValueError(f"family: {self.family} declares no PE count, so it cannot be "
                             f"modelled yet")
        defaults = None
        for name in ("input_sram", "weight_sram", "output_sram"):
            sram = getattr(self, name)
            if isinstance(sram, Sram) and (sram.size_kib is None
                                           or type(sram) is ArraySizedSram):
                defaults = defaults or default_sram_kib(fam.pes(self.pe))
                object.__setattr__(self, name, ArraySizedSram(defaults[name], sram.width_bytes,
                                                              sram.banks))
            getattr(self, name).validate(f"{name}.")
        self.dram.validate("dram.")
        if self.vector is not None:
            if not isinstance(self.vector, VectorUnit):
                raise ValueError(f"vector: must be a VectorUnit, got {self.vector!r}")
            self.vector.validate("vector.")
        if self.timing not in TIMINGS:
            raise ValueError(f"timing: must be one of {', '.join(TIMINGS)}, got {self.timing!r}")
        if self.timing != "rtl" and self.family != "systolic":
            raise ValueError(f"timing: {self.timing} applies to the systolic family only")
        if self.stats not in STATS:
            raise ValueError(f"stats: must be one of {', '.join(STATS)}, got {self.stats!r}")

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
    ``output_sram: {banks: 2}`` keeps the output SRAM's default size (:func:`default_sram_kib`).
    A file is read bounded and plain (:class:`peforge.sim.explore.bounded_yaml.YamlNodes`: no
    alias bomb is built, no ``!!python`` tag); its errors are ValueError ``FILE:LINE: field:
    message`` (OSError when it cannot be opened)."""
    if isinstance(source, dict):
        return _from_mapping(source)
    from peforge.sim.explore.bounded_yaml import YamlNodes

    nodes = YamlNodes(source, document="config", needs="an accelerator needs its family")
    values = nodes.value(nodes.root, "config")
    if not isinstance(values, dict):
        raise nodes.error(nodes.root, "config", f"must hold a mapping of keys, got {values!r}")
    try:
        return _from_mapping(values)
    except ValueError as error:
        message = str(error)
        # The field is the message's first word (``dram.name``, or a family parameter's name,
        # which lives under ``pe``).
        keys = message.split(":")[0].split(".")
        node = nodes.find(*keys) or nodes.find("pe", *keys) or nodes.find(keys[0]) or nodes.root
        raise ValueError(f"{source}:{node.start_mark.line + 1}: "
                         f"{' '.join(message.splitlines())}") from None


def _from_mapping(source: dict) -> Accelerator:
    values = dict(source)
    if "family" not in values:
        raise ValueError("family: missing (the PE family of the accelerator)")
    if not isinstance(values["family"], str):
        raise ValueError(f"family: must be a family name, got {values['family']!r}")
    fam = family(values["family"])
    pe = values.pop("pe", None) or {}
    if not isinstance(pe, dict) or not all(isinstance(key, str) for key in pe):
        raise ValueError(f"pe: must be a mapping of {fam.name}'s parameters, got {pe!r}")
    base = Accelerator(fam.name, fam.make_config(**pe))
    for name, cls in (("input_sram", Sram), ("weight_sram", Sram), ("output_sram", Sram),
                      ("dram", Dram), ("vector", VectorUnit)):
        if name in values:
            if not isinstance(values[name], dict):
                raise ValueError(f"{name}: must be a mapping, got {values[name]!r}")
            _check_keys(cls, values[name], f"{name}.")
            given = replace(getattr(base, name) or cls(), **values[name])
            values[name] = (Sram(given.size_kib, given.width_bytes, given.banks)
                            if cls is Sram and "size_kib" in values[name] else given)
    _check_keys(Accelerator, values, "")
    auto = values.get("clock_mhz") == AUTO_CLOCK
    if auto:
        del values["clock_mhz"]
    return with_clock(replace(base, **values), auto)


def with_clock(accel: Accelerator, auto: bool) -> Accelerator:
    """``accel`` clocked at :func:`auto_clock_mhz` of its PE array when ``auto``, else itself."""
    return replace(accel, clock_mhz=auto_clock_mhz(accel.family, accel.pe)) if auto else accel


def auto_clock_mhz(family_name: str, pe) -> float:
    """Static-timing Fmax of ``family_name``'s configuration ``pe`` placed between registers
    (:attr:`~peforge.sim.eda.timing.TimingReport.fmax_in_place_mhz`) on the default Liberty
    (:func:`~peforge.sim.eda.synth.default_liberty`), MHz, rounded down to 0.1 MHz; cached per
    PE configuration and Liberty content, so another library is timed again. Raises ValueError
    naming ``clock_mhz`` when it cannot be timed (no OpenSTA, an unreadable or malformed
    Liberty, a failing step)."""
    from peforge.sim.eda import synth

    liberty = synth.default_liberty()
    try:
        sha256 = synth.liberty_sha256(liberty)
    except ValueError as error:
        raise ValueError(f"clock_mhz: auto: {error}") from None
    return _timed_clock_mhz(family_name, pe, liberty, sha256)


def auto_clock_liberty() -> str:
    """The first 16 hex digits of the sha256 of the Liberty file ``clock_mhz: auto`` is timed
    with (what a sweep's stored auto-clocked rows are keyed by); empty when it cannot be read."""
    from peforge.sim.eda import synth

    try:
        return synth.liberty_sha256(synth.default_liberty())[:16]
    except ValueError:
        return ""


@lru_cache(maxsize=None)
def _timed_clock_mhz(family_name: str, pe, liberty, _sha256: str) -> float:
    from peforge.sim.eda import timing

    try:
        report = timing.time_family(family(family_name), pe, liberty)
    except timing.TimingError as error:
        raise ValueError(f"clock_mhz: auto: {error}") from None
    return math.floor(report.fmax_in_place_mhz * 10) / 10
