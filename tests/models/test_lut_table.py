"""LUT Tensor Core integer maths: tables, the negate-bit transform, bit-planes and widths."""

import itertools

import numpy as np
import pytest

from peforge.models.numerics.lut_table import (
    WeightFormat, accumulator_bits, fold_index, lookup, lut_matmul, precompute_table,
    table_entry_bits,
)

K_GROUPS = range(2, 9)
FORMATS = [("unsigned", 1), ("unsigned", 2), ("unsigned", 3), ("unsigned", 4),
           ("signed", 2), ("signed", 3), ("signed", 4), ("ternary", 2)]
ACT_RANGES = {8: (-128, 127), 16: (-32768, 32767)}


def _t_brute(a_group, idx):
    """T(idx) = sum_k (2 * idx_k - 1) * a_k with Python integers."""
    return sum((2 * ((idx >> k) & 1) - 1) * int(a) for k, a in enumerate(a_group))


def _code_values(kind, wbits):
    if kind == "ternary":
        return [-1, 0, 1]
    if kind == "signed":
        return list(range(-(1 << (wbits - 1)), 1 << (wbits - 1)))
    return list(range(1 << wbits))


def _fits_signed(value, bits):
    return -(1 << (bits - 1)) <= value < 1 << (bits - 1)


# --- table and transform ---------------------------------------------------------------------

@pytest.mark.parametrize("k_group", K_GROUPS)
@pytest.mark.parametrize("act_bits", [8, 16])
def test_table_matches_brute_force(k_group, act_bits):
    low, high = ACT_RANGES[act_bits]
    rng = np.random.default_rng(k_group * 100 + act_bits)
    groups = rng.integers(low, high + 1, size=(2, 3, k_group))
    table = precompute_table(groups)
    assert table.shape == (2, 3, 1 << (k_group - 1)) and table.dtype == np.int64
    for group, entries in zip(groups.reshape(-1, k_group), table.reshape(6, -1)):
        # LUT[j] = T({j, 0}): index bit 0 is 0, upper bits are j.
        assert entries.tolist() == [_t_brute(group, j << 1) for j in range(1 << (k_group - 1))]
        assert entries[0] == -sum(group.tolist())


def test_table_bit_order():
    a = np.array([1, 10, 100, 1000])
    # j bit k-1 is the sign of a_k; a_0 always reads -1.
    assert precompute_table(a).tolist() == [
        -1111, -1091, -911, -891, 889, 909, 1089, 1109]


@pytest.mark.parametrize("k_group", K_GROUPS)
def test_transform_and_odd_symmetry(k_group):
    rng = np.random.default_rng(k_group)
    group = rng.integers(-128, 128, size=k_group)
    table = precompute_table(group)
    every = np.arange(1 << k_group)
    j, negate = fold_index(every, k_group)
    assert j.min() >= 0 and j.max() < 1 << (k_group - 1)
    assert negate.tolist() == [bool(i & 1) for i in range(1 << k_group)]
    for idx in range(1 << k_group):
        entry = int(table[j[idx]])
        assert (-entry if negate[idx] else entry) == _t_brute(group, idx)
    full = lookup(table, every)
    assert full.tolist() == [_t_brute(group, idx) for idx in range(1 << k_group)]
    complement = every ^ ((1 << k_group) - 1)
    assert np.array_equal(lookup(table, complement), -full)


def test_fold_index_example():
    # idx 0b0101: bit 0 set -> complement of upper bits 0b010 in 3 bits = 0b101, negated.
    j, negate = fold_index(np.array([0b0101, 0b0110]), 4)
    assert j.tolist() == [0b101, 0b011] and negate.tolist() == [True, False]


