"""Static timing with OpenSTA: a path checked by hand against the Liberty's own delay tables, the
int8 PE's figure, the cache, and one-line errors."""

import re
import subprocess
import sys

import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from peforge.hw.common.verilog import to_verilog
from peforge.sim.eda import synth, timing
from peforge.sim.families import family

needs_sta = pytest.mark.skipif(
    synth.default_liberty() is None or timing.shutil.which("sta") is None,
    reason="needs Debian's opensta and qflow-tech-osu018 (apt-get install opensta "
           "qflow-tech-osu018)")


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

    def pin(self, cell: str, pin: str) -> str:
        return next(body for name, argument, body in _groups(self.cells[cell])
                    if name == "pin" and argument == pin)

    def capacitance(self, cell: str, pin: str, edge: str) -> float:
        return float(re.search(rf"{edge}_capacitance\s*:\s*([0-9.]+)",
                               self.pin(cell, pin)).group(1))

    def table(self, cell: str, pin: str, timing_type: str | None, kind: str, **axes) -> float:
        """Value of table ``kind`` of the arc into ``pin`` at ``axes`` (template variables)."""
        for name, _argument, body in _groups(self.pin(cell, pin)):
            found_type = re.search(r"timing_type\s*:\s*(\w+)", body)
            if name != "timing" or (found_type.group(1) if found_type else None) != timing_type:
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
