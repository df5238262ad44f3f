"""Energy and area of the accelerator's memories: on-chip SRAM banks and off-chip DRAM, at 45 nm.

Everything here is at 45 nm, the node of peforge's energy calibration (:mod:`peforge.sim.eda.energy`,
Horowitz ISSCC 2014, 45 nm, 0.9 V), so memory and PE energies add without a node conversion.

SRAM: a power law fitted to published CACTI figures
    One bank of ``C`` bytes with a port of ``w`` bits costs, per access (read or write of ``w``
    bits), and has the area and leakage::

        read_pj(C, w)   = w * READ.coefficient  * C ** READ.exponent     pJ
        write_pj(C, w)  = w * WRITE.coefficient * C ** WRITE.exponent    pJ
        area_mm2(C)     =     AREA.coefficient  * C ** AREA.exponent     mm2
        leakage_mw(C)   = LEAKAGE_MW_PER_KIB * C / 1024                  mW

    Energy per bit grows about as the square root of the capacity (the word and bit lines and the
    H-tree to the farthest sub-array grow with the bank's side), area a little slower than the
    capacity (the decoders and sense amplifiers are shared by more cells). Energy is taken as
    proportional to the port width (per-bit energy independent of ``w``: the anchors have 32- and
    64-bit ports only, too few to fit a width exponent), area and leakage as independent of it.

    The coefficients and exponents are least-squares fits in log space to :data:`SRAM_ANCHORS`,
    computed when the module is imported (:data:`READ`, :data:`WRITE`, :data:`AREA`):

    * CACTI sweep of Bit Fusion (Sharma et al., ISCA 2018), 45 nm, ``itrs-hp`` cells and
      periphery, 360 K, one bank, one read and one write port of 32 bits, 128 B to 16 KiB:
      ``bitfusion/sram/cacti_sweep.csv`` in github.com/hsharma35/bitfusion (read and write
      energy, leakage, area);
    * Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm: a 64-bit read costs 10 pJ from
      an 8 KB SRAM, 20 pJ from 32 KB, 100 pJ from 1 MB (the 8 KB point is in
      ../shared/reference/systolic_and_energy.md; the 32 KB and 1 MB points are quoted from the
      same slide in public energy models, e.g. the energy table of SASiML, ETH Zurich SAFARI
      group, which lists "8KB: 10pJ, 32KB: 20pJ, 1MB: 100pJ, DRAM: 1.3-2.6nJ" at 45 nm, 0.9 V).

    Fit error (largest relative difference at an anchor, :data:`FIT_ERROR`): read 47% (CACTI's
    1 KiB point, where its organisation search steps; within 19% of every Horowitz point), write
    23%, area 29%, leakage 17%. Beyond 16 KiB the write, area and leakage fits are extrapolated
    (read is anchored up to 1 MB). Leakage is CACTI's ``itrs-hp`` figure at 360 K: a library of
    low-standby-power cells leaks far less, so the figure is an upper bound.

Banks
    An :class:`~peforge.sim.perf.accelerator.Sram` of ``size_kib`` KiB in ``banks`` banks of
    ``width_bytes`` each is ``banks`` macros of ``size / banks`` bytes with a ``width_bytes`` port
    next to the datapath that uses them: an access of ``width_bytes`` costs one bank's access,
    routing between banks is not counted, area is ``banks`` banks' area, leakage that of the whole
    capacity (:func:`sram_cost`). Traffic is charged per byte (:attr:`SramCost.read_pj_per_byte`),
    i.e. partial-width accesses pro rata.

DRAM: energy per bit by type (:data:`DRAM_TYPES`)
    Energy of moving one bit between DRAM and the accelerator, activation, data movement on the
    DRAM die and I/O together, the same for reads and writes. It belongs to the DRAM device and
    its interface, not to the accelerator's node. Each entry names its source. ``Dram.name`` is
    ``TYPE`` or ``TYPE-RATE`` (``ddr4-3200``, ``hbm2``); the type selects the entry
    (:func:`dram_type`).
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["SramAnchor", "PowerLaw", "SramCost", "DramType", "SRAM_ANCHORS", "READ", "WRITE",
           "AREA", "LEAKAGE_MW_PER_KIB", "FIT_ERROR", "DRAM_TYPES", "bank_read_pj",
           "bank_write_pj", "bank_area_mm2", "sram_leakage_mw", "sram_cost", "dram_type"]


@dataclass(frozen=True)
class SramAnchor:
    """One published SRAM figure at 45 nm: a bank of ``size_bytes`` with a ``width_bits`` port.

    ``read_pj``/``write_pj`` per access, ``leakage_mw`` of the bank, ``area_mm2``; None where the
    source gives no figure."""

    source: str
    size_bytes: int
    width_bits: int
    read_pj: float
    write_pj: float | None = None
    leakage_mw: float | None = None
    area_mm2: float | None = None


_CACTI = "CACTI, Bit Fusion sweep (45 nm itrs-hp)"
_HOROWITZ = "Horowitz ISSCC 2014 (45 nm)"

#: The published figures the SRAM model is fitted to (module docstring for the sources). CACTI
#: reports nJ and mW; these are its values in pJ and mW. Its sweep has two 4 KiB organisations
#: (one and two read/write ports): the single-port one is kept, like every other point.
SRAM_ANCHORS = (
    SramAnchor(_CACTI, 128, 32, 0.683701, 0.925317, 0.249588, 0.00149898),
    SramAnchor(_CACTI, 512, 32, 1.06097, 2.33869, 1.03183, 0.00760331),
    SramAnchor(_CACTI, 1024, 32, 1.13324, 3.29596, 1.78934, 0.00882362),
    SramAnchor(_CACTI, 2048, 32, 1.90318, 3.63853, 3.22997, 0.015132),
    SramAnchor(_CACTI, 4096, 32, 3.42953, 4.31011, 7.30186, 0.0300607),
    SramAnchor(_CACTI, 8192, 32, 6.39163, 5.56268, 13.6943, 0.0575061),
    SramAnchor(_CACTI, 16384, 32, 9.98170, 8.42090, 27.127, 0.108577),
    SramAnchor(_HOROWITZ, 8 * 1024, 64, 10.0),
    SramAnchor(_HOROWITZ, 32 * 1024, 64, 20.0),
    SramAnchor(_HOROWITZ, 1024 * 1024, 64, 100.0),
)


@dataclass(frozen=True)
class PowerLaw:
    """``coefficient * size_bytes ** exponent`` (times the port width in bits for energies)."""

    coefficient: float
    exponent: float

    def __call__(self, size_bytes: float) -> float:
        return self.coefficient * size_bytes ** self.exponent


def _fit(points: list[tuple[float, float]]) -> PowerLaw:
    """Least squares of ``log y = log c + p log x`` over ``(x, y)`` points."""
    x, y = (np.log(np.array(values, dtype=float)) for values in zip(*points))
    (log_c, p), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(x), x]), y, rcond=None)
    return PowerLaw(float(math.exp(log_c)), float(p))


#: Read energy per bit of the port (pJ) vs bank bytes, fitted to every anchor.
READ = _fit([(a.size_bytes, a.read_pj / a.width_bits) for a in SRAM_ANCHORS])
#: Write energy per bit of the port (pJ) vs bank bytes, fitted to the anchors with a write figure.
WRITE = _fit([(a.size_bytes, a.write_pj / a.width_bits) for a in SRAM_ANCHORS
              if a.write_pj is not None])
#: Bank area (mm2) vs bank bytes.
AREA = _fit([(a.size_bytes, a.area_mm2) for a in SRAM_ANCHORS if a.area_mm2 is not None])
#: Leakage per KiB of capacity (mW): total leakage over total KiB of the anchors that give it.
LEAKAGE_MW_PER_KIB = (sum(a.leakage_mw for a in SRAM_ANCHORS if a.leakage_mw is not None)
                      / sum(a.size_bytes / 1024 for a in SRAM_ANCHORS
                            if a.leakage_mw is not None))

#: The largest relative difference between the model and an anchor, per quantity (as measured
#: when the fit was made; tests/sim/perf/test_memory.py holds the model to it).
FIT_ERROR = {"read": 0.47, "write": 0.23, "area": 0.29, "leakage": 0.17}


def bank_read_pj(size_bytes: float, width_bits: int) -> float:
    """Energy of one read of ``width_bits`` from a bank of ``size_bytes`` (pJ, 45 nm)."""
    return width_bits * READ(size_bytes)


def bank_write_pj(size_bytes: float, width_bits: int) -> float:
    """Energy of one write of ``width_bits`` into a bank of ``size_bytes`` (pJ, 45 nm)."""
    return width_bits * WRITE(size_bytes)


def bank_area_mm2(size_bytes: float) -> float:
    """Area of a bank of ``size_bytes`` (mm2, 45 nm)."""
    return AREA(size_bytes)


def sram_leakage_mw(size_bytes: float) -> float:
    """Leakage of ``size_bytes`` of SRAM (mW, 45 nm itrs-hp cells at 360 K: an upper bound)."""
    return LEAKAGE_MW_PER_KIB * size_bytes / 1024


@dataclass(frozen=True)
class SramCost:
    """Costs of one banked SRAM: energy per byte read and written (pJ), leakage (mW) and area
    (mm2), at 45 nm."""

    read_pj_per_byte: float
    write_pj_per_byte: float
    leakage_mw: float
    area_mm2: float


@lru_cache(maxsize=1024)
def sram_cost(size_bytes: int, width_bytes: int, banks: int) -> SramCost:
    """Costs of ``size_bytes`` of SRAM in ``banks`` banks with a ``width_bytes`` port each: an
    access moves ``width_bytes`` through one bank of ``size_bytes / banks`` (module docstring)."""
    bank = size_bytes / banks
    bits = 8 * width_bytes
    return SramCost(bank_read_pj(bank, bits) / width_bytes, bank_write_pj(bank, bits) / width_bytes,
                    sram_leakage_mw(size_bytes), banks * bank_area_mm2(bank))


@dataclass(frozen=True)
class DramType:
    """Energy per bit moved between a DRAM type and the accelerator (pJ), and its source."""

    pj_per_bit: float
    source: str


#: Energy per bit by DRAM type, ordered as the sources put them: HBM3 < HBM2 < LPDDR4 < DDR4.
DRAM_TYPES = {
    "hbm3": DramType(3.9 * (1.1 / 1.2) ** 2,
                     "derived: HBM2's 3.9 pJ/bit scaled by the square of the core supply, 1.2 V "
                     "(HBM2E) to 1.1 V (HBM3; JEDEC JESD238, as summarised in Synopsys' HBM3 "
                     "glossary); the lower I/O swing (0.4 V) is not credited"),
    "hbm2": DramType(3.9, "O'Connor et al., Fine-Grained DRAM, MICRO 2017: HBM2 about 3.9 pJ/bit "
                          "(activation, on-die data movement and I/O)"),
    "lpddr4": DramType(14.0, "Ha, PhD thesis, Stanford 2018: 32 Gb LPDDR4 at 3.2 Gb/s/pin, "
                             "14.0 pJ/bit (DramDSE, from Micron IDD figures)"),
    "ddr4": DramType(1200 / 64, "BitMoD, HPCA 2025, simulator: 1200 pJ per 64 bits "
                                "(../shared/reference/bitserial_bitmod.md); below Horowitz's "
                                "1.3-2.6 nJ per 64-bit access of DDR3 at 1.5 V (ISSCC 2014)"),
}


def dram_type(name: str) -> str:
    """The type of a DRAM named ``TYPE`` or ``TYPE-RATE`` (``ddr4-3200`` -> ``ddr4``).

    Raises ValueError naming ``dram.name`` and the known types."""
    kind = name.split("-", 1)[0] if isinstance(name, str) else None
    if kind not in DRAM_TYPES:
        raise ValueError(f"dram.name: must be TYPE or TYPE-RATE with TYPE one of "
                         f"{', '.join(sorted(DRAM_TYPES))} (e.g. ddr4-3200), got {name!r}")
    return kind
