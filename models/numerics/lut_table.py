"""Bit-exact integer maths of the LUT Tensor Core (table lookup instead of multiply).

For a group of ``K`` activations ``a_0..a_{K-1}`` (``2 <= K <= 8``) a weight bit-plane is a
``K``-bit index ``idx`` whose bit ``k`` belongs to ``a_k`` and reads as ``-1`` (bit 0) or ``+1``
(bit 1)::

    T(idx) = sum_k (2 * idx_k - 1) * a_k,    idx = sum_k idx_k * 2**k.

``T`` is odd, ``T(~idx) = -T(idx)``, so only the ``2**(K-1)`` entries whose index bit 0 is 0 are
stored: ``LUT[j] = T(2 * j)``, i.e. ``a_0`` always reads ``-1`` and bit ``k-1`` of ``j`` is the
sign bit of ``a_k`` for ``k >= 1``. An index with bit 0 set is looked up as the complement of its
upper bits and the result negated (:func:`fold_index`); the RTL applies this offline to the
weights and stores ``(j, negate)``.

Weights of ``B`` bits are looked up bit-serially, one plane per cycle, with a plane weight
``c_b``; each format's codes satisfy ``2 * w = sum_b c_b * s_b + corr`` (``s_b = 2 * bit_b - 1``),
so for one output::

    2 * (A @ W) = sum_groups sum_b c_b * T(plane_b) + corr * sum_k a_k

and the right side is always even (``T(idx)`` has the parity of ``sum_k a_k``): the result is that
sum shifted right by one, exactly. The formats (:class:`WeightFormat`; codes are the weight
values):

* ``unsigned``, ``B`` = 1..4: codes ``0..2**B-1``; ``c_b = 2**b``; ``corr = 2**B - 1``.
* ``signed``, ``B`` = 2..4: two's-complement codes ``-2**(B-1)..2**(B-1)-1``; ``c_b = 2**b``
  except the sign plane, ``c_{B-1} = -2**(B-1)``; ``corr = -1``.
* ``ternary``, ``B`` = 2: codes ``-1, 0, +1``; ``c = (1, 1)``; ``corr = 0``.

Ternary uses two planes read as ``{-1, +1}`` whose mean is the weight: plane 0 is ``w > 0`` and
plane 1 is ``w >= 0``, so ``+1 -> (+1, +1)``, ``0 -> (-1, +1)``, ``-1 -> (-1, -1)``; no
activation-sum correction is needed. The correction ``corr * sum_k a_k`` is computed once per
activation row and shared by every weight column.

A reduction depth ``K_total`` that is not a multiple of the group size is padded with zero
activations (and weight code 0): a zero activation adds nothing to any table entry nor to the
activation sum, so the result is unchanged.
"""

from dataclasses import dataclass

import numpy as np

from peforge.models.integer import int_range

__all__ = [
    "WEIGHT_KINDS", "K_GROUP_RANGE", "WeightFormat", "precompute_table", "fold_index", "lookup",
    "lut_matmul", "table_entry_bits", "accumulator_bits",
]

WEIGHT_KINDS = ("unsigned", "signed", "ternary")
K_GROUP_RANGE = (2, 8)
_WBITS = {"unsigned": (1, 4), "signed": (2, 4), "ternary": (2, 2)}
_ACT_BITS_RANGE = (2, 32)


def _check_int(name: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name}: must be an integer in {low}..{high}, got {value!r}")


def _int_array(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer) or x.dtype == np.uint64:
        raise TypeError(f"{name}: must be an integer array (at most 63 value bits), "
                        f"got dtype {x.dtype}")
    return x.astype(np.int64)


