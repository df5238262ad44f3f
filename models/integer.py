"""Integer helpers shared by the models: two's-complement ranges and wrapping (the integer
golden models), exact ceiling division and dimension checks (the cycle models, on Python ints
and on numpy integer arrays alike)."""

import numpy as np

__all__ = ["int_range", "wrap", "random_ints", "ceil_div", "check_dims"]


def int_range(bits: int, signed: bool) -> tuple[int, int]:
    """Inclusive ``(min, max)`` of a ``bits``-wide signed or unsigned integer."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def wrap(values, bits: int, signed: bool) -> np.ndarray:
    """Reduce integers modulo ``2**bits`` into the ``bits``-wide signed or unsigned range.

    This is what a ``bits``-wide register does with an overflowing sum: keep the low bits
    (and read them as two's complement when ``signed``). Results are ``int64`` arrays for
    ``bits <= 62`` and Python-int ``object`` arrays above, so no width is silently lost.
    """
    values = np.asarray(values)
    if bits <= 62:
        low = values.astype(np.int64) & np.int64((1 << bits) - 1)
        if signed:
            low = np.where(low >= (1 << (bits - 1)), low - (1 << bits), low)
        return low
    low = np.vectorize(lambda v: int(v) & ((1 << bits) - 1), otypes=[object])(values)
    if signed:
        low = np.vectorize(lambda v: v - (1 << bits) if v >> (bits - 1) else v,
                           otypes=[object])(low)
    return low


def random_ints(rng: np.random.Generator, shape, bits: int, signed: bool) -> np.ndarray:
    """Uniform random integers over the whole ``bits``-wide range, as ``int64``."""
    low, high = int_range(bits, signed)
    return rng.integers(low, high, size=shape, endpoint=True, dtype=np.int64)


def ceil_div(a, b):
    """``ceil(a / b)`` of integers ``a`` >= 0 and ``b`` > 0 (Python ints or numpy integer arrays),
    exact at any size: Python ints give a Python int, arrays an integer array (broadcast)."""
    return -(-a // b)


def check_dims(noun: str, **dims) -> None:
    """Raise ValueError ``"<name>: <noun> must be >= 1, got <value>"`` for the first of ``dims``
    below 1. A value is a Python int or a numpy integer array; for an array, ``<value>`` is its
    smallest element (an empty array passes)."""
    for name, value in dims.items():
        low = value.min(initial=1) if isinstance(value, np.ndarray) else value
        if low < 1:
            raise ValueError(f"{name}: {noun} must be >= 1, got {low}")
