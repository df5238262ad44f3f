"""The L-Mul families: ``lmul`` (a bank of multipliers) and ``lmul-dot`` (a dot-product unit).
The systolic array with float MAC PEs is the ``systolic`` family with ``pe="lmul"`` or ``"fp"``."""

import dataclasses
from dataclasses import dataclass

import numpy as np

from peforge.hw.lmul.driver import DotDriver, MultiplierDriver
from peforge.hw.lmul.top import DotProductUnit, MultiplierStream
from peforge.models.numerics.floatmac import cancelling_job, random_operands
from peforge.models.numerics.lmul import operand_pairs
from peforge.models.operand_stats import VERIFY, OperandStats
from peforge.models.lmul import (DotConfig, MultiplierConfig, gemm_cycles, golden_gemm,
                                 golden_products, product_cycles, tree_levels)

from peforge.sim.families import Family, GemmJob, Job

__all__ = ["FAMILY", "DOT_FAMILY", "Lmul", "LmulDot", "PairsJob", "random_pairs_job",
           "random_gemm_job"]


@dataclass(frozen=True, eq=False)
class PairsJob(Job):
    """Independent products: operand patterns ``a`` and ``b`` (1-D, one pair per index); a
    job of ``P`` pairs counts as the GEMM ``(P, 1, 1)``."""

    a: np.ndarray
    b: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.a), 1, 1


