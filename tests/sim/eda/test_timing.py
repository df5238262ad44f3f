"""Static timing with OpenSTA: a path checked by hand against the Liberty's own delay tables, the
int8 PE's figure, the cache, and one-line errors."""

import functools
import re
import subprocess
import sys

import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from peforge.hw.common.verilog import to_verilog
from peforge.sim.eda import synth, timing
from peforge.sim.families import family

needs_sta = pytest.mark.skipif(
    timing.shutil.which("sta") is None,
    reason="needs Debian's opensta (apt-get install opensta)")


class Toggle(wiring.Component):
    """A 1-bit register ``state`` loaded with its own inverse: DFF -> inverter -> DFF."""

    q: Out(1)

    def elaborate(self, platform):
        m = Module()
        state = Signal(name="state", reset_less=True)
        m.d.sync += state.eq(~state)
        m.d.comb += self.q.eq(state)
        return m


# --- an independent reader of Liberty lookup tables (bilinear, linear beyond the axes) ----------

def _groups(text: str, start: int = 0):
    """(name, argument, body) of each top-level ``name (argument) { body }`` in ``text``."""
    pattern = re.compile(r"(\w+)\s*\(([^()]*)\)\s*\{")
    position = start
    while (match := pattern.search(text, position)) is not None:
        depth, index = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
        yield match.group(1), match.group(2).strip().strip('"'), text[match.end():index - 1]
        position = index


def _numbers(body: str, name: str) -> list[float]:
    found = re.search(rf"{name}\s*\(([^)]*)\)", body).group(1)
    return [float(value) for value in re.findall(r"-?[0-9.]+(?:e-?\d+)?", found)]


class Library:
    def __init__(self, text: str):
        library = next(_groups(text))[2]
        self.templates, self.cells = {}, {}
        for name, argument, body in _groups(library):
            if name == "lu_table_template":
                self.templates[argument] = re.findall(r"variable_\d\s*:\s*(\w+)", body)
            elif name == "cell":
                self.cells[argument] = body

    @functools.cache
    def pin(self, cell: str, pin: str) -> str:
        return next(body for name, argument, body in _groups(self.cells[cell])
                    if name == "pin" and argument == pin)

    def capacitance(self, cell: str, pin: str, edge: str) -> float:
        return float(re.search(rf"{edge}_capacitance\s*:\s*([0-9.]+)",
                               self.pin(cell, pin)).group(1))

    def direction(self, cell: str, pin: str) -> str:
        return re.search(r"direction\s*:\s*(\w+)", self.pin(cell, pin)).group(1)

    def arcs(self, cell: str, pin: str) -> list[tuple[str, str]]:
        """(related pin, timing sense) of each combinational arc into output ``pin``."""
        return [(re.search(r'related_pin\s*:\s*"?(\w+)"?', body).group(1),
                 re.search(r"timing_sense\s*:\s*(\w+)", body).group(1))
                for name, _argument, body in _groups(self.pin(cell, pin))
                if name == "timing" and "timing_type" not in body]

    def table(self, cell: str, pin: str, timing_type: str | None, kind: str,
              related: str | None = None, **axes) -> float:
        """Value of table ``kind`` of the arc into ``pin`` (from pin ``related``, when given) at
        ``axes`` (template variables)."""
        for name, _argument, body in _groups(self.pin(cell, pin)):
            found_type = re.search(r"timing_type\s*:\s*(\w+)", body)
            if name != "timing" or (found_type.group(1) if found_type else None) != timing_type:
                continue
            found_pin = re.search(r'related_pin\s*:\s*"?(\w+)"?', body)
            if related is not None and found_pin.group(1) != related:
                continue
            for table_name, template, table in _groups(body):
                if table_name == kind:
                    variables = self.templates[template]
                    x = [axes[variables[0]], _numbers(table, "index_1")]
                    y = [axes[variables[1]], _numbers(table, "index_2")]
                    values = _numbers(table, "values")
                    return _bilinear(x, y, [values[i * len(y[1]):(i + 1) * len(y[1])]
                                            for i in range(len(x[1]))])
        raise KeyError((cell, pin, timing_type, kind))


def _segment(value: float, axis: list[float]) -> int:
    index = 0
    while index < len(axis) - 2 and value > axis[index + 1]:
        index += 1
    return index


