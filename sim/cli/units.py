"""Readable magnitudes for printed tables: a quantity in its base unit (pJ, bytes, ms, mW, mm2)
shown in the largest unit of its scale that keeps it >= 1 (1.5e12 pJ is 1.5 J); areas are in
mm2 from 0.001 mm2 up (0.17 mm2, not 1.7e5 um2), below in um2."""

import math

__all__ = ["SCALES", "unit_for", "readable"]

#: Per base unit, its scale: (unit, how many base units one of it is), smallest first.
SCALES = {
    "pJ": (("pJ", 1.0), ("nJ", 1e3), ("uJ", 1e6), ("mJ", 1e9), ("J", 1e12), ("kJ", 1e15)),
    "B": (("B", 1.0), ("KiB", 2.0 ** 10), ("MiB", 2.0 ** 20), ("GiB", 2.0 ** 30),
          ("TiB", 2.0 ** 40)),
    "ms": (("ns", 1e-6), ("us", 1e-3), ("ms", 1.0), ("s", 1e3)),
    "mW": (("uW", 1e-3), ("mW", 1.0), ("W", 1e3), ("kW", 1e6)),
    "mm2": (("um2", 1e-6), ("mm2", 1.0)),
}

#: Units used from a value below their factor (in the base unit): mm2 from 0.001 mm2.
_FROM = {"mm2": 1e-3}


def unit_for(value: float, base: str) -> tuple[str, float]:
    """``(unit, factor)``: the largest unit of ``base``'s scale not above ``|value|`` (the
    smallest for 0, NaN or a value below it, the largest for an infinite one); ``value / factor``
    is the number to print."""
    scale = SCALES[base]
    if not math.isfinite(value) or value == 0:
        return scale[0] if value == 0 or math.isnan(value) else scale[-1]
    fitting = [(unit, factor) for unit, factor in scale
               if _FROM.get(unit, factor) <= abs(value)]
    return fitting[-1] if fitting else scale[0]


def readable(value: float, base: str) -> str:
    """``value`` (in ``base``) as ``"<4 significant digits> <unit>"``, e.g. ``"1.5 J"``."""
    unit, factor = unit_for(value, base)
    return f"{value / factor:.4g} {unit}"
