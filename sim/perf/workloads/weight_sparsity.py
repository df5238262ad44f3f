"""The measured sparsity of a GEMM's weight: how many of its values are zero, and the N:M
structure they have along K (what a sparse array can skip).

It is measured on ``W`` as the GEMM reads it (``C[m x n] = A[m x k] @ W[k x n]``): ``count``
matrices of ``K x N``. A *group* is ``M`` consecutive rows of ``K`` in one column of one matrix,
for each ``M`` of :data:`GROUP_SIZES`; a ``K`` that ``M`` does not divide is padded with zero rows
(as the sparse DSP chain pads it, :func:`peforge.models.numerics.nm_sparse.pad_k`). The weight
*satisfies* ``N:M`` when no group of ``M`` holds more than ``N`` non-zero values. A value is zero
when it equals 0 exactly (a quantised weight: when its code equals its zero point); NaN is not
zero.
"""

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from peforge.models.numerics.nm_sparse import M_CHOICES, NMPattern

__all__ = ["GROUP_SIZES", "WeightSparsity", "measure_sparsity"]

#: The group lengths ``M`` along K that are measured (the sparse DSP chain's choices).
GROUP_SIZES = M_CHOICES


@dataclass(frozen=True)
class WeightSparsity:
    """The zeros of one GEMM's weight and its N:M structure (module docstring).

    Attributes
    ----------
    zeros, elements : int
        Zero values and all values of the weight's ``K x N`` matrices (each matrix once: a
        weight shared by a batch is counted once; padding is not counted).
    depth : int
        ``K``.
    group_nonzeros : tuple of int
        Per ``M`` of :data:`GROUP_SIZES`, in order: the most non-zero values any group of ``M``
        holds (``0..M``).
    """

    zeros: int
    elements: int
    depth: int
    group_nonzeros: tuple[int, ...]

    def __post_init__(self):
        if not (isinstance(self.elements, int) and self.elements >= 1
                and isinstance(self.zeros, int) and 0 <= self.zeros <= self.elements):
            raise ValueError(f"zeros, elements: must be integers with 0 <= zeros <= elements "
                             f"and elements >= 1, got {self.zeros!r}, {self.elements!r}")
        if not isinstance(self.depth, int) or self.depth < 1:
            raise ValueError(f"depth: must be a positive integer, got {self.depth!r}")
        if len(self.group_nonzeros) != len(GROUP_SIZES) or not all(
                isinstance(n, int) and 0 <= n <= m
                for n, m in zip(self.group_nonzeros, GROUP_SIZES)):
            raise ValueError(f"group_nonzeros: must be one count in 0..M per M of "
                             f"{GROUP_SIZES}, got {self.group_nonzeros!r}")

    @property
    def zero_fraction(self) -> float:
        """``zeros / elements``."""
        return self.zeros / self.elements

    def most_nonzeros(self, m: int) -> int:
        """The most non-zero values in any group of ``m`` along K (``m`` in :data:`GROUP_SIZES`)."""
        return self.group_nonzeros[GROUP_SIZES.index(m)]

    def satisfies(self, pattern: NMPattern) -> bool:
        """Whether every group of ``pattern.m`` holds at most ``pattern.n`` non-zeros (a dense
        pattern is always satisfied)."""
        return self.most_nonzeros(pattern.m) <= pattern.n

    @property
    def pattern(self) -> NMPattern | None:
        """The sparsest pattern ``N:M`` (``N`` dividing ``M``, ``N < M``, ``M`` at most ``K``: a
        longer group is mostly padding) the weight satisfies: the smallest ``N/M``, then the
        smallest ``M`` (1:2 implies 2:4); None when it satisfies none (dense). An all-zero
        weight of ``K >= 16`` satisfies 1:16."""
        candidates = [NMPattern(n, m) for m in GROUP_SIZES if m <= self.depth
                      for n in range(1, m) if m % n == 0 and self.most_nonzeros(m) <= n]
        return min(candidates, key=lambda p: (Fraction(p.n, p.m), p.m), default=None)


def measure_sparsity(w) -> WeightSparsity:
    """The :class:`WeightSparsity` of ``w``: a ``K x N`` matrix or ``count x K x N`` matrices."""
    w = np.asarray(w)
    if w.ndim == 2:
        w = w[np.newaxis]
    if w.ndim != 3 or w.size == 0:
        raise ValueError(f"w: must be a non-empty K x N or count x K x N array, got shape "
                         f"{w.shape}")
    nonzero = w != 0
    count, k, n = nonzero.shape
    most = []
    for m in GROUP_SIZES:
        padded = np.zeros((count, -(-k // m) * m, n), dtype=np.uint8)
        padded[:, :k] = nonzero
        most.append(int(padded.reshape(count, -1, m, n).sum(axis=2).max()))
    return WeightSparsity(int(w.size - np.count_nonzero(nonzero)), int(w.size), k, tuple(most))
