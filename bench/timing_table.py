"""Static timing of every family's design and a few larger ones: critical path, Fmax, area.

For each design (a family configuration), :func:`peforge.sim.eda.timing.time_family` maps the flat
design onto the Liberty library (OSU018 by default) and OpenSTA reports the worst
register-to-register path at the typical corner. Columns: the critical path in ns and the Fmax it
implies, its start and end registers and its cell count, the worst port path (not counted in
Fmax), the cell area of the timed (delay-mapped) netlist in um2, and area x delay (um2 x ns:
lower is better). The L-Mul and exact-multiplier rows stand side by side.

The systolic family is timed at its 8 x 8 default (178 s cold at load 11) and at 2 x 2 beside
its L-Mul and float PEs; bitserial at 2 x 2, 4 x 4 and its 8 x 8 default (7.40, 7.73 and
8.00 ns; the 8 x 8 array, 256 lanes, 338 s at load 1), the L-Mul and float PE arrays at 2 x 2
only: an array's register-to-register path is one PE plus its neighbour's forwarded
operand (the int8 array: 5.34 ns at 2 x 2, 5.52 at 4 x 4, 5.58 at 8 x 8). The sparse DSP
chain is timed at its default registers (A/B, M, P: 1, 1, 1) and with each taken out or the
A/B register doubled. Pipelined designs (the dot unit's adder tree) move logic
from the register loop to the input ports: read ``port_ns`` beside ``critical_ns`` (a unit fed
from registers runs at the larger).
Writes ``reports/timing/fmax.csv`` and prints it. Cached.
Run: ``.venv/bin/python bench/timing_table.py [--liberty FILE] [--match TEXT]`` (``--match``
re-times only the rows whose design contains TEXT and keeps the others from the file).
"""

import argparse
import time
from pathlib import Path

import pandas as pd

from peforge.sim.eda import synth
from peforge.sim.eda.timing import time_family
from peforge.sim.families import family
from peforge.sim.studies.tables import write_table

#: (family, parameters) of each row: each family's default (bitserial at 2 x 2), L-Mul next to
#: exact multiply (and the exact float PE, arrays of them at 2 x 2), then larger designs. The 8-lane dot unit takes 6-8
#: minutes cold (its lanes are summed in one combinational chain), so no wider one is timed.
DESIGNS = [
    ("bitserial", {"rows": 2, "cols": 2}),
    ("lmul", {}),
    ("lmul", {"exact": True}),
    ("lmul-dot", {}),
    ("lmul-dot", {"exact": True}),
    ("lut", {}),
    ("sparse-dsp", {}),
    ("systolic", {}),
    ("systolic", {"rows": 2, "cols": 2}),
    ("systolic", {"rows": 2, "cols": 2, "pe": "lmul"}),
    ("systolic", {"rows": 2, "cols": 2, "pe": "fp"}),
    ("systolic", {"rows": 4, "cols": 4}),
    ("sparse-dsp", {"chain": 32}),
    # pipelining: the dot unit's adder tree at 0..4 register stages (and its adders split in
    # two), the PEs' product register
    ("lmul-dot", {"adder": "tree"}),
    ("lmul-dot", {"adder": "tree", "tree_stages": 1}),
    ("lmul-dot", {"adder": "tree", "tree_stages": 2}),
    ("lmul-dot", {"adder": "tree", "tree_stages": 3}),
    ("lmul-dot", {"adder": "tree", "tree_stages": 4}),
    ("lmul-dot", {"exact": True, "adder": "tree", "tree_stages": 4}),
    ("lmul-dot", {"adder": "tree", "tree_stages": 4, "add_stages": 1}),
    ("lmul-dot", {"exact": True, "adder": "tree", "tree_stages": 4, "add_stages": 1}),
    ("systolic", {"rows": 2, "cols": 2, "pe": "lmul", "mul_stages": 1}),
    ("systolic", {"rows": 2, "cols": 2, "pe": "fp", "mul_stages": 1}),
    ("systolic", {"rows": 2, "cols": 2, "mul_stages": 1}),
    ("systolic", {"rows": 2, "cols": 2, "pe": "lmul", "mul_stages": 1, "add_stages": 1}),
    ("systolic", {"rows": 2, "cols": 2, "pe": "fp", "mul_stages": 1, "add_stages": 1}),
    # the DSP slice's A/B, M and P registers (default 1, 1, 1) and a larger bit-serial array
    ("sparse-dsp", {"areg": 0, "mreg": 0}),
    ("sparse-dsp", {"areg": 0}),
    ("sparse-dsp", {"mreg": 0}),
    ("sparse-dsp", {"areg": 2}),
    ("sparse-dsp", {"preg": 0}),
    ("bitserial", {"rows": 4, "cols": 4}),
    ("bitserial", {"rows": 8, "cols": 8}),
]

SHOWN = ["design", "critical_ns", "fmax_mhz", "start", "end", "path_cells", "port_ns",
         "area_um2", "area_delay"]


def label(name: str, values: dict) -> str:
    """The ``design`` column: the family and its non-default parameters."""
    return name + "".join(f" {key}={value}" for key, value in values.items())


def row(name: str, values: dict, liberty: Path) -> dict:
    fam = family(name)
    config = fam.make_config(**values)
    report = time_family(fam, config, liberty)
    return {"design": label(name, values), "critical_ns": report.critical_ns,
            "fmax_mhz": round(report.fmax_mhz, 1), "start": report.start, "end": report.end,
            "path_cells": len(report.cells), "port_ns": report.port_ns,
            "area_um2": round(report.area_um2), "scope": report.scope,
            "area_delay": round(report.area_um2 * report.critical_ns),
            "seconds": report.seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--liberty", type=Path, default=synth.default_liberty())
    parser.add_argument("--out", type=Path, default=Path("reports/timing/fmax.csv"))
    parser.add_argument("--match", default="",
                        help="time only the designs whose name contains this text; the other "
                             "rows are kept from --out")
    args = parser.parse_args(argv)
    chosen = [(name, values) for name, values in DESIGNS if args.match in label(name, values)]
    if not chosen:
        parser.error(f"match: no design name contains {args.match!r}")
    kept = {}
    if args.match and args.out.exists():
        kept = {record["design"]: record for record in pd.read_csv(args.out).to_dict("records")}
    start = time.perf_counter()
    timed = {label(name, values): row(name, values, args.liberty) for name, values in chosen}
    rows = [timed.get(label(name, values)) or kept.get(label(name, values))
            for name, values in DESIGNS]
    write_table(pd.DataFrame([record for record in rows if record]), args.out, SHOWN)
    print(f"wrote {args.out} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
