"""The study registry behind ``peforge report <study>``."""

import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest

from peforge.sim import studies
from peforge.sim.cli import main
from peforge.sim.studies import STUDIES, study


def test_each_study_module_runs_with_the_options_it_declares():
    assert list(STUDIES) == ["lmul", "bitserial", "lut", "sparse-dsp", "numerics", "cost"]
    for entry in STUDIES.values():
        run = inspect.signature(
            __import__(f"peforge.sim.studies.{entry.module}", fromlist=["run"]).run)
        assert list(run.parameters)[0] == "out_dir"
        keywords = [name for name, p in run.parameters.items() if p.kind is p.KEYWORD_ONLY]
        assert tuple(keywords) == entry.options, entry.name


def test_studies_write_into_their_reports_folder_by_default(monkeypatch):
    calls = []
    monkeypatch.setattr(studies, "import_module", lambda name: SimpleNamespace(
        run=lambda out, **options: calls.append((name, out, options)) or [out / "cost.csv"]))
    assert STUDIES["sparse-dsp"].run() == [Path("reports/sparse_dsp/cost.csv")]
    assert studies.run_study("cost", Path("x"), stats="zeros") == [Path("x/cost.csv")]
    assert calls == [("peforge.sim.studies.sparse_dsp", Path("reports/sparse_dsp"), {}),
                     ("peforge.sim.studies.cost", Path("x"), {"stats": "zeros"})]
    assert main(["report", "lut", "--out", "y"]) == 0
    assert calls[-1] == ("peforge.sim.studies.lut", Path("y"), {})


@pytest.mark.parametrize("args, message", [
    (["report", "lmul", "--stats", "uniform"], "stats: report lmul takes only seed"),
    (["report", "cost", "--seed", "3"], "seed: report cost takes only stats"),
    (["report", "lut", "--seed", "3"], "seed: report lut takes no options"),
])
def test_an_option_a_study_does_not_take_is_refused(args, message, capsys, tmp_path):
    assert main(args + ["--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"peforge: error: {message}\n"
    assert not list(tmp_path.iterdir())


def test_unknown_study_names_the_choices():
    with pytest.raises(ValueError, match=r"^study: must be one of lmul, bitserial, lut, "
                                         r"sparse-dsp, numerics, cost, got 'numerix'$"):
        study("numerix")
