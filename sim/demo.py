"""``make demo``: generate one default configuration of every family into rtl_out/, verify it under
Verilator against the golden and cycle models, write the L-Mul accuracy and area report, and
print a short summary."""

from pathlib import Path

from .families import families
from .flow import verify, write_design
from .lmul_report import claims, write_report

__all__ = ["run_demo"]

#: GEMM shape whose modelled cycle count the demo prints for each family.
DEMO_GEMM = (64, 64, 64)


def run_demo(out_dir: Path) -> int:
    failures = 0
    for fam in families().values():
        config = fam.config()
        verilog_path, manifest_path = write_design(fam, config, out_dir)
        print(f"[{fam.name}] {config}")
        print(f"  Verilog:  {verilog_path}\n  manifest: {manifest_path}")
        report = verify(fam, config)
        total_cycles = sum(job.cycles for job in report.jobs)
        status = "PASS" if report.passed else "FAIL"
        print(f"  Verilator: {status}, {len(report.jobs)} GEMM jobs bit-exact and cycle-exact "
              f"({total_cycles} cycles measured, build {report.build_dir})")
        m, k, n = DEMO_GEMM
        print(f"  cycle model: a {m}x{k}x{n} GEMM takes {fam.cycles(config, m, k, n)} cycles")
        failures += not report.passed
    table, _area, paths = write_report(Path("reports") / "lmul")
    print("[report lmul] " + " ".join(str(path) for path in paths))
    for line in claims(table):
        print(f"  {line}")
    print("demo: all families verified" if not failures else f"demo: {failures} families FAILED")
    return 1 if failures else 0
