"""Generate and verify a family configuration: the steps behind ``peforge gen`` and ``verify``."""

import json
import time
from importlib import import_module
from dataclasses import dataclass, field, fields
from importlib.metadata import version
from pathlib import Path

import numpy as np

from peforge.hw.common.hierarchy import (HIERARCHICAL_MIN_PES, HIERARCHICAL_TOPS, PartLibrary,
                                         hierarchical_verilog)
from peforge.hw.common.verilog import port_table, to_verilog
from peforge.models.params import config_dict, config_hash

from peforge.sim.outputs import write_outputs

from peforge.sim.rtl.backends import get_backend
from peforge.sim.rtl.bulk import run_jobs_bulk
from peforge.sim.rtl.harness import build_harness

__all__ = ["generate", "write_design", "verify", "check_job", "JobResult", "Verification"]


def generate(family, config, *, hierarchical: bool | None = None) -> tuple[str, dict]:
    """Verilog of the family's top for ``config`` and its manifest.

    ``hierarchical``: write each distinct part once and instantiate it
    (:mod:`peforge.hw.common.hierarchy`; families without a shared-part form are always flat);
    None: from :data:`~peforge.hw.common.hierarchy.HIERARCHICAL_MIN_PES` PEs on.
    """
    shared = HIERARCHICAL_TOPS.get(family.name)
    if hierarchical is None:
        hierarchical = family.pes is not None and family.pes(config) >= HIERARCHICAL_MIN_PES
    if hierarchical and shared is not None:
        library = PartLibrary(family.top_name)
        top = getattr(import_module(shared[0]), shared[1])(config, library)
        verilog = hierarchical_verilog(top, library, family.top_name)
    else:
        top = family.generator(config)
        verilog = to_verilog(top, family.top_name)
    ports = [{"meaning": family.port_docs.get(port["name"], ""), **port}
             for port in port_table(top)]
    manifest = {
        "family": family.name,
        "top": family.top_name,
        "parameters": config_dict(config),
        "config_hash": config_hash(family.name, config),
        "ports": ports,
        "latency": family.latency(config) + (" at most (the job's data sets the pace)"
                                             if family.data_paced else ""),
        "peforge_version": version("peforge"),
    }
    return verilog, manifest


