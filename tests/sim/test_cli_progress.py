"""Progress output: ``PEFORGE_PROGRESS=1`` shows the progress lines of ``synth``, ``demo``,
``numerics`` and ``sim`` and the bar of ``sweep`` on a stderr that is not a terminal,
``PEFORGE_PROGRESS=0`` hides them, and the results on stdout are the same either way. (``gen``
and ``verify``: tests/sim/test_cli_tool.py.)"""

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from peforge.sim.cli import main

ROOT = Path(__file__).resolve().parents[2]
#: A stage's two lines: ``peforge: <message> ...`` and ``peforge: <message>: <seconds> s``.
STAGE = "peforge: {0} ...\npeforge: {0}: " + r"\d+\.\d s\n"


def _both(monkeypatch, capsys, args):
    """``(stdout, stderr)`` of ``peforge args`` with progress shown, then with it hidden; asserts
    status 0 and the same stdout, and that nothing reaches stderr when hidden."""
    seen = []
    for progress in ("1", "0"):
        monkeypatch.setenv("PEFORGE_PROGRESS", progress)
        assert main(args) == 0
        seen.append(capsys.readouterr())
    (out, err), (quiet_out, quiet_err) = seen
    assert out == quiet_out and out and quiet_err == ""
    return out, err


def _stages(*messages) -> str:
    return "".join(STAGE.format(re.escape(message)) for message in messages)


def test_synth(monkeypatch, capsys):
    _out, err = _both(monkeypatch, capsys, ["synth", "systolic", "--rows", "2", "--cols", "2",
                                            "--no-liberty"])
    assert re.fullmatch(_stages("synth systolic: synthesising with yosys"), err), err


def test_sim(monkeypatch, capsys):
    _out, err = _both(monkeypatch, capsys, [
        "sim", "--config", str(ROOT / "examples" / "accel.yaml"), "--topology",
        str(ROOT / "examples" / "layers.csv"), "--cycles-only"])
    # examples/layers.csv holds 3 GEMMs; accel.yaml's family is systolic.
    assert len((ROOT / "examples" / "layers.csv").read_text().splitlines()) == 4
    assert re.fullmatch(_stages("sim systolic: mapping and simulating 3 GEMMs (recurrence)"),
                        err), err


def test_numerics(monkeypatch, capsys):
    from peforge.sim.numerics import study

    def fake_measure(spec, gemms, count, model):  # the encoder's run is the slow part
        return study.Measurement(spec, spec.split(":")[0], gemms, 8.0, 0.5, 0.25, 0.75, 0.125,
                                 None, count)

    monkeypatch.setattr(study, "measure", fake_measure)
    out, err = _both(monkeypatch, capsys, ["numerics", "--arith", "fp32", "--arith",
                                           "sparse-dsp:nm=2:4", "--sentences", "3"])
    assert re.fullmatch(_stages(
        "numerics 1/2 fp32 (all GEMMs): running the encoder on 3 sentences",
        "numerics 2/2 sparse-dsp:nm=2:4 (weights GEMMs): running the encoder on 3 sentences"),
        err), err
    assert out.splitlines()[1].split() == ["fp32", "all", "8.00", "0.50000", "0.25000",
                                           "0.7500", "0.1250"]


def test_demo(monkeypatch, capsys, tmp_path):
    from peforge.sim import demo

    job = SimpleNamespace(cycles=5)
    monkeypatch.setattr(demo, "write_design", lambda fam, config, out: (out / "v", out / "j"))
    monkeypatch.setattr(demo, "verify", lambda fam, config: SimpleNamespace(
        jobs=[job, job], passed=True, build_dir="build"))
    monkeypatch.setattr(demo, "run_study", lambda name: [Path("report.md")])
    monkeypatch.setattr(demo, "run_demo_sweep", lambda db, out: print("[sweep demo]"))
    out, err = _both(monkeypatch, capsys, ["demo", "--out", str(tmp_path)])
    names = list(demo.families())
    assert re.fullmatch(_stages(*(f"demo {number}/{len(names)} {name}: generating and "
                                  "verifying" for number, name in enumerate(names, 1)),
                                "demo: L-Mul accuracy and area report"), err), err
    assert out.count("Verilator: PASS, 2 GEMM jobs") == len(names)


@pytest.fixture
def small_sweep(tmp_path):
    from tests.sim.explore.test_sweep import SMALL, write_sweep

    return write_sweep(tmp_path, SMALL)


def _sweep(monkeypatch, capsys, tmp_path, path, progress: str, *options) -> tuple[str, str]:
    monkeypatch.setenv("PEFORGE_PROGRESS", progress)
    db = tmp_path / f"{progress}{''.join(options)}.db"
    assert main(["sweep", str(path), "--db", str(db), "--workers", "1", *options]) == 0
    out, err = capsys.readouterr()
    return re.sub(r"\d+\.\d s\n", "S s\n", out.replace(str(db), "DB")), err


def test_sweep_bar(monkeypatch, capsys, tmp_path, small_sweep):
    out, err = _sweep(monkeypatch, capsys, tmp_path, small_sweep, "1")
    # The bar's last state: all 12 points of SMALL (2 SRAM sizes x (4 systolic + 2 bitserial)).
    assert re.search(r"small: 100%\|.*\| 12/12 ", err.split("\r")[-1]), err
    hidden = _sweep(monkeypatch, capsys, tmp_path, small_sweep, "0")
    quiet = _sweep(monkeypatch, capsys, tmp_path, small_sweep, "1", "--quiet")
    assert hidden == quiet == (out, "")
    assert out == ("sweep small: grid search at level model: 12 points asked, 12 evaluated (7 "
                   "with failed rows), 0 already stored, S s\nresults: DB\n")
