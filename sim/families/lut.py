"""The LUT tensor-core family record."""

import dataclasses

import numpy as np

from peforge.hw.lut.top import LutArray
from peforge.hw.lut.driver import LutDriver
from peforge.models.integer import int_range
from peforge.models.lut import LutConfig, golden_lut_gemm, lut_cycles
from peforge.models.operand_stats import VERIFY, OperandStats

from peforge.sim.families import Family

__all__ = ["FAMILY"]


async def run_job(ports, config: LutConfig, job: dict) -> tuple[dict, int]:
    c, cycles = await LutDriver(config).gemm(ports, job["a"], job["w"])
    return {"c": c}, cycles


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
               stats: OperandStats = VERIFY) -> dict:
    """Signed activations and weight codes drawn by ``stats`` (verification: uniform)."""
    return {"a": stats.ints(rng, (m, k), *int_range(config.abits, True)),
            "w": _random_codes(config, rng, (k, n), stats)}


def make_jobs(config: LutConfig, rng: np.random.Generator, sizes: str = "quick") -> list[dict]:
    """Random jobs over the shapes of :func:`job_shapes`, then corner jobs on a ragged two-tile
    shape: every pair of extreme activation and extreme code, zeros, and random mixes of the
    extreme activations with random codes (largest table entries of both signs)."""
    jobs = [random_job(config, rng, *shape) for shape in job_shapes(config, sizes)]
    a_low, a_high = int_range(config.abits, signed=True)
    w_low, w_high = config.weight_format.code_range
    m, k, n = config.m + 1, 2 * config.k + 1, config.n + 1
    for a_value, w_value in ((a_low, w_low), (a_high, w_high), (a_low, w_high), (a_high, w_low),
                             (0, 0)):
        jobs.append({"a": np.full((m, k), a_value, dtype=np.int64),
                     "w": np.full((k, n), w_value, dtype=np.int64)})
    jobs.append({"a": rng.choice([a_low, a_high], size=(m, k)),
                 "w": _random_codes(config, rng, (k, n))})
    return jobs


def energy_config(config: LutConfig) -> LutConfig:
    """At most 8 tile columns (each row's tables are then shared by 8 columns, not up to 128),
    same rows, group, weights and activations, for activity runs."""
    return dataclasses.replace(config, n=min(config.n, 8))


FAMILY = Family(
    name="lut",
    summary="LUT tensor-core M x N tile: symmetrised activation tables looked up by low-bit "
            "weight bit-planes (unsigned, signed, ternary), one plane per cycle",
    config=LutConfig,
    generator=LutArray.from_config,
    golden=lambda config, job: {"c": golden_lut_gemm(config, job["a"], job["w"])},
    cycles=lut_cycles,
    job_shape=lambda job: (job["a"].shape[0], job["a"].shape[1], job["w"].shape[1]),
    run_job=run_job,
    make_jobs=make_jobs,
    random_job=random_job,
    energy_config=energy_config,
    # One tile over 64 activation groups.
    energy_shape=lambda config: (config.m, 64 * config.k, config.n),
    latency="ceil(M/m)*ceil(N/n) * (ceil(K/k)*wbits + m - 1) + 2",
    port_docs={
        "i_stream__payload": "input beat {a[m][k] activations (a group's first plane only), "
                             "idx[n] {j[k-1], negate} folded weight indices of one bit-plane, "
                             "last} (LSB first)",
        "i_stream__valid": "input beat offered",
        "i_stream__ready": "input beat accepted when valid and ready",
        "o_stream__payload": "output beat {data[n] results of acc_bits - 1 bits, last}",
        "o_stream__valid": "output beat present (no backpressure)",
    },
    # A cell's lookup covers k weights of one bit-plane per cycle: k (bit-serial) MAC units.
    pes=lambda config: config.m * config.n * config.k,
    # Tiles stream back to back; the precompute and final drain (2 cycles) count once.
    pipeline_overlap=lambda config: 2,
)
