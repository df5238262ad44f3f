"""Operand statistics: how the values of a job's operands are drawn.

The families' ``random_job`` generators take an :class:`OperandStats` and draw every operand
through it, so one job generator per family serves verification (:data:`VERIFY`, the default) and
switching-activity runs on data with realistic statistics (:func:`operand_stats`, one of
:data:`STATS`, used by :mod:`peforge.sim.eda.energy`):

``uniform``
    Every code equally likely: integers over their whole range, floats over every finite bit
    pattern (no Inf or NaN).
``gaussian``
    Integers ``round(N(0, sigma))`` clipped to the range, ``sigma`` a quarter of the largest
    magnitude (32 for int8); unsigned integers the magnitude of that. Floats ``N(0, 1)`` rounded to
    the format (RNE). Real-valued weights that a family quantises itself: ``N(0, 1)``.
``gaussian-small``
    As ``gaussian`` with ``sigma`` 1/32 of the largest magnitude (4 for int8); floats and
    real-valued weights ``N(0, 1/8)``.
``gaussian-zero50``, ``gaussian-zero90``
    ``gaussian`` with 50% (90%) of the operands set to exact zero, independently.
``zeros``
    Every operand zero.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from peforge.models.numerics.floatfmt import FloatFormat, decode, encode

__all__ = ["OperandStats", "STATS", "VERIFY", "operand_stats"]


@dataclass(frozen=True)
class OperandStats:
    """One way of drawing operands.

    Attributes
    ----------
    name : str
        One of :data:`STATS`, or ``verify``.
    kind : str
        ``verify`` (the family's verification patterns), ``uniform``, ``gaussian`` or ``zeros``.
    sigma : float
        ``gaussian``: standard deviation as a fraction of an integer range's largest magnitude.
    real_sigma : float
        ``gaussian``: standard deviation of floats and real-valued weights.
    zero_fraction : float
        Probability, 0..1, that an operand is set to exact zero after drawing.
    """

    name: str
    kind: str
    sigma: float = 0.0
    real_sigma: float = 0.0
    zero_fraction: float = 0.0

    def _zeroed(self, rng: np.random.Generator, values: np.ndarray, zero) -> np.ndarray:
        if self.zero_fraction == 0:
            return values
        return np.where(rng.random(values.shape) < self.zero_fraction, zero, values)

    def ints(self, rng: np.random.Generator, shape, low: int, high: int) -> np.ndarray:
        """``int64`` operands in ``low..high`` (inclusive); ``verify`` and ``uniform`` draw
        uniformly, ``gaussian`` as in the module docstring (half-normal when ``low >= 0``)."""
        if self.kind in ("verify", "uniform"):
            return rng.integers(low, high, size=shape, endpoint=True, dtype=np.int64)
        zero = min(max(0, low), high)
        if self.kind == "zeros":
            return np.full(shape, zero, dtype=np.int64)
        spread = self.sigma * max(abs(low), abs(high))
        values = rng.normal(0.0, spread, shape)
        if low >= 0:
            values = np.abs(values)
        values = np.clip(np.rint(values), low, high).astype(np.int64)
        return self._zeroed(rng, values, zero)

    def floats(self, fmt: FloatFormat, rng: np.random.Generator, shape,
               verify: Callable[[FloatFormat, np.random.Generator, object], np.ndarray]
               ) -> np.ndarray:
        """``int64`` bit patterns of ``fmt``; ``verify(fmt, rng, shape)`` draws the
        ``verify`` kind (the family's own verification patterns)."""
        if self.kind == "verify":
            return np.asarray(verify(fmt, rng, shape), dtype=np.int64)
        if self.kind == "uniform":
            codes = np.arange(1 << fmt.bits)
            finite = codes[np.isfinite(decode(fmt, codes))]
            return rng.choice(finite, size=shape).astype(np.int64)
        return encode(fmt, self.reals(rng, shape)).astype(np.int64)

    def reals(self, rng: np.random.Generator, shape) -> np.ndarray:
        """float64 values for weights a family quantises itself: ``N(0, sigma)`` with
        ``zero_fraction`` zeros (``sigma`` is :attr:`real_sigma`); ``zeros``: all zero. Not
        defined for ``verify``/``uniform``."""
        if self.kind == "zeros":
            return np.zeros(shape)
        if self.kind != "gaussian":
            raise ValueError(f"stats: real-valued operands need a gaussian or zeros kind, "
                             f"got {self.name!r}")
        return self._zeroed(rng, rng.normal(0.0, self.real_sigma, shape), 0.0)


#: The families' verification patterns (their ``random_job`` default).
VERIFY = OperandStats("verify", "verify")

_STATS = {
    "uniform": OperandStats("uniform", "uniform"),
    "gaussian": OperandStats("gaussian", "gaussian", 0.25, 1.0),
    "gaussian-small": OperandStats("gaussian-small", "gaussian", 1 / 32, 1 / 8),
    "gaussian-zero50": OperandStats("gaussian-zero50", "gaussian", 0.25, 1.0, 0.5),
    "gaussian-zero90": OperandStats("gaussian-zero90", "gaussian", 0.25, 1.0, 0.9),
    "zeros": OperandStats("zeros", "zeros"),
}

#: Names of the operand statistics of activity runs (see the module docstring).
STATS: tuple[str, ...] = tuple(_STATS)


def operand_stats(name: str) -> OperandStats:
    """The statistics called ``name`` (one of :data:`STATS`)."""
    try:
        return _STATS[name]
    except KeyError:
        raise ValueError(f"stats: must be one of {', '.join(STATS)}, got {name!r}") from None