def write_design(family, config, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<family>_<hash>.v`` and its ``.json`` manifest into ``out_dir``.

    Both files are written whole or not at all, with the user's umask
    (:func:`peforge.sim.outputs.write_outputs`). Raises OSError when ``out_dir`` cannot be created
    or written.
    """
    verilog, manifest = generate(family, config)
    stem = f"{family.top_name}_{manifest['config_hash']}"
    verilog_path, manifest_path = write_outputs({
        Path(out_dir) / f"{stem}.v": verilog,
        Path(out_dir) / f"{stem}.json": json.dumps(manifest, indent=2) + "\n"})
    return verilog_path, manifest_path


@dataclass
class JobResult:
    """One verified job: its shape, what the RTL gave and what the models say.

    ``mismatch`` says where the outputs first differ from the golden model's (empty when they
    are equal)."""

    shape: str
    outputs_match: bool
    cycles: int
    model_cycles: int
    mismatch: str = ""

    @property
    def passed(self) -> bool:
        return self.outputs_match and self.cycles == self.model_cycles

    def describe(self) -> str:
        """What is wrong, in one line (empty when it passed)."""
        problems = [self.mismatch] if not self.outputs_match else []
        if self.cycles != self.model_cycles:
            problems.append(f"RTL {self.cycles} cycles, model {self.model_cycles}")
        return "; ".join(problems)


@dataclass
class Verification:
    jobs: list[JobResult] = field(default_factory=list)
    build_dir: Path | None = None
    waves: Path | None = None
    #: Simulated cycles and the seconds they took, for the cycles per second ``peforge verify``
    #: reports. Bulk: every cycle of the final harness run and its clock loop's seconds; cocotb and
    #: amaranth: the jobs' measured cycles and the whole run's seconds (builds excluded).
    sim_cycles: int = 0
    sim_seconds: float = 0.0

    @property
    def cycles_per_second(self) -> float:
        return self.sim_cycles / self.sim_seconds if self.sim_seconds else 0.0

    @property
    def passed(self) -> bool:
        return bool(self.jobs) and all(job.passed for job in self.jobs)


def check_job(family, config, job, outputs: dict, cycles: int) -> JobResult:
    """Compare what the RTL gave for ``job`` with the golden model bit for bit and with the
    cycle model exactly."""
    expected = family.golden(config, job)
    mismatch = ""
    if outputs.keys() != expected.keys():
        mismatch = f"outputs {sorted(outputs)}, golden {sorted(expected)}"
    for name in expected if not mismatch else ():
        got = np.asarray(outputs[name], dtype=object)
        want = np.asarray(expected[name], dtype=object)
        if got.shape != want.shape:
            mismatch = f"{name}: shape {got.shape}, golden {want.shape}"
            break
        bad = np.argwhere(got != want)
        if len(bad):
            first = tuple(int(i) for i in bad[0])
            mismatch = (f"{name}: {len(bad)} values differ, first at {first}: RTL {got[first]}, "
                        f"golden {want[first]}")
            break
    shape = " ".join(f"{name}{list(value.shape)}" for name, value in _arrays(job))
    return JobResult(shape, not mismatch, cycles, family.job_cycles(config, job), mismatch)


def verify(family, config, *, backend: str = "verilator", sizes: str = "quick", seed: int = 0,
           waves: bool = False, shapes: list[tuple[int, int, int]] | None = None,
           jobs_per_shape: int = 1, threads: int = 1) -> Verification:
    """Run the family's random and corner jobs (or ``jobs_per_shape`` random jobs of each GEMM
    shape ``(m, k, n)`` in ``shapes``) on the RTL; compare bit for bit with the golden model and
    cycle for cycle with the timing model (:func:`check_job`). ``backend``: verilator (cocotb,
    beat by beat; waves), bulk (the generated C++ harness, :mod:`peforge.sim.rtl.bulk`;
    ``threads``) or amaranth."""
    rng = np.random.default_rng(seed)
    if shapes:
        jobs = [family.random_job(config, rng, *shape) for shape in shapes
                for _ in range(jobs_per_shape)]
    else:
        jobs = family.make_jobs(config, rng, sizes)
    if backend == "bulk":
        if waves:
            raise ValueError("waves: the bulk backend writes no waves (use the verilator one)")
        verilog, _ = generate(family, config)
        harness = build_harness(verilog, family.top_name, threads=threads)
        report = Verification(build_dir=harness.executable.parent)
        run = run_jobs_bulk(family, config, jobs, harness)
        results, report.sim_cycles, report.sim_seconds = run.results, run.cycles, run.seconds
    else:
        simulator = get_backend(backend)
        report = Verification(build_dir=simulator.build_dir(family, config, waves=waves))
        if waves:
            if report.build_dir is None:
                raise ValueError(f"waves: the {backend} backend writes no waves")
            report.waves = report.build_dir / f"waves-{sizes}-seed{seed}" / "dump.fst"
        start = time.perf_counter()
        results = simulator.run_jobs(family, config, jobs,
                                     waves_dir=report.waves.parent if waves else None)
        report.sim_seconds = time.perf_counter() - start
        report.sim_cycles = sum(cycles for _, cycles in results)
    report.jobs = [check_job(family, config, job, outputs, cycles)
                   for job, (outputs, cycles) in zip(jobs, results)]
    return report


def _arrays(job):
    """The named operand arrays of a job (a dict or a dataclass of arrays)."""
    items = (job.items() if isinstance(job, dict)
             else ((f.name, getattr(job, f.name)) for f in fields(job)))
    return [(name, value) for name, value in items if hasattr(value, "shape")]