def test_table_and_transform_reject():
    with pytest.raises(ValueError, match=r"^K \(a_group.shape\[-1\]\): must be an integer in "
                                         r"2..8, got 9$"):
        precompute_table(np.zeros(9, int))
    with pytest.raises(ValueError, match=r"^idx: must be in 0..15 for K=4$"):
        fold_index(np.array([16]), 4)
    with pytest.raises(ValueError, match=r"^k_group: must be an integer in 2..8, got 1$"):
        fold_index(np.array([0]), 1)
    with pytest.raises(TypeError, match=r"^a_group: must be an integer array"):
        precompute_table(np.zeros(4))
    with pytest.raises(ValueError, match=r"^table: last axis must hold 2\*\*\(K-1\) entries"):
        lookup(np.zeros(6, int), np.array([0]))


# --- weight formats --------------------------------------------------------------------------

@pytest.mark.parametrize("kind, wbits", FORMATS)
def test_planes_encode_codes(kind, wbits):
    fmt = WeightFormat(kind, wbits)
    codes = np.array(_code_values(kind, wbits))
    assert fmt.code_range == (codes.min(), codes.max())
    planes = fmt.bit_planes(codes)
    assert planes.shape == (wbits, codes.size) and set(np.unique(planes)) <= {0, 1}
    for i, code in enumerate(codes.tolist()):
        signs = [2 * int(planes[b, i]) - 1 for b in range(wbits)]
        doubled = sum(c * s for c, s in zip(fmt.plane_weights, signs)) + fmt.correction
        assert doubled == 2 * code


def test_format_constants():
    assert WeightFormat("unsigned", 3).plane_weights == (1, 2, 4)
    assert WeightFormat("unsigned", 3).correction == 7
    assert WeightFormat("signed", 4).plane_weights == (1, 2, 4, -8)
    assert WeightFormat("signed", 4).correction == -1
    assert WeightFormat("ternary", 2).plane_weights == (1, 1)
    assert WeightFormat("ternary", 2).bit_planes([1, 0, -1]).T.tolist() == [[1, 1], [0, 1],
                                                                            [0, 0]]
    assert WeightFormat("signed", 3).bit_planes([-3]).ravel().tolist() == [1, 0, 1]


@pytest.mark.parametrize("kind, wbits, message", [
    ("int", 4, "kind: must be one of unsigned, signed, ternary, got 'int'"),
    ("unsigned", 5, "wbits: must be an integer in 1..4 for unsigned codes, got 5"),
    ("unsigned", 0, "wbits: must be an integer in 1..4 for unsigned codes, got 0"),
    ("signed", 1, "wbits: must be an integer in 2..4 for signed codes, got 1"),
    ("ternary", 3, "wbits: must be 2 for ternary codes, got 3"),
])
def test_format_rejects(kind, wbits, message):
    with pytest.raises(ValueError) as info:
        WeightFormat(kind, wbits)
    assert str(info.value) == message


def test_lut_matmul_rejects():
    a = np.zeros((2, 4), int)
    with pytest.raises(ValueError, match=r"^w_codes: signed 3-bit codes must be in -4..3, "
                                         r"got values in -5..2$"):
        lut_matmul(a, np.array([[-5], [0], [1], [2]]), 3, "signed", 4)
    with pytest.raises(ValueError, match=r"^w_codes: ternary 2-bit codes must be in -1..1"):
        lut_matmul(a, np.full((4, 1), 2), 2, "ternary", 4)
    with pytest.raises(ValueError, match=r"^a, w_codes: need shapes \(R, K\) and \(K, C\), "
                                         r"K >= 1, got \(2, 4\) and \(5, 1\)$"):
        lut_matmul(a, np.zeros((5, 1), int), 2, "unsigned", 4)
    with pytest.raises(ValueError, match=r"^k_group: must be an integer in 2..8, got 9$"):
        lut_matmul(a, np.zeros((4, 1), int), 2, "unsigned", 9)
    with pytest.raises(ValueError, match=r"^acc_bits: must be an integer in 2..63, got 1$"):
        lut_matmul(a, np.zeros((4, 1), int), 2, "unsigned", 4, acc_bits=1)


