"""The L-Mul family records: ``lmul`` (multipliers) and ``lmul-dot`` (dot-product unit). The
systolic array with float MAC PEs is the ``systolic`` family with ``pe="lmul"`` or ``"fp"``."""

import dataclasses

import numpy as np

from peforge.hw.lmul.driver import DotDriver, MultiplierDriver
from peforge.hw.lmul.top import DotProductUnit, MultiplierStream
from peforge.models.numerics.floatmac import cancelling_job, random_operands
from peforge.models.numerics.lmul import operand_pairs
from peforge.models.operand_stats import VERIFY, OperandStats
from peforge.models.lmul import (DotConfig, MultiplierConfig, dot_cycles, golden_products,
                                        multiplier_cycles)

from peforge.sim.families import Family

__all__ = ["FAMILY", "DOT_FAMILY", "random_pairs_job", "random_gemm_job"]

_STREAM_PORTS = {
    "i_stream__valid": "input beat offered",
    "i_stream__ready": "input beat accepted when valid and ready",
    "o_stream__valid": "output beat present (no backpressure)",
}


def _all_patterns(fmt, rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(0, 1 << fmt.bits, shape)


def random_pairs_job(config, rng: np.random.Generator, m: int, k: int, n: int,
                     stats: OperandStats = VERIFY) -> dict:
    """The ``m * k * n`` products of a GEMM as independent pairs drawn by ``stats``
    (verification: uniform over all patterns, Inf and NaN included)."""
    fmt = config.mac.fmt
    return {"a": stats.floats(fmt, rng, m * k * n, _all_patterns),
            "b": stats.floats(fmt, rng, m * k * n, _all_patterns)}


def random_gemm_job(config, rng: np.random.Generator, m: int, k: int, n: int,
                    stats: OperandStats = VERIFY) -> dict:
    """``A`` (m x k) and ``B`` (k x n) drawn by ``stats`` (verification:
    :func:`random_operands`)."""
    fmt = config.mac.fmt
    return {"a": stats.floats(fmt, rng, (m, k), random_operands),
            "b": stats.floats(fmt, rng, (k, n), random_operands)}


def energy_config(config):
    """At most 4 lanes of the same multiplier, for activity runs."""
    return dataclasses.replace(config, lanes=min(config.lanes, 4))


# -- lmul: a bank of multipliers ------------------------------------------------------------------

async def _run_multiplier(ports, config: MultiplierConfig, job: dict) -> tuple[dict, int]:
    p, cycles = await MultiplierDriver(config).multiply(ports, job["a"], job["b"])
    return {"p": p}, cycles


def _multiplier_jobs(config: MultiplierConfig, rng: np.random.Generator,
                     sizes: str = "quick") -> list[dict]:
    """Corner pairs then random and boundary pairs (:func:`~peforge.models.numerics.lmul.operand_pairs`),
    a ragged tail, and one pair; ``full``: every pair of an 8-bit format, 65,536 pairs of a
    16-bit one."""
    fmt = config.mac.fmt
    seed = int(rng.integers(1 << 31))
    if sizes == "quick":
        a, b = operand_pairs(fmt, 1023, seed)
    elif fmt.bits == 8:
        a, b = (grid.ravel() for grid in np.meshgrid(np.arange(256), np.arange(256)))
    else:
        a, b = operand_pairs(fmt, 1 << 16, seed)
    jobs = [{"a": np.asarray(a, np.int64), "b": np.asarray(b, np.int64)}]
    jobs.append(random_pairs_job(config, rng, 1, 1, 1))
    return jobs


FAMILY = Family(
    name="lmul",
    summary="L-Mul (one integer add) or exact RNE float multipliers, lanes per beat "
            "(e4m3, e5m2, fp16, bf16)",
    config=MultiplierConfig,
    generator=MultiplierStream,
    golden=lambda config, job: {"p": golden_products(config, job["a"], job["b"])},
    cycles=multiplier_cycles,
    job_shape=lambda job: (len(job["a"]), 1, 1),
    run_job=_run_multiplier,
    make_jobs=_multiplier_jobs,
    random_job=random_pairs_job,
    energy_config=energy_config,
    # 256 independent products: 64 beats of 4 lanes.
    energy_shape=lambda config: (1, 256, 1),
    latency="ceil(pairs/lanes) + 1 (pairs = M*K*N products)",
    port_docs={**_STREAM_PORTS,
               "i_stream__payload": "input beat {a[lanes], b[lanes]} operand patterns (LSB first)",
               "o_stream__payload": "output beat {p[lanes]} product patterns"},
    pes=lambda config: config.lanes,
    # The next job's first beat is accepted on the edge of the previous one's last output.
    pipeline_overlap=lambda config: 1,
)


# -- lmul-dot: a dot-product unit -----------------------------------------------------------------

async def _run_dot(ports, config: DotConfig, job: dict) -> tuple[dict, int]:
    c, cycles = await DotDriver(config).gemm(ports, job["a"], job["b"])
    return {"c": c}, cycles


def _gemm_jobs(config, rng: np.random.Generator, shapes) -> list[dict]:
    """Random jobs over ``shapes`` then cancelling jobs (:func:`cancelling_job`) on the last."""
    jobs = [random_gemm_job(config, rng, *shape) for shape in shapes]
    jobs += [cancelling_job(config.mac.fmt, rng, *shapes[-1]) for _ in range(2)]
    return jobs


def _dot_jobs(config: DotConfig, rng: np.random.Generator, sizes: str = "quick") -> list[dict]:
    """Dot products of one beat, a ragged beat, several beats; ``full`` adds longer ones."""
    lanes = config.lanes
    shapes = [(1, 1, 1), (2, lanes, 1), (3, lanes + 1, 2), (2, 3 * lanes - 1, 3)]
    if sizes == "full":
        shapes += [(1, 16 * lanes + 3, 1), (4, 2 * lanes, 4)]
    return _gemm_jobs(config, rng, shapes)


DOT_FAMILY = Family(
    name="lmul-dot",
    summary="lanes-wide dot-product unit, L-Mul or exact products summed in fp32 (RNE, k order)",
    config=DotConfig,
    generator=DotProductUnit,
    golden=lambda config, job: {"c": config.mac.gemm(job["a"], job["b"])},
    cycles=dot_cycles,
    job_shape=lambda job: (job["a"].shape[0], job["a"].shape[1], job["b"].shape[1]),
    run_job=_run_dot,
    make_jobs=_dot_jobs,
    random_job=random_gemm_job,
    energy_config=energy_config,
    # 2 x 2 dot products of 64 terms each (16 beats of 4 lanes).
    energy_shape=lambda config: (2, 64, 2),
    latency="M*N*ceil(K/lanes) + 1",
    port_docs={**_STREAM_PORTS,
               "i_stream__payload": "input beat {a[lanes], b[lanes], last} operand patterns "
                                    "(LSB first)",
               "o_stream__payload": "output beat {data}: the fp32 dot product"},
    pes=lambda config: config.lanes,
    pipeline_overlap=lambda config: 1,
)
