"""The sweep report: Pareto fronts, search quality, figures and the HTML page (headless
Chromium), all read from the results database."""

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peforge.sim.eda import synth, timing
from peforge.sim.families import family
from peforge.sim.perf import model as perf

from peforge.sim.explore import points as points_module
from peforge.sim.explore.pareto import hypervolume, pareto_mask
from peforge.sim.explore.results import ResultStore
from peforge.sim.explore.search import run_sweep
from peforge.sim.explore.spec import load_sweep
from peforge.sim.explore.report import sweep_rows, winners, write_sweep_report

from tests.sim.explore.test_sweep import write_sweep

CHROMIUM = Path("/usr/bin/chromium")

SWEEP = """\
name: rep
workloads:
  workload: layers.csv
  phase: [prefill, decode]
families:
  systolic:
    pe.rows: [2, 4, 8, 16]
    pe.cols: [4, 16]
  lmul-dot:
    pe.lanes: [4, 16]
  sparse-dsp:
    pe.chain: [4, 8, 16]
constraints: [utilisation >= 0.02]
objectives: {area_mm2: min, cycles: min, energy_pj: min}
"""
OBJECTIVES = ["area_mm2", "cycles", "energy_pj"]


def test_pareto_mask_and_hypervolume_by_hand():
    points = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [2, 3], [5, 5]])
    assert list(pareto_mask(points)) == [True, True, False, True, True, False]
    # Staircase under reference (6, 6): x 1..2 height 1, 2..4 height 3, 4..6 height 5.
    assert hypervolume(points, [6, 6]) == 1 * 1 + 2 * 3 + 2 * 5
    assert hypervolume(np.array([[1, 1, 1]]), [2, 3, 4]) == 1 * 2 * 3
    assert hypervolume(np.array([[1, 1, 2], [2, 2, 1]]), [3, 3, 3]) == 4 * 1 + 1 * 1
    assert hypervolume(np.array([[7, 7]]), [6, 6]) == 0


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The sweep run first by optuna (6 points), then by the grid, then reported with the
    performance model disabled: a report must not simulate."""
    tmp_path = tmp_path_factory.mktemp("report")
    sweep = load_sweep(write_sweep(tmp_path, SWEEP))
    db = tmp_path / "rep.db"
    run_sweep(sweep, db, search="optuna", budget=6, population=3, workers=2, quiet=True)
    run_sweep(sweep, db, workers=2, quiet=True)

    def no_simulation(*_args, **_kwargs):
        raise AssertionError("the report simulated")

    with pytest.MonkeyPatch.context() as patch:
        for name in ("simulate_gemm", "simulate_workload", "workload_totals"):
            patch.setattr(perf, name, no_simulation)
        patch.setattr(points_module, "workload_totals", no_simulation)
        paths = write_sweep_report(db, tmp_path / "out")
    return tmp_path, sweep, db, paths


def test_report_files_and_pareto_table(report):
    tmp_path, sweep, db, paths = report
    out = tmp_path / "out"
    assert {path.name for path in paths} == {
        "results.csv", "pareto.csv", "runs.csv", "pareto_layers_prefill_2048.png",
        "pareto_layers_decode_2048.png", "utilisation.png", "energy.png", "roofline.png",
        "index.html"}
    results = pd.read_csv(out / "results.csv")
    assert len(results) == sweep.size * 2 == (8 + 2 + 3) * 2
    pareto = pd.read_csv(out / "pareto.csv")
    # The front, found here by brute force over the feasible rows of results.csv.
    for label, group in results.groupby("workload_label"):
        feasible = group[(group["status"] == "ok") & (group["utilisation"] >= 0.02)]
        expected = set()
        for index, row in feasible.iterrows():
            others = feasible.drop(index)
            no_worse = (others[OBJECTIVES] <= row[OBJECTIVES]).all(axis=1)
            better = (others[OBJECTIVES] < row[OBJECTIVES]).any(axis=1)
            beaten = (no_worse & better).any()
            if not beaten:
                expected.add(row["design"])
        assert set(pareto.loc[pareto["workload_label"] == label, "design"]) == expected
        assert expected


def test_runs_table_reports_points_and_front_share(report):
    tmp_path, sweep, db, _paths = report
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert list(runs["search"]) == ["optuna", "grid"]
    assert list(runs["points_asked"]) == [6, sweep.size]
    assert list(runs["points_evaluated"]) == [6, sweep.size - 6]
    # The grid saw every point: all of the front, all of its hypervolume.
    assert runs["front_share"].iloc[1] == 1 and runs["hypervolume_ratio"].iloc[1] == 1
    with ResultStore(db) as store:
        rows = sweep_rows(store, "rep")
        seen = set(store.run_points().query("run == 1")["point"])
    pareto = pd.read_csv(tmp_path / "out" / "pareto.csv")
    share = np.mean([group["design"].isin(rows.loc[rows["point"].isin(seen), "design"]).mean()
                     for _, group in pareto.groupby("workload_label")])
    assert runs["front_share"].iloc[0] == pytest.approx(share)
    assert 0 < runs["hypervolume_ratio"].iloc[0] <= 1


def test_winners_name_the_best_design_per_objective_and_the_fronts(report):
    tmp_path, _sweep, db, _paths = report
    with ResultStore(db) as store:
        rows = sweep_rows(store, "rep")
        lines = winners(rows, store.sweeps()["rep"])
    assert len(lines) == 3 + 2
    feasible = rows[(rows["status"] == "ok") & (rows["utilisation"] >= 0.02)]
    both = feasible.groupby("point").filter(lambda group: len(group) == 2)
    cycles = both.groupby("design")["cycles"].mean()
    assert lines[1] == (f"min cycles: {cycles.idxmin()} ({cycles.min():.4g} cycles, mean over 2 "
                        f"workloads)")
    pareto = pd.read_csv(tmp_path / "out" / "pareto.csv")
    decode = pareto[pareto["workload_label"] == "layers decode 2048"]
    counts = decode["design"].str.split().str[0].value_counts()
    assert lines[3] == (f"layers decode 2048: {len(decode)} Pareto-optimal designs ("
                        + ", ".join(f"{name} {count}" for name, count in counts.items())
                        + "); 0 of 13 rows failed")


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="headless Chromium (/usr/bin/chromium, Debian package chromium) is "
                    "not installed")
def test_html_page_renders_in_headless_chromium(report, tmp_path):
    out_dir = report[0] / "out"
    page = out_dir / "index.html"
    flags = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(flags + ["--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    figures = sorted(out_dir.glob("*.png"))
    assert f"images decoded: {len(figures)} of {len(figures)}" in dom
    pareto = pd.read_csv(out_dir / "pareto.csv")
    table = dom[dom.index('<div id="pareto">'):]
    table = table[:table.index("</div>")]
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", table, re.S)
    assert rows == list(zip(pareto["workload_label"], pareto["design"]))
    shot = tmp_path / "page.png"
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_report_of_a_sweep_file_and_of_a_database(report, tmp_path):
    source, _sweep, db, _paths = report
    peforge = [sys.executable, "-m", "peforge.sim.cli", "report"]
    by_file = subprocess.run(peforge + [str(source / "s.yaml"), "--db", str(db), "--out",
                                        str(tmp_path / "a")], capture_output=True, text=True,
                             check=True)
    by_db = subprocess.run(peforge + [str(db), "--out", str(tmp_path / "b")],
                           capture_output=True, text=True, check=True)
    assert by_file.stdout.splitlines()[-1] == f"wrote {tmp_path / 'a' / 'index.html'}"
    assert by_db.stdout.splitlines()[-1] == f"wrote {tmp_path / 'b' / 'index.html'}"
    assert (pd.read_csv(tmp_path / "a" / "pareto.csv")
            .equals(pd.read_csv(tmp_path / "b" / "pareto.csv")))
    missing = subprocess.run(peforge + [str(tmp_path / "none.db")], capture_output=True,
                             text=True)
    assert missing.returncode == 2
    assert missing.stderr == (f"peforge: error: report: must be a study (lmul, bitserial, lut, sparse-dsp, "
                              f"numerics, cost), a sweep file (.yaml) or a "
                              f"results database, got '{tmp_path / 'none.db'}'\n")


def test_the_pareto_table_fits_a_1200_pixel_page(report, tmp_path):
    # The page, with a script that writes the widths into the DOM once it has laid out.
    page = tmp_path / "fit.html"
    measure = ('<script>window.addEventListener("load", function () {var t = '
               'document.querySelector("#pareto table"), d = document.documentElement;'
               'document.body.insertAdjacentHTML("beforeend", "<p id=widths>" + [t.scrollWidth, '
               'document.getElementById("pareto").clientWidth, d.scrollWidth, d.clientWidth]'
               '.join(" ") + "</p>");});</script></body>')
    page.write_text((report[0] / "out" / "index.html").read_text()
                    .replace("</body>", measure))
    dom = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                          "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                          "--window-size=1200,1600", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    table, box, page_width, view = map(int, re.search(r'<p id="widths">([\d ]+)</p>',
                                                      dom).group(1).split())
    # The table needs no scrolling in its box, and the page none at all.
    assert 0 < table <= box and page_width <= view <= 1200, (table, box, page_width, view)


@pytest.mark.skipif(shutil.which("sta") is None,
                    reason="needs Debian's opensta (apt-get install opensta)")
def test_pareto_table_shows_each_designs_clock_and_where_it_comes_from(tmp_path):
    """``clock_mhz: auto`` rows carry their array's own static-timing Fmax, labelled Fmax; the
    others the configured clock. Time against power: both kinds are on the front. (Arrays
    whose energy the shipped table holds, so that nothing is measured at gate level.)"""
    sweep = load_sweep(write_sweep(tmp_path, """\
        name: clocks
        workloads: {workload: layers.csv, phase: decode}
        axes: {clock_mhz: [auto, 400]}
        families:
          systolic: {pe.rows: [2, 3], pe.cols: 2}
        objectives: {time_ms: min, power_mw: min}
        """))
    db = tmp_path / "clocks.db"
    run_sweep(sweep, db, workers=1, quiet=True)
    write_sweep_report(db, tmp_path / "out")
    fam = family("systolic")
    fmax = {rows: math.floor(timing.time_family(fam, fam.make_config(rows=rows, cols=2),
                                                synth.default_liberty()).fmax_in_place_mhz * 10) / 10
            for rows in (2, 3)}
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    expected = {(rows, kind): clock for rows in (2, 3)
                for kind, clock in (("Fmax", fmax[rows]), ("configured", 400))}
    assert {(row["pe.rows"], row["clock_from"]): row["clock_mhz"]
            for _, row in results.iterrows()} == expected
    pareto = pd.read_csv(tmp_path / "out" / "pareto.csv")
    assert list(pareto.columns[:6]) == ["workload_label", "design", "clock_mhz", "clock_from",
                                        "time_ms", "power_mw"]
    assert set(pareto["clock_from"]) == {"Fmax", "configured"}
    rows_of = {design: int(re.search(r"rows=(\d)", design).group(1)) for design in pareto.design}
    assert all(row["clock_mhz"] == expected[rows_of[row["design"]], row["clock_from"]]
               for _, row in pareto.iterrows())
    page = (tmp_path / "out" / "index.html").read_text()
    assert "<th>clock_from</th>" in page and "where clock_from is Fmax" in page