# --- matrix product --------------------------------------------------------------------------

@pytest.mark.parametrize("kind, wbits", FORMATS)
@pytest.mark.parametrize("act_bits", [8, 16])
def test_lut_matmul_equals_plain(kind, wbits, act_bits):
    low, high = ACT_RANGES[act_bits]
    codes = _code_values(kind, wbits)
    rng = np.random.default_rng(wbits * 10 + act_bits + len(kind))
    for k_total, k_group in [(8, 4), (16, 8), (6, 2), (13, 4), (7, 3), (5, 8), (1, 2)]:
        a = rng.integers(low, high + 1, size=(3, k_total))
        w = rng.choice(codes, size=(k_total, 4))
        assert lut_matmul(a, w, wbits, kind, k_group).tolist() == (a @ w).tolist(), \
            (k_total, k_group)


@pytest.mark.parametrize("kind, wbits", FORMATS)
@pytest.mark.parametrize("act_bits", [8, 16])
def test_extremes_fit_and_accumulator_is_tight(kind, wbits, act_bits):
    low, high = ACT_RANGES[act_bits]
    codes = _code_values(kind, wbits)
    k_total, k_group = 10, 4                                    # ragged: padded to 12
    a = np.array([[low] * k_total, [high] * k_total, [low, high] * (k_total // 2)])
    # columns: all lowest code, all highest code, alternating
    w = np.array([[codes[0], codes[-1], codes[-(k % 2)]] for k in range(k_total)])
    bits = accumulator_bits(act_bits, wbits, kind, k_total)
    got = lut_matmul(a, w, wbits, kind, k_group, acc_bits=bits)
    assert got.tolist() == [[sum(int(x) * int(y) for x, y in zip(row, col)) for col in w.T]
                            for row in a]
    with pytest.raises(OverflowError, match=rf"^accumulator: value -?\d+ does not fit "
                                            rf"acc_bits={bits - 1} "):
        lut_matmul(a, w, wbits, kind, k_group, acc_bits=bits - 1)


@pytest.mark.parametrize("act_bits, wbits, kind, k_total, expected", [
    # 2 * K * most negative product: 2 * 4096 * (-128 * 15) = -15728640 needs 25 bits.
    (8, 4, "unsigned", 4096, 25),
    # 2 * K * (-128 * -8) = 8388608 = 2**23 needs 25 bits (max 2**24 - 1).
    (8, 4, "signed", 4096, 25),
    # 2 * K * (-128 * 1) = -2**20 needs 21 bits; running sums reach only 2**19.
    (8, 1, "unsigned", 4096, 21),
    # running sums and doubled result both reach +2 * 4096 * 128 = 2**20: 22 bits.
    (8, 2, "ternary", 4096, 22),
    # 2 * 4 * (-32768 * 15) = -3932160 needs 23 bits.
    (16, 4, "unsigned", 4, 23),
    (16, 2, "ternary", 1, 18),                                  # +2**16 needs 18 bits
])
def test_accumulator_bits_values(act_bits, wbits, kind, k_total, expected):
    assert accumulator_bits(act_bits, wbits, kind, k_total) == expected


@pytest.mark.parametrize("k_group", K_GROUPS)
@pytest.mark.parametrize("act_bits", [8, 16])
def test_table_entry_bits_are_tight(k_group, act_bits):
    low, high = ACT_RANGES[act_bits]
    bits = table_entry_bits(act_bits, k_group)
    assert bits == act_bits + int(np.log2(k_group)) + 1
    corners = np.array(list(itertools.product((low, high), repeat=k_group)))
    tables = precompute_table(corners)
    largest = int(np.abs(tables).max())                        # also bounds -LUT[j]
    assert largest == k_group * -low
    assert _fits_signed(largest, bits) and _fits_signed(-largest, bits)
    assert not _fits_signed(largest, bits - 1)
