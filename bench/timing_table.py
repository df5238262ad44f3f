"""Static timing of every family's default design and a few larger ones: critical path, Fmax, area.

For each design (a family configuration), :func:`peforge.sim.eda.timing.time_family` maps the flat
design onto the Liberty library (OSU018 by default) and OpenSTA reports the worst
register-to-register path at the typical corner. Columns: the critical path in ns and the Fmax it
implies, its start and end registers and its cell count, the worst port path (not counted in
Fmax), the Liberty cell area of :func:`peforge.sim.eda.synth.synth_family` (area-oriented
mapping: the area peforge charges elsewhere) and of the timed, delay-oriented netlist, in um2, and
area x delay (synthesis area x critical path, um2 x ns: lower is better).
The L-Mul and exact-multiplier rows of each L-Mul design stand side by side. Writes
``reports/timing/fmax.csv`` and prints it. Cached; cold, seconds to minutes per design on one core.
Run: ``.venv/bin/python bench/timing_table.py [--liberty FILE]``.
"""

import argparse
import time
from pathlib import Path

import pandas as pd

from peforge.sim.eda import synth
from peforge.sim.eda.timing import time_family
from peforge.sim.families import families, family
from peforge.sim.studies.tables import write_table

#: (family, parameters) of the rows beyond each family's default: L-Mul against exact multiply
#: (and the exact float PE), wider units and longer chains.
LARGER = [
    ("lmul", {"exact": True}),
    ("lmul-dot", {"exact": True}),
    ("lmul-dot", {"lanes": 16}),
    ("lmul-dot", {"lanes": 16, "exact": True}),
    ("systolic", {"rows": 2, "cols": 2, "pe": "lmul"}),
    ("systolic", {"rows": 2, "cols": 2, "pe": "fp"}),
    ("sparse-dsp", {"chain": 32}),
]

SHOWN = ["design", "critical_ns", "fmax_mhz", "start", "end", "path_cells", "port_ns",
         "area_um2", "timed_area_um2", "area_delay"]


def designs() -> list[tuple[str, dict]]:
    """Every family's default, then :data:`LARGER`, L-Mul rows next to their exact twins."""
    order = list(families())
    return sorted([(name, {}) for name in order] + LARGER, key=lambda entry: order.index(entry[0]))


def row(name: str, values: dict, liberty: Path) -> dict:
    fam = family(name)
    config = fam.make_config(**values)
    report = time_family(fam, config, liberty)
    area = synth.synth_family(fam, config, liberty=liberty).liberty["area_um2"]
    design = name + "".join(f" {key}={value}" for key, value in values.items())
    return {"design": design, "critical_ns": report.critical_ns,
            "fmax_mhz": round(report.fmax_mhz, 1), "start": report.start, "end": report.end,
            "path_cells": len(report.cells), "port_ns": report.port_ns,
            "area_um2": round(area), "timed_area_um2": round(report.area_um2),
            "area_delay": round(area * report.critical_ns), "scope": report.scope,
            "seconds": report.seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--liberty", type=Path, default=synth.default_liberty())
    parser.add_argument("--out", type=Path, default=Path("reports/timing/fmax.csv"))
    args = parser.parse_args(argv)
    if args.liberty is None:
        parser.error("liberty: none installed (apt-get install qflow-tech-osu018, or --liberty)")
    start = time.perf_counter()
    table = pd.DataFrame([row(name, values, args.liberty) for name, values in designs()])
    write_table(table, args.out, SHOWN)
    print(f"wrote {args.out} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
