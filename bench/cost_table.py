"""One table: L-Mul, LUT tile, bit-serial PE and sparse DSP chain vs their baselines, ours beside
the papers' ratios.

Builds :func:`peforge.sim.cost_report.cost_table` (comparisons, bases and ratios are documented
there): transistor and OSU 0.18 um area ratios from the per-family cost reports' syntheses, and
energy ratios from :func:`peforge.sim.energy.op_energy` (45 nm). Writes
``reports/cost/cost.csv`` (one row per design and baseline, every ratio design / baseline) and
prints it.

Everything it synthesises or measures is cached (the per-family cost reports share the cache):
cold, the syntheses take about 10 minutes on one core; cached, about half a minute.
Run: ``.venv/bin/python bench/cost_table.py [--stats gaussian] [--no-energy]``.
"""

import argparse
import time
from pathlib import Path

from peforge.sim.cost_report import cost_table
from peforge.sim.tables import write_table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats", default="gaussian",
                        help="operand statistics of the energy ratios")
    parser.add_argument("--no-energy", action="store_true",
                        help="area and transistor ratios only (no activity runs)")
    parser.add_argument("--out", type=Path, default=Path("reports/cost/cost.csv"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    table = cost_table(stats=args.stats, with_energy=not args.no_energy)
    seconds = time.perf_counter() - start
    write_table(table, args.out)
    print(f"wrote {args.out} ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
