"""Area from synthesis: hand-checked counts, Liberty mapping, the cache, composition, the CLI."""

import gc
import hashlib
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from peforge.hw.common.parts import BlackBox, Trimmed, blackbox_module
from peforge.hw.systolic.top import OutputStationaryPE, SystolicArray
from peforge.hw.common.verilog import to_verilog
from peforge.models.systolic import SystolicConfig
from peforge.sim.eda import synth
from peforge.sim.families import families, family


class Register(wiring.Component):
    """``q`` is ``d`` one cycle later; with ``reset``, Amaranth's synchronous reset clears it."""

    def __init__(self, width: int, reset: bool):
        self._reset = reset
        super().__init__({"d": In(width), "q": Out(width)})

    def elaborate(self, platform):
        m = Module()
        register = Signal.like(self.d, reset_less=not self._reset)
        m.d.sync += register.eq(self.d)
        m.d.comb += self.q.eq(register)
        return m


class HalfAdder(wiring.Component):
    def __init__(self):
        super().__init__({"a": In(1), "b": In(1), "s": Out(2)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.s.eq(self.a + self.b)
        return m


def synthesize(component, name, **kwargs):
    return synth.synthesize(to_verilog(component, name), name, **kwargs)


def test_register_counts_by_hand():
    # Each bit is a D flip-flop (16 transistors) whose input is d AND NOT rst: NOR2(NOT d, rst),
    # an inverter (2) and a NOR2 (4), two gates deep.
    report = synthesize(Register(8, reset=True), "reg8")
    assert report.flip_flops == 8
    assert report.cells == {"$_SDFF_PP0_": 8}
    assert report.transistors == 8 * (16 + 2 + 4)
    assert report.nand2_eq == 8 * 22 / 4
    assert report.logic_depth == 2
    plain = synthesize(Register(8, reset=False), "reg8_plain")
    assert (plain.flip_flops, plain.transistors, plain.logic_depth) == (8, 8 * 16, 0)
    assert plain.cells == {"$_DFF_P_": 8}


def test_half_adder_counts_by_hand():
    # carry = NOT(NAND2(a, b)) (6 transistors); sum = NOR2(carry, NOR2(a, b)) (8): 3 gates deep.
    report = synthesize(HalfAdder(), "half_adder")
    assert (report.flip_flops, report.transistors, report.logic_depth) == (0, 14, 3)


def test_area_at_a_node_is_nand2_eq_times_its_nand2():
    report = synthesize(Register(8, reset=False), "reg8_plain")
    assert report.area_um2("sg13g2") == pytest.approx(32 * 7.2576)
    assert report.area_um2() == pytest.approx(32 * 24.0)
    assert all(node.source for node in synth.NODES.values())
    with pytest.raises(ValueError, match=r"^node: must be one of osu018, sg13g2, sky130, "
                                         r"nangate45, got 'n7'$"):
        report.area_um2("n7")


def test_liberty_mapping_onto_osu018():
    liberty = synth.default_liberty()
    dff_area = float(re.search(r"cell \(DFFPOSX1\) \{\s*area : ([0-9.]+)",
                               liberty.read_text()).group(1))
    report = synthesize(Register(8, reset=False), "reg8_plain", liberty=liberty)
    assert report.liberty["cells"] == {"DFFPOSX1": 8}
    assert report.liberty["area_um2"] == 8 * dff_area
    assert (report.liberty["nand2_cell"], report.liberty["nand2_um2"]) == ("NAND2X1", 24.0)
    reset = synthesize(Register(8, reset=True), "reg8", liberty=liberty)
    assert reset.liberty["cells"]["DFFPOSX1"] == 8
    assert reset.liberty["area_um2"] > 8 * dff_area


def test_second_run_is_a_cache_hit(tmp_path, monkeypatch):
    monkeypatch.setenv("PEFORGE_CACHE", str(tmp_path))
    verilog = to_verilog(Register(4, reset=True), "reg4")
    first = synth.synthesize(verilog, "reg4")
    assert not first.cached
    assert len(list((tmp_path / "synth").glob("reg4-*.json"))) == 1

    def no_yosys(*args):
        raise AssertionError("yosys ran although the result is cached")

    monkeypatch.setattr(synth, "run_yosys", no_yosys)
    second = synth.synthesize(verilog, "reg4")
    assert second.cached and second.to_dict() == {**first.to_dict(), "cached": True}
    with pytest.raises(AssertionError, match="yosys ran"):  # other Verilog: another key
        synth.synthesize(to_verilog(Register(5, reset=True), "reg4"), "reg4")


def test_yosys_failure_names_the_log(tmp_path, monkeypatch):
    monkeypatch.setenv("PEFORGE_CACHE", str(tmp_path))
    with pytest.raises(synth.SynthError, match=r"^yosys failed on broken \(exit 1\); see "
                                               r".*/synth/work-broken-.*/yosys\.log$"):
        synth.synthesize("module broken(input a; endmodule\n", "broken")


def test_trimmed_and_blackbox_reject_bad_ports():
    numerics = SystolicConfig().mac
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the rejected parts were never elaborated
        with pytest.raises(ValueError, match=r"^unused: 'a_in' is not an output port of the "
                                             r"part$"):
            Trimmed(OutputStationaryPE(numerics), unused=("a_in",))
        with pytest.raises(ValueError, match=r"^tied: 'acc' is not an input port of the part$"):
            Trimmed(OutputStationaryPE(numerics), tied={"acc": 0})
        with pytest.raises(ValueError, match=r"^name: must be a Verilog identifier, got 'p e'$"):
            BlackBox(OutputStationaryPE.signature_of(numerics), "p e")
        gc.collect()


def test_blackbox_declares_the_signature_ports():
    text = blackbox_module(OutputStationaryPE.signature_of(SystolicConfig(bits=4).mac), "pe")
    assert text.startswith("(* blackbox *)\nmodule peforge_blackbox_pe(")
    assert "  input [3:0] a_in;" in text and "  output [19:0] acc;" in text
    assert "  input drain;" in text


def _within(composed, flat, tolerance):
    assert abs(composed / flat - 1) <= tolerance, f"composed {composed}, flat {flat}"


def test_the_default_liberty_ships_with_peforge(tmp_path, monkeypatch):
    """With Debian's qflow folder hidden and no override, the default is the packaged file, the
    one the shipped energy table was measured with, and synthesis maps onto it."""
    import builtins
    import io

    import peforge.sim.eda

    def hide(real):
        def hidden(path, *args, **kwargs):
            if not isinstance(path, int) and os.fspath(path).startswith("/usr/share/qflow"):
                raise FileNotFoundError(2, "No such file or directory", path)
            return real(path, *args, **kwargs)
        return hidden

    for module, name in ((builtins, "open"), (io, "open"), (os, "stat")):
        monkeypatch.setattr(module, name, hide(getattr(module, name)))
    assert not os.path.exists("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")
    monkeypatch.delenv(synth.LIBERTY_ENV, raising=False)
    monkeypatch.setenv("PEFORGE_CACHE", str(tmp_path))
    liberty = synth.default_liberty()
    packaged = Path(peforge.sim.eda.__file__).parent / "data" / "osu018" / "osu018_stdcells.lib"
    assert liberty == packaged
    table = json.loads((packaged.parent.parent / "op_energy.json").read_text())
    assert hashlib.sha256(liberty.read_bytes()).hexdigest() == \
        table["measured_with"]["liberty_sha256"] == synth.liberty_sha256(liberty)
    report = synthesize(Register(4, reset=False), "reg4_plain", liberty=liberty)
    assert not report.cached and report.liberty["cells"] == {"DFFPOSX1": 4}
    assert report.liberty["file"] == "osu018_stdcells.lib"


def test_liberty_override_order(monkeypatch, tmp_path):
    monkeypatch.delenv(synth.LIBERTY_ENV, raising=False)
    assert synth.default_liberty() == synth.OSU018_LIBERTY
    monkeypatch.setenv(synth.LIBERTY_ENV, str(tmp_path / "env.lib"))
    assert synth.default_liberty() == tmp_path / "env.lib"
    assert synth.default_liberty(tmp_path / "arg.lib") == tmp_path / "arg.lib"


@pytest.mark.parametrize("size, dataflow", [
    (2, "os"), (2, "ws"), (4, "os"), (4, "ws"),
    pytest.param(8, "os", marks=pytest.mark.slow),  # flat: ~75 s of yosys
    pytest.param(8, "ws", marks=pytest.mark.slow),
])
def test_composition_is_within_5_percent_of_flat(size, dataflow):
    systolic = family("systolic")
    config = systolic.make_config(rows=size, cols=size, dataflow=dataflow)
    liberty = synth.default_liberty()
    flat = synth.synth_family(systolic, config, liberty=liberty, compose_parts=False)
    composed = synth.synth_family(systolic, config, liberty=liberty, compose_parts=True)
    assert not flat.parts and composed.parts
    assert sum(part["count"] for part in composed.parts
               if part["name"].startswith("pe")) == size * size
    _within(composed.nand2_eq, flat.nand2_eq, 0.05)
    _within(composed.flip_flops, flat.flip_flops, 0.05)
    _within(composed.liberty["area_um2"], flat.liberty["area_um2"], 0.05)


@pytest.mark.parametrize("dataflow", ["os", pytest.param("ws", marks=pytest.mark.slow)])
def test_large_array_rest_extrapolates_the_skew_registers(dataflow):
    """Above 8 x 8 the rest is the 8 x 8 array with black-box PEs plus the extra skew stages;
    against the 16 x 16 array with black-box PEs it is within 0.5% and one counter bit."""
    config = SystolicConfig(rows=16, cols=16, dataflow=dataflow)
    parts = family("systolic").area_parts(config)
    names = [part.name for part in parts]
    assert "rest" in names and "skew_operand" in names
    reports = {part.name: (part.count, synth.synthesize(
        to_verilog(part.build(), f"systolic_{part.name}") + "".join(
            blackbox_module(sig, name) for name, sig in part.black_boxes),
        f"systolic_{part.name}"))
        for part in parts if not part.name.startswith("pe")}
    extrapolated = synth.compose([(name, count, report)
                                  for name, (count, report) in reports.items()], "rest")
    signature = SystolicArray.pe_class(dataflow).signature_of(config.mac)
    whole = SystolicArray.from_config(config, pe=lambda _: BlackBox(signature, "pe"))
    exact = synth.synthesize(to_verilog(whole, "rest16") + blackbox_module(signature, "pe"),
                             "rest16")
    _within(extrapolated.nand2_eq, exact.nand2_eq, 0.005)
    assert abs(extrapolated.flip_flops - exact.flip_flops) <= 1


def test_composition_is_the_default_above_8x8_only(monkeypatch):
    calls = []
    monkeypatch.setattr(synth, "synthesize",
                        lambda verilog, top, liberty=None: calls.append(top) or _stub(top))
    systolic = family("systolic")
    synth.synth_family(systolic, systolic.make_config(rows=8, cols=8))
    assert calls == ["systolic"]
    calls.clear()
    report = synth.synth_family(systolic, systolic.make_config(rows=9, cols=8))
    assert calls == ["systolic_pe", "systolic_pe_right", "systolic_pe_bottom",
                     "systolic_pe_corner", "systolic_rest", "systolic_skew_operand",
                     "systolic_skew_bit"]
    assert [(p["name"], p["count"]) for p in report.parts] == [
        ("pe", 56), ("pe_right", 8), ("pe_bottom", 7), ("pe_corner", 1), ("rest", 1),
        ("skew_operand", 8), ("skew_bit", 1)]
    assert report.flip_flops == 56 + 8 + 7 + 1 + 1 + 8 + 1  # the stub's one per part x count
    with pytest.raises(ValueError, match=r"^compose: lut has no area parts; families that "
                                         r"compose: systolic"):
        synth.synth_family(family("lut"), family("lut").make_config(), compose_parts=True)


def _stub(top):
    return synth.AreaReport(top=top, cells={"$_DFF_P_": 1}, transistors=16, flip_flops=1,
                            logic_depth=1)


#: Small configurations per family, so that flat synthesis of each stays quick.
SMALL = {"systolic": {"rows": 1, "cols": 1}, "bitserial": {"rows": 1, "cols": 1, "lanes": 1},
         "lut": {"m": 1, "n": 2}, "sparse-dsp": {"chain": 4}, "lmul": {"lanes": 1},
         "lmul-dot": {"lanes": 1}}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(families()))
def test_every_family_synthesises_flat(name):
    fam = family(name)
    report = synth.synth_family(fam, fam.make_config(**SMALL.get(name, {})),
                                compose_parts=False)
    assert report.transistors > 0 and report.flip_flops > 0 and report.logic_depth > 0


def peforge(*args):
    return subprocess.run([sys.executable, "-m", "peforge.sim.cli", *args],
                          capture_output=True, text=True)


def test_cli_prints_and_writes_json(tmp_path):
    out = tmp_path / "area.json"
    result = peforge("synth", "systolic", "--rows", "1", "--cols", "1", "--no-liberty",
                     "--node", "sky130", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "top systolic: flat synthesis" in result.stdout
    assert re.search(r"^  NAND2-eq\s+\d+ \(transistors / 4\)$", result.stdout, re.MULTILINE)
    assert re.search(r"^  area\s+\d+ um2 at sky130 ", result.stdout, re.MULTILINE)
    data = json.loads(out.read_text())
    assert data["family"] == "systolic" and data["parameters"]["rows"] == 1
    assert data["node"] == "sky130" and data["liberty"] is None
    assert data["area_um2"] == pytest.approx(data["transistors"] / 4 * 3.7536)


@pytest.mark.parametrize("args, message", [
    (["--node", "n7"], "peforge: error: node: must be one of osu018, sg13g2, sky130, nangate45, "
                       "got 'n7'"),
    (["--liberty", "/no/such.lib"], "peforge: error: liberty: no such file /no/such.lib"),
    (["--liberty", "/no/such.lib", "--no-liberty"],
     "peforge: error: liberty: --liberty and --no-liberty exclude each other"),
    (["--rows", "0"], "peforge: error: rows: must be an integer in 1..256, got 0"),
])
def test_cli_errors_are_one_line(args, message):
    result = peforge("synth", "systolic", *args)
    assert result.returncode == 2
    assert result.stderr == message + "\n" and result.stdout == ""


def test_cli_malformed_liberty_is_one_line(tmp_path):
    bad = tmp_path / "bad.lib"
    bad.write_text("library(broken) { cell (X) { area : ;\n")
    result = subprocess.run(
        [sys.executable, "-m", "peforge.sim.cli", "synth", "systolic", "--rows", "1", "--cols",
         "1", "--liberty", str(bad)], capture_output=True, text=True,
        env={**os.environ, "PEFORGE_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 2 and result.stdout == ""
    assert re.fullmatch(r"peforge: error: yosys failed on systolic \(exit 1\); see "
                        r"\S+/yosys\.log\n", result.stderr)
    # Nothing but the kept work folder (and the entry's lock) is left in the cache.
    assert not list((tmp_path / "cache" / "synth").glob("*.json"))


def test_cli_compose_without_parts_is_one_line():
    result = peforge("synth", "lut", "--compose")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == ("peforge: error: compose: lut has no area parts; families that "
                             "compose: systolic\n")
