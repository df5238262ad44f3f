"""The report of a sweep, from its results database alone (nothing is simulated again).

:func:`write_sweep_report` writes into ``reports/<sweep>/``:

- ``results.csv``: every row of the sweep (one per point and workload, ok and failed), tidy:
  the point's configuration keys and metrics as columns;
- ``pareto.csv``: the Pareto-optimal designs of each workload, among the rows that are ok and
  meet every constraint, in the sweep's objectives, each with its clock (``clock_mhz``) and
  where it comes from (``clock_from``: ``Fmax``, the static-timing Fmax of a
  ``clock_mhz: auto`` design, or ``configured``);
- ``runs.csv``: each run (search method, points asked for and evaluated) and, when a grid run
  covered the whole space, the share of each workload's grid Pareto front that each run's points
  hold and their hypervolume relative to the front's (:func:`search_quality`);
- figures (PNG): ``pareto_<workload>.png`` (each pair of objectives, points coloured by family,
  the front joined by a line), ``utilisation.png`` (compute and stall cycles of the Pareto
  designs), ``energy.png`` (the ``energy_*_pj`` breakdown of the Pareto designs, when the
  database has energy columns) and ``roofline.png`` (every point against its own roofs);
- ``index.html``: one self-contained page with the figures embedded as base64 PNG and the table of
  Pareto-optimal designs. A script on the page writes how many of its images decoded into the
  element ``#images-status``.

Roofline, per point: peak ``pes`` MACs per cycle, memory roof ``dram.bytes_per_cycle x
intensity`` with intensity = MACs per DRAM byte (read + written). The plot is normalised so that
every point shares one roof: x = intensity x bandwidth / peak (1 is the ridge), y = utilisation
(attained MACs per cycle / peak).
"""

import base64
import html
import logging
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from peforge.sim.explore.pareto import hypervolume, pareto_mask  # noqa: E402
from peforge.sim.explore.results import COLUMNS, ResultStore  # noqa: E402
from peforge.sim.explore.points import LEVELS, metric_units, model_version  # noqa: E402
from peforge.sim.explore.spec import Constraint, safe_name  # noqa: E402

__all__ = ["sweep_rows", "pareto_rows", "search_quality", "write_sweep_report", "workload_label",
           "winners", "clock_from"]

_log = logging.getLogger(__name__)
_CONSTRAINT_TEXT = re.compile(r"^(\w+) (<=|>=|==|<|>) (\S+)$")


def workload_label(row) -> str:
    return f"{Path(row['workload']).stem} {row['phase']} {row['seq']}"


def _sweep_spec(store: ResultStore, name: str | None) -> dict:
    sweeps = store.sweeps()
    if not sweeps:
        raise ValueError(f"db: {store.path} holds no sweep")
    if name is None:
        if len(sweeps) > 1:
            raise ValueError(f"db: {store.path} holds the sweeps {', '.join(sorted(sweeps))}; "
                             f"report one by its sweep file")
        name = next(iter(sweeps))
    if name not in sweeps:
        raise ValueError(f"sweep: {name!r} is not in {store.path} (it holds "
                         f"{', '.join(sorted(sweeps))})")
    return sweeps[name]


def sweep_rows(store: ResultStore, name: str) -> pd.DataFrame:
    """The stored rows of sweep ``name``: those of the points its runs asked for, with a
    ``workload_label`` and a short ``design`` label (family and swept values) added."""
    spec = store.sweeps()[name]
    runs = store.runs()
    points = store.run_points()
    points = set(points.loc[points["run"].isin(runs.loc[runs["sweep"] == name, "id"]), "point"])
    table = store.table()
    table = table[table["point"].isin(points)]
    # A design run at several levels (--synth, then --verify) is one design: keep its row of the
    # highest level, which holds the lower levels' metrics too; of one level, the newest row (a
    # topology file edited since gives the same design and workload new keys).
    fixed = set(COLUMNS) | set(metric_units())
    same = [column for column in table.columns if column not in fixed] + [
        "family", "workload", "phase", "seq"]
    order = table.assign(rank=table["level"].map(LEVELS.index)).sort_values(
        ["rank", "finished_at"], ascending=False, kind="stable")
    table = table.loc[order.drop_duplicates(same).index].sort_index().reset_index(drop=True)
    table["workload_label"] = [workload_label(row) for _, row in table.iterrows()]
    table["clock_from"] = clock_from(table)
    table["design"] = [
        " ".join([row["family"]] + [f"{key.removeprefix('pe.')}={_plain(row.get(key))}"
                                    for key, values in spec["axes"][row["family"]].items()
                                    if len(values) > 1])
        for _, row in table.iterrows()]
    return table


