"""The systolic array family."""

import dataclasses

import numpy as np

from peforge.hw.common.delays import DelayLine
from peforge.hw.common.mac import mac_shapes
from peforge.hw.common.parts import BlackBox, Trimmed
from peforge.hw.systolic.top import SystolicArray
from peforge.hw.systolic.driver import SystolicDriver
from peforge.models.numerics.floatmac import cancelling_job, random_operands
from peforge.models.integer import int_range
from peforge.models.operand_stats import VERIFY, OperandStats
from peforge.models.systolic import SystolicConfig, gemm_cycles, golden_gemm

from peforge.sim.families import AreaPart, Family, GemmJob

__all__ = ["FAMILY", "Systolic", "REST_MAX"]


def job_shapes(config: SystolicConfig, sizes: str) -> list[tuple[int, int, int]]:
    """GEMM shapes (M, K, N) that cover single and multiple tiles and ragged edges."""
    r, c = config.rows, config.cols
    shapes = [(1, 1, 1), (r, r, c), (r + 1, 3, c + 1), (2 * r - 1, r + 2, 2 * c - 1)]
    if sizes == "full":
        shapes += [(r, 1, c), (1, 2 * r + 1, 1), (3 * r, 2, c), (r, 5, 3 * c),
                   (max(1, r - 1), 2 * r, max(1, c - 1)), (2 * r + 3, 2 * r + 3, 2 * c + 3)]
    return shapes


def random_job(config: SystolicConfig, rng: np.random.Generator, m: int, k: int, n: int,
               stats: OperandStats = VERIFY) -> GemmJob:
    """Operands drawn by ``stats``; verification (the default): integer PEs uniform over the
    whole range, float PEs the patterns of :func:`~peforge.models.numerics.floatmac.random_operands`
    (mostly normals near 1, some of anything)."""
    if config.pe != "int":
        fmt = config.mac.fmt
        return GemmJob(stats.floats(fmt, rng, (m, k), random_operands),
                       stats.floats(fmt, rng, (k, n), random_operands))
    low, high = int_range(config.bits, config.signed)
    return GemmJob(stats.ints(rng, (m, k), low, high), stats.ints(rng, (k, n), low, high))


def make_jobs(config: SystolicConfig, rng: np.random.Generator,
              sizes: str = "quick") -> list[GemmJob]:
    """Random jobs over the shapes of :func:`job_shapes`, then corner jobs on a two-tile shape:
    integer PEs all minimum, all maximum, zeros, and minimum times maximum; float PEs products
    that cancel exactly in pairs."""
    jobs = [random_job(config, rng, *shape) for shape in job_shapes(config, sizes)]
    if config.pe != "int":
        shape = (config.rows + 1, 2 * config.rows + 2, config.cols + 1)
        return jobs + [GemmJob(**cancelling_job(config.mac.fmt, rng, *shape)) for _ in range(2)]
    low, high = int_range(config.bits, config.signed)
    m, k, n = config.rows + 1, config.rows + 1, config.cols + 1
    for a_value, b_value in ((low, low), (high, high), (0, 0), (low, high)):
        jobs.append(GemmJob(np.full((m, k), a_value, dtype=np.int64),
                            np.full((k, n), b_value, dtype=np.int64)))
    return jobs


#: Composition synthesises the array with black-box PEs at no more than this many rows and
#: columns; a larger array adds its extra skew-register stages as parts.
REST_MAX = 8


def skew_stages(rows: int, cols: int, dataflow: str) -> dict[str, int]:
    """Register stages of the skew and deskew lines, by width, as synthesis keeps them.

    ``os``: lane ``i`` of ``a`` and of ``b`` is delayed ``i`` cycles (operand wide); the rows'
    valid skews all delay ``fire``, so synthesis merges them into one chain of ``rows - 1`` one-bit
    stages. ``ws``: ``a`` as for ``os``; column ``j``'s ``d`` skew (``j`` stages) and deskew
    (``cols - 1 - j``) are accumulator wide; ``out_valid`` and ``out_last`` are one-bit chains of
    ``rows + cols - 1`` stages.
    """
    def triangle(n):
        return n * (n - 1) // 2

    if dataflow == "os":
        return {"operand": triangle(rows) + triangle(cols), "acc": 0, "bit": rows - 1}
    return {"operand": triangle(rows), "acc": 2 * triangle(cols), "bit": 2 * (rows + cols - 1)}