def _bilinear(x, y, rows) -> float:
    (xv, xs), (yv, ys) = x, y
    i, j = _segment(xv, xs), _segment(yv, ys)
    tx = (xv - xs[i]) / (xs[i + 1] - xs[i])
    ty = (yv - ys[j]) / (ys[j + 1] - ys[j])
    return ((1 - tx) * (1 - ty) * rows[i][j] + tx * (1 - ty) * rows[i + 1][j]
            + (1 - tx) * ty * rows[i][j + 1] + tx * ty * rows[i + 1][j + 1])


def _toggle_path_by_hand(lib: Library) -> tuple[float, float]:
    """Worst of the two edges of DFFPOSX1 CLK->Q -> INVX1 -> DFFPOSX1 D setup, ideal clock (slew
    0); the Q net loads INVX1's A pin (the output port adds no load), the inverter loads D. Also
    the port path: the worst CLK->Q alone (the output port's required time is 0)."""
    flop, inverter, opposite = "DFFPOSX1", "INVX1", {"rise": "fall", "fall": "rise"}
    paths, port_paths = [], []
    for q_edge in ("rise", "fall"):
        d_edge = opposite[q_edge]
        q_load = lib.capacitance(inverter, "A", q_edge)
        launch = dict(total_output_net_capacitance=q_load, input_net_transition=0.0)
        clock_to_q = lib.table(flop, "Q", "rising_edge", f"cell_{q_edge}", **launch)
        q_slew = lib.table(flop, "Q", "rising_edge", f"{q_edge}_transition", **launch)
        through = dict(total_output_net_capacitance=lib.capacitance(flop, "D", d_edge),
                       input_net_transition=q_slew)
        inverter_delay = lib.table(inverter, "Y", None, f"cell_{d_edge}", **through)
        d_slew = lib.table(inverter, "Y", None, f"{d_edge}_transition", **through)
        setup = lib.table(flop, "D", "setup_rising", f"{d_edge}_constraint",
                          related_pin_transition=0.0, constrained_pin_transition=d_slew)
        paths.append(clock_to_q + inverter_delay + setup)
        port_paths.append(clock_to_q)
    return max(paths), max(port_paths)


class Parity(wiring.Component):
    """Eight registered input bits, their parity registered: the one register-to-register logic
    is an 8-input XOR, by hand ceil(log2 8) = 3 levels of 2-input XOR/XNOR cells."""

    d: In(8)
    q: Out(1)

    def elaborate(self, platform):
        m = Module()
        bits = Signal(8, name="bits", reset_less=True)
        parity = Signal(name="parity", reset_less=True)
        m.d.sync += [bits.eq(self.d), parity.eq(bits.xor())]
        m.d.comb += self.q.eq(parity)
        return m


def _netlist(verilog: str, top: str, work) -> str:
    """The mapped netlist the timing flow times (its yosys step, run here)."""
    (work / "design.v").write_text(verilog)
    (work / "cells.lib").write_bytes(synth.default_liberty().read_bytes())
    (work / "abc.constr").write_text(f"set_driving_cell {timing.DRIVING_CELL}\n"
                                     f"set_load {timing.OUTPUT_LOAD_PF}\n")
    (work / "netlist.ys").write_text(timing.netlist_script(top))
    assert synth.run_yosys(work / "netlist.ys", work / "yosys.log", work) == 0
    return (work / "netlist.v").read_text()


