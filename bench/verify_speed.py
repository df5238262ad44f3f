"""Simulated cycles per second of the three ways to run a design under Verilator.

(a) bulk: the generated C++ harness playing a job's beats from memory (:mod:`peforge.sim.rtl.bulk`;
    the clock loop of the final harness run, and end to end with the driver's offline beat
    generation and replay), (b) cocotb: the family driver beat by beat from Python, (c) raw: the
    same harness executable toggling the clock with no testbench activity. Designs: 8 x 8, 32 x 32
    and 128 x 128 int8 output-stationary systolic arrays and each other family's default.

Writes reports/bench/verify_speed.csv, one row per (design, threads): a run replaces the rows of
the designs and thread count it measured and keeps the others, with the machine's load average at
the time. The target is bulk >= 25% of raw on every design.
Usage: python bench/verify_speed.py [--quick] [--threads N] [--no-cocotb-above PES] [--only TEXT]
"""

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

from peforge.sim.families import families, family
from peforge.sim.rtl.backends.verilator import build, run_jobs_verilator
from peforge.sim.rtl.bulk import run_jobs_bulk
from peforge.sim.rtl.flow import generate
from peforge.sim.rtl.harness import build_harness

OUT = Path(__file__).resolve().parents[1] / "reports" / "bench" / "verify_speed.csv"


def designs(quick: bool):
    """(label, family, config, bulk GEMM shape, cocotb GEMM shape)."""
    sizes = (8, 32) if quick else (8, 32, 128)
    systolic = family("systolic")
    for size in sizes:
        config = systolic.make_config(rows=size, cols=size)
        yield (f"systolic {size}x{size} os int8", systolic, config, (4 * size, 1024, 2 * size),
               (size, 1024, size))
    for name in sorted(families()):
        if name != "systolic":
            fam = family(name)
            yield f"{name} default", fam, fam.make_config(), (64, 1024, 64), (8, 512, 8)


def measure(label, fam, config, bulk_shape, cocotb_shape, *, threads, cocotb):
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    verilog, _ = generate(fam, config)
    gen_s = time.perf_counter() - start
    start = time.perf_counter()
    harness = build_harness(verilog, fam.top_name, threads=threads)
    build_s = time.perf_counter() - start
    job = fam.random_job(config, rng, *bulk_shape)
    start = time.perf_counter()
    run = run_jobs_bulk(fam, config, [job], harness)
    end_to_end = time.perf_counter() - start
    assert run.results[0][1] == fam.job_cycles(config, job), label
    bulk = run.cycles / run.seconds
    free_cycles = max(1000, min(10_000_000, int(2 * bulk)))
    raw = free_cycles / harness.free_run(free_cycles)
    row = {"design": label, "generate_s": round(gen_s, 2), "harness_build_s": round(build_s, 1),
           "threads": threads, "bulk_job": "x".join(map(str, bulk_shape)),
           "bulk_cycles": run.cycles, "bulk_passes": run.passes,
           "bulk_cycles_per_s": round(bulk), "bulk_end_to_end_cycles_per_s":
           round(run.cycles / end_to_end), "raw_cycles_per_s": round(raw),
           "bulk_over_raw": round(bulk / raw, 3), "cocotb_cycles_per_s": "",
           "load_1min": round(os.getloadavg()[0], 1)}
    if cocotb:
        # the difference of two runs, so the simulator's start-up does not count
        build_dir = build(verilog, fam.top_name)
        timed = []
        for shape in ((1, 1, 1), cocotb_shape):
            start = time.perf_counter()
            [(_, cycles)] = run_jobs_verilator(fam, config, [fam.random_job(config, rng, *shape)],
                                               build_dir)
            timed.append((cycles, time.perf_counter() - start))
        (c0, t0), (c1, t1) = timed
        # start-up noise larger than the longer job's own time: no figure rather than a wrong one
        row["cocotb_cycles_per_s"] = round((c1 - c0) / (t1 - t0)) if t1 > 1.1 * t0 else ""
    return row


def _write(rows):
    """Merge ``rows`` into the report: same (design, threads) replaced, others kept."""
    fields = list(rows[0])
    kept = []
    if OUT.exists():
        with open(OUT, newline="") as handle:
            kept = [row for row in csv.DictReader(handle)
                    if row.keys() == set(fields) and
                    (row["design"], int(row["threads"])) not in
                    {(new["design"], new["threads"]) for new in rows}]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(sorted(kept + rows, key=lambda row: (row["design"], int(row["threads"]))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 128 x 128 array")
    parser.add_argument("--threads", type=int, default=1, help="Verilator --threads")
    parser.add_argument("--no-cocotb-above", type=int, default=1024, metavar="PES",
                        help="skip the cocotb run (its -O0 build) above this many PEs")
    parser.add_argument("--only", default="", metavar="TEXT",
                        help="measure only the designs whose label contains TEXT")
    args = parser.parse_args()
    rows = []
    for label, fam, config, bulk_shape, cocotb_shape in designs(args.quick):
        if args.only not in label:
            continue
        cocotb = fam.pes is None or fam.pes(config) <= args.no_cocotb_above
        row = measure(label, fam, config, bulk_shape, cocotb_shape, threads=args.threads,
                      cocotb=cocotb)
        rows.append(row)
        print(", ".join(f"{key} {value}" for key, value in row.items()), flush=True)
        _write(rows)  # after every design, so a long run that is stopped keeps its rows
    if not rows:
        parser.error(f"--only: no design label contains {args.only!r}")
    print(f"wrote {OUT}")
    worst = min(rows, key=lambda row: row["bulk_over_raw"])
    print(f"worst bulk / raw: {worst['bulk_over_raw']} ({worst['design']}); target >= 0.25")


if __name__ == "__main__":
    main()