def clock_from(table: pd.DataFrame) -> list[str]:
    """Where each row's ``clock_mhz`` comes from: ``Fmax`` (``clock_mhz: auto``, the static-timing
    Fmax of its PE array, :func:`~peforge.sim.perf.accelerator.auto_clock_mhz`) or
    ``configured``."""
    timed = (table["clock_liberty_sha256"].notna() if "clock_liberty_sha256" in table
             else pd.Series(False, index=table.index))
    return ["Fmax" if auto else "configured" for auto in timed]


def _plain(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _objective_matrix(rows: pd.DataFrame, objectives: dict) -> np.ndarray:
    """Objective values, ``max`` ones negated, so that every column is minimised."""
    return np.column_stack([rows[m].to_numpy(float) * (1 if d == "min" else -1)
                            for m, d in objectives.items()])


def _feasible(rows: pd.DataFrame, constraints: list[Constraint]) -> pd.DataFrame:
    ok = rows["status"] == "ok"
    for constraint in constraints:
        ok &= constraint.holds(rows[constraint.metric])
    return rows[ok]


def _constraints(spec: dict) -> list[Constraint]:
    found = []
    for text in spec["constraints"]:
        metric, op, bound = _CONSTRAINT_TEXT.match(text).groups()
        found.append(Constraint(metric, op, float(bound)))
    return found


def pareto_rows(rows: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """The Pareto-optimal rows of each workload among the feasible ones (ok, constraints met)."""
    fronts = []
    for _label, group in _feasible(rows, _constraints(spec)).groupby("workload_label", sort=False):
        fronts.append(group[pareto_mask(_objective_matrix(group, spec["objectives"]))]
                      .sort_values(list(spec["objectives"])[0]))
    return pd.concat(fronts) if fronts else rows.iloc[:0]


def winners(rows: pd.DataFrame, spec: dict) -> list[str]:
    """A short summary: one line per objective naming the best design over the points feasible
    on every workload (by the mean of the metric over the workloads), then one line per workload
    with its Pareto-optimal designs by family and its failed rows."""
    units = metric_units()
    feasible = _feasible(rows, _constraints(spec))
    workloads = rows["workload_label"].nunique()
    everywhere = feasible.groupby("point").filter(lambda group: len(group) == workloads)
    means = everywhere.groupby(["point", "design"])[list(spec["objectives"])].mean()
    lines = []
    for metric, direction in spec["objectives"].items():
        if means.empty:
            lines.append(f"{direction} {metric}: no point is feasible on every workload")
            continue
        best = means[metric].idxmin() if direction == "min" else means[metric].idxmax()
        lines.append(f"{direction} {metric}: {best[1]} ({means.loc[best, metric]:.4g} "
                     f"{units.get(metric, '')}, mean over {workloads} workloads)")
    pareto = pareto_rows(rows, spec)
    for label, group in rows.groupby("workload_label", sort=False):
        front = pareto[pareto["workload_label"] == label]
        by_family = ", ".join(f"{name} {count}" for name, count
                              in front["family"].value_counts().items())
        lines.append(f"{label}: {len(front)} Pareto-optimal designs ({by_family or 'none'}); "
                     f"{int((group['status'] == 'failed').sum())} of {len(group)} rows failed")
    return lines


def search_quality(rows: pd.DataFrame, run_points: pd.DataFrame, runs: pd.DataFrame,
                   spec: dict) -> pd.DataFrame:
    """Per run: points it used, and, when some grid run asked for every point of the space, the
    share of each workload's front (over all feasible rows) among the run's points and the
    hypervolume of the run's own front over the full front's (objectives normalised to 0..1 by
    the feasible rows' range, reference point 1.1 in each), both averaged over the workloads."""
    runs = runs.copy()
    complete = ((runs["search"] == "grid") & (runs["points_asked"] == spec["points"])).any()
    feasible = _feasible(rows, _constraints(spec))
    shares, ratios = [], []
    for run in runs["id"]:
        if not complete or feasible.empty:
            shares.append(np.nan)
            ratios.append(np.nan)
            continue
        seen = set(run_points.loc[run_points["run"] == run, "point"])
        run_share, run_ratio = [], []
        for _label, group in feasible.groupby("workload_label", sort=False):
            values = _objective_matrix(group, spec["objectives"])
            low, span = values.min(axis=0), np.ptp(values, axis=0)
            values = (values - low) / np.where(span > 0, span, 1)
            front = pareto_mask(values)
            mine = group["point"].isin(seen).to_numpy()
            run_share.append((front & mine).sum() / front.sum())
            reference = np.full(values.shape[1], 1.1)
            run_ratio.append(hypervolume(values[mine], reference)
                             / hypervolume(values[front], reference))
        shares.append(float(np.mean(run_share)))
        ratios.append(float(np.mean(run_ratio)))
    runs["front_share"] = shares
    runs["hypervolume_ratio"] = ratios
    return runs


def _family_colours(rows: pd.DataFrame) -> dict:
    names = sorted(rows["family"].unique())
    cmap = plt.get_cmap("tab10")
    return {name: cmap(index % 10) for index, name in enumerate(names)}


def _axis_label(metric: str, units: dict) -> str:
    """``metric (unit)``, or the metric alone when it names its unit (``cycles``)."""
    unit = units.get(metric, "")
    return f"{metric} ({unit})" if unit and unit != metric else metric


def _legend_outside(axis, fontsize: int) -> None:
    """The legend right of ``axis``, outside it, so it hides no data."""
    axis.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)


def _pareto_figure(group: pd.DataFrame, spec: dict, colours: dict, units: dict, path: Path):
    metrics = list(spec["objectives"])
    pairs = ([(a, b) for i, a in enumerate(metrics) for b in metrics[i + 1:]]
             if len(metrics) > 1 else [("pes", metrics[0])])
    figure, axes = plt.subplots(1, len(pairs), figsize=(5.5 * len(pairs), 4.5), squeeze=False)
    for axis, (x_metric, y_metric) in zip(axes[0], pairs):
        for name, points in group.groupby("family"):
            axis.scatter(points[x_metric], points[y_metric], s=18, alpha=0.6, color=colours[name],
                         label=name)
        pair = {m: spec["objectives"].get(m, "min") for m in (x_metric, y_metric)}
        front = group[pareto_mask(_objective_matrix(group, pair))].sort_values(x_metric)
        axis.plot(front[x_metric], front[y_metric], "k-", lw=1, label="Pareto front")
        axis.scatter(front[x_metric], front[y_metric], s=40, facecolors="none",
                     edgecolors="k")
        axis.set_xlabel(_axis_label(x_metric, units))
        axis.set_ylabel(_axis_label(y_metric, units))
        for name, scale in (("x", x_metric), ("y", y_metric)):
            values = group[scale]
            if (values > 0).all() and values.max() > 20 * values.min():
                getattr(axis, f"set_{name}scale")("log")
        axis.grid(True, alpha=0.3)
    _legend_outside(axes[0][-1], 8)
    figure.suptitle(group["workload_label"].iloc[0])
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def _bars_figure(pareto: pd.DataFrame, columns: list[str], ylabel: str, title: str,
                 path: Path, note=None):
    labels = list(pareto["workload_label"].unique())
    figure, axes = plt.subplots(len(labels), 1, figsize=(10, 1.2 + 0.35 * len(pareto)
                                                         + 1.0 * len(labels)), squeeze=False)
    for axis, label in zip(axes[:, 0], labels):
        group = pareto[pareto["workload_label"] == label]
        left = np.zeros(len(group))
        for column in columns:
            values = group[column].fillna(0).to_numpy(float)
            axis.barh(group["design"], values, left=left, label=column)
            left += values
        if note is not None:
            for y, text in enumerate(note(group)):
                axis.text(left[y], y, f" {text}", va="center", fontsize=7)
        axis.set_title(label, fontsize=9)
        axis.set_xlabel(ylabel)
        axis.tick_params(axis="y", labelsize=7)
        _legend_outside(axis, 7)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def _roofline_figure(rows: pd.DataFrame, colours: dict, path: Path):
    labels = list(rows["workload_label"].unique())
    figure, axes = plt.subplots(1, len(labels), figsize=(5 * len(labels), 4.2), squeeze=False)
    for axis, label in zip(axes[0], labels):
        group = rows[rows["workload_label"] == label]
        intensity = group["macs"] / (group["dram_read_bytes"] + group["dram_write_bytes"])
        x = intensity * group["dram.bytes_per_cycle"] / group["pes"]
        for name in sorted(group["family"].unique()):
            mine = (group["family"] == name).to_numpy()
            axis.scatter(x[mine], group["utilisation"][mine], s=16, alpha=0.7,
                         color=colours[name], label=name)
        span = np.logspace(np.log10(min(x.min(), 0.1)) - 0.3, np.log10(max(x.max(), 10)) + 0.3)
        axis.plot(span, np.minimum(1, span), "k-", lw=1, label="roof")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("MACs per DRAM byte x bandwidth / peak (ridge = 1)")
        axis.set_ylabel("utilisation (attained / peak MACs per cycle)")
        axis.set_title(label, fontsize=9)
        axis.grid(True, alpha=0.3, which="both")
    _legend_outside(axes[0][-1], 7)
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, classes="table", na_rep="",
                         float_format=lambda x: f"{x:.4g}")


