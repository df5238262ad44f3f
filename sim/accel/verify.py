"""End-to-end check of an accelerator tile: GEMMs on the RTL against the golden model and the
performance model (``peforge verify accelerator``, ``bench/accelerator_fidelity.py``).

Each GEMM runs under the mapping the model picks for it (:func:`peforge.sim.perf.model.simulate_gemm`
on :func:`peforge.sim.accel.predict.rtl_view`), or, where the tile's layout cannot take that one
(:func:`peforge.hw.accelerator.layout.descriptor_problems`), the fastest by the model of the
legal tilings it can take (the first of equals); the model then predicts that mapping
(:func:`peforge.sim.accel.predict.predict`).
"""

from dataclasses import dataclass

import numpy as np

from peforge.hw.accelerator.config import AccelConfig
from peforge.hw.accelerator.layout import descriptor_problems
from peforge.hw.accelerator.top import TOP_NAME
from peforge.sim.families import family
from peforge.sim.perf.model import simulate_gemm, simulate_mapping
from peforge.sim.perf.tiling import MappingError, legal_mappings
from peforge.sim.rtl.backends.verilator import build

from peforge.sim.accel.energy import rtl_sram_bytes, sram_energy_pj
from peforge.sim.accel.flow import generate, place, run_gemms
from peforge.sim.accel.golden import tile_golden
from peforge.sim.accel.measured import record
from peforge.sim.accel.predict import model_gemm, predict, rtl_view

__all__ = ["verify_shapes", "choose_mapping", "GemmCheck", "verify_accelerator"]


def verify_shapes(cfg: AccelConfig) -> list[tuple[int, int, int]]:
    """GEMM shapes for an ``rows x cols`` array: one tile, ragged edges, split K, M or N of 1,
    several tiles in both outer dimensions."""
    r, c = cfg.rows, cfg.cols
    return [(1, 1, 1), (r, r, c), (r + 1, 3, c + 1), (1, 4 * r + 1, 1), (2 * r - 1, 40, 1),
            (1, 24, 2 * c + 1), (3 * r, 8, c), (r, 5, 3 * c), (32, 32, 32), (33, 20, 17),
            (48, 16, 64), (64, 64, 64), (5, 100, 7), (100, 3, 5), (2 * r + 3, 2 * r + 3, 2 * c + 3),
            (7, 7, 7), (16, 1, 16), (20, 24, 20), (64, 8, 3), (3, 8, 64)]


def choose_mapping(cfg: AccelConfig, m: int, k: int, n: int):
    """The model's mapping for the GEMM, or the fastest legal one the tile's layout takes."""
    accel, gemm = rtl_view(cfg), model_gemm(cfg, m, k, n)

    def runnable(mapping):
        return not descriptor_problems(cfg, place(cfg, m, k, n, mapping.tm, mapping.tk,
                                                  mapping.tn, mapping.order))

    chosen = simulate_gemm(accel, gemm).mapping
    if runnable(chosen):
        return chosen
    candidates = [mapping for mapping in legal_mappings(accel, gemm) if runnable(mapping)]
    if not candidates:
        raise MappingError(f"no tiling of {m}x{k}x{n} fits the tile's scratchpads")
    return min(candidates, key=lambda mapping: simulate_mapping(accel, gemm, mapping).cycles)


@dataclass(frozen=True)
class GemmCheck:
    """One GEMM on the RTL and in the model; :attr:`row` also charges the SRAM traffic of each
    (the RTL's counters, the model's bytes) at the same unit costs
    (:mod:`peforge.sim.accel.energy`)."""

    cfg: AccelConfig
    m: int
    k: int
    n: int
    mapping: str
    exact: bool
    rtl: dict
    model: dict

    @property
    def row(self) -> dict:
        rtl, model = self.rtl, self.model
        return {"shape": f"{self.m}x{self.k}x{self.n}", "mapping": self.mapping,
                "bit_exact": self.exact, "rtl_cycles": rtl["cycles"],
                "model_cycles": model["cycles"], "cycles_diff": rtl["cycles"] - model["cycles"],
                "rtl_busy_cycles": rtl["busy_cycles"],
                "model_compute_cycles": model["compute_cycles"],
                "rtl_stall_cycles": rtl["cycles"] - rtl["busy_cycles"],
                "model_stall_cycles": model["cycles"] - model["compute_cycles"],
                "rtl_dram_read_bytes": rtl["dram_read_bytes"],
                "model_dram_read_bytes": model["dram_read"],
                "rtl_dram_write_bytes": rtl["dram_write_bytes"],
                "model_dram_write_bytes": model["dram_write"],
                "rtl_sram_pj": sram_energy_pj(self.cfg, rtl_sram_bytes(self.cfg, rtl)),
                "model_sram_pj": sram_energy_pj(self.cfg, model),
                "utilisation": rtl["utilisation"]}


def verify_accelerator(cfg: AccelConfig, shapes=None, *, seed: int = 0,
                       verilog: str | None = None) -> list[GemmCheck]:
    """Run ``shapes`` (default :func:`verify_shapes`) on the tile; one check per GEMM. The
    counters of each are recorded (:func:`peforge.sim.accel.measured.record`). ``verilog``:
    the tile's, when the caller has generated it already."""
    fam, pe = family(cfg.accel.family), cfg.accel.pe
    rng = np.random.default_rng(seed)
    shapes = verify_shapes(cfg) if shapes is None else shapes
    runs, mappings, jobs = [], [], []
    for m, k, n in shapes:
        mapping = choose_mapping(cfg, m, k, n)
        job = fam.random_job(pe, rng, m, k, n)
        runs.append((place(cfg, m, k, n, mapping.tm, mapping.tk, mapping.tn, mapping.order),
                     job.a, job.b))
        mappings.append(mapping)
        jobs.append(job)
    verilog = verilog or generate(cfg)[0]
    results = run_gemms(cfg, build(verilog, TOP_NAME), runs)
    checks = []
    for (m, k, n), mapping, job, result in zip(shapes, mappings, jobs, results):
        exact = result.c is not None and bool(
            (result.c == tile_golden(cfg, job.a, job.b, mapping.tk)).all())
        if not result.illegal:
            record(cfg, verilog, result.descriptor, result.counters)
        rtl = dict(result.counters)
        rtl["utilisation"] = m * k * n / (fam.pes(pe) * rtl["cycles"])
        checks.append(GemmCheck(cfg, m, k, n, str(mapping), exact, rtl,
                                predict(cfg, m, k, n, mapping)))
    return checks
