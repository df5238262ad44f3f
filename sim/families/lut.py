"""The LUT tensor-core family."""

import dataclasses
from dataclasses import dataclass

import numpy as np

from peforge.hw.lut.top import LutArray
from peforge.hw.lut.driver import LutDriver
from peforge.models.integer import int_range
from peforge.models.lut import LutConfig, gemm_cycles, golden_gemm
from peforge.models.operand_stats import VERIFY, OperandStats

from peforge.sim.families import Family, Job

__all__ = ["FAMILY", "Lut", "LutJob"]


@dataclass(frozen=True, eq=False)
class LutJob(Job):
    """``C = A @ W``: ``a`` (M x K signed activations) and ``w`` (K x N weight codes)."""

    a: np.ndarray
    w: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.a.shape[0], self.a.shape[1], self.w.shape[1]


def job_shapes(config: LutConfig, sizes: str) -> list[tuple[int, int, int]]:
    """GEMM shapes (M, K, N) that cover single and multiple tiles, one and several activation
    groups, and ragged edges in all three dimensions (K not a multiple of the group)."""
    r, c, g = config.m, config.n, config.k
    shapes = [(1, 1, 1), (r, g, c), (r + 1, 3 * g + 1, c + 1), (2 * r - 1, g - 1, 2 * c - 1)]
    if sizes == "full":
        shapes += [(r, 1, c), (1, 2 * g + 1, 1), (3 * r, 2, c), (r, 5 * g, 3 * c),
                   (max(1, r - 1), 16 * g + 3, max(1, c - 1)), (2 * r + 3, 2 * g + 3, 2 * c + 3)]
    return shapes


def _random_codes(config: LutConfig, rng: np.random.Generator, shape,
                  stats: OperandStats = VERIFY) -> np.ndarray:
    return stats.ints(rng, shape, *config.weight_format.code_range)


def random_job(config: LutConfig, rng: np.random.Generator, m: int, k: int, n: int,
               stats: OperandStats = VERIFY) -> LutJob:
    """Signed activations and weight codes drawn by ``stats`` (verification: uniform)."""
    return LutJob(stats.ints(rng, (m, k), *int_range(config.abits, True)),
                  _random_codes(config, rng, (k, n), stats))


def make_jobs(config: LutConfig, rng: np.random.Generator, sizes: str = "quick") -> list[LutJob]:
    """Random jobs over the shapes of :func:`job_shapes`, then corner jobs on a ragged two-tile
    shape: every pair of extreme activation and extreme code, zeros, and random mixes of the
    extreme activations with random codes (largest table entries of both signs)."""
    jobs = [random_job(config, rng, *shape) for shape in job_shapes(config, sizes)]
    a_low, a_high = int_range(config.abits, signed=True)
    w_low, w_high = config.weight_format.code_range
    m, k, n = config.m + 1, 2 * config.k + 1, config.n + 1
    for a_value, w_value in ((a_low, w_low), (a_high, w_high), (a_low, w_high), (a_high, w_low),
                             (0, 0)):
        jobs.append(LutJob(np.full((m, k), a_value, dtype=np.int64),
                           np.full((k, n), w_value, dtype=np.int64)))
    jobs.append(LutJob(rng.choice([a_low, a_high], size=(m, k)),
                       _random_codes(config, rng, (k, n))))
    return jobs


class Lut(Family):
    """LUT tensor-core tiles (:mod:`peforge.models.lut`)."""

    name = "lut"
    summary = ("LUT tensor-core M x N tile: symmetrised activation tables looked up by low-bit "
               "weight bit-planes (unsigned, signed, ternary), one plane per cycle")
    config = LutConfig
    job_type = LutJob
    port_docs = {
        "i_stream__payload": "input beat {a[m][k] activations (a group's first plane only), "
                             "idx[n] {j[k-1], negate} folded weight indices of one bit-plane, "
                             "last} (LSB first)",
        "i_stream__valid": "input beat offered",
        "i_stream__ready": "input beat accepted when valid and ready",
        "o_stream__payload": "output beat {data[n] results of acc_bits - 1 bits, last}",
        "o_stream__valid": "output beat present (no backpressure)",
    }

    def generator(self, config: LutConfig) -> LutArray:
        return LutArray.from_config(config)

    def golden(self, config: LutConfig, job: LutJob) -> dict:
        return {"c": golden_gemm(config, job.a, job.w)}

    def gemm_cycles(self, config: LutConfig, m, k, n, w_bits=None):
        return gemm_cycles(config, m, k, n)

    def latency(self, config: LutConfig) -> str:
        return (f"ceil(M/{config.m}) * ceil(N/{config.n}) * "
                f"(ceil(K/{config.k}) * {config.wbits} + {config.m - 1}) + 2")

    random_job = staticmethod(random_job)
    make_jobs = staticmethod(make_jobs)

    async def run_job(self, ports, config: LutConfig, job: LutJob) -> tuple[dict, int]:
        c, cycles = await LutDriver(config).gemm(ports, job.a, job.w)
        return {"c": c}, cycles

    def pes(self, config: LutConfig) -> int:
        """A cell's lookup covers k weights of one bit-plane per cycle: k (bit-serial) MAC
        units."""
        return config.m * config.n * config.k

    def pipeline_overlap(self, config: LutConfig) -> int:
        """Tiles stream back to back; the precompute and final drain (2 cycles) count once."""
        return 2

    def energy_config(self, config: LutConfig) -> LutConfig:
        """At most 8 tile columns (each row's tables are then shared by 8 columns, not up to
        128), same rows, group, weights and activations, for activity runs."""
        return dataclasses.replace(config, n=min(config.n, 8))

    def energy_shape(self, config: LutConfig) -> tuple[int, int, int]:
        """One tile over 64 activation groups."""
        return config.m, 64 * config.k, config.n


FAMILY = Lut()
