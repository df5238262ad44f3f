"""N:M sparse weights: pattern validation, pruning, the compressed layout and the dot product."""

import dataclasses

import numpy as np
import pytest

from peforge.models.numerics.nm_sparse import (
    NMPattern, compress, decompress, pad_k, prune, sparse_matmul, validate_compressed,
)

PATTERNS = ["1:2", "2:2", "2:4", "1:4", "4:4", "4:8", "2:8", "8:8", "8:16", "4:16", "16:16"]


def _patterns():
    return [pytest.param(NMPattern.parse(text), id=text) for text in PATTERNS]


def _kept_by_rule(column_block):
    """Positions the documented rule keeps: largest |w| first, lower index on ties."""
    return sorted(range(len(column_block)), key=lambda i: (-abs(int(column_block[i])), i))


def _matmul_loops(a, w):
    """A @ W with Python integers."""
    return [[sum(int(a[r][k]) * int(w[k][c]) for k in range(len(w)))
             for c in range(len(w[0]))] for r in range(len(a))]


def _wrap_int(x, bits, signed):
    x %= 1 << bits
    return x - (1 << bits) if signed and x >= 1 << (bits - 1) else x


def _saturating_loops(a, w, bits, signed):
    """Running sum over k = 0..K-1, clamped after every addition."""
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    out = []
    for row in a:
        out_row = []
        for c in range(len(w[0])):
            acc = 0
            for k in range(len(w)):
                acc = min(max(acc + int(row[k]) * int(w[k][c]), low), high)
            out_row.append(acc)
        out.append(out_row)
    return out


def _random_stream(rng, pattern, blocks, cols):
    """A valid compressed stream: random sorted index subsets, random non-zero values."""
    indices = np.stack([np.stack([np.sort(rng.choice(pattern.m, pattern.n, replace=False))
                                  for _ in range(cols)], axis=1) for _ in range(blocks)])
    values = rng.integers(1, 129, size=indices.shape) * rng.choice([-1, 1], size=indices.shape)
    return values.reshape(-1, cols), indices.reshape(-1, cols).astype(np.uint8)


# --- pattern ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, n, m", [("2:4", 2, 4), (" 8 : 16 ", 8, 16), ("4:4", 4, 4)])
def test_parse(text, n, m):
    pattern = NMPattern.parse(text)
    assert pattern == NMPattern(n, m)
    assert str(pattern) == f"{n}:{m}"


@pytest.mark.parametrize("text, message", [
    ("2-4", "pattern: expected 'N:M' with decimal integers, e.g. '2:4', got '2-4'"),
    ("a:b", "pattern: expected 'N:M' with decimal integers, e.g. '2:4', got 'a:b'"),
    ("2:4:8", "got '2:4:8'"),
    ("", "got ''"),
    ("3:4", "pattern '3:4': n: must divide m=4 (1, 2, 4), got 3"),
    ("2:3", "pattern '2:3': m: must be one of (2, 4, 8, 16), got 3"),
    ("0:4", "pattern '0:4': n: must divide m=4 (1, 2, 4), got 0"),
    ("3:32", "m: must be one of (2, 4, 8, 16), got 32"),
])
def test_parse_rejects(text, message):
    with pytest.raises(ValueError) as info:
        NMPattern.parse(text)
    assert message in str(info.value)


@pytest.mark.parametrize("n, m, message", [
    (3, 4, "n: must divide m=4 (1, 2, 4), got 3"),
    (5, 4, "n: must divide m=4 (1, 2, 4), got 5"),
    (3, 16, "n: must divide m=16 (1, 2, 4, 8, 16), got 3"),
    (-2, 4, "n: must divide m=4 (1, 2, 4), got -2"),
    (1, 1, "m: must be one of (2, 4, 8, 16), got 1"),
    (2, 6, "m: must be one of (2, 4, 8, 16), got 6"),
])
def test_pattern_rejects(n, m, message):
    with pytest.raises(ValueError) as info:
        NMPattern(n, m)
    assert str(info.value) == message


def test_pattern_types_and_frozen():
    with pytest.raises(TypeError, match=r"^n: must be an int, got '2'$"):
        NMPattern("2", 4)
    with pytest.raises(TypeError, match=r"^m: must be an int, got True$"):
        NMPattern(1, True)
    pattern = NMPattern(2, 8)
    assert pattern.index_bits == 3 and not pattern.dense and NMPattern(8, 8).dense
    with pytest.raises(dataclasses.FrozenInstanceError):
        pattern.n = 4


# --- pruning and layout ----------------------------------------------------------------------