def _all_patterns(fmt, rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(0, 1 << fmt.bits, shape)


def random_pairs_job(config, rng: np.random.Generator, m: int, k: int, n: int,
                     stats: OperandStats = VERIFY) -> PairsJob:
    """The ``m * k * n`` products of a GEMM as independent pairs drawn by ``stats``
    (verification: uniform over all patterns, Inf and NaN included)."""
    fmt = config.mac.fmt
    return PairsJob(stats.floats(fmt, rng, m * k * n, _all_patterns),
                    stats.floats(fmt, rng, m * k * n, _all_patterns))


def random_gemm_job(config, rng: np.random.Generator, m: int, k: int, n: int,
                    stats: OperandStats = VERIFY) -> GemmJob:
    """``A`` (m x k) and ``B`` (k x n) drawn by ``stats`` (verification:
    :func:`random_operands`)."""
    fmt = config.mac.fmt
    return GemmJob(stats.floats(fmt, rng, (m, k), random_operands),
                   stats.floats(fmt, rng, (k, n), random_operands))


def multiplier_jobs(config: MultiplierConfig, rng: np.random.Generator,
                    sizes: str = "quick") -> list[PairsJob]:
    """Corner pairs then random and boundary pairs
    (:func:`~peforge.models.numerics.lmul.operand_pairs`), a ragged tail, and one pair; ``full``:
    every pair of an 8-bit format, 65,536 pairs of a 16-bit one."""
    fmt = config.mac.fmt
    seed = int(rng.integers(1 << 31))
    if sizes == "quick":
        a, b = operand_pairs(fmt, 1023, seed)
    elif fmt.bits == 8:
        a, b = (grid.ravel() for grid in np.meshgrid(np.arange(256), np.arange(256)))
    else:
        a, b = operand_pairs(fmt, 1 << 16, seed)
    return [PairsJob(np.asarray(a, np.int64), np.asarray(b, np.int64)),
            random_pairs_job(config, rng, 1, 1, 1)]


def dot_jobs(config: DotConfig, rng: np.random.Generator, sizes: str = "quick") -> list[GemmJob]:
    """Dot products of one beat, a ragged beat, several beats (``full`` adds longer ones), then
    cancelling jobs (:func:`cancelling_job`) on the last shape."""
    lanes = config.lanes
    shapes = [(1, 1, 1), (2, lanes, 1), (3, lanes + 1, 2), (2, 3 * lanes - 1, 3)]
    if sizes == "full":
        shapes += [(1, 16 * lanes + 3, 1), (4, 2 * lanes, 4)]
    jobs = [random_gemm_job(config, rng, *shape) for shape in shapes]
    return jobs + [GemmJob(**cancelling_job(config.mac.fmt, rng, *shapes[-1])) for _ in range(2)]


class _LanesStream(Family):
    """What the two L-Mul families share: ``lanes`` multipliers behind one stream."""

    _ports = {
        "i_stream__valid": "input beat offered",
        "i_stream__ready": "input beat accepted when valid and ready",
        "o_stream__valid": "output beat present (no backpressure)",
    }

    def pes(self, config) -> int:
        return config.lanes

    def pipeline_overlap(self, config) -> int:
        """The next job's first beat is accepted on the edge of the previous one's last
        output."""
        return 1

    def energy_config(self, config):
        """At most 4 lanes of the same multiplier, for activity runs."""
        return dataclasses.replace(config, lanes=min(config.lanes, 4))


class Lmul(_LanesStream):
    """A bank of ``lanes`` L-Mul or exact multipliers (:mod:`peforge.models.lmul`)."""

    name = "lmul"
    summary = ("L-Mul (one integer add) or exact RNE float multipliers, lanes per beat "
               "(e4m3, e5m2, fp16, bf16)")
    config = MultiplierConfig
    job_type = PairsJob
    port_docs = {**_LanesStream._ports,
                 "i_stream__payload": "input beat {a[lanes], b[lanes]} operand patterns "
                                      "(LSB first)",
                 "o_stream__payload": "output beat {p[lanes]} product patterns"}

    def generator(self, config: MultiplierConfig) -> MultiplierStream:
        return MultiplierStream(config)

    def golden(self, config: MultiplierConfig, job: PairsJob) -> dict:
        return {"p": golden_products(config, job.a, job.b)}

    def gemm_cycles(self, config: MultiplierConfig, m, k, n, w_bits=None):
        return product_cycles(config, m, k, n)

    def latency(self, config: MultiplierConfig) -> str:
        """Of ``M*K*N`` pairs (a job of ``P`` pairs is ``M = P``, ``K = N = 1``)."""
        return f"ceil(M*K*N/{config.lanes}) + 1"

    random_job = staticmethod(random_pairs_job)
    make_jobs = staticmethod(multiplier_jobs)

    async def run_job(self, ports, config: MultiplierConfig, job: PairsJob) -> tuple[dict, int]:
        p, cycles = await MultiplierDriver(config).multiply(ports, job.a, job.b)
        return {"p": p}, cycles

    def energy_shape(self, config: MultiplierConfig) -> tuple[int, int, int]:
        """256 independent products: 64 beats of 4 lanes."""
        return 1, 256, 1


class LmulDot(_LanesStream):
    """A ``lanes``-wide dot-product unit (:mod:`peforge.models.lmul`)."""

    name = "lmul-dot"
    summary = ("lanes-wide dot-product unit, L-Mul or exact products summed in fp32 (RNE; "
               "a k-order chain or a pipelined tree)")
    config = DotConfig
    port_docs = {**_LanesStream._ports,
                 "i_stream__payload": "input beat {a[lanes], b[lanes], last} operand patterns "
                                      "(LSB first)",
                 "o_stream__payload": "output beat {data}: the fp32 dot product"}

    def generator(self, config: DotConfig) -> DotProductUnit:
        return DotProductUnit(config)

    def golden(self, config: DotConfig, job: GemmJob) -> dict:
        return {"c": golden_gemm(config, job.a, job.b)}

    def gemm_cycles(self, config: DotConfig, m, k, n, w_bits=None):
        return gemm_cycles(config, m, k, n)

    def latency(self, config: DotConfig) -> str:
        return f"M * N * ceil(K/{config.lanes}) + {config.latency}"

    def pipeline_overlap(self, config: DotConfig) -> int:
        """The next job's first beat is accepted right after the previous one's last beat:
        ``latency`` cycles before its output."""
        return config.latency

    def energy_config(self, config: DotConfig):
        """At most 4 lanes, and at most the tree stages 4 lanes take (3)."""
        small = min(config.lanes, 4)
        return dataclasses.replace(config, lanes=small,
                                   tree_stages=min(config.tree_stages, tree_levels(small) + 1))

    random_job = staticmethod(random_gemm_job)
    make_jobs = staticmethod(dot_jobs)

    async def run_job(self, ports, config: DotConfig, job: GemmJob) -> tuple[dict, int]:
        c, cycles = await DotDriver(config).gemm(ports, job.a, job.b)
        return {"c": c}, cycles

    def energy_shape(self, config: DotConfig) -> tuple[int, int, int]:
        """2 x 2 dot products of 64 terms each (16 beats of 4 lanes)."""
        return 2, 64, 2


FAMILY = Lmul()
DOT_FAMILY = LmulDot()
