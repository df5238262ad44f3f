"""The bulk path: a family's jobs verified at Verilator's own speed.

The family's driver stays the one description of how a job becomes beats. It runs offline against
:class:`ReplayPorts`, a :class:`~peforge.hw.common.driver.Ports` that answers from the recorded
trace of a harness run (:mod:`peforge.sim.rtl.harness`), and the beats it offers become the next
run's input. The loop ends at a fixed point: when the driver, replayed over a trace, drives in every
cycle exactly what the harness drove, the trace is what a beat-by-beat run (cocotb) would have
seen, cycle for cycle, so the driver's outputs and cycle counts from that replay are the RTL's.

Where the driver drives other payloads than the harness did, the replay keeps the trace's timing
and outputs (its best guess); where it drives another valid pattern or the trace runs out, it
speculates: ``ready`` high, ``o_stream.valid`` high exactly when the driver offers no beat (so a
job's output count comes out right), the trace's output payloads in order. A driver whose beats
depend on outputs (the weight-stationary systolic driver feeds each K block's partial sums back
in) needs one harness run per step of that dependence: ``ceil(K / rows)`` runs for a
weight-stationary GEMM; drivers whose beats depend only on the job need one. Every job is replayed
once more over the final trace, which is the proof.

What the bulk path assumes of a driver (checked, not trusted: a driver that breaks it never reaches
the fixed point and fails with :class:`BulkError`): it uses only ``i_stream.{valid,payload}`` and
``i_stream.ready``, ``o_stream.{valid,payload}`` (the protocol of
:func:`peforge.hw.common.driver.run_stream`), offers a job's beats back to back, starts a job in the
cycle after the previous job's last output beat, and a job's number of output beats does not depend
on the output values.
"""

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from peforge.sim.rtl.harness import Harness, Trace

__all__ = ["ReplayPorts", "BulkError", "BulkRun", "run_jobs_bulk", "MAX_PASSES"]

#: Harness runs before the bulk path gives up looking for a fixed point.
MAX_PASSES = 256


class BulkError(RuntimeError):
    """The driver does not fit the bulk path's assumptions (see the module docstring)."""


class ReplayPorts:
    """Ports answering a driver from ``trace`` of a harness run that played ``played`` beats.

    After the replay, :attr:`jobs` holds per job the beats the driver had accepted and the
    output beats it took; :attr:`consistent` says whether it drove what the harness drove in every
    cycle of the trace and ended where the trace ends.
    """

    def __init__(self, trace: Trace | None = None, played: list[int] = ()):
        self._trace, self._played = trace, played
        # _matching: every cycle so far drove what the harness drove; _timing: the valid pattern
        # did (only payloads differ), so the trace's ready and output timing are still followed.
        self._matching = self._timing = trace is not None
        self.cycle = 0
        self._out = 0
        self._valid, self._payload = False, 0
        self.jobs: list[tuple[list[int], int]] = []

    @property
    def consistent(self) -> bool:
        return self._matching and self.cycle == self._trace.cycles

    def start_job(self) -> None:
        self.jobs.append(([], 0))

    def set(self, name: str, value: int) -> None:
        if name == "i_stream.valid":
            self._valid = bool(value)
        elif name == "i_stream.payload":
            self._payload = int(value)
        else:
            raise BulkError(f"driver sets {name}: the bulk path plays only i_stream")

    async def settle(self) -> None:
        if not self._timing:
            return
        trace = self._trace
        if self.cycle >= trace.cycles:
            self._matching = self._timing = False
            return
        beat = int(trace.driven[self.cycle])
        if (beat >= 0) != self._valid:
            self._matching = self._timing = False
        elif self._valid and self._played[beat] != self._payload:
            self._matching = False

    def get(self, name: str) -> int:
        if name == "i_stream.ready":
            return self._ready()
        if name == "o_stream.valid":
            if self._timing:
                return int(self._trace.flags[self.cycle]) >> 1 & 1
            return int(not self._valid)
        if name == "o_stream.payload":
            beats, taken = self.jobs[-1]
            self.jobs[-1] = (beats, taken + 1)
            # Output n of the trace, also where the replay speculates: its value is right where
            # the beats it came from were, so each harness run settles one more step of a chain.
            self._out += 1
            outputs = self._trace.outputs if self._trace is not None else ()
            return outputs[self._out - 1] if self._out <= len(outputs) else 0
        raise BulkError(f"driver reads {name}: the bulk path records only o_stream and ready")

    async def tick(self) -> None:
        if self._valid and self._ready():
            self.jobs[-1][0].append(self._payload)
        self.cycle += 1

    def _ready(self) -> int:
        return int(self._trace.flags[self.cycle]) & 1 if self._timing else 1


@dataclass
class BulkRun:
    """Results of :func:`run_jobs_bulk`: ``(outputs, cycles)`` per job, the harness runs it took,
    and the simulated cycles and seconds of the last run's clock loop and of all runs."""

    results: list[tuple[dict, int]]
    passes: int
    cycles: int
    seconds: float
    total_cycles: int = 0
    total_seconds: float = 0.0
    replay_seconds: float = 0.0

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.seconds if self.seconds else float("inf")


def run_jobs_bulk(family, config, jobs: list, harness: Harness, *,
                  max_passes: int = MAX_PASSES) -> BulkRun:
    """Run ``jobs`` back to back on ``harness`` (built from the family's top for ``config``) and
    return what a beat-by-beat run of the family's driver returns, from the fixed point."""
    trace, played = None, []
    total_cycles, total_seconds, replay_seconds = 0, 0.0, 0.0
    with tempfile.TemporaryDirectory(prefix="peforge-bulk-") as work:
        for passes in range(max_passes + 1):
            start = time.perf_counter()
            ports = ReplayPorts(trace, played)
            results = []
            for job in jobs:
                ports.start_job()
                results.append(_run_to_end(family.run_job(ports, config, job)))
            replay_seconds += time.perf_counter() - start
            if ports.consistent:
                return BulkRun(results, passes, trace.cycles, trace.seconds, total_cycles,
                               total_seconds, replay_seconds)
            if passes == max_passes:
                break
            trace = harness.run(ports.jobs, Path(work))
            played = [beat for beats, _ in ports.jobs for beat in beats]
            total_cycles += trace.cycles
            total_seconds += trace.seconds
    raise BulkError(f"{family.name}: the driver's beats did not settle in {max_passes} harness "
                    f"runs (they depend on outputs more deeply than max_passes allows)")


def _run_to_end(coroutine):
    """Run a coroutine that never suspends (the replay ports answer at once); its value."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise BulkError("driver awaited something other than the ports")

