"""Generate and verify a family configuration: the steps behind ``peforge gen`` and ``verify``."""

import json
import os
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np

from peforge.hw.common.verilog import port_table, to_verilog
from peforge.models.params import config_dict, config_hash

from peforge.sim.rtl.backends.amaranth import run_jobs_amaranth
from peforge.sim.rtl.backends.verilator import build, run_jobs_verilator

__all__ = ["generate", "write_design", "verify", "JobResult", "Verification"]


def generate(family, config) -> tuple[str, dict]:
    """Verilog of the family's top for ``config`` and its manifest."""
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

    Both files are written under temporary names and renamed, so a failure leaves no partial file.
    Raises OSError when ``out_dir`` cannot be created or written.
    """
    verilog, manifest = generate(family, config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{family.top_name}_{manifest['config_hash']}"
    targets = [(out_dir / f"{stem}.v", verilog),
               (out_dir / f"{stem}.json", json.dumps(manifest, indent=2) + "\n")]
    written = []
    try:
        for path, text in targets:
            fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{path.name}.")
            written.append(tmp)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
        for (path, _), tmp in zip(targets, written):
            os.replace(tmp, path)
    finally:
        for tmp in written:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return targets[0][0], targets[1][0]


@dataclass
class JobResult:
    """One verified job: its shape, what the RTL gave and what the models say."""

    shape: str
    outputs_match: bool
    cycles: int
    model_cycles: int

    @property
    def passed(self) -> bool:
        return self.outputs_match and self.cycles == self.model_cycles


@dataclass
class Verification:
    jobs: list[JobResult] = field(default_factory=list)
    build_dir: Path | None = None
    waves: Path | None = None

    @property
    def passed(self) -> bool:
        return bool(self.jobs) and all(job.passed for job in self.jobs)


def verify(family, config, *, backend: str = "verilator", sizes: str = "quick", seed: int = 0,
           waves: bool = False) -> Verification:
    """Run the family's random and corner jobs on the RTL; compare bit for bit with the golden
    model and cycle for cycle with the timing model."""
    jobs = family.make_jobs(config, np.random.default_rng(seed), sizes)
    report = Verification()
    if backend == "verilator":
        verilog, _ = generate(family, config)
        report.build_dir = build(verilog, family.top_name, waves=waves)
        if waves:
            report.waves = report.build_dir / f"waves-{sizes}-seed{seed}" / "dump.fst"
        results = run_jobs_verilator(family, config, jobs, report.build_dir,
                                     waves_dir=report.waves.parent if waves else None)
    elif backend == "amaranth":
        results = run_jobs_amaranth(family, config, jobs)
    else:
        raise ValueError(f"backend: must be one of verilator, amaranth, got {backend!r}")
    for job, (outputs, cycles) in zip(jobs, results):
        expected = family.golden(config, job)
        match = expected.keys() == outputs.keys() and all(
            np.array_equal(np.asarray(outputs[name], dtype=object),
                           np.asarray(expected[name], dtype=object)) for name in expected)
        shape = " ".join(f"{name}{list(value.shape)}" for name, value in job.arrays().items())
        report.jobs.append(JobResult(shape, match, cycles, family.job_cycles(config, job)))
    return report
