"""A tiny PE family defined inside the test suite: the recipe of the README's "Adding a PE family"
in one file, which the contract suite checks like any shipped family.

``example-mac`` is one integer MAC behind a stream. A beat carries one operand pair ``a``, ``b``
(signed ``bits`` wide) and ``last``; the MAC adds ``a * b`` to a signed ``acc_bits`` accumulator
(wrapping); a ``last`` beat registers the sum out, one cycle later, and restarts the accumulator
at 0. A GEMM ``A @ B`` is ``M*N`` dot products of ``K`` beats in row-major order, back to back:
``M*N*K + 1`` cycles. In a real family the four parts below live in ``models/<name>.py``,
``hw/<name>/top.py``, ``hw/<name>/driver.py`` and ``sim/families/<name>.py``.
"""

from collections import deque
from dataclasses import dataclass

import numpy as np
from amaranth import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from peforge.hw.common.driver import Ports, run_stream
from peforge.models.integer import check_dims, int_range, wrap
from peforge.models.operand_stats import VERIFY, OperandStats
from peforge.models.params import param, validate_params
from peforge.sim.families import Family, GemmJob

__all__ = ["MacConfig", "golden_gemm", "gemm_cycles", "MacStream", "MacDriver", "ExampleMac",
           "FAMILY"]


# -- models/<name>.py: configuration, golden model, cycle model -----------------------------------

@dataclass(frozen=True)
class MacConfig:
    """One signed integer MAC: operand and accumulator widths."""

    bits: int = param(8, "signed operand width", range=(2, 16))
    acc_bits: int = param(24, "signed accumulator width (sums wrap)", range=(4, 48))

    def __post_init__(self):
        validate_params(self)
        if self.acc_bits < 2 * self.bits:
            raise ValueError(f"acc_bits: must be in {2 * self.bits}..48 for {self.bits}-bit "
                             f"operands, got {self.acc_bits}")


def golden_gemm(config: MacConfig, a, b) -> np.ndarray:
    """``A @ B`` wrapped to ``acc_bits`` (two's complement)."""
    exact = np.asarray(a).astype(object) @ np.asarray(b).astype(object)
    return wrap(exact, config.acc_bits, signed=True)


def gemm_cycles(config: MacConfig, m, k, n):
    """``M*N`` dot products of ``K`` beats each, back to back, plus the output register."""
    check_dims("GEMM dimensions", m=m, k=k, n=n)
    return m * n * k + 1


# -- hw/<name>/top.py: the generator -------------------------------------------------------------

def layouts(config: MacConfig):
    """Input ``{a, b, last}`` and output ``{data}`` payloads."""
    return (data.StructLayout({"a": signed(config.bits), "b": signed(config.bits), "last": 1}),
            data.StructLayout({"data": signed(config.acc_bits)}))


class MacStream(wiring.Component):
    """One MAC: ``i_stream`` operand pairs (always ready), ``o_stream`` the sums, one cycle
    after their ``last`` beat (no backpressure)."""

    def __init__(self, config: MacConfig):
        self.config = config
        in_layout, out_layout = layouts(config)
        super().__init__({"i_stream": In(stream.Signature(in_layout)),
                          "o_stream": Out(wiring.Signature({"valid": Out(1),
                                                            "payload": Out(out_layout)}))})

    def elaborate(self, platform):
        m = Module()
        beat = self.i_stream.payload
        acc = Signal(signed(self.config.acc_bits))
        total = Signal(signed(self.config.acc_bits))
        fire = self.i_stream.valid & self.i_stream.ready
        m.d.comb += [self.i_stream.ready.eq(1), total.eq(acc + beat.a * beat.b)]
        m.d.sync += self.o_stream.valid.eq(fire & beat.last)
        with m.If(fire & beat.last):
            m.d.sync += [self.o_stream.payload.data.eq(total), acc.eq(0)]
        with m.Elif(fire):
            m.d.sync += acc.eq(total)
        return m


# -- hw/<name>/driver.py: a GEMM as beats --------------------------------------------------------

class MacDriver:
    """Runs ``A @ B`` on a :class:`MacStream` as ``M*N`` dot products in row-major order."""

    def __init__(self, config: MacConfig):
        self.in_layout, self.out_layout = layouts(config)

    async def gemm(self, ports: Ports, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
        (m, k), (_, n) = a.shape, b.shape

        def beats():
            for i in range(m):
                for j in range(n):
                    for step in range(k):
                        yield self.in_layout.const({"a": int(a[i, step]), "b": int(b[step, j]),
                                                    "last": step == k - 1}).as_value().value

        results = deque()
        cycles = await run_stream(ports, beats(), m * n, lambda bits: results.append(
            int(self.out_layout.from_bits(bits).data)))
        return np.array(results, dtype=object).reshape(m, n), cycles


# -- sim/families/<name>.py: the family --------------------------------------------------------

class ExampleMac(Family):
    """One integer MAC behind a stream (the module docstring)."""

    name = "example-mac"
    summary = "one signed integer MAC behind a stream (the contract suite's example family)"
    config = MacConfig
    port_docs = {
        "i_stream__payload": "input beat {a, b, last} (LSB first)",
        "i_stream__valid": "input beat offered",
        "i_stream__ready": "always high: one beat per cycle",
        "o_stream__payload": "output beat {data}: one dot product",
        "o_stream__valid": "output beat present (no backpressure)",
    }

    def generator(self, config: MacConfig) -> MacStream:
        return MacStream(config)

    def golden(self, config: MacConfig, job: GemmJob) -> dict:
        return {"c": golden_gemm(config, job.a, job.b)}

    def gemm_cycles(self, config: MacConfig, m, k, n, w_bits=None):
        return gemm_cycles(config, m, k, n)

    def latency(self, config: MacConfig) -> str:
        return "M * N * K + 1"

    def random_job(self, config: MacConfig, rng: np.random.Generator, m: int, k: int, n: int,
                   stats: OperandStats = VERIFY) -> GemmJob:
        low, high = int_range(config.bits, True)
        return GemmJob(stats.ints(rng, (m, k), low, high), stats.ints(rng, (k, n), low, high))

    def make_jobs(self, config: MacConfig, rng: np.random.Generator,
                  sizes: str = "quick") -> list[GemmJob]:
        """Random jobs of a few shapes, then every operand at its minimum (the largest sums)."""
        shapes = [(1, 1, 1), (2, 3, 2), (3, 5, 1)] + ([(4, 9, 3)] if sizes == "full" else [])
        low, _ = int_range(config.bits, True)
        return [self.random_job(config, rng, *shape) for shape in shapes] + [
            GemmJob(np.full((2, 4), low, dtype=np.int64), np.full((4, 2), low, dtype=np.int64))]

    async def run_job(self, ports, config: MacConfig, job: GemmJob) -> tuple[dict, int]:
        c, cycles = await MacDriver(config).gemm(ports, job.a, job.b)
        return {"c": c}, cycles

    def pes(self, config: MacConfig) -> int:
        return 1


FAMILY = ExampleMac()
