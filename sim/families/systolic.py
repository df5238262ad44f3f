"""The systolic array family record."""

import numpy as np

from peforge.hw.systolic import SystolicArray
from peforge.hw.systolic_driver import SystolicDriver
from peforge.models.integer import int_range, random_ints
from peforge.models.systolic import SystolicConfig, gemm_cycles, golden_gemm

from . import Family

__all__ = ["FAMILY"]


async def run_job(ports, config: SystolicConfig, job: dict) -> tuple[dict, int]:
    c, cycles = await SystolicDriver.from_config(config).gemm(ports, job["a"], job["b"])
    return {"c": c}, cycles


def job_shapes(config: SystolicConfig, sizes: str) -> list[tuple[int, int, int]]:
    """GEMM shapes (M, K, N) that cover single and multiple tiles and ragged edges."""
    r, c = config.rows, config.cols
    shapes = [(1, 1, 1), (r, r, c), (r + 1, 3, c + 1), (2 * r - 1, r + 2, 2 * c - 1)]
    if sizes == "full":
        shapes += [(r, 1, c), (1, 2 * r + 1, 1), (3 * r, 2, c), (r, 5, 3 * c),
                   (max(1, r - 1), 2 * r, max(1, c - 1)), (2 * r + 3, 2 * r + 3, 2 * c + 3)]
    return shapes


def random_job(config: SystolicConfig, rng: np.random.Generator, m: int, k: int, n: int) -> dict:
    return {"a": random_ints(rng, (m, k), config.bits, config.signed),
            "b": random_ints(rng, (k, n), config.bits, config.signed)}


def make_jobs(config: SystolicConfig, rng: np.random.Generator, sizes: str = "quick") -> list[dict]:
    """Random jobs over the shapes of :func:`job_shapes`, then corner jobs (all minimum, all
    maximum, zeros, and minimum times maximum) on a two-tile shape."""
    jobs = [random_job(config, rng, *shape) for shape in job_shapes(config, sizes)]
    low, high = int_range(config.bits, config.signed)
    m, k, n = config.rows + 1, config.rows + 1, config.cols + 1
    for a_value, b_value in ((low, low), (high, high), (0, 0), (low, high)):
        jobs.append({"a": np.full((m, k), a_value, dtype=np.int64),
                     "b": np.full((k, n), b_value, dtype=np.int64)})
    return jobs


FAMILY = Family(
    name="systolic",
    summary="output- and weight-stationary R x C integer MAC arrays with skewed operand feeds",
    config=SystolicConfig,
    generator=SystolicArray.from_config,
    golden=lambda config, job: {"c": golden_gemm(config, job["a"], job["b"])},
    cycles=gemm_cycles,
    job_shape=lambda job: (job["a"].shape[0], job["a"].shape[1], job["b"].shape[1]),
    run_job=run_job,
    make_jobs=make_jobs,
    random_job=random_job,
    latency=("os: ceil(M/rows)*ceil(N/cols) * (K + 2*rows + cols - 2); "
             "ws: ceil(K/rows)*ceil(N/cols) * (2*rows + M + cols - 2) + 1"),
    port_docs={
        "i_stream__payload": "input beat: os {a[rows], b[cols], last}; "
                             "ws {a[rows], load, b[cols], d[cols], last} (LSB first)",
        "i_stream__valid": "input beat offered",
        "i_stream__ready": "input beat accepted when valid and ready",
        "o_stream__payload": "output beat {data[cols] accumulators, last}",
        "o_stream__valid": "output beat present (no backpressure)",
    },
    pes=lambda config: config.rows * config.cols,
    # ws: the next tile's first beat is accepted on the edge of the previous one's last output.
    pipeline_overlap=lambda config: 1 if config.dataflow == "ws" else 0,
)
