"""The sparse DSP chain family (FlightLLM's configurable sparse DSP chain)."""

import dataclasses
from dataclasses import dataclass

import numpy as np

from peforge.hw.sparse_dsp.top import SparseDspChain
from peforge.hw.sparse_dsp.driver import SparseDspDriver
from peforge.models.integer import int_range
from peforge.models.numerics.nm_sparse import compress, pad_k
from peforge.models.operand_stats import VERIFY, OperandStats
from peforge.models.sparse_dsp import ACT_BITS, SparseDspConfig, gemm_cycles, golden_gemm

from peforge.sim.families import Family, Job

__all__ = ["FAMILY", "SparseDsp", "SparseJob", "sparse_job"]


@dataclass(frozen=True, eq=False)
class SparseJob(Job):
    """``C = A @ W``: ``a`` (R x K INT8 activations) and ``W`` (K x C) compressed to its N:M
    pattern, ``values`` and ``indices`` (:func:`peforge.models.numerics.nm_sparse.compress`)."""

    a: np.ndarray
    values: np.ndarray
    indices: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.a.shape[0], self.a.shape[1], self.values.shape[1]


def sparse_job(config: SparseDspConfig, a, w) -> SparseJob:
    """A job from activations ``a`` (R x K) and dense weights ``w`` (K x C): ``w`` is
    magnitude-pruned to the configuration's pattern and compressed."""
    values, indices = compress(pad_k(w, config.pattern), config.pattern)
    return SparseJob(np.asarray(a, dtype=np.int64), values, indices)


def job_shapes(config: SparseDspConfig, sizes: str) -> list[tuple[int, int, int]]:
    """GEMM shapes (R, K, C): one and several windows and passes, ragged K and C."""
    chain, s = config.chain, config.segments
    shapes = [(1, 1, 1), (2, chain, s), (2, 2 * chain + 1, s + 1), (1, 3 * chain - 1, 2 * s + 1)]
    if sizes == "full":
        shapes += [(3, 1, 2 * s), (1, 4 * chain + 3, max(1, 3 * s - 1)),
                   (4, max(1, chain - 1), s), (2, 5, 1), (3, 2 * chain, 2 * s)]
    return shapes


def random_job(config: SparseDspConfig, rng: np.random.Generator, r: int, k: int,
               c: int, stats: OperandStats = VERIFY) -> SparseJob:
    """INT8 activations and dense weights drawn by ``stats`` (verification: uniform), then
    pruned by :func:`sparse_job`."""
    return sparse_job(config, stats.ints(rng, (r, k), *int_range(ACT_BITS, True)),
                      stats.ints(rng, (k, c), *int_range(config.bits, True)))


def make_jobs(config: SparseDspConfig, rng: np.random.Generator,
              sizes: str = "quick") -> list[SparseJob]:
    """Random jobs over :func:`job_shapes`, then extreme-value jobs on a ragged two-pass shape:
    every operand at its minimum, at its maximum, minimum times maximum, zeros, and random signs
    of the extremes."""
    jobs = [random_job(config, rng, *shape) for shape in job_shapes(config, sizes)]
    a_low, a_high = int_range(ACT_BITS, True)
    w_low, w_high = int_range(config.bits, True)
    r, k, c = 2, 2 * config.chain + 3, config.segments + 1
    for a_value, w_value in ((a_low, w_low), (a_high, w_high), (a_low, w_high), (0, 0)):
        jobs.append(sparse_job(config, np.full((r, k), a_value), np.full((k, c), w_value)))
    jobs.append(sparse_job(config, rng.choice([a_low, a_high], size=(r, k)),
                           rng.choice([w_low, w_high], size=(k, c))))
    return jobs


class SparseDsp(Family):
    """FlightLLM's sparse DSP chain (:mod:`peforge.models.sparse_dsp`)."""

    name = "sparse-dsp"
    summary = ("FlightLLM sparse DSP chain: L cascaded DSP48-like slices, N:M sparse MUXes, "
               "reduction groups")
    config = SparseDspConfig
    job_type = SparseJob
    port_docs = {
        "i_stream__payload": "input beat {a[chain] INT8 window, w[chain] weights, "
                             "idx[chain] log2(M)-bit MUX selects, n_log2 = log2(N), last} "
                             "(LSB first; no idx, n_log2 when dense and M does not divide chain)",
        "i_stream__valid": "input beat offered",
        "i_stream__ready": "always high: one beat per cycle",
        "o_stream__payload": "output beat {data[G] accumulators}, G = M (1 when dense and M "
                             "does not divide chain); column g of the pass is data[(g+1)*N-1]",
        "o_stream__valid": "output beat present (no backpressure)",
    }

    def generator(self, config: SparseDspConfig) -> SparseDspChain:
        return SparseDspChain.from_config(config)

    def golden(self, config: SparseDspConfig, job: SparseJob) -> dict:
        return {"c": golden_gemm(config, job.a, job.values, job.indices)}

    def gemm_cycles(self, config: SparseDspConfig, m, k, n, w_bits=None):
        return gemm_cycles(config, m, k, n)

    def run_config(self, config: SparseDspConfig, w_sparsity) -> SparseDspConfig:
        """The configured pattern ``N:M`` when the weight satisfies it (at most ``N`` non-zeros
        in every group of ``M`` along K: the chain skips the zeros) or its sparsity is unknown
        (the weight is taken as pruned to the pattern, as :func:`sparse_job` prunes it); else
        dense mode ``M:M`` of the same chain (one output column per beat: the zeros cannot
        be skipped, and pruning would change the model's results). A weight sparser than the
        pattern (1:4 on 2:4) runs at the configured pattern: it is the one the driver runs."""
        pattern = config.pattern
        if w_sparsity is None or pattern.dense or w_sparsity.satisfies(pattern):
            return config
        return dataclasses.replace(config, nm=f"{pattern.m}:{pattern.m}")

    def latency(self, config: SparseDspConfig) -> str:
        return (f"M * ceil(N/{config.segments}) * ceil(K/{config.chain}) + {config.latency}")

    random_job = staticmethod(random_job)
    make_jobs = staticmethod(make_jobs)

    async def run_job(self, ports, config: SparseDspConfig, job: SparseJob) -> tuple[dict, int]:
        c, cycles = await SparseDspDriver(config).gemm(ports, job.a, job.values, job.indices)
        return {"c": c}, cycles

    def pes(self, config: SparseDspConfig) -> int:
        return config.chain

    def pipeline_overlap(self, config: SparseDspConfig) -> int:
        """The chain is always ready: a following GEMM's beats stream on while this one's last
        window fills the pipeline and drains, so only the beats add up."""
        return config.latency

    def energy_config(self, config: SparseDspConfig) -> SparseDspConfig:
        """A chain of ``max(4, M)`` slices (at most the configuration's; a multiple of the
        pattern's ``M``) with the same slices and pattern, for activity runs."""
        return dataclasses.replace(config, chain=min(config.chain, max(4, config.pattern.m)))

    def energy_shape(self, config: SparseDspConfig) -> tuple[int, int, int]:
        """Four activation rows over 16 windows, one pass of output columns."""
        return 4, 16 * config.chain, config.segments


FAMILY = SparseDsp()