def _html_page(name: str, spec: dict, figures: list[Path], pareto: pd.DataFrame,
               pareto_columns: list[str], runs: pd.DataFrame, rows: pd.DataFrame,
               notes: list[str]) -> str:
    images = "\n".join(
        f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(path.read_bytes()).decode()}"><figcaption>{html.escape(path.name)}'
        f"</figcaption></figure>" for path in figures)
    failed = rows[rows["status"] == "failed"]
    errors = (failed.groupby("error").size().sort_values(ascending=False).head(10)
              .rename("rows").reset_index())
    objectives = ", ".join(f"{d} {m}" for m, d in spec["objectives"].items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>peforge sweep {html.escape(name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:80em}}
table.table{{border-collapse:collapse;font-size:0.85em}}
table.table td,table.table th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}}
figure{{margin:1em 0}} img{{max-width:100%}}
#pareto{{overflow-x:auto;max-width:100%}}
table.table th{{white-space:normal;overflow-wrap:anywhere}}</style></head><body>
<h1>Sweep {html.escape(name)}</h1>
<p>{spec['points']} points in the space; {rows['point'].nunique()} stored, {len(rows)} rows
({(rows['status'] == 'ok').sum()} ok, {len(failed)} failed). Objectives: {objectives}.
Constraints: {html.escape(', '.join(spec['constraints']) or 'none')}.</p>
<p id="images-status">images: not checked</p>
{''.join(f'<p>{html.escape(note)}</p>' for note in notes)}
<h2>Pareto-optimal designs</h2>
<p>Their clocks and objectives; every metric of them is in pareto.csv ({len(pareto_columns)}
columns).</p>
<div id="pareto">{_html_table(pareto[pareto_columns[:4] + list(spec["objectives"])])}</div>
<h2>Runs</h2>
{_html_table(runs)}
<h2>Figures</h2>
{images}
<h2>Failures</h2>
{_html_table(errors) if len(errors) else '<p>none</p>'}
<script>
window.addEventListener("load", function () {{
  var images = Array.prototype.slice.call(document.images);
  var decoded = images.filter(function (i) {{ return i.complete && i.naturalWidth > 0; }});
  document.getElementById("images-status").textContent =
    "images decoded: " + decoded.length + " of " + images.length;
}});
</script>
</body></html>
"""


def write_sweep_report(db, out: Path | None = None, *, sweep: str | None = None) -> list[Path]:
    """Write the report of ``sweep`` (a name; None: the database's only sweep) from the results
    database ``db`` into ``out`` (default ``reports/<sweep>``); returns the files written."""
    db = Path(db)
    with ResultStore(db, readonly=True) as store:
        spec = _sweep_spec(store, sweep)
        name = spec["name"]
        rows = sweep_rows(store, name)
        runs = search_quality(rows, store.run_points(), store.runs(), spec)
    if rows.empty:
        raise ValueError(f"db: sweep {name!r} has no stored rows in {db}")
    out = Path(out) if out is not None else Path("reports") / safe_name(name)
    out.mkdir(parents=True, exist_ok=True)
    units = metric_units()
    metric_names = [m for m in units if m in rows.columns]
    ok = rows[rows["status"] == "ok"]
    pareto = pareto_rows(rows, spec)
    written = []

    rows.to_csv(out / "results.csv", index=False)
    pareto_columns = (["workload_label", "design", "clock_mhz", "clock_from"]
                      + list(spec["objectives"])
                      + [m for m in metric_names if m not in spec["objectives"]])
    pareto[pareto_columns].to_csv(out / "pareto.csv", index=False)
    runs.to_csv(out / "runs.csv", index=False)
    written += [out / "results.csv", out / "pareto.csv", out / "runs.csv"]

    figures, notes = [], []
    older = int((rows["model_version"].fillna("") != model_version()).sum()
                if "model_version" in rows else len(rows))
    if older:
        notes.append(f"{older} of {len(rows)} rows come from an older model version (another "
                     f"peforge or edited model code): run the sweep again to refresh them.")
        _log.warning("report: %s", notes[-1])
    if (rows["clock_from"] == "Fmax").any():
        notes.append("clock_mhz: the design's Fmax (static timing of its PE array on the Liberty "
                     "named by clock_liberty_sha256) where clock_from is Fmax, else the "
                     "configured clock.")
    if ok.empty:
        notes.append("No point finished ok: no figures.")
    else:
        colours = _family_colours(ok)
        feasible = _feasible(rows, _constraints(spec))
        for label, group in feasible.groupby("workload_label", sort=False):
            path = out / f"pareto_{_slug(label)}.png"
            _pareto_figure(group, spec, colours, units, path)
            figures.append(path)
        if not pareto.empty:
            path = out / "utilisation.png"
            _bars_figure(pareto, ["compute_cycles", "stall_cycles"], "cycles",
                         "Pareto designs: compute and stall cycles (utilisation at the right)",
                         path, note=lambda g: [f"{u:.1%}" for u in g["utilisation"]])
            figures.append(path)
            energy = [m for m in metric_names if m.startswith("energy_") and m != "energy_pj"
                      and m.endswith("_pj")]
            if energy:
                path = out / "energy.png"
                _bars_figure(pareto, energy, "pJ", "Pareto designs: energy by component", path)
                figures.append(path)
            else:
                notes.append("No energy breakdown: the database has no energy_*_pj columns.")
        path = out / "roofline.png"
        _roofline_figure(ok, colours, path)
        figures.append(path)
    written += figures
    page = out / "index.html"
    page.write_text(_html_page(name, spec, figures, pareto, pareto_columns, runs, rows, notes))
    written.append(page)
    return written
