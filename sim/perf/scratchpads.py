"""Scratchpad traffic word by word: how a PE array of ``rows x cols`` reads and writes its
SRAMs when it runs each buffer tile as array blocks, as the generated accelerator tile does
(:mod:`peforge.hw.accelerator.compute`, :mod:`peforge.hw.accelerator.dma`).

A buffer tile ``sm x sk x sn`` runs as ``ceil(sm / rows) x ceil(sn / cols)`` array blocks, each
``sk`` array beats long. Per beat the array reads one input word from each of its ``rows`` input
lanes (rows past the tile's edge too) and one weight row (one word of every weight bank); per
block it writes ``rows`` output words (one per result row) and, after the first K step of its
output tile, reads each back to accumulate. A write-back reads one output word per DMA beat
(each beat re-reads the word it sends part of); a DMA beat from DRAM writes one input or
weight word. Nothing is read once per tile: an A block is read again for every array block of
columns, a W block for every array block of rows.

Counted over a GEMM, with ``FM = sum over M blocks of ceil(sm / rows)``, ``FN`` likewise over
the N blocks, ``KB`` K blocks and the output's passes (:func:`peforge.sim.perf.tiling.passes`):
input reads ``rows * FM * K * FN``, weight reads ``FM * K * FN``, output writes
``rows * FM * FN * KB``, output reads ``rows * FM * FN * (KB - 1)`` plus ``passes * M *
sum over N blocks of ceil(sn * out_bytes / beat)``. :func:`word_traffic` gives them in bytes
(words times their widths), the unit of the model's SRAM columns.

Weight-stationary (``dataflow="ws"``): a buffer tile runs as ``ceil(sk / rows) x ceil(sn /
cols)`` array blocks, each ``rows`` weight beats (a weight row read for each of the tile's K
steps; rows past ``sk`` are zeros, not read) and ``sm`` A beats (one word of every input lane
each), with one output word written per A beat and read back unless it is the output tile's
first block of K. With ``FK = sum over K blocks of ceil(sk / rows)`` and ``MB`` M blocks: input
reads ``rows * M * FK * FN``, weight reads ``MB * K * FN``, output writes ``M * FK * FN``,
output reads ``M * FN * (FK - 1)`` plus the write-backs' as above.
"""

from dataclasses import dataclass
from fractions import Fraction

__all__ = ["ScratchpadWords", "word_traffic"]


@dataclass(frozen=True)
class ScratchpadWords:
    """The array block and the scratchpads' word widths (bytes; ``output_word_bytes`` may be
    fractional, ``cols`` accumulators of any width).

    Attributes
    ----------
    rows, cols : int
        The array block: rows of A and columns of W the array takes per beat.
    input_word_bytes : int
        Bytes of one input lane word (one read per lane per beat).
    weight_word_bytes : int
        Bytes of one weight row read (all banks, one per beat).
    output_word_bytes : Fraction
        Bytes of one output word (``cols`` accumulators).
    dataflow : {"os", "ws"}
        How the array walks a tile (module docstring).
    """

    rows: int
    cols: int
    input_word_bytes: int
    weight_word_bytes: int
    output_word_bytes: Fraction
    dataflow: str = "os"


def _blocks_of(total: int, size: int, unit: int) -> int:
    """``sum over the blocks of size`` ``size`` ``of ceil(block / unit)``."""
    full, rest = divmod(total, size)
    return full * -(-size // unit) + -(-rest // unit)


def word_traffic(words: ScratchpadWords, m: int, k: int, n: int, tm: int, tk: int, tn: int,
                 out_bits: int, out_passes: int, beat_bytes: int) -> dict[str, Fraction]:
    """Bytes the array reads from the three scratchpads and writes into the output one of an
    ``m x k x n`` GEMM under tiles ``tm x tk x tn`` (module docstring): ``input_sram_read``,
    ``weight_sram_read``, ``output_sram_read``, ``output_sram_write``. ``out_bits``: an output
    element's bits in DRAM; ``beat_bytes``: the DMA's beat."""
    fn = _blocks_of(n, tn, words.cols)
    full, rest = divmod(n, tn)
    wb_beats = full * -(-tn * out_bits // (8 * beat_bytes)) \
        + -(-rest * out_bits // (8 * beat_bytes))
    if words.dataflow == "os":
        fm = _blocks_of(m, tm, words.rows)
        k_blocks = -(-k // tk)
        a_beats = w_beats = fm * k * fn
        results = words.rows * fm * fn
        writes, accumulations = results * k_blocks, results * (k_blocks - 1)
    else:
        fk = _blocks_of(k, tk, words.rows)
        a_beats, w_beats = m * fk * fn, -(-m // tm) * k * fn
        writes, accumulations = m * fk * fn, m * fn * (fk - 1)
    return {"input_sram_read": Fraction(words.rows * a_beats * words.input_word_bytes),
            "weight_sram_read": Fraction(w_beats * words.weight_word_bytes),
            "output_sram_write": writes * words.output_word_bytes,
            "output_sram_read": (accumulations + out_passes * m * wb_beats)
            * words.output_word_bytes}
