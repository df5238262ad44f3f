"""BitMoD group quantiser (pure numpy): a float ``K x N`` weight matrix to per-group types.

:func:`quantize` splits the matrix into groups of ``group`` weights along K (one column each),
picks per group the ``(type, selector)`` of :mod:`peforge.models.numerics.bitmod` with the lowest
squared error and stores uint8 codes, a 2-bit selector, an 8-bit scale code per group and one
float64 scale per column; the rules are in its docstring.
"""

from dataclasses import dataclass

import numpy as np

from peforge.models.numerics.bitmod import SCALE_CODE_MAX, WEIGHT_TYPES, WeightType, weight_type

__all__ = ["QuantizedWeights", "quantize"]

#: Weights the quantiser processes at a time (at least one row of groups), bounding its
#: temporaries to a few MB.
_CHUNK_WEIGHTS = 1 << 18

def _group_scale(channel_scale: np.ndarray, scale_code: np.ndarray) -> np.ndarray:
    """``channel_scale * scale_code / SCALE_CODE_MAX``, evaluated in this order (float64)."""
    return channel_scale * scale_code.astype(np.float64) / SCALE_CODE_MAX


@dataclass(frozen=True, eq=False)
class QuantizedWeights:
    """A quantised ``K x N`` weight matrix (read-only arrays); see :func:`quantize`.

    Groups are ``group`` consecutive rows of one column: group ``(g, n)`` holds
    ``w[g*group:(g+1)*group, n]``, and ``G = K // group``.

    Attributes
    ----------
    wtypes : tuple of WeightType
        The allowed types, in the order given to :func:`quantize`.
    group : int
        Weights per group.
    codes : numpy.ndarray of uint8, shape (K, N)
        Stored code of each weight, read with its group's type and selector.
    values : numpy.ndarray of int16, shape (K, N)
        Integer value of each weight (``decode(codes, type, selector)``).
    type_index : numpy.ndarray of uint8, shape (G, N)
        Index into ``wtypes`` of each group's type.
    selector : numpy.ndarray of uint8, shape (G, N)
        Each group's 2-bit special-value option (0 for int groups).
    scale_code : numpy.ndarray of uint8, shape (G, N)
        8-bit group scale codes, 1..255 (0 only for an all-zero group).
    channel_scale : numpy.ndarray of float64, shape (N,)
        Per-column float scale.
    """

    wtypes: tuple[WeightType, ...]
    group: int
    codes: np.ndarray
    values: np.ndarray
    type_index: np.ndarray
    selector: np.ndarray
    scale_code: np.ndarray
    channel_scale: np.ndarray

    @property
    def group_scale(self) -> np.ndarray:
        """Float scale of each group, ``channel_scale * scale_code / 255``, shape (G, N)."""
        return _group_scale(self.channel_scale, self.scale_code)

    def dequantize(self) -> np.ndarray:
        """Float weights ``values * group_scale`` (float64, shape (K, N))."""
        return self.values * np.repeat(self.group_scale, self.group, axis=0)


def _weight_types(wtypes) -> tuple[WeightType, ...]:
    names = [wtypes] if isinstance(wtypes, (str, WeightType)) else list(wtypes)
    types = tuple(weight_type(name) for name in names)
    if not types:
        raise ValueError(f"wtypes: must name at least one of {', '.join(WEIGHT_TYPES)}, got none")
    if len(set(types)) != len(types):
        raise ValueError(f"wtypes: must not repeat a type, got {[t.name for t in types]}")
    return types


