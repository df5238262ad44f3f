"""N:M structured-sparse weights for the sparse DSP chain family (FlightLLM).

A dense weight matrix ``W`` of shape ``(K, C)`` (``K`` the reduction depth, ``C`` the output
columns) is cut along ``K`` into blocks of ``m`` consecutive rows; in every block of every column
only ``n`` weights are kept. The hardware stores, per kept weight, its value and a
``log2(m)``-bit index that drives the sparse MUX choosing the matching activation.

Rules shared by every function here:

* **Pruning** keeps, per block and column, the ``n`` weights of largest magnitude ``|w|``; ties
  go to the lower index inside the block. Magnitudes are exact (``|-128|`` beats ``127``).
* **Compressed layout**: two integer arrays ``values`` and ``indices``, both of shape
  ``(K // m * n, C)``. Row ``b * n + s`` holds slot ``s`` (``0 <= s < n``) of block ``b``;
  ``indices`` is the position inside the block (``0..m-1``, ``uint8``, ``log2(m)`` bits in
  hardware) and is strictly ascending within a block, so slots stream in ascending ``K``. The
  weight's row in ``W`` is ``b * m + indices[b * n + s, c]``. Dense mode (``n == m``) stores
  every weight with indices ``0, 1, ..., m-1``.
* **K must be a multiple of m.** Functions reject other depths; :func:`pad_k` appends zero rows
  to weights (``axis=0``) and zero columns to activations (``axis=1``), which a GEMM top uses to
  run any shape: padded weights are zero and padded activations are zero, so the product of the
  padded operands equals the product of the original ones.
"""

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from peforge.models.integer import int_range, wrap

__all__ = [
    "M_CHOICES", "OVERFLOW_POLICIES", "NMPattern", "pad_k", "compress", "decompress",
    "prune", "validate_compressed", "sparse_matmul",
]

M_CHOICES = (2, 4, 8, 16)
OVERFLOW_POLICIES = ("wrap", "saturate")

_PATTERN_TEXT = re.compile(r"\s*(\d+)\s*:\s*(\d+)\s*")
_OPERAND_BITS = 32
_ACC_BITS_RANGE = (2, 62)


@dataclass(frozen=True)
class NMPattern:
    """An N:M sparsity pattern: ``n`` non-zero weights in every block of ``m`` along K.

    Parameters
    ----------
    n : int
        Weights kept per block; a divisor of ``m``. ``n == m`` is dense mode.
    m : int
        Block length along K, one of :data:`M_CHOICES` (2, 4, 8, 16).

    Raises
    ------
    TypeError
        If a field is not an ``int``.
    ValueError
        Naming the field and its allowed values, e.g. ``n: must divide m=4 (1, 2, 4), got 3``.
    """

    n: int
    m: int

    def __post_init__(self):
        for name in ("m", "n"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name}: must be an int, got {value!r}")
        if self.m not in M_CHOICES:
            raise ValueError(f"m: must be one of {M_CHOICES}, got {self.m}")
        divisors = tuple(d for d in range(1, self.m + 1) if self.m % d == 0)
        if self.n not in divisors:
            raise ValueError(
                f"n: must divide m={self.m} ({', '.join(map(str, divisors))}), got {self.n}")

    @classmethod
    @lru_cache(maxsize=256)
    def parse(cls, text: str) -> "NMPattern":
        """Build a pattern from ``"N:M"`` text, e.g. ``"2:4"`` (spaces around numbers allowed).
        Cached per text: the cycle model of a sparse configuration parses its pattern on every
        call.

        Raises
        ------
        ValueError
            If the text is not two decimal integers around a colon, or the numbers are not a
            valid pattern (the message then quotes the text and the failing field).
        """
        match = _PATTERN_TEXT.fullmatch(text)
        if match is None:
            raise ValueError(
                f"pattern: expected 'N:M' with decimal integers, e.g. '2:4', got {text!r}")
        n, m = (int(group) for group in match.groups())
        try:
            return cls(n, m)
        except ValueError as error:
            raise ValueError(f"pattern {text!r}: {error}") from None

    def __str__(self) -> str:
        return f"{self.n}:{self.m}"

    @property
    def index_bits(self) -> int:
        """Width of a stored index, ``log2(m)``."""
        return self.m.bit_length() - 1

    @property
    def dense(self) -> bool:
        """Whether every weight is kept (``n == m``)."""
        return self.n == self.m