@dataclass(frozen=True)
class WeightFormat:
    """How low-bit weight codes become ``{-1, +1}`` bit-planes for the table lookup.

    Parameters
    ----------
    kind : {"unsigned", "signed", "ternary"}
        Code interpretation; codes are the weight values themselves (see the module table).
    wbits : int
        Bit-planes per weight: 1..4 unsigned, 2..4 signed (two's complement), 2 ternary.

    Raises
    ------
    ValueError
        Naming the field and its allowed values.
    """

    kind: str
    wbits: int

    def __post_init__(self):
        if self.kind not in WEIGHT_KINDS:
            raise ValueError(f"kind: must be one of {', '.join(WEIGHT_KINDS)}, got {self.kind!r}")
        low, high = _WBITS[self.kind]
        if isinstance(self.wbits, bool) or not isinstance(self.wbits, int) \
                or not low <= self.wbits <= high:
            allowed = f"{low}" if low == high else f"an integer in {low}..{high}"
            raise ValueError(f"wbits: must be {allowed} for {self.kind} codes, "
                             f"got {self.wbits!r}")

    @property
    def code_range(self) -> tuple[int, int]:
        """Inclusive ``(min, max)`` weight value."""
        if self.kind == "ternary":
            return -1, 1
        return int_range(self.wbits, self.kind == "signed")

    @property
    def plane_weights(self) -> tuple[int, ...]:
        """``c_b`` for plane ``b = 0..wbits-1``."""
        if self.kind == "ternary":
            return 1, 1
        weights = [1 << b for b in range(self.wbits)]
        if self.kind == "signed":
            weights[-1] = -weights[-1]
        return tuple(weights)

    @property
    def correction(self) -> int:
        """``corr``: the multiple of ``sum_k a_k`` added to the doubled result."""
        return {"unsigned": (1 << self.wbits) - 1, "signed": -1, "ternary": 0}[self.kind]

    def bit_planes(self, codes) -> np.ndarray:
        """Bit-planes of ``codes``, shape ``(wbits, *codes.shape)``, values 0 or 1.

        Raises
        ------
        ValueError
            If a code is outside :attr:`code_range`.
        """
        codes = _int_array(codes, "w_codes")
        low, high = self.code_range
        if codes.size and (codes.min() < low or codes.max() > high):
            raise ValueError(f"w_codes: {self.kind} {self.wbits}-bit codes must be in "
                             f"{low}..{high}, got values in {codes.min()}..{codes.max()}")
        if self.kind == "ternary":
            return np.stack([codes > 0, codes >= 0]).astype(np.int64)
        return np.stack([(codes >> b) & 1 for b in range(self.wbits)])

    def group_indices(self, codes, k_group: int) -> np.ndarray:
        """The ``K``-bit lookup index of every bit-plane, activation group and weight column.

        Row ``k`` of ``codes`` belongs to group ``k // K`` and gives index bit ``k % K``;
        ``K_total`` is padded up to a multiple of ``K`` with zero bits (their activations are
        zero padding too). :func:`fold_index` turns the result into the stored ``(j, negate)``.

        Parameters
        ----------
        codes : array of int, shape (K_total, C)
            Weight codes, ``K_total >= 1``.
        k_group : int
            ``K``, 2..8.

        Returns
        -------
        array of int64, shape (wbits, ceil(K_total / K), C)
            Indices in ``0..2**K-1``.
        """
        _check_int("k_group", k_group, *K_GROUP_RANGE)
        planes = self.bit_planes(codes)
        if planes.ndim != 3 or not planes.shape[1]:
            raise ValueError(f"w_codes: need shape (K, C) with K >= 1, got {planes.shape[1:]}")
        planes = np.pad(planes, ((0, 0), (0, -planes.shape[1] % k_group), (0, 0)))
        _, depth, cols = planes.shape
        return (planes.reshape(self.wbits, depth // k_group, k_group, cols)
                << np.arange(k_group)[:, None]).sum(axis=2)


def precompute_table(a_group) -> np.ndarray:
    """The symmetrised table ``LUT[j] = T(2 * j)`` of every activation group.

    Parameters
    ----------
    a_group : array of int, shape (..., K)
        Groups of ``K`` activations along the last axis, ``2 <= K <= 8``.

    Returns
    -------
    array of int64, shape (..., 2**(K-1))
        ``LUT[j] = -a_0 + sum_{k=1..K-1} (2 * j_{k-1} - 1) * a_k``; entries need
        :func:`table_entry_bits` bits.
    """
    a_group = _int_array(a_group, "a_group")
    k_group = a_group.shape[-1] if a_group.ndim else 0
    _check_int("K (a_group.shape[-1])", k_group, *K_GROUP_RANGE)
    j = np.arange(1 << (k_group - 1))[:, None]
    signs = np.concatenate([np.full_like(j, -1), 2 * ((j >> np.arange(k_group - 1)) & 1) - 1],
                           axis=1)
    return a_group @ signs.T


def fold_index(idx, k_group: int) -> tuple[np.ndarray, np.ndarray]:
    """The offline weight transform: a full ``K``-bit index to ``(j, negate)``.

    ``T(idx) == (-LUT[j] if negate else LUT[j])``. ``negate`` is index bit 0; when it is set,
    ``j`` is the complement of the upper ``K-1`` bits, otherwise the upper bits themselves.

    Parameters
    ----------
    idx : array of int
        Indices in ``0..2**K-1``.
    k_group : int
        ``K``, 2..8.

    Returns
    -------
    j : array of int64, in ``0..2**(K-1)-1``
    negate : array of bool
    """
    _check_int("k_group", k_group, *K_GROUP_RANGE)
    idx = _int_array(idx, "idx")
    if idx.size and (idx.min() < 0 or idx.max() >= 1 << k_group):
        raise ValueError(f"idx: must be in 0..{(1 << k_group) - 1} for K={k_group}")
    negate = (idx & 1).astype(bool)
    j = (idx >> 1) ^ np.where(negate, (1 << (k_group - 1)) - 1, 0)
    return j, negate


def lookup(table, idx) -> np.ndarray:
    """``T(idx)`` read from symmetrised tables through :func:`fold_index`.

    Parameters
    ----------
    table : array of int, shape (..., 2**(K-1))
        Tables from :func:`precompute_table`.
    idx : array of int
        Full ``K``-bit indices; broadcast against ``table.shape[:-1]``.

    Returns
    -------
    array of int64, the broadcast shape of ``table.shape[:-1]`` and ``idx``
    """
    table = _int_array(table, "table")
    entries = table.shape[-1] if table.ndim else 0
    if entries < 2 or entries & (entries - 1):
        raise ValueError(f"table: last axis must hold 2**(K-1) entries, got shape {table.shape}")
    k_group = entries.bit_length()
    j, negate = fold_index(idx, k_group)
    shape = np.broadcast_shapes(table.shape[:-1], j.shape)
    stored = np.take_along_axis(np.broadcast_to(table, shape + table.shape[-1:]),
                                np.broadcast_to(j, shape)[..., None], axis=-1)[..., 0]
    return np.where(negate, -stored, stored)


def lut_matmul(a, w_codes, wbits: int, kind: str, k_group: int,
               acc_bits: int | None = None) -> np.ndarray:
    """``A @ W`` through tables, bit-planes and the activation-sum correction, in integers.

    Parameters
    ----------
    a : array of int, shape (R, K_total)
        Activations (INT8 or INT16 in the hardware; any int64-safe values here).
    w_codes : array of int, shape (K_total, C)
        Weight codes, equal to the weight values (see :class:`WeightFormat`).
    wbits : int
        Bit-planes per weight.
    kind : {"unsigned", "signed", "ternary"}
    k_group : int
        Activations per table, 2..8. ``K_total`` is zero-padded up to a multiple of it.
    acc_bits : int, optional
        If given, every value the accumulator holds must fit a signed ``acc_bits`` register:
        the running sum after each lookup (groups in ascending K, planes ``b = 0..wbits-1``
        inside a group) and the doubled result after the correction. Size it with
        :func:`accumulator_bits`.

    Returns
    -------
    array of int64, shape (R, C)
        Equal to ``a @ w_codes``.

    Raises
    ------
    OverflowError
        If ``acc_bits`` is given and a held value does not fit it.
    """
    fmt = WeightFormat(kind, wbits)
    _check_int("k_group", k_group, *K_GROUP_RANGE)
    if acc_bits is not None:
        _check_int("acc_bits", acc_bits, 2, 63)
    a = _int_array(a, "a")
    w_shape = np.shape(w_codes)
    if a.ndim != 2 or len(w_shape) != 2 or a.shape[1] != w_shape[0] or not a.shape[1]:
        raise ValueError(f"a, w_codes: need shapes (R, K) and (K, C), K >= 1, got {a.shape} and "
                         f"{w_shape}")
    idx = fmt.group_indices(w_codes, k_group)                                # (B, G, C)
    _, groups, cols = idx.shape
    a = np.pad(a, ((0, 0), (0, groups * k_group - a.shape[1])))
    rows = a.shape[0]
    tables = precompute_table(a.reshape(rows, groups, k_group))             # (R, G, E)
    terms = lookup(tables[None, :, :, None, :], idx[:, None])                 # (B, R, G, C)
    terms *= np.array(fmt.plane_weights)[:, None, None, None]
    running = np.cumsum(terms.transpose(1, 2, 0, 3).reshape(rows, groups * fmt.wbits, cols),
                        axis=1)
    doubled = running[:, -1] + fmt.correction * a.sum(axis=1)[:, None]
    if acc_bits is not None:
        low, high = int_range(acc_bits, signed=True)
        for held in (running, doubled):
            if held.size and (held.min() < low or held.max() > high):
                worst = held.min() if held.min() < low else held.max()
                raise OverflowError(f"accumulator: value {worst} does not fit "
                                    f"acc_bits={acc_bits} (signed {low}..{high})")
    return doubled >> 1


def _signed_bits(low: int, high: int) -> int:
    """Smallest two's-complement width holding ``low..high`` (``low < 0 <= high``)."""
    return max(high.bit_length(), (-low - 1).bit_length()) + 1


def table_entry_bits(act_bits: int, k_group: int) -> int:
    """Signed width of a table entry, ``act_bits + floor(log2(K)) + 1``.

    Derivation: ``|T(idx)| <= sum_k |a_k| <= K * 2**(act_bits-1)``, reached by the stored entry
    ``LUT[0] = -sum_k a_k`` when every ``a_k = -2**(act_bits-1)``; the width also holds every
    negated lookup ``-LUT[j]``. For ``K = 4``: 11 bits with INT8, 19 bits with INT16.

    Parameters
    ----------
    act_bits : int
        Signed activation width, 2..32 (8 for INT8, 16 for INT16).
    k_group : int
        ``K``, 2..8.
    """
    _check_int("act_bits", act_bits, *_ACT_BITS_RANGE)
    _check_int("k_group", k_group, *K_GROUP_RANGE)
    bound = k_group << (act_bits - 1)
    return _signed_bits(-bound, bound)


def accumulator_bits(act_bits: int, wbits: int, kind: str, k_total: int) -> int:
    """Signed width of the accumulator of :func:`lut_matmul` for a reduction depth ``K_total``.

    The accumulator holds (1) running sums of ``c_b * T`` terms, bounded by
    ``P = sum_b |c_b| * K_total * 2**(act_bits-1)`` (zero padding adds nothing), and (2) the
    doubled result ``2 * (A @ W)``, in ``2 * K_total * [min(a * w), max(a * w)]`` over the
    extreme activations and codes. The width covers both; (2) always dominates or ties (ternary),
    so the output ``A @ W`` itself fits ``accumulator_bits - 1`` bits. For ``K_total = 4096``
    and INT8: W4 unsigned 25, W4 signed 25, W1 unsigned 21, ternary 22 bits; INT16 adds 8.

    Parameters
    ----------
    act_bits : int
        Signed activation width, 2..32.
    wbits, kind :
        Weight format (see :class:`WeightFormat`).
    k_total : int
        Reduction depth before padding, at least 1.
    """
    _check_int("act_bits", act_bits, *_ACT_BITS_RANGE)
    fmt = WeightFormat(kind, wbits)
    _check_int("k_total", k_total, 1, 1 << 32)
    a_low, a_high = int_range(act_bits, signed=True)
    corners = [x * w for x in (a_low, a_high) for w in fmt.code_range]
    running = sum(map(abs, fmt.plane_weights)) * k_total * -a_low
    return _signed_bits(min(-running, 2 * k_total * min(corners)),
                        max(running, 2 * k_total * max(corners)))