def area_parts(config: SystolicConfig) -> list[AreaPart]:
    """The array's area as parts, for ``peforge synth`` (:mod:`peforge.sim.eda.synth`).

    * PEs, each as the array uses it: inside, in the right column (``a_out``/``valid_out`` read
      by nothing), in the bottom row (``os``: ``b_out`` read by nothing, ``acc_in`` zero), or in
      the corner; flat synthesis removes those registers, and so does synthesis of the variant.
    * ``rest``: the array with every PE a black box (skew and deskew registers, controller), at
      ``min(rows, REST_MAX) x min(cols, REST_MAX)``: exact up to 8 x 8.
    * For larger arrays, the extra skew stages (:func:`skew_stages`) as one-stage parts. The
      controller stays at the 8 x 8 size: its counter, ``log2(rows + cols)`` bits, lacks a few
      register bits (well under 0.1% of the array).
    """
    rows, cols, numerics = config.rows, config.cols, config.mac
    pe_class = SystolicArray.pe_class(config.dataflow, config.add_stages)
    pe_factory = SystolicArray.pe_factory(config.dataflow, config.mul_stages, config.add_stages)
    if config.dataflow == "os":
        right, bottom = {"unused": ("a_out", "valid_out")}, {"unused": ("b_out",),
                                                             "tied": {"acc_in": numerics.zero}}
    else:
        right, bottom = {"unused": ("a_out",)}, {}
    variants = {}
    for name, at_right, at_bottom, count in (("pe", False, False, (rows - 1) * (cols - 1)),
                                             ("pe_right", True, False, rows - 1),
                                             ("pe_bottom", False, True, cols - 1),
                                             ("pe_corner", True, True, 1)):
        unused = (right.get("unused", ()) if at_right else ()) + \
            (bottom.get("unused", ()) if at_bottom else ())
        tied = bottom.get("tied", {}) if at_bottom else {}
        key = (unused, tuple(tied.items()))
        if key in variants:
            variants[key][1] += count
        else:
            variants[key] = [name, count, unused, tied]

    def pe(unused, tied):
        return lambda: Trimmed(pe_factory(numerics), unused=unused, tied=tied)

    parts = [AreaPart(name, count, pe(unused, tied))
             for name, count, unused, tied in variants.values() if count]
    signature = pe_class.signature_of(numerics)
    small_rows, small_cols = min(rows, REST_MAX), min(cols, REST_MAX)
    parts.append(AreaPart(
        "rest", 1, lambda: SystolicArray(small_rows, small_cols, config.dataflow, numerics,
                                         mul_stages=config.mul_stages,
                                         add_stages=config.add_stages,
                                         pe=lambda _numerics: BlackBox(signature, "pe")),
        black_boxes=(("pe", signature),)))
    operand, acc = mac_shapes(numerics)
    extra = skew_stages(rows, cols, config.dataflow)
    for kind, stages in skew_stages(small_rows, small_cols, config.dataflow).items():
        if extra[kind] > stages:
            shape = {"operand": operand, "acc": acc, "bit": 1}[kind]
            parts.append(AreaPart(f"skew_{kind}", extra[kind] - stages,
                                  lambda shape=shape: DelayLine(shape)))
    return parts


class Systolic(Family):
    """Output- and weight-stationary ``rows x cols`` MAC arrays (:mod:`peforge.models.systolic`)."""

    name = "systolic"
    summary = ("output- and weight-stationary R x C MAC arrays with skewed operand feeds; "
               "integer, L-Mul or exact float PEs")
    config = SystolicConfig
    port_docs = {
        "i_stream__payload": "input beat: os {a[rows], b[cols], last}; "
                             "ws {a[rows], load, b[cols], d[cols], last} (LSB first)",
        "i_stream__valid": "input beat offered",
        "i_stream__ready": "input beat accepted when valid and ready",
        "o_stream__payload": "output beat {data[cols] accumulators (fp32 for float PEs), last}",
        "o_stream__valid": "output beat present (no backpressure)",
    }

    def generator(self, config: SystolicConfig) -> SystolicArray:
        return SystolicArray.from_config(config)

    def golden(self, config: SystolicConfig, job: GemmJob) -> dict:
        return {"c": golden_gemm(config, job.a, job.b)}

    def gemm_cycles(self, config: SystolicConfig, m, k, n, w_bits=None):
        return gemm_cycles(config, m, k, n)

    def latency(self, config: SystolicConfig) -> str:
        r, c = config.rows, config.cols
        if config.dataflow == "os":
            wait = 2 * r + c - 2 + config.mul_stages + 3 * config.add_stages
            return f"ceil(M/{r}) * ceil(N/{c}) * (K + {wait})"
        return f"ceil(K/{r}) * ceil(N/{c}) * (M + {2 * r + c - 2}) + 1"

    random_job = staticmethod(random_job)
    make_jobs = staticmethod(make_jobs)

    async def run_job(self, ports, config: SystolicConfig, job: GemmJob) -> tuple[dict, int]:
        c, cycles = await SystolicDriver.from_config(config).gemm(ports, job.a, job.b)
        return {"c": c}, cycles

    def pes(self, config: SystolicConfig) -> int:
        return config.rows * config.cols

    def pipeline_overlap(self, config: SystolicConfig) -> int:
        """``ws``: the next tile's first beat is accepted on the edge of the previous one's last
        output, except on a 1 x 1 array: there the array could take it one cycle after the
        tile's last beat, but the accelerator's feeder (:mod:`peforge.hw.accelerator.compute`)
        offers a new tile's first beat two cycles after the previous tile's last, one after its
        last output (the other arrays wait at least that long for the previous fold to
        drain)."""
        return 1 if config.dataflow == "ws" and config.rows + config.cols > 2 else 0

    area_parts = staticmethod(area_parts)

    def energy_config(self, config: SystolicConfig) -> SystolicConfig:
        """At most 2 x 2 PEs of the same numerics and dataflow, for activity runs."""
        return dataclasses.replace(config, rows=min(config.rows, 2), cols=min(config.cols, 2))

    def energy_shape(self, config: SystolicConfig) -> tuple[int, int, int]:
        """One tile with a long stream: ``os`` K = 128 beats, ``ws`` M = 128 rows."""
        if config.dataflow == "os":
            return config.rows, 128, config.cols
        return 128, config.rows, config.cols


FAMILY = Systolic()
