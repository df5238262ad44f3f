"""The bit-serial mixture-of-datatype family (BitMoD-style, INT8 activations)."""

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from peforge.hw.bitserial.top import BitserialArray
from peforge.hw.bitserial.driver import BitserialDriver
from peforge.models.numerics.bitmod import SCALE_CODE_MAX
from peforge.models.numerics.bitmod_quant import quantize
from peforge.models.bitserial import (ACT_BITS, DEQUANT_CYCLES, BitserialConfig, gemm_cycles,
                                      golden_gemm, job_cycles)
from peforge.models.integer import int_range, random_ints
from peforge.models.operand_stats import VERIFY, OperandStats

from peforge.sim.families import Family, Job

__all__ = ["FAMILY", "Bitserial", "BitserialJob", "random_job", "extreme_job", "quantized_job"]


@dataclass(frozen=True, eq=False)
class BitserialJob(Job):
    """One GEMM: ``a`` (M x K INT8 activations), ``codes`` (K x N weight codes) and per group of
    ``group`` weights along K of one column (``ceil(K/group) x N`` each) ``type_index`` (into the
    configuration's ``wtypes``), ``selector`` and ``scale_code``: the fields of
    :class:`peforge.models.numerics.bitmod_quant.QuantizedWeights`."""

    a: np.ndarray
    codes: np.ndarray
    type_index: np.ndarray
    selector: np.ndarray
    scale_code: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.a.shape[0], self.a.shape[1], self.codes.shape[1]

    def weights(self) -> tuple[np.ndarray, ...]:
        """``(codes, type_index, selector, scale_code)``, the order of the golden model and
        the driver."""
        return self.codes, self.type_index, self.selector, self.scale_code


def _groups(config: BitserialConfig, k: int) -> int:
    return math.ceil(k / config.group)


def _codes_for(config: BitserialConfig, type_index: np.ndarray, k: int, pick) -> np.ndarray:
    """``K x N`` codes: ``pick(wtype, count)`` chooses the codes of the weights of each type."""
    per_weight = np.repeat(type_index, config.group, axis=0)[:k]
    codes = np.zeros(per_weight.shape, dtype=np.int64)
    for index, wtype in enumerate(config.weight_types):
        mine = per_weight == index
        codes[mine] = pick(wtype, int(mine.sum()))
    return codes


def _fp_selectors(config: BitserialConfig, type_index: np.ndarray, choose) -> np.ndarray:
    """Per group: ``choose(shape)`` where the group's type is fp, 0 where it is int."""
    is_fp = np.array([t.family == "fp" for t in config.weight_types])[type_index]
    return np.where(is_fp, choose(type_index.shape), 0)


def random_job(config: BitserialConfig, rng: np.random.Generator, m: int, k: int, n: int,
               type_index=None, stats: OperandStats = VERIFY) -> BitserialJob:
    """Activations drawn by ``stats``. Verification (the default) and ``uniform``: random
    selectors, codes (any used code) and scale codes, and the groups' types ``type_index``
    (``ceil(k/group) x n`` indices into ``config.wtypes``), random when None. Gaussian and zero
    statistics: real weights of :meth:`~peforge.models.operand_stats.OperandStats.reals`
    quantised by :func:`~peforge.models.numerics.bitmod_quant.quantize` (``k`` a multiple of ``group``; the
    quantiser picks the types, so ``type_index`` must be None)."""
    if stats.kind not in ("verify", "uniform"):
        if type_index is not None:
            raise ValueError(f"type_index: must be None for {stats.name} operands (the "
                             f"quantiser picks the types)")
        return _quantized(config, stats.ints(rng, (m, k), *int_range(ACT_BITS, True)),
                          stats.reals(rng, (k, n)))
    groups = _groups(config, k)
    if type_index is None:
        type_index = rng.integers(0, len(config.weight_types), size=(groups, n))
    type_index = np.asarray(type_index)
    if type_index.shape != (groups, n):
        raise ValueError(f"type_index: must have shape {(groups, n)}, got {type_index.shape}")
    return BitserialJob(
        a=stats.ints(rng, (m, k), *int_range(ACT_BITS, True)),
        codes=_codes_for(config, type_index, k,
                         lambda wtype, count: rng.choice(wtype.codes, size=count)),
        type_index=type_index,
        selector=_fp_selectors(config, type_index, lambda shape: rng.integers(0, 4, shape)),
        scale_code=rng.integers(0, SCALE_CODE_MAX, size=(groups, n), endpoint=True))


