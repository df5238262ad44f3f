"""``make demo``: generate one default configuration of every family into rtl_out/, verify it under
Verilator against the golden and cycle models, write the L-Mul accuracy and area report, run the
shipped design-space sweep (:data:`DEMO_SWEEP`, model only) into results/demo.db, write its
report and print where it is and a summary of the winners."""

from pathlib import Path

from peforge.sim.cli.common import stage
from peforge.sim.families import families
from peforge.sweeps import shipped_sweep
from peforge.sim.rtl.flow import verify, write_design
from peforge.sim.studies import run_study

__all__ = ["run_demo", "DEMO_SWEEP"]

#: The demo's sweep: all families, a few array sizes and precisions, LLaMA-2-7B decode and
#: prefill of 256 tokens.
DEMO_SWEEP = shipped_sweep("demo")

#: GEMM shape whose modelled cycle count the demo prints for each family.
DEMO_GEMM = (64, 64, 64)


def run_demo(out_dir: Path) -> int:
    failures = 0
    listed = families()
    for number, fam in enumerate(listed.values(), 1):
        config = fam.config()
        with stage(f"demo {number}/{len(listed)} {fam.name}: generating and verifying"):
            verilog_path, manifest_path = write_design(fam, config, out_dir)
            report = verify(fam, config)
        print(f"[{fam.name}] {config}")
        print(f"  Verilog:  {verilog_path}\n  manifest: {manifest_path}")
        total_cycles = sum(job.cycles for job in report.jobs)
        status = "PASS" if report.passed else "FAIL"
        print(f"  Verilator: {status}, {len(report.jobs)} GEMM jobs bit-exact and cycle-exact "
              f"({total_cycles} cycles measured, build {report.build_dir})")
        m, k, n = DEMO_GEMM
        print(f"  cycle model: a {m}x{k}x{n} GEMM takes {fam.gemm_cycles(config, m, k, n)} cycles")
        failures += not report.passed
    with stage("demo: L-Mul accuracy and area report"):
        paths = run_study("lmul")
    print("[report lmul] " + " ".join(str(path) for path in paths))
    run_demo_sweep(Path("results") / "demo.db", Path("reports") / "demo")
    print("demo: all families verified" if not failures else f"demo: {failures} families FAILED")
    return 1 if failures else 0


def run_demo_sweep(db: Path, out: Path, *, quiet: bool = False) -> None:
    """Run :data:`DEMO_SWEEP` into ``db`` (points stored already are skipped), write its report
    into ``out`` and print where the page and figures are and the winners."""
    from peforge.sim.explore.results import ResultStore
    from peforge.sim.explore.search import run_sweep
    from peforge.sim.explore.spec import load_sweep
    from peforge.sim.explore.report import sweep_rows, winners, write_sweep_report

    sweep = load_sweep(DEMO_SWEEP)
    run = run_sweep(sweep, db, quiet=quiet)
    print(f"[sweep {sweep.name}] {run.points_asked} points x {len(sweep.workloads)} workloads, "
          f"{run.points_evaluated} evaluated ({run.points_skipped} already in {db}) in "
          f"{run.seconds:.1f} s")
    paths = write_sweep_report(db, out, sweep=sweep.name)
    print(f"  report: {paths[-1]}")
    print(f"  figures: {', '.join(str(path) for path in paths if path.suffix == '.png')}")
    with ResultStore(db) as store:
        for line in winners(sweep_rows(store, sweep.name), store.sweeps()[sweep.name]):
            print(f"  {line}")
