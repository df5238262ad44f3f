"""The stream signature of the array outputs: valid and payload, no backpressure."""

from amaranth.hdl import Shape, ShapeLike
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

__all__ = ["ValidStream"]


class ValidStream(wiring.Signature):
    """Signature of a stream without backpressure: the consumer takes ``payload`` in every cycle
    ``valid`` is high.

    It is :class:`amaranth.lib.stream.Signature` with ``always_ready=True`` minus the ``ready``
    member, which such a stream never reads (so the generated Verilog has no ``ready`` port).

    Parameters
    ----------
    payload_shape : ShapeLike
        Shape of the payload member.

    Members
    -------
    payload : Out(payload_shape)
        Payload.
    valid : Out(1)
        Whether ``payload`` holds a beat this cycle.
    """

    def __init__(self, payload_shape: ShapeLike):
        Shape.cast(payload_shape)
        self._payload_shape = payload_shape
        super().__init__({"payload": Out(payload_shape), "valid": Out(1)})

    def __eq__(self, other):
        return type(other) is type(self) and other._payload_shape == self._payload_shape

    def __repr__(self):
        return f"ValidStream({self._payload_shape!r})"