def _extreme(wtype, sign: int) -> tuple[int, int]:
    """``(selector, code)`` of the value of largest magnitude with ``sign`` (+1 or -1)."""
    return max(((selector, code) for selector, values in enumerate(wtype.values)
                for code, value in zip(wtype.codes, values)),
               key=lambda pair: sign * wtype.values[pair[0]][wtype.codes.index(pair[1])])


def extreme_job(config: BitserialConfig, m: int, k: int, n: int, act: int,
                sign: int) -> BitserialJob:
    """Activations all ``act``, every weight the extreme value of sign ``sign`` of its group's
    type (types rotate over groups and columns), scale codes 255."""
    groups = _groups(config, k)
    type_index = np.add.outer(np.arange(groups), np.arange(n)) % len(config.weight_types)
    extremes = [_extreme(wtype, sign) for wtype in config.weight_types]
    return BitserialJob(
        a=np.full((m, k), act, dtype=np.int64),
        codes=_codes_for(config, type_index, k, lambda wtype, count: np.full(
            count, extremes[config.weight_types.index(wtype)][1])),
        type_index=type_index,
        selector=np.array([[extremes[t][0] for t in row] for row in type_index]),
        scale_code=np.full((groups, n), SCALE_CODE_MAX, dtype=np.int64))


def quantized_job(config: BitserialConfig, rng: np.random.Generator, m: int, k: int, n: int,
                  heavy_tailed: bool) -> BitserialJob:
    """Weights from :func:`peforge.models.numerics.bitmod_quant.quantize` of Gaussian or Student-t (3 degrees
    of freedom) samples; ``k`` must be a multiple of ``group``."""
    w = rng.standard_t(3, size=(k, n)) if heavy_tailed else rng.standard_normal((k, n))
    return _quantized(config, random_ints(rng, (m, k), ACT_BITS, True), w)


def _quantized(config: BitserialConfig, a: np.ndarray, w: np.ndarray) -> BitserialJob:
    """The job of activations ``a`` and real weights ``w`` quantised to the configuration."""
    q = quantize(w, config.wtypes.split(","), config.group)
    return BitserialJob(a, q.codes, q.type_index, q.selector, q.scale_code)


def job_shapes(config: BitserialConfig, sizes: str) -> list[tuple[int, int, int]]:
    """GEMM shapes (M, K, N): one and several tiles and groups, ragged M, N and K."""
    r, c, g, lanes = config.rows, config.cols, config.group, config.lanes
    shapes = [(1, 1, 1), (r, g, c), (r + 1, g + lanes + 1, c + 1), (2 * r - 1, 3, 2 * c - 1)]
    if sizes == "full":
        shapes += [(r, 2 * g, 1), (1, 3 * g - 1, c), (3 * r, lanes, c), (r, g - 1, 3 * c),
                   (max(1, r - 1), 2 * g + 1, max(1, c - 1))]
    return shapes


