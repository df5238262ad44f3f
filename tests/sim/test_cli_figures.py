"""The sweep report's figures and page as a reader sees them: legends outside the data, no
``cycles (cycles)`` labels, and a Pareto table that scrolls inside the page, not widening it."""

import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt  # noqa: E402

from peforge.sim.explore import report  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_report_figures_keep_legends_off_the_data(tmp_path, monkeypatch):
    db = tmp_path / "example.db"
    done = subprocess.run([sys.executable, "-m", "peforge.sim.cli", "sweep",
                           str(ROOT / "examples" / "sweep.yaml"), "--db", str(db), "--quiet",
                           "--workers", "1"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    figures, close = [], plt.close
    monkeypatch.setattr(report.plt, "close", figures.append)
    paths = report.write_sweep_report(db, tmp_path / "report", sweep="example")
    assert len(figures) == sum(path.suffix == ".png" for path in paths) >= 3
    for figure in figures:
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        boxes = [axis.get_window_extent(renderer) for axis in figure.axes]
        legends = [axis.get_legend() for axis in figure.axes if axis.get_legend()]
        assert legends
        for legend in legends:
            extent = legend.get_window_extent(renderer)
            assert not any(extent.overlaps(box) for box in boxes), figure.texts
        for axis in figure.axes:
            for label in (axis.get_xlabel(), axis.get_ylabel()):
                assert not re.fullmatch(r"(\S+) \(\1\)", label), label
        close(figure)
    page = (tmp_path / "report" / "index.html").read_text()
    assert "#pareto{overflow-x:auto;max-width:100%}" in page
    assert '<div id="pareto">' in page


def test_axis_label_names_a_unit_once():
    units = {"cycles": "cycles", "energy_pj": "pJ", "pes": ""}
    assert report._axis_label("cycles", units) == "cycles"
    assert report._axis_label("energy_pj", units) == "energy_pj (pJ)"
    assert report._axis_label("pes", units) == "pes"
