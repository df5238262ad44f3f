"""Energy per MAC of every family's default configuration on every operand statistic.

One row per design and statistic (:data:`peforge.models.operand_stats.STATS`): 45 nm, 0.9 V
energy per MAC from gate-level switching activity (:func:`peforge.sim.eda.energy.op_energy`,
calibrated once: the systolic int8 MAC on uniform operands is 0.3 pJ), the run's MACs and
cycles, the clock net's share, and the reduced top's leakage (OSU018, unscaled), area at 45 nm
and PEs. Besides every family's default configuration it measures the systolic array at int4
and int16 and with exact fp16 and L-Mul bf16 PEs, and exact multipliers beside L-Mul. Where
Horowitz (ISSCC 2014, 45 nm) lists the same operation, ``horowitz_pj`` holds his figure as a
sanity check of the prediction (not a fit; only the int8 MAC is the calibration itself).

Writes ``reports/energy/op_energy.csv`` and prints it, and writes the shipped table
(:data:`peforge.sim.eda.energy.SHIPPED_TABLE`, ``sim/data/op_energy.json``): every design above and
:data:`TESTED` on every statistic, plus the reduced configuration and statistics of every
accelerator of the sweep files in ``sweeps/``, measured afresh (``shipped=False``: from the disk
cache or a gate-level run, never from the old table). Cold, one gate-level build per design
(about a minute each on a quiet core) and a few seconds per run; cached afterwards.
Run: ``.venv/bin/python bench/energy_table.py [--stats uniform gaussian]``.
"""

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from peforge.sweeps import shipped_sweep
from peforge.models.operand_stats import STATS
from peforge.sim.eda import energy
from peforge.sim.eda.energy import op_energy
from peforge.sim.families import families, family
from peforge.sim.explore.points import build_accelerator
from peforge.sim.explore.spec import load_sweep
from peforge.sim.eda.synth import default_liberty
from peforge.sim.studies.tables import write_table

#: The sweep files whose accelerators the shipped table covers.
SWEEPS = shipped_sweep("demo").parent

#: Configurations the test suite simulates beyond the designs and sweeps: (family, parameters).
TESTED = [("bitserial", {"wtypes": "int8"}), ("systolic", {"signed": False}),
          ("systolic", {"dataflow": "ws", "signed": True})]

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
            result = op_energy(name, config, stats=stat, shipped=False)
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


def table_points(stats: list[str]) -> list[tuple]:
    """``(family, reduced configuration, statistics)`` of every shipped-table entry: the designs
    and :data:`TESTED` on ``stats``, and every accelerator of the :data:`SWEEPS` files on its own
    statistics."""
    configs = [(name, params) for _label, name, params, *_ in designs()] + TESTED
    points = [(name, family(name).energy_config(family(name).make_config(**params)), stat)
              for name, params in configs for stat in stats]
    for path in sorted(SWEEPS.glob("*.yaml")):
        for point in load_sweep(path).points():
            accel = build_accelerator(point)
            points.append((accel.family, family(accel.family).energy_config(accel.pe),
                           accel.stats))
    return list(dict.fromkeys(points))


def write_shipped_table(stats: list[str], path: Path = energy.SHIPPED_TABLE) -> int:
    """Measure every :func:`table_points` entry (seed 0) and write the shipped table to
    ``path``: a header with the model's constants and ``measured_with`` (tool versions and
    Liberty sha256), then one entry per line. Returns the number of entries."""
    entries = {}
    for name, small, stat in table_points(stats):
        _small, shape, verilog = energy.reduced_top(family(name), small)
        result = op_energy(name, small, stats=stat, shipped=False)
        entries[energy.shipped_key(verilog, stat, 0, shape)] = result.to_dict()
    header = {"model_version": energy.MODEL_VERSION, "calibration": energy.CALIBRATION,
              "area_scale": energy.AREA_SCALE,
              "measured_with": energy.toolchain(default_liberty())}
    lines = [f" {json.dumps(key)}: {json.dumps(value)}"
             for key, value in sorted(entries.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(header, indent=1)[:-2] + ',\n "entries": {\n'
                    + ",\n".join(lines) + "\n }\n}\n")
    return len(entries)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats", nargs="+", default=list(STATS), choices=STATS)
    parser.add_argument("--out", type=Path, default=Path("reports/energy/op_energy.csv"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    table = energy_table(args.stats)
    write_table(table, args.out, SHOWN)
    count = write_shipped_table(args.stats)
    print(f"wrote {energy.SHIPPED_TABLE} ({count} entries)")
    print(f"wrote {args.out} ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