def _path_by_hand(lib: Library, netlist: str, pins: list) -> float:
    """Arrival plus setup of the path through ``pins`` (OpenSTA's pins and edges), computed here
    from the Liberty tables: each arc's delay at the load of its output net (the capacitance of
    every cell input on it, for the edge there; ports add none) and the slew at its input. As in
    a timing engine, a net's slew is the worst over every arc that drives it (not only the
    path's); the clock is ideal (slew 0); setup is read at the capture flip-flop's D slew."""
    cells = {name: cell for cell, name in
             re.findall(r"^\s*(\w+)\s+(\w+)\s*\(", netlist, re.MULTILINE)
             if cell not in ("module", "input", "output", "wire", "assign")}
    connections = {}
    for name, body in re.findall(r"^\s*\w+\s+(\w+)\s*\((.*?)\);", netlist,
                                 re.MULTILINE | re.DOTALL):
        for pin, net in re.findall(r"\.(\w+)\(\s*(.*?)\s*\)", body):
            connections.setdefault(net, []).append((name, pin))
    net_of = {(name, pin): net for net, pins_on in connections.items() for name, pin in pins_on}
    opposite = {"rise": "fall", "fall": "rise"}

    def load(net: str, edge: str) -> float:
        return sum(lib.capacitance(cells[name], pin, edge) for name, pin in connections[net]
                   if lib.direction(cells[name], pin) == "input")

    def lookup(instance: str, in_pin: str, out_pin: str, kind: str, edge: str,
               in_slew: float) -> float:
        """Table ``kind`` (``cell`` or ``transition``) of one arc, output edge ``edge``."""
        clocked = in_pin == "CLK"
        return lib.table(cells[instance], out_pin, "rising_edge" if clocked else None,
                         f"cell_{edge}" if kind == "cell" else f"{edge}_transition",
                         None if clocked else in_pin, input_net_transition=in_slew,
                         total_output_net_capacitance=load(net_of[(instance, out_pin)], edge))

    @functools.cache
    def slew(net: str, edge: str) -> float:
        """Worst slew of ``net`` for ``edge`` over every arc that drives it."""
        drivers = [(name, pin) for name, pin in connections[net]
                   if lib.direction(cells[name], pin) == "output"]
        if not drivers:
            return 0.0  # an input port: ideal
        (instance, out_pin), = drivers
        if out_pin == "Q":
            return lookup(instance, "CLK", "Q", "transition", edge, 0.0)
        in_edges = {"positive_unate": [edge], "negative_unate": [opposite[edge]],
                    "non_unate": ["rise", "fall"]}
        return max(lookup(instance, related, out_pin, "transition", edge,
                          slew(net_of[(instance, related)], in_edge))
                   for related, sense in lib.arcs(cells[instance], out_pin)
                   for in_edge in in_edges[sense])

    total = 0.0
    for (source, source_edge), (target, edge) in zip(pins, pins[1:]):
        (instance, in_pin), (out_instance, out_pin) = source.split("/"), target.split("/")
        if instance == out_instance:  # else a net: no wire delay
            in_slew = 0.0 if in_pin == "CLK" else slew(net_of[(instance, in_pin)], source_edge)
            total += lookup(instance, in_pin, out_pin, "cell", edge, in_slew)
    capture, edge = pins[-1][0].split("/")[0], pins[-1][1]
    return total + lib.table(cells[capture], "D", "setup_rising", f"{edge}_constraint",
                             related_pin_transition=0.0,
                             constrained_pin_transition=slew(net_of[(capture, "D")], edge))


@needs_sta
def test_parity_path_matches_a_hand_count_and_the_liberty_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("PEFORGE_CACHE", str(tmp_path))
    verilog, liberty = to_verilog(Parity(), "parity"), synth.default_liberty()
    report = timing.time_design(verilog, "parity", liberty)
    assert report.scope == "register-to-register" and report.end == "parity"
    assert re.fullmatch(r"bits\[[0-7]\]", report.start)
    assert report.cells[0] == report.cells[-1] == "DFFPOSX1"
    assert len(report.cells[1:-1]) == 3
    assert set(report.cells[1:-1]) <= {"XOR2X1", "XNOR2X1"}
    (tmp_path / "work").mkdir()
    expected = _path_by_hand(Library(liberty.read_text()), _netlist(verilog, "parity",
                                                                    tmp_path / "work"),
                             report.pins)
    assert report.critical_ns == pytest.approx(expected, abs=2e-5), expected


@needs_sta
def test_one_pe_array_path_matches_the_liberty_tables(tmp_path, monkeypatch):
    """The int8 1 x 1 systolic array's register-to-register path (its accumulator's feedback,
    over 30 cells), walked arc by arc through the Liberty tables."""
    monkeypatch.setenv("PEFORGE_CACHE", str(tmp_path))
    fam, liberty = family("systolic"), synth.default_liberty()
    verilog = to_verilog(fam.generator(fam.make_config(rows=1, cols=1)), fam.top_name)
    report = timing.time_design(verilog, fam.top_name, liberty)
    assert report.scope == "register-to-register" and len(report.cells) > 30
    (tmp_path / "work").mkdir()
    netlist = _netlist(verilog, fam.top_name, tmp_path / "work")
    expected = _path_by_hand(Library(liberty.read_text()), netlist, report.pins)
    assert report.critical_ns == pytest.approx(expected, abs=2e-5), expected


