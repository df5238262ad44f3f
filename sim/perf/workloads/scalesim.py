"""GEMMs from SCALE-Sim topology CSV files, read as SCALE-Sim 3.0 reads them
(``scalesim/topology_utils.py``).

GEMM format: ``name, M, N, K`` — SCALE-Sim's A is ``M x K`` and its B ``K x N`` (its
``load_arrays_gemm``), so peforge's ``m, k, n = M, K, N``. Conv format: ``name, ifmap height,
ifmap width, filter height, filter width, channels, filters, stride[, stride width]`` (no
padding; a second stride is the width's, as SCALE-Sim reads an eighth number, whatever the
header calls it), lowered by im2col to ``m = out_h * out_w``, ``k = fh * fw * channels``,
``n = filters``. A layer whose name contains ``DP`` is depthwise: SCALE-Sim splits it into one
convolution per channel (each of 1 channel and the row's filters), here one GEMM of that shape
with ``count`` = channels.

Two readings (``compat``):

- ``compat=True`` (SCALE-Sim's own, for ``--timing scalesim-*``): output rows
  ``ceil((H - fh + s) / s)``, and the file's first line is always skipped, as SCALE-Sim does,
  with a warning when it is not a header;
- ``compat=False``: output rows ``(H - fh) // s + 1`` (the usual convolution), and only a true
  header (no numeric cell) is skipped.

Every value must be a positive integer; a filter larger than its input or a layer over
:data:`MAX_MACS` MACs is refused: one error naming file, line and column. A trailing empty cell
(SCALE-Sim rows end in a comma) and a trailing ``#`` comment cell are ignored.
"""

import csv
import re
import warnings
from pathlib import Path

from peforge.sim.perf.workloads.gemm import Gemm

__all__ = ["load_scalesim_topology", "TopologyWarning", "MAX_MACS", "MAX_DIM"]

#: The largest layer read, in MACs (2^48: sixteen times SCALE-Sim's largest shipped layer, the
#: LLaMA-3B feed-forward's 1.8e13); and the largest single dimension (2^31 - 1).
MAX_MACS = 2 ** 48
MAX_DIM = 2 ** 31 - 1

_GEMM_FIELDS = ("M", "N", "K")
_CONV_FIELDS = ("IFMAP height", "IFMAP width", "filter height", "filter width", "channels",
                "filters", "stride", "stride width")
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class TopologyWarning(UserWarning):
    """A topology file read the way SCALE-Sim reads it, which loses or changes something."""


def _cells(row: list[str]) -> list[str]:
    cells = [cell.strip() for cell in row]
    while cells and (not cells[-1] or cells[-1].startswith("#")):
        cells.pop()
    return cells


def _is_header(cells: list[str]) -> bool:
    return len(cells) > 1 and not any(_NUMBER.fullmatch(cell) for cell in cells[1:])


def _values(path, line: int, cells: list[str]) -> list[int]:
    count = len(cells) - 1
    if count not in (3, 7, 8):
        raise ValueError(f"{path}:{line}: a SCALE-Sim row has 3 (GEMM) or 7 or 8 (conv) numbers "
                         f"after the name, got {count}")
    names = _GEMM_FIELDS if count == 3 else _CONV_FIELDS
    values = []
    for column, (cell, name) in enumerate(zip(cells[1:], names), 2):
        value = int(cell) if _INTEGER.fullmatch(cell) else None
        if value is None or not 1 <= value <= MAX_DIM:
            raise ValueError(f"{path}:{line}:{column}: {name}: must be an integer from 1 to "
                             f"{MAX_DIM}, got {cell!r}")
        values.append(value)
    return values


def _conv(path, line: int, name: str, values: list[int], compat: bool) -> Gemm:
    height, width, kh, kw, channels, filters, stride_h = values[:7]
    stride_w = values[7] if len(values) == 8 else stride_h
    for column, (kernel, size, what) in enumerate(((kh, height, "height"),
                                                   (kw, width, "width")), 4):
        if kernel > size:
            raise ValueError(f"{path}:{line}:{column}: filter {what}: {kernel} is larger than "
                             f"the IFMAP {what} {size}")
    if compat:
        out_h, out_w = -(-(height - kh + stride_h) // stride_h), \
            -(-(width - kw + stride_w) // stride_w)
    else:
        out_h, out_w = (height - kh) // stride_h + 1, (width - kw) // stride_w + 1
    if "DP" in name:
        return Gemm(name, out_h * out_w, kh * kw, filters, channels)
    return Gemm(name, out_h * out_w, kh * kw * channels, filters)


def load_scalesim_topology(path, *, compat: bool = False) -> list[Gemm]:
    """The GEMMs of a SCALE-Sim topology CSV (module docstring: formats, ``compat``, errors).
    Warns (:class:`TopologyWarning`) when ``compat`` skips a first line that holds a layer."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"topology: {path} is a folder, not a SCALE-Sim .csv file")
    try:
        handle = open(path, newline="")
    except OSError as error:
        raise ValueError(f"topology: cannot read {path}: {error.strerror or error}") from None
    gemms = []
    with handle:
        reader = csv.reader(handle)
        first = True
        try:
            for row in reader:
                line, cells = reader.line_num, _cells(row)
                if first and compat:
                    first = False
                    if cells and not _is_header(cells):
                        warnings.warn(f"topology: {path}:{line} is a layer, not a header, and "
                                      f"SCALE-Sim skips a file's first line: skipped as SCALE-Sim "
                                      f"does (give a header line to keep it)", TopologyWarning,
                                      stacklevel=2)
                    continue
                if not cells:
                    continue
                if first and _is_header(cells):
                    first = False
                    continue
                first = False
                values = _values(path, line, cells)
                if len(values) == 3:
                    big_m, big_n, big_k = values
                    gemm = Gemm(cells[0], big_m, big_k, big_n)
                else:
                    gemm = _conv(path, line, cells[0], values, compat)
                if gemm.macs > MAX_MACS:
                    raise ValueError(f"{path}:{line}:2: layer {cells[0]!r}: {gemm.macs:.3g} "
                                     f"MACs is over the {MAX_MACS:.3g} a layer may have")
                gemms.append(gemm)
        except (csv.Error, UnicodeDecodeError) as error:
            raise ValueError(f"{path}:{reader.line_num}: not a CSV text file: {error}") from None
    if not gemms:
        raise ValueError(f"topology: no layers in {path}")
    return gemms
