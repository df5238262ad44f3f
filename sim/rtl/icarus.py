"""A second simulator: the family drivers through cocotb on Icarus Verilog (Debian ``iverilog``),
so the generated Verilog is not checked only by the simulator it was tuned on.

Runs the same cocotb test module as the Verilator bench
(:mod:`peforge.sim.rtl.backends.cocotb_bench`); builds are cached per Verilog text like
Verilator builds.
"""

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from filelock import FileLock

from peforge.sim.cache import cache_dir
from peforge.sim.rtl.backends.verilator import BenchError, ToolchainError, run_cocotb_bench

__all__ = ["icarus_version", "run_jobs_icarus"]

#: Time unit and precision: the bench's 10 ns clock needs a precision finer than Icarus's
#: default of 1 s.
TIMESCALE = ("1ns", "1ps")

#: Language generation, placed after the runner's own ``-g2012`` (the last ``-g`` wins). Yosys's
#: Verilog makes each ``always @*`` block run at time 0 by reading a ``reg ... = 0`` that never
#: changes; under IEEE 1800 (``-g2012``) such an initialiser raises no event, so a combinational
#: output whose inputs hold their reset value through reset (e.g. ``o_stream__valid`` of an FSM
#: that stays in state 0) reads ``x`` until an input changes. Under IEEE 1364-2005 the initialiser
#: is an event and every block runs once at time 0, as in Verilator.
LANGUAGE = "-g2005"


def icarus_version() -> str:
    """``iverilog -V``'s first line; ToolchainError with the install line when missing."""
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise ToolchainError("Icarus Verilog is not installed (Debian: apt-get install iverilog)")
    proc = subprocess.run(["iverilog", "-V"], capture_output=True, text=True)
    return proc.stdout.splitlines()[0] if proc.stdout else "unknown"


def run_jobs_icarus(family, config, jobs: list, verilog: str) -> list[tuple[dict, int]]:
    """Run ``jobs`` back to back on Icarus; ``(outputs, cycles)`` per job."""
    from cocotb_tools.runner import get_runner

    top = family.top_name
    key = hashlib.sha256("\0".join([verilog, top, icarus_version(), LANGUAGE, *TIMESCALE])
                         .encode())
    build_dir = cache_dir() / "icarus" / f"{top}-{key.hexdigest()[:16]}"
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    runner = get_runner("icarus")
    with FileLock(str(build_dir) + ".lock"):
        if not (build_dir / "sim.vvp").exists():
            build_dir.mkdir(exist_ok=True)
            source = build_dir / f"{top}.v"
            source.write_text(verilog)
            try:
                runner.build(sources=[source], hdl_toplevel=top, build_dir=build_dir,
                             build_args=[LANGUAGE], timescale=TIMESCALE, log_file=build_dir / "build.log")
            except RuntimeError:
                raise BenchError(f"Icarus build of {top} failed; see {build_dir / 'build.log'}") \
                    from None
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=build_dir))
    results = run_cocotb_bench(runner, family, config, jobs, build_dir, run_dir,
                               "Icarus simulation")
    shutil.rmtree(run_dir)
    return results