def _weight_matrix(w) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or w.size == 0:
        raise ValueError(f"w: must be a non-empty 2-D (K, N) array, got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("w: must be finite, got NaN or infinity")
    return w


def _check_group(group, k: int) -> None:
    if (not isinstance(group, (int, np.integer)) or isinstance(group, bool)
            or not 1 <= group <= k or k % group):
        raise ValueError(f"group: must be an integer in 1..{k} that divides K={k}, got {group!r}")


class _Rounder:
    """Nearest value of one ``(type, selector)`` table, ties to the lower magnitude.

    Every table holds integers, so every midpoint between neighbours is a multiple of 1/2 and the
    nearest value is constant on each open half-unit cell. ``x`` is mapped to the cell index
    ``c = sign(x) * ceil(|2x|)`` (a midpoint joins the cell on its zero side, which is what ties to
    the lower magnitude need), clipped to ``|c| <= 2 * max|table|`` (values beyond the range
    saturate), and looked up in a table built by brute force at each cell's centre.
    """

    def __init__(self, wtype: WeightType, selector: int):
        self.max_magnitude = wtype.max_magnitude(selector)
        self.reach = 2 * self.max_magnitude
        cells = np.arange(-self.reach, self.reach + 1)
        centres = (cells - 0.5 * np.sign(cells)) / 2
        values = np.asarray(wtype.values[selector])
        nearest = np.abs(centres[:, None] - values[None, :]).argmin(axis=1)
        self.values = values[nearest].astype(np.int16)
        self.codes = np.asarray(wtype.codes, dtype=np.uint8)[nearest]

    def cell(self, x: np.ndarray) -> np.ndarray:
        """Lookup index of each ``x``: index into :attr:`values` and :attr:`codes`."""
        c = np.minimum(np.ceil(np.abs(2 * x)), self.reach)
        return (np.copysign(c, x) + self.reach).astype(np.intp)


def quantize(w, wtypes="fp4", group: int = 128) -> QuantizedWeights:
    """Quantise a ``K x N`` weight matrix in groups of ``group`` weights along K.

    K is the input (reduction) dimension and N the output channels, so a group is a slice of one
    column, as a GEMM PE array streams it. Every candidate ``(type, selector)`` (types in the order
    given, selectors 0, 1, ... within a type) is tried on every group:

    1. ``m_c`` is the candidate's largest magnitude (:meth:`WeightType.max_magnitude`) and
       ``m_min`` the smallest ``m_c`` over all candidates.
    2. Per column, ``channel_scale = max|w[:, n]| / m_min``: no group of any candidate needs more.
    3. Per group, ``scale_code = min(255, ceil(255 * (a_g / a_n) * (m_min / m_c)))`` with ``a_g``
       the group absmax and ``a_n`` the column absmax, i.e. the smallest 8-bit code whose scale
       ``channel_scale * scale_code / 255`` is at least ``a_g / m_c`` (rounded up so that nothing
       clips; the cap at 255 only absorbs float rounding). All-zero groups get code 0.
    4. Each weight takes the candidate's value nearest to ``w / group_scale``, ties to the lower
       magnitude (values beyond the range saturate to its end).
    5. The group keeps the candidate with the smallest sum of squared errors
       ``sum((w - value * group_scale)**2)`` (i.e. the lowest MSE); exact ties keep the earlier
       candidate, so list cheaper types first.

    A candidate's scale codes span at most ``255 * m_min / m_c`` steps, so mixing types of very
    different ranges (int3 with int8) coarsens the group scales of the wider type.

    Parameters
    ----------
    w : array_like of float, shape (K, N)
        Finite weights.
    wtypes : str, WeightType or sequence of them
        Allowed types, e.g. ``"fp4"`` or ``["fp4", "int4", "int8"]`` (chosen per group).
    group : int
        Weights per group; must divide K (no ragged last group).

    Returns
    -------
    QuantizedWeights

    Raises
    ------
    ValueError
        For an unknown, repeated or empty ``wtypes``, a ``w`` that is not a finite non-empty 2-D
        array, or a ``group`` that is not a divisor of K in 1..K.
    """
    types = _weight_types(wtypes)
    w = _weight_matrix(w)
    k, n = w.shape
    _check_group(group, k)
    blocks = w.reshape(k // group, group, n)
    group_absmax = np.abs(blocks).max(axis=1)
    column_absmax = group_absmax.max(axis=0)
    candidates = [(t, s) for t in range(len(types)) for s in range(types[t].n_selectors)]
    m_min = min(types[t].max_magnitude(s) for t, s in candidates)
    channel_scale = column_absmax / m_min
    ratio = np.divide(group_absmax, column_absmax, out=np.zeros_like(group_absmax),
                      where=column_absmax > 0)

    rounders = [_Rounder(types[t], s) for t, s in candidates]
    candidate_codes = [
        np.minimum(np.ceil(SCALE_CODE_MAX * ratio * (m_min / r.max_magnitude)), SCALE_CODE_MAX)
        for r in rounders]

    codes = np.zeros(blocks.shape, dtype=np.uint8)
    values = np.zeros(blocks.shape, dtype=np.int16)
    type_index = np.zeros(group_absmax.shape, dtype=np.uint8)
    selector = np.zeros(group_absmax.shape, dtype=np.uint8)
    scale_code = np.zeros(group_absmax.shape, dtype=np.uint8)
    rows = max(1, _CHUNK_WEIGHTS // (group * n))
    for part in (slice(g, g + rows) for g in range(0, k // group, rows)):
        chunk = blocks[part]
        best_sse = np.full(chunk[:, 0, :].shape, np.inf)
        for (t, s), rounder, candidate_code in zip(candidates, rounders, candidate_codes):
            code = candidate_code[part]
            scale = _group_scale(channel_scale, code)[:, None, :]
            cell = rounder.cell(chunk / np.where(scale > 0, scale, 1.0))
            value = rounder.values[cell]
            sse = np.square(chunk - value * scale).sum(axis=1)
            better = sse < best_sse
            best_sse[better] = sse[better]
            type_index[part][better] = t
            selector[part][better] = s
            scale_code[part][better] = code[better]
            np.copyto(values[part], value, where=better[:, None, :])
            np.copyto(codes[part], rounder.codes[cell], where=better[:, None, :])

    arrays = dict(codes=codes.reshape(k, n), values=values.reshape(k, n), type_index=type_index,
                  selector=selector, scale_code=scale_code, channel_scale=channel_scale)
    for array in arrays.values():
        array.setflags(write=False)
    return QuantizedWeights(wtypes=types, group=group, **arrays)
