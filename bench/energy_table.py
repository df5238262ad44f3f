"""Energy per MAC of every family's default configuration on every operand statistic.

One row per design and statistic (:data:`peforge.models.operand_stats.STATS`): 45 nm, 0.9 V
energy per MAC from gate-level switching activity (:func:`peforge.sim.energy.op_energy`,
calibrated once: the systolic int8 MAC on uniform operands is 0.3 pJ), the run's MACs and
cycles, the clock net's share, and the reduced top's leakage (OSU018, unscaled), area at 45 nm
and PEs. Besides every family's default configuration it measures the systolic array at int4
and int16 and with exact fp16 and L-Mul bf16 PEs, and exact multipliers beside L-Mul. Where
Horowitz (ISSCC 2014, 45 nm) lists the same operation, ``horowitz_pj`` holds his figure as a
sanity check of the prediction (not a fit; only the int8 MAC is the calibration itself).

Writes ``reports/energy/op_energy.csv`` and prints it. Cold, one gate-level build per design
(about a minute each on a quiet core) and a few seconds per run; cached afterwards.
Run: ``.venv/bin/python bench/energy_table.py [--stats uniform gaussian]``.
"""

import argparse
import time
from pathlib import Path

import pandas as pd

from peforge.models.operand_stats import STATS
from peforge.sim.energy import op_energy
from peforge.sim.families import families, family
from peforge.sim.tables import write_table

#: Extra designs beyond each family's default: (label, family, parameters, Horowitz operation,
#: Horowitz 45 nm pJ per MAC or None).
EXTRA = [
    ("systolic int4", "systolic", {"bits": 4}, None, None),
    ("systolic int16", "systolic", {"bits": 16}, None, None),
    ("systolic fp16 exact PE", "systolic", {"pe": "fp", "format": "fp16"},
     "fp16 mult + fp32 add", 1.1 + 0.9),
    ("systolic bf16 L-Mul PE", "systolic", {"pe": "lmul", "format": "bf16"}, None, None),
    ("lmul e4m3 exact", "lmul", {"exact": True}, None, None),
    ("lmul fp16 exact", "lmul", {"format": "fp16", "exact": True}, "fp16 mult", 1.1),
    ("lmul fp16 L-Mul", "lmul", {"format": "fp16"}, None, None),
    ("lmul-dot e4m3 exact", "lmul-dot", {"exact": True}, None, None),
]

#: The default configurations' Horowitz counterparts.
DEFAULT_REFERENCE = {"systolic": ("int8 mult + int32 add (calibration)", 0.2 + 0.1)}

SHOWN = ["design", "stats", "pj_per_mac", "horowitz_pj", "ops", "cycles", "clock_share",
         "leakage_uw", "area_um2", "pes"]


def designs():
    rows = [(f"{name} default", name, {}, *DEFAULT_REFERENCE.get(name, (None, None)))
            for name in families()]
    return rows + EXTRA


def energy_table(stats: list[str]) -> pd.DataFrame:
    rows = []
    for label, name, params, reference, reference_pj in designs():
        config = family(name).make_config(**params)
        for stat in stats:
            result = op_energy(name, config, stats=stat)
            rows.append({
                "design": label, "family": name, "config_hash": result.config_hash,
                "stats": stat, "pj_per_mac": result.pj_per_mac, "horowitz_op": reference,
                "horowitz_pj": reference_pj, "ops": result.ops, "cycles": result.cycles,
                "dynamic_pj": result.dynamic_pj, "clock_pj": result.clock_pj,
                "clock_share": result.clock_pj / result.dynamic_pj,
                "leakage_uw": result.leakage_uw, "area_um2": result.area_um2,
                "pes": result.pes, "cells": result.cells})
            print(f"  {label}, {stat}: {result.pj_per_mac:.4f} pJ/MAC", flush=True)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats", nargs="+", default=list(STATS), choices=STATS)
    parser.add_argument("--out", type=Path, default=Path("reports/energy/op_energy.csv"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    table = energy_table(args.stats)
    write_table(table, args.out, SHOWN)
    print(f"wrote {args.out} ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