@pytest.mark.parametrize("pattern", _patterns())
def test_prune_keeps_n_largest_per_block(pattern):
    rng = np.random.default_rng(pattern.m * 31 + pattern.n)
    # A narrow range forces many magnitude ties, so the tie rule is exercised.
    w = rng.integers(-4, 5, size=(4 * pattern.m, 5), dtype=np.int8)
    values, indices = compress(w, pattern)
    pruned = prune(w, pattern)
    assert values.shape == indices.shape == (4 * pattern.n, 5)
    assert values.dtype == np.int8 and indices.dtype == np.uint8 and pruned.dtype == np.int8
    for block in range(4):
        for col in range(5):
            rows = slice(block * pattern.m, (block + 1) * pattern.m)
            kept = sorted(_kept_by_rule(w[rows, col])[:pattern.n])
            slots = slice(block * pattern.n, (block + 1) * pattern.n)
            assert indices[slots, col].tolist() == kept
            assert values[slots, col].tolist() == [int(w[rows, col][i]) for i in kept]
            expected = [int(w[rows, col][i]) if i in kept else 0 for i in range(pattern.m)]
            assert pruned[rows, col].tolist() == expected


def test_prune_magnitude_and_ties():
    pattern = NMPattern(2, 4)
    w = np.array([[3, 0, -128], [-3, 0, 127], [3, 0, 1], [1, 0, -127]], dtype=np.int8)
    assert prune(w, pattern).tolist() == [[3, 0, -128], [-3, 0, 127], [0, 0, 0], [0, 0, 0]]
    values, indices = compress(w, pattern)
    assert indices.tolist() == [[0, 0, 0], [1, 1, 1]]
    big = np.array([[5], [np.iinfo(np.int64).min], [-7], [6]], dtype=np.int64)
    assert compress(big, NMPattern(1, 4))[1].tolist() == [[1]]


@pytest.mark.parametrize("pattern", _patterns())
def test_round_trips(pattern):
    rng = np.random.default_rng(pattern.m * 7 + pattern.n)
    w = rng.integers(-128, 128, size=(3 * pattern.m, 4), dtype=np.int64)
    pruned = prune(w, pattern)
    assert np.array_equal(decompress(*compress(w, pattern), pattern), pruned)
    assert np.array_equal(prune(pruned, pattern), pruned)
    values, indices = _random_stream(rng, pattern, blocks=3, cols=4)
    dense = decompress(values, indices, pattern)
    assert np.count_nonzero(dense) == values.size
    for slot in range(values.shape[0]):
        for col in range(4):
            row = slot // pattern.n * pattern.m + int(indices[slot, col])
            assert dense[row, col] == values[slot, col]
    again_values, again_indices = compress(dense, pattern)
    assert np.array_equal(again_values, values) and np.array_equal(again_indices, indices)


def test_dense_layout_is_identity():
    pattern = NMPattern(4, 4)
    w = np.arange(24).reshape(8, 3) - 12
    values, indices = compress(w, pattern)
    assert np.array_equal(values, w)
    assert indices[:, 0].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]


# --- validation ------------------------------------------------------------------------------

def test_validate_accepts_and_checks_k():
    pattern = NMPattern(2, 4)
    values, indices = np.ones((4, 2), np.int8), np.array([[0, 1], [3, 2], [1, 0], [2, 3]])
    validate_compressed(values, indices, pattern, k=8)
    with pytest.raises(ValueError, match=r"^values: K=12 needs 6 rows \(3 blocks of n=2\), got 4$"):
        validate_compressed(values, indices, pattern, k=12)
    with pytest.raises(ValueError, match=r"^k: K=10 is not a multiple of m=4; zero-pad"):
        validate_compressed(values, indices, pattern, k=10)


@pytest.mark.parametrize("indices, message", [
    ([[0, 4], [1, 2]], "indices: must be in 0..3 for m=4, got 4 at row 0, column 1"),
    ([[0, 1], [-1, 2]], "indices: must be in 0..3 for m=4, got -1 at row 1, column 0"),
    ([[0, 2], [1, 2]], "indices: duplicate index 2 in block 0 of column 1"),
    ([[3, 1], [1, 2]], "indices: must be strictly ascending within a block, "
                       "got [3, 1] in block 0 of column 0"),
])
def test_validate_rejects_index_streams(indices, message):
    with pytest.raises(ValueError) as info:
        validate_compressed(np.ones((2, 2), np.int8), np.array(indices), NMPattern(2, 4))
    assert str(info.value) == message


def test_validate_rejects_shapes_and_types():
    pattern = NMPattern(2, 4)
    with pytest.raises(ValueError, match=r"^indices: shape must equal values.shape \(4, 2\), "
                                         r"got \(4, 3\)$"):
        validate_compressed(np.ones((4, 2), int), np.zeros((4, 3), int), pattern)
    with pytest.raises(ValueError, match=r"^values: rows must be a multiple of n=2 "
                                         r"\(n slots per block\), got 3$"):
        validate_compressed(np.ones((3, 2), int), np.zeros((3, 2), int), pattern)
    with pytest.raises(ValueError, match=r"^values: must be 2-D, got shape \(4,\)$"):
        validate_compressed(np.ones(4, int), np.zeros(4, int), pattern)
    with pytest.raises(TypeError, match=r"^indices: must be an integer array"):
        validate_compressed(np.ones((2, 1), int), np.zeros((2, 1)), pattern)
    with pytest.raises(TypeError, match=r"^w: must be an integer array"):
        compress(np.ones((4, 1)), pattern)
    with pytest.raises(ValueError, match=r"^w: K=6 is not a multiple of m=4; zero-pad it "
                                         r"with pad_k\(\)$"):
        compress(np.ones((6, 2), int), pattern)