@needs_sta
def test_toggle_path_matches_the_liberty_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("PEFORGE_CACHE", str(tmp_path))
    liberty = synth.default_liberty()
    report = timing.time_design(to_verilog(Toggle(), "toggle"), "toggle", liberty)
    assert report.cells == ["DFFPOSX1", "INVX1", "DFFPOSX1"]
    assert (report.start, report.start_kind) == ("state", "register")
    assert (report.end, report.end_kind) == ("state", "register")
    assert report.scope == "register-to-register"
    expected, port_expected = _toggle_path_by_hand(Library(liberty.read_text()))
    assert report.critical_ns == pytest.approx(expected, abs=2e-4)
    assert (report.port_start, report.port_end) == ("state", "q")
    assert report.port_ns == pytest.approx(port_expected, abs=2e-4)
    assert report.fmax_mhz == pytest.approx(1000 / expected, rel=1e-3)
    assert not report.cached
    again = timing.time_design(to_verilog(Toggle(), "toggle"), "toggle", liberty)
    assert again.cached and again.critical_ns == report.critical_ns
    assert not list((tmp_path / "timing").glob("work-*"))


@needs_sta
def test_int8_systolic_pe_critical_path(tmp_path, monkeypatch):
    """The reference note (shared/reference/toolchain.md) measured ~5.6 ns for the int8 PE. In a
    2 x 2 array the register-to-register path runs from a PE's forwarded operand register through
    its neighbour's multiplier into that neighbour's accumulator; the port paths (the operand
    ports of the edge PEs) are reported apart and do not set the clock."""
    monkeypatch.setenv("PEFORGE_CACHE", str(tmp_path))
    fam = family("systolic")
    report = timing.time_family(fam, fam.make_config(rows=2, cols=2), synth.default_liberty())
    assert 4.5 < report.critical_ns < 6.5 and report.scope == "register-to-register"
    assert re.fullmatch(r"pe_\d_\d\.[ab]_out\[\d+\]", report.start)
    assert re.fullmatch(r"pe_\d_\d\.acc\[\d+\]", report.end)
    assert report.start_kind == report.end_kind == "register"
    assert report.cells[0] == report.cells[-1] == "DFFPOSX1" and len(report.cells) > 20
    assert report.port_start.startswith("i_stream__payload[") and report.port_ns is not None


def test_missing_sta_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(timing.TimingError, match=r"^timing: OpenSTA not found \(command sta; "
                                                 r"apt-get install opensta\)$"):
        timing.time_design("module t(); endmodule", "t", synth.OSU018_LIBERTY)


@needs_sta
def test_unreadable_liberty_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"^liberty: cannot read .*missing\.lib"):
        timing.time_design("module t(); endmodule", "t", tmp_path / "missing.lib")


@needs_sta
def test_cli_timing(tmp_path):
    env_cache = {"PEFORGE_CACHE": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "peforge.sim.cli", "synth", "systolic", "--rows",
                          "1", "--cols", "1", "--timing"], capture_output=True, text=True,
                         env={**__import__("os").environ, **env_cache})
    assert run.returncode == 0, run.stderr
    critical = float(re.search(r"critical path\s+([0-9.]+) ns", run.stdout).group(1))
    fmax = float(re.search(r"Fmax\s+([0-9.]+) MHz", run.stdout).group(1))
    assert fmax == pytest.approx(1000 / critical, rel=1e-3)
    assert re.search(r"from\s+pe_0_0\.acc\[\d+\] \(register\)", run.stdout)
    assert re.search(r"to\s+pe_0_0\.acc\[\d+\] \(register\)", run.stdout)
    assert re.search(r"port path\s+[0-9.]+ ns, i_stream__payload\[\d+\] -> ", run.stdout)
    bad = subprocess.run([sys.executable, "-m", "peforge.sim.cli", "synth", "systolic",
                          "--timing", "--no-liberty"], capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "peforge: error: timing: --timing needs a Liberty library (drop --no-liberty)"]


@pytest.mark.parametrize("critical, port, in_place", [(4.0, 8.0, 125.0), (8.0, 4.0, 125.0),
                                                      (5.0, None, 200.0)])
def test_the_clock_in_place_is_set_by_the_worse_of_the_register_and_port_paths(critical, port,
                                                                                in_place):
    report = timing.TimingReport(
        top="top", scope="register-to-register", critical_ns=critical, arrival_ns=critical,
        setup_ns=0.0, start="a", end="b", start_kind="register", end_kind="register", cells=[],
        pins=[], port_ns=port, port_start="", port_end="", liberty="x.lib", liberty_sha256="")
    assert report.fmax_mhz == 1000 / critical
    assert report.fmax_in_place_mhz == in_place
