"""Scratchpad traffic word by word (:mod:`peforge.sim.perf.scratchpads`): hand counts, and the
model's SRAM columns with and without it."""

from fractions import Fraction

import pytest

from peforge.sim.perf.mapper import traffic
from peforge.sim.perf.scratchpads import ScratchpadWords, word_traffic
from peforge.sim.perf.tiling import Mapping

#: A 2 x 4 array; 8-byte input and weight words, 14-byte output words (4 x 28 bits).
WORDS = ScratchpadWords(2, 4, 8, 8, Fraction(14))


def test_word_traffic_hand_count():
    # 5 x 3 x 6 under 4 x 2 x 4 tiles: M blocks 4, 1 are 2 + 1 = 3 array blocks of rows, N
    # blocks 4, 2 are 1 + 1 = 2 of columns, K = 3 in 2 blocks. Beats: 3 * 3 * 2 = 18, each
    # reading 2 input lanes and one weight row: 36 * 8 and 18 * 8 bytes. Results: 2 rows per
    # array block, 3 * 2 blocks per K block: 12 rows, written in both K blocks (24 * 14),
    # read back in the second (12) and once per write-back beat: 5 rows of 16 + 8 bytes of C,
    # 2 + 1 beats of 8 bytes, 15 reads; (12 + 15) * 14.
    moved = word_traffic(WORDS, 5, 3, 6, 4, 2, 4, 32, 1, 8)
    assert moved == {"input_sram_read": 288, "weight_sram_read": 144,
                     "output_sram_write": 336, "output_sram_read": 378}


def test_word_traffic_hand_count_weight_stationary():
    # The same GEMM and tiles on a WS array: each tile is one array block of 2 K steps x 4
    # columns (sk = 2 or 1, sn = 4 or 2), so its A beats are its sm rows: 5 rows x 2 K blocks
    # x 2 N blocks = 20 beats of 2 lane words (40 * 8) and 20 result rows written (20 * 14);
    # weight rows read: sk per tile, 3 per M and N block pair, 2 x 2 of them (12 * 8); read
    # back: the 10 rows of the second K block, and the 15 write-back reads ((10 + 15) * 14).
    ws = ScratchpadWords(2, 4, 8, 8, Fraction(14), "ws")
    assert word_traffic(ws, 5, 3, 6, 4, 2, 4, 32, 1, 8) == {
        "input_sram_read": 320, "weight_sram_read": 96, "output_sram_write": 280,
        "output_sram_read": 350}


def test_traffic_counts_words_per_array_block():
    shape, mapping = (5, 3, 6, 8, 8, 32), Mapping(4, 2, 4, "mnk")
    per_tile = traffic(shape, mapping, 64)
    per_word = traffic(shape, mapping, 64, WORDS)
    # Once per tile in elements: A read once per N block (2 x 15 bytes), W once per M block.
    assert (per_tile["input_sram_read"], per_tile["weight_sram_read"]) == (30, 36)
    assert (per_word["input_sram_read"], per_word["weight_sram_read"]) == (288, 144)
    # DMA traffic and the scratchpad writes it makes do not depend on how the array reads.
    for name in ("dram_read", "dram_write", "input_sram_write", "weight_sram_write"):
        assert per_word[name] == per_tile[name]
    with pytest.raises(ValueError, match=r"^words: counting scratchpad words needs the DMA's "
                                         r"beat \(dram.beat_bytes\)$"):
        traffic(shape, mapping, 0, WORDS)