def test_pad_k_runs_any_shape():
    pattern = NMPattern(2, 8)
    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, size=(3, 13))
    w = rng.integers(-128, 128, size=(13, 4))
    w_pad, a_pad = pad_k(w, pattern, axis=0), pad_k(a, pattern, axis=1)
    assert w_pad.shape == (16, 4) and a_pad.shape == (3, 16)
    assert not w_pad[13:].any() and not a_pad[:, 13:].any()
    assert np.array_equal(pad_k(w_pad, pattern), w_pad)
    values, indices = compress(w_pad, pattern)
    expected = _matmul_loops(a.tolist(), prune(w_pad, pattern)[:13].tolist())
    assert sparse_matmul(a_pad, values, indices, pattern, acc_bits=40).tolist() == expected
    with pytest.raises(ValueError, match=r"^a: must have K=16 columns \(the weights' depth\), "
                                         r"got 13$"):
        sparse_matmul(a, values, indices, pattern, acc_bits=40)


# --- sparse dot product ----------------------------------------------------------------------

@pytest.mark.parametrize("pattern", _patterns())
def test_sparse_matmul_matches_loops(pattern):
    rng = np.random.default_rng(100 + pattern.m * 3 + pattern.n)
    a = rng.integers(-128, 128, size=(3, 2 * pattern.m))
    w = rng.integers(-128, 128, size=(2 * pattern.m, 4))
    values, indices = compress(w, pattern)
    pruned = prune(w, pattern).tolist()
    exact = _matmul_loops(a.tolist(), pruned)
    assert sparse_matmul(a, values, indices, pattern, acc_bits=48).tolist() == exact
    for bits, signed in ((12, True), (9, False)):
        got = sparse_matmul(a, values, indices, pattern, acc_bits=bits, signed=signed)
        assert got.tolist() == [[_wrap_int(x, bits, signed) for x in row] for row in exact]
        got = sparse_matmul(a, values, indices, pattern, acc_bits=bits, signed=signed,
                            overflow="saturate")
        assert got.tolist() == _saturating_loops(a.tolist(), pruned, bits, signed)


def _dense_case(terms):
    """One row, one column, dense 2:2 blocks: the accumulator adds ``terms`` in order."""
    pattern = NMPattern(2, 2)
    a = np.array([terms])
    values = np.ones((len(terms), 1), np.int64)
    indices = np.tile([[0], [1]], (len(terms) // 2, 1))
    return a, values, indices, pattern


@pytest.mark.parametrize("terms, signed, expected", [
    ([127, 0], True, 127),       # at the edge, no wrap
    ([127, 1], True, -128),      # one past the top wraps to the bottom
    ([-128, -1], True, 127),
    ([255, 1], False, 0),
    ([0, -1], False, 255),
])
def test_wrap_at_accumulator_edge(terms, signed, expected):
    a, values, indices, pattern = _dense_case(terms)
    assert sparse_matmul(a, values, indices, pattern, acc_bits=8, signed=signed)[0, 0] == expected


@pytest.mark.parametrize("terms, signed, expected", [
    ([100, 100, -100, 0], True, 27),     # clamp to 127 mid-chain, not at the end (100)
    ([-100, -100, 100, 0], True, -28),
    ([127, 1, -1, 0], True, 126),
    ([-5, 10], False, 10),               # unsigned: clamp to 0 first, not 5 at the end
    ([200, 100, -100, 0], False, 155),
])
def test_saturate_clamps_every_partial_sum(terms, signed, expected):
    a, values, indices, pattern = _dense_case(terms)
    got = sparse_matmul(a, values, indices, pattern, acc_bits=8, signed=signed,
                        overflow="saturate")
    assert got[0, 0] == expected


def test_sparse_matmul_rejects_arguments():
    a, values, indices, pattern = _dense_case([1, 2])
    with pytest.raises(ValueError, match=r"^acc_bits: must be an integer in 2..62, got 63$"):
        sparse_matmul(a, values, indices, pattern, acc_bits=63)
    with pytest.raises(ValueError, match=r"^overflow: must be one of wrap, saturate, "
                                         r"got 'clip'$"):
        sparse_matmul(a, values, indices, pattern, acc_bits=8, overflow="clip")
    with pytest.raises(ValueError, match=r"^a: must be in -2147483648..2147483647$"):
        sparse_matmul(a << 31, values, indices, pattern, acc_bits=8)
