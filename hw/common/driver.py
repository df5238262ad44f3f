"""Driving a stream-in, stream-out top cycle by cycle, on any simulator.

A driver is written once against :class:`Ports` and runs unchanged on Amaranth's simulator and on
Verilator through cocotb (:mod:`peforge.sim.rtl.backends`). Port names are Amaranth paths such as
``"i_stream.payload"``; values are plain integers (the bits of the port).
"""

from collections.abc import Callable, Iterator
from typing import Protocol

__all__ = ["Ports", "run_stream", "StreamTimeout"]


class Ports(Protocol):
    """Cycle-level access to a top's ports. Each cycle: ``set`` inputs, ``settle``, ``get``
    outputs, ``tick``."""

    def set(self, name: str, value: int) -> None: ...

    async def settle(self) -> None: ...

    def get(self, name: str) -> int: ...

    async def tick(self) -> None: ...


class StreamTimeout(RuntimeError):
    """The design stopped accepting input or producing output."""


async def run_stream(ports: Ports, beats: Iterator[int], outputs: int,
                     on_output: Callable[[int], None], *, idle_limit: int = 10_000) -> int:
    """Feed ``beats`` to ``i_stream`` and hand ``outputs`` beats of ``o_stream`` to ``on_output``.

    Input beats are offered back to back (``valid`` stays high while any remain); ``beats`` is
    advanced only after the previous beat was accepted, so it may depend on outputs already seen.

    Returns
    -------
    int
        Cycles from the edge that accepted the first input beat to the edge that carried the last
        output beat, both included.
    """
    pending = next(beats, None)
    cycle = idle = 0
    first_in = last_out = None
    seen = 0
    while seen < outputs:
        ports.set("i_stream.valid", pending is not None)
        if pending is not None:
            ports.set("i_stream.payload", pending)
        await ports.settle()
        progressed = False
        if ports.get("o_stream.valid"):
            on_output(ports.get("o_stream.payload"))
            seen += 1
            last_out = cycle
            progressed = True
        if pending is not None and ports.get("i_stream.ready"):
            if first_in is None:
                first_in = cycle
            pending = next(beats, None)
            progressed = True
        await ports.tick()
        cycle += 1
        idle = 0 if progressed else idle + 1
        if idle > idle_limit:
            raise StreamTimeout(f"no transfer for {idle_limit} cycles "
                                f"({seen} of {outputs} output beats seen)")
    ports.set("i_stream.valid", 0)
    return last_out - first_in + 1
