"""Pareto fronts and hypervolume of design points, every objective minimised (negate one to
maximise it)."""

import numpy as np

__all__ = ["pareto_mask", "hypervolume"]


def pareto_mask(values) -> np.ndarray:
    """Which rows of ``values`` (points x objectives) no other row dominates.

    A row dominates another when it is no worse in every objective and better in at least one.
    Equal rows are all kept. O(points^2 x objectives).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values: must be a 2-D array (points x objectives), got {values.ndim}-D")
    no_worse = (values[:, None, :] <= values[None, :, :]).all(axis=2)
    better = (values[:, None, :] < values[None, :, :]).any(axis=2)
    dominated = (no_worse & better).any(axis=0)
    return ~dominated


def hypervolume(values, reference) -> float:
    """Volume of objective space dominated by ``values`` (points x objectives) and bounded by
    ``reference`` (a point every counted row must beat in every objective; others add nothing).

    Exact, by slicing along the last objective (HSO): fine for the tens to hundreds of front
    points of a sweep in 2 or 3 objectives.
    """
    values = np.asarray(values, dtype=float)
    reference = np.asarray(reference, dtype=float)
    values = values[(values < reference).all(axis=1)]
    if not len(values):
        return 0.0
    values = values[pareto_mask(values)]
    if values.shape[1] == 1:
        return float(reference[0] - values[:, 0].min())
    order = np.argsort(values[:, -1])
    values = values[order]
    volume = 0.0
    for index, row in enumerate(values):
        top = values[index + 1, -1] if index + 1 < len(values) else reference[-1]
        if top > row[-1]:
            volume += (top - row[-1]) * hypervolume(values[:index + 1, :-1], reference[:-1])
    return volume