def make_jobs(config: BitserialConfig, rng: np.random.Generator,
              sizes: str = "quick") -> list[BitserialJob]:
    """Random jobs over :func:`job_shapes`; a job whose groups each have one random type in all
    columns (so consecutive groups of a tile take different cycles per slot); extreme jobs
    (largest positive and negative sums, all zero) and quantised Gaussian and Student-t weights
    on a two-group shape over 2 x 2 tiles."""
    jobs = [random_job(config, rng, *shape) for shape in job_shapes(config, sizes)]
    m, k, n = config.rows + 1, 2 * config.group, config.cols + 1
    group_types = rng.integers(0, len(config.weight_types), size=(4, 1))
    jobs.append(random_job(config, rng, m, 4 * config.group, n,
                           np.repeat(group_types, n, axis=1)))
    low, high = -(1 << (ACT_BITS - 1)), (1 << (ACT_BITS - 1)) - 1
    jobs += [extreme_job(config, m, k, n, act, sign)
             for act, sign in ((low, -1), (high, 1), (low, 1), (0, 1))]
    jobs += [quantized_job(config, rng, m, k, n, heavy) for heavy in (False, True)]
    return jobs


class Bitserial(Family):
    """BitMoD-style bit-serial arrays (:mod:`peforge.models.bitserial`): the pace of a job
    depends on its groups' weight types (:meth:`job_cycles`) and that of a GEMM on its weights'
    width (:meth:`gemm_cycles`)."""

    name = "bitserial"
    summary = ("BitMoD-style bit-serial R x C array: INT8 activations x mixed fp3/fp4/int3..8 "
               "weight groups, one term per cycle, bit-serial 8-bit group dequantiser")
    config = BitserialConfig
    job_type = BitserialJob
    port_docs = {
        "i_stream__payload": "input slot {a[rows][lanes] int8, code[cols][lanes], wtype[cols], "
                             "selector[cols], scale[cols], group_last, last} (LSB first)",
        "i_stream__valid": "input slot offered",
        "i_stream__ready": "input slot accepted when valid and ready (once per T cycles, T = "
                           "most terms of the slot's wtype fields: 2, 3 or 4)",
        "o_stream__payload": "output beat {c_raw[cols], c_scaled[cols], last}: one row of the "
                             "tile before and after the group-scale dequantisation",
        "o_stream__valid": "output beat present (no backpressure)",
    }

    def generator(self, config: BitserialConfig) -> BitserialArray:
        return BitserialArray.from_config(config)

    def golden(self, config: BitserialConfig, job: BitserialJob) -> dict:
        return golden_gemm(config, job.a, *job.weights())

    def gemm_cycles(self, config: BitserialConfig, m, k, n, w_bits=None):
        """Every group at the pace of weights ``w_bits`` wide (None: of the widest allowed
        type, the slowest case)."""
        return gemm_cycles(config, m, k, n, w_bits)

    def job_cycles(self, config: BitserialConfig, job: BitserialJob) -> int:
        """Exact: each group at the pace of its types in each tile's columns."""
        return job_cycles(config, job.a.shape[0], job.type_index)

    def latency(self, config: BitserialConfig) -> str:
        """The slowest case (:meth:`gemm_cycles` with ``w_bits`` None)."""
        slot = config.group // config.lanes * config.terms
        return (f"ceil(M/{config.rows}) * ceil(N/{config.cols}) * "
                f"(ceil(K/{config.group}) * {slot} + {DEQUANT_CYCLES + config.rows + 1})")

    random_job = staticmethod(random_job)
    make_jobs = staticmethod(make_jobs)

    async def run_job(self, ports, config: BitserialConfig,
                      job: BitserialJob) -> tuple[dict, int]:
        return await BitserialDriver.from_config(config).gemm(ports, job.a, *job.weights())

    def pes(self, config: BitserialConfig) -> int:
        """One weight lane of one PE is a (bit-serial) MAC unit."""
        return config.rows * config.cols * config.lanes

    def energy_config(self, config: BitserialConfig) -> BitserialConfig:
        """At most 2 x 2 PEs and groups of at most 128 weights, same lanes and types, for
        activity runs."""
        return dataclasses.replace(config, rows=min(config.rows, 2), cols=min(config.cols, 2),
                                   group=min(config.group, 128))

    def energy_shape(self, config: BitserialConfig) -> tuple[int, int, int]:
        """One tile over one group."""
        return config.rows, config.group, config.cols


FAMILY = Bitserial()
