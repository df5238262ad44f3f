"""The tile controller of output-stationary arrays: stream a tile in, wait, drain its rows."""

from amaranth import Module, Signal

from peforge.hw.common.verilog import index_shape

__all__ = ["drain_fsm"]


def drain_fsm(m: Module, *, rows: int, i_ready, ready, tile_end, drain, o_stream,
              wait_state: str, wait_cycles: int | None = None, wait_end=None,
              before_end=None) -> None:
    """Add the controller FSM of an output-stationary array to ``m``.

    States, in order (their encoding):

    ``STREAM``
        ``i_ready`` is ``ready``; ``tile_end`` (the tile's last beat is taken or done) moves on.
    ``wait_state``
        With ``wait_cycles``: that many cycles counted down on the FSM's counter (skipped when
        0), e.g. the wavefront reaching the far corner. With ``wait_end``: until ``wait_end`` is
        high (e.g. the dequantiser's last cycle). ``before_end``, if given (with
        ``wait_cycles`` of at least 2), is driven high in the wait's second-to-last cycle.
    ``DRAIN``
        ``rows`` cycles with ``drain`` and ``o_stream.valid`` high, ``o_stream.payload.last`` in
        the final one (the accumulators shift up one row per cycle, row 0 on the output); then
        back to ``STREAM``.

    The counter is ``count`` (:func:`~peforge.hw.common.verilog.index_shape` of the larger of
    ``wait_cycles`` and ``rows``); the state register is Amaranth's ``fsm_state``.
    """
    if (wait_cycles is None) == (wait_end is None):
        raise ValueError("drain_fsm: give exactly one of wait_cycles and wait_end")
    if before_end is not None and (wait_cycles or 0) < 2:
        raise ValueError("drain_fsm: before_end needs wait_cycles of at least 2")
    count = Signal(index_shape(max(wait_cycles or 0, rows)))
    with m.FSM():
        with m.State("STREAM"):
            m.d.comb += i_ready.eq(ready)
            with m.If(tile_end):
                if wait_end is not None:
                    m.next = wait_state
                elif wait_cycles:
                    m.d.sync += count.eq(wait_cycles - 1)
                    m.next = wait_state
                else:
                    m.d.sync += count.eq(rows - 1)
                    m.next = "DRAIN"
        with m.State(wait_state):
            if wait_end is None:
                m.d.sync += count.eq(count - 1)
                wait_end = count == 0
            if before_end is not None:
                m.d.comb += before_end.eq(count == 1)
            with m.If(wait_end):
                m.d.sync += count.eq(rows - 1)
                m.next = "DRAIN"
        with m.State("DRAIN"):
            m.d.comb += [drain.eq(1), o_stream.valid.eq(1),
                         o_stream.payload.last.eq(count == 0)]
            m.d.sync += count.eq(count - 1)
            with m.If(count == 0):
                m.next = "STREAM"
