"""One table: L-Mul, LUT tile, bit-serial PE and sparse DSP chain vs their baselines, ours beside
the papers' ratios.

Builds :func:`peforge.sim.studies.cost.cost_table` (comparisons, bases and ratios are documented
there): transistor and OSU 0.18 um area ratios from the per-family cost reports' syntheses, and
energy ratios from :func:`peforge.sim.eda.energy.op_energy` (45 nm). Writes
``reports/cost/cost.csv`` (one row per design and baseline, every ratio design / baseline) and
prints it.

Everything it synthesises or measures is cached (the per-family cost reports share the cache).
Cold, on a 2-core machine shared with other jobs: about 12 minutes of synthesis (7 of them the
LUT tile) and tens of minutes of gate-level energy runs (the LUT tile's build alone about 25);
cached, about 3 minutes (the Verilog is regenerated to find the entries).
Run: ``.venv/bin/python bench/cost_table.py [--stats gaussian] [--energy lmul lut ...]``.
"""

import argparse
import time
from pathlib import Path

from peforge.sim.studies.cost import COMPARISONS, cost_table
from peforge.sim.studies.tables import write_table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats", default="gaussian",
                        help="operand statistics of the energy ratios")
    parser.add_argument("--energy", nargs="*", default=list(COMPARISONS), metavar="COMPARISON",
                        help="comparisons whose energy ratios are measured (default: all; none: "
                        "area and transistor ratios only)")
    parser.add_argument("--out", type=Path, default=Path("reports/cost/cost.csv"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    table = cost_table(stats=args.stats, energy_for=tuple(args.energy))
    seconds = time.perf_counter() - start
    write_table(table, args.out)
    print(f"wrote {args.out} ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