def pad_k(x, pattern: NMPattern, axis: int = 0) -> np.ndarray:
    """Append zeros along ``axis`` so its length becomes a multiple of ``pattern.m``.

    Use ``axis=0`` for a ``(K, C)`` weight matrix and ``axis=1`` for ``(R, K)`` activations.
    The dtype is kept; an already aligned array is returned unchanged in value.
    """
    x = np.asarray(x)
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, -x.shape[axis] % pattern.m)
    return np.pad(x, widths)


def _int_matrix(x, name: str) -> np.ndarray:
    """``x`` as a 2-D integer array (dtype kept), or a precise error."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer) or x.dtype == np.uint64:
        raise TypeError(f"{name}: must be an integer array (at most 63 value bits), "
                        f"got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name}: must be 2-D, got shape {x.shape}")
    return x


def _check_k(k: int, pattern: NMPattern, name: str) -> None:
    if k % pattern.m:
        raise ValueError(f"{name}: K={k} is not a multiple of m={pattern.m}; "
                         f"zero-pad it with pad_k()")


def compress(w, pattern: NMPattern) -> tuple[np.ndarray, np.ndarray]:
    """Prune ``w`` by magnitude and pack it into the compressed layout.

    Parameters
    ----------
    w : array of int, shape (K, C)
        Dense weights; ``K`` a multiple of ``pattern.m``.
    pattern : NMPattern

    Returns
    -------
    values : array, shape (K // m * n, C), dtype of ``w``
        Kept weights, slot ``s`` of block ``b`` in row ``b * n + s``.
    indices : array of uint8, same shape
        Position of each kept weight inside its block, strictly ascending within a block.

    Notes
    -----
    The ``n`` kept weights of a block are those of largest ``|w|``, ties broken by the lower
    index; an already N:M-sparse ``w`` is reproduced exactly by :func:`decompress`.
    """
    w = _int_matrix(w, "w")
    k, cols = w.shape
    _check_k(k, pattern, "w")
    blocks = w.reshape(k // pattern.m, pattern.m, cols)
    # |w| as uint64 is exact even for the most negative int64; ~ turns "largest first" into an
    # ascending sort without overflow, and the stable sort keeps lower indices first on ties.
    magnitude = np.abs(blocks.astype(np.int64)).astype(np.uint64)
    ranked = np.argsort(~magnitude, axis=1, kind="stable")
    indices = np.sort(ranked[:, :pattern.n, :], axis=1)
    values = np.take_along_axis(blocks, indices, axis=1)
    return values.reshape(-1, cols), indices.reshape(-1, cols).astype(np.uint8)


def validate_compressed(values, indices, pattern: NMPattern, k: int | None = None) -> None:
    """Check a compressed weight stream against the layout of this module.

    Parameters
    ----------
    values, indices : array of int, shape (K // m * n, C)
    pattern : NMPattern
    k : int, optional
        Expected reduction depth ``K``; must be a multiple of ``m`` and match the row count.

    Raises
    ------
    TypeError
        If either array is not integer.
    ValueError
        On a wrong shape, a row count that is not whole blocks, ``k`` not a multiple of ``m``,
        an index outside ``0..m-1``, a duplicate index in a block, or indices not ascending in a
        block. The message names the array, the block and the column.
    """
    values = _int_matrix(values, "values")
    indices = _int_matrix(indices, "indices")
    if indices.shape != values.shape:
        raise ValueError(f"indices: shape must equal values.shape {values.shape}, "
                         f"got {indices.shape}")
    rows, cols = values.shape
    if rows % pattern.n:
        raise ValueError(f"values: rows must be a multiple of n={pattern.n} "
                         f"(n slots per block), got {rows}")
    if k is not None:
        _check_k(k, pattern, "k")
        if rows != k // pattern.m * pattern.n:
            raise ValueError(f"values: K={k} needs {k // pattern.m * pattern.n} rows "
                             f"({k // pattern.m} blocks of n={pattern.n}), got {rows}")
    outside = (indices < 0) | (indices >= pattern.m)
    if outside.any():
        row, col = np.argwhere(outside)[0]
        raise ValueError(f"indices: must be in 0..{pattern.m - 1} for m={pattern.m}, "
                         f"got {indices[row, col]} at row {row}, column {col}")
    blocks = indices.astype(np.int64).reshape(rows // pattern.n, pattern.n, cols)
    repeated = np.diff(np.sort(blocks, axis=1), axis=1) == 0
    if repeated.any():
        block, slot, col = np.argwhere(repeated)[0]
        index = np.sort(blocks[block, :, col])[slot]
        raise ValueError(f"indices: duplicate index {index} in block {block} of column {col}")
    descending = np.diff(blocks, axis=1) < 0
    if descending.any():
        block, _slot, col = np.argwhere(descending)[0]
        raise ValueError(f"indices: must be strictly ascending within a block, got "
                         f"{blocks[block, :, col].tolist()} in block {block} of column {col}")


def decompress(values, indices, pattern: NMPattern) -> np.ndarray:
    """Expand a compressed stream back to dense weights of shape ``(K, C)``.

    The stream is checked with :func:`validate_compressed` first; positions that hold no kept
    weight are zero. The dtype of ``values`` is kept.
    """
    validate_compressed(values, indices, pattern)
    values = np.asarray(values)
    rows, cols = values.shape
    blocks = rows // pattern.n
    dense = np.zeros((blocks, pattern.m, cols), dtype=values.dtype)
    np.put_along_axis(dense, np.asarray(indices, dtype=np.intp).reshape(blocks, pattern.n, cols),
                      values.reshape(blocks, pattern.n, cols), axis=1)
    return dense.reshape(blocks * pattern.m, cols)


def prune(w, pattern: NMPattern) -> np.ndarray:
    """Magnitude-prune dense weights to ``pattern`` and return them dense (pruned ones zero).

    Same rule as :func:`compress`; ``K`` must be a multiple of ``pattern.m``.
    """
    return decompress(*compress(w, pattern), pattern)


def sparse_matmul(a, values, indices, pattern: NMPattern, acc_bits: int, signed: bool = True,
                  overflow: str = "wrap") -> np.ndarray:
    """Bit-exact ``A @ W`` over the kept weights, as the DSP chain's accumulator holds it.

    Parameters
    ----------
    a : array of int, shape (R, K)
        Activations, each in the signed 32-bit range (FlightLLM feeds INT8).
    values, indices : compressed weights, shape (K // m * n, C)
        Layout of this module; each value in the signed 32-bit range.
    pattern : NMPattern
    acc_bits : int
        Accumulator width, 2..62 bits (a DSP48 P register has 48).
    signed : bool
        Two's-complement accumulator in ``-2**(acc_bits-1)..2**(acc_bits-1)-1`` when true,
        unsigned ``0..2**acc_bits-1`` otherwise.
    overflow : {"wrap", "saturate"}
        ``"wrap"``: the sum modulo ``2**acc_bits`` (what a plain adder chain does; the order of
        additions does not matter). ``"saturate"``: the running partial sum is clamped to the
        accumulator range after every addition, in ascending ``K`` order (slot order of the
        layout), starting from zero - as a saturating adder in each chain stage does. This is
        not a clamp of the exact result: ``100 + 100 - 100`` in 8 bits gives 27, not 100.

    Returns
    -------
    array of int64, shape (R, C)
    """
    validate_compressed(values, indices, pattern)
    a = _int_matrix(a, "a")
    rows, cols = np.shape(values)
    k = rows // pattern.n * pattern.m
    if a.shape[1] != k:
        raise ValueError(f"a: must have K={k} columns (the weights' depth), got {a.shape[1]}")
    low, high = _ACC_BITS_RANGE
    if isinstance(acc_bits, bool) or not isinstance(acc_bits, int) or not low <= acc_bits <= high:
        raise ValueError(f"acc_bits: must be an integer in {low}..{high}, got {acc_bits!r}")
    if overflow not in OVERFLOW_POLICIES:
        raise ValueError(f"overflow: must be one of {', '.join(OVERFLOW_POLICIES)}, "
                         f"got {overflow!r}")
    operand_low, operand_high = int_range(_OPERAND_BITS, signed=True)
    for name, x in (("a", a), ("values", np.asarray(values))):
        if x.size and (x.min() < operand_low or x.max() > operand_high):
            raise ValueError(f"{name}: must be in {operand_low}..{operand_high}")
    # Row of W for every slot; products |a * w| <= 2**62 are exact in int64.
    k_rows = (np.arange(rows) // pattern.n * pattern.m)[:, None] + np.asarray(indices, np.int64)
    products = a.astype(np.int64)[:, k_rows] * np.asarray(values, np.int64)
    if overflow == "wrap":
        # int64 sums are exact modulo 2**64, hence exact modulo 2**acc_bits.
        return wrap(products.sum(axis=1), acc_bits, signed)
    acc_low, acc_high = int_range(acc_bits, signed)
    acc = np.zeros((a.shape[0], cols), dtype=np.int64)
    for term in np.moveaxis(products, 1, 0):
        acc = np.clip(acc + term, acc_low, acc_high)
    return acc
