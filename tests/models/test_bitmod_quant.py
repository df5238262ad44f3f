"""BitMoD datatypes, quantiser and bit-serial terms (peforge.models.numerics.bitmod) against plain models.

Expected values come from hand-written tables, hand-computed examples or the brute-force
quantiser below (plain Python loops over every candidate and every table entry), never from the
code under test.
"""

import math
import re

import numpy as np
import pytest

from peforge.models.numerics import bitmod, bitmod_quant

INT_BITS = {"int8": 8, "int6": 6, "int4": 4, "int3": 3}
FP_MAGNITUDES = {"fp3": (0, 1, 2, 4), "fp4": (0, 1, 2, 3, 4, 6, 8, 12)}
FP_SPECIALS = {"fp3": (3, -3, 6, -6), "fp4": (10, -10, 16, -16)}
TERMS = {"fp3": 2, "fp4": 2, "int3": 2, "int4": 2, "int6": 3, "int8": 4}
NAMES = tuple(TERMS)


def reference_tables(name: str) -> list[dict[int, int]]:
    """``{code: value}`` per selector, from the datatype definitions."""
    if name in INT_BITS:
        bits = INT_BITS[name]
        largest = 2 ** (bits - 1) - 1
        return [{v % 2 ** bits: v for v in range(-largest, largest + 1)}]
    magnitudes = FP_MAGNITUDES[name]
    bits = {4: 3, 8: 4}[len(magnitudes)]
    tables = []
    for special in FP_SPECIALS[name]:
        table = {}
        for sign in (0, 1):
            for index, magnitude in enumerate(magnitudes):
                code = sign * 2 ** (bits - 1) + index
                table[code] = special if (sign and magnitude == 0) else (-magnitude if sign
                                                                         else magnitude)
        tables.append(table)
    return tables


def representable(name: str) -> list[int]:
    return sorted({v for table in reference_tables(name) for v in table.values()})


def term_values(terms: np.ndarray) -> list[list[int]]:
    """Signed value of each term, ``(-1)**s * m * 2**(e + bsig)``, in plain Python."""
    return [[(-1) ** int(t["sign"]) * int(t["mantissa"])
             * 2 ** (int(t["exponent"]) + int(t["bsig"])) for t in row] for row in terms]


# --- datatypes and codes --------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_tables_match_the_datatype_definitions(name):
    wtype = bitmod.weight_type(name)
    expected = reference_tables(name)
    assert wtype.n_selectors == len(expected)
    for selector, table in enumerate(expected):
        assert dict(zip(wtype.codes, wtype.values[selector])) == table
        codes = np.array(sorted(table))
        assert bitmod.decode(codes, name, selector).tolist() == [table[c] for c in codes]
        assert bitmod.encode([table[c] for c in codes], name, selector).tolist() == codes.tolist()


def test_code_layout_examples():
    assert bitmod.decode([0b1111, 0b0111, 0b1001], "int4").tolist() == [-1, 7, -7]
    assert bitmod.decode([0b0111, 0b1101, 0b0101], "fp4").tolist() == [12, -6, 6]
    assert bitmod.decode([0b1000] * 4, "fp4", [0, 1, 2, 3]).tolist() == [10, -10, 16, -16]
    assert bitmod.decode([0b100] * 4, "fp3", [0, 1, 2, 3]).tolist() == [3, -3, 6, -6]
    assert bitmod.decode([0b011, 0b110], "fp3").tolist() == [4, -2]
    assert bitmod.encode(-127, "int8").tolist() == 0b10000001


def test_lookup_by_name():
    assert bitmod.weight_type("FP4") is bitmod.WEIGHT_TYPES["fp4"]
    assert list(bitmod.WEIGHT_TYPES) == ["int8", "int6", "int4", "int3", "fp4", "fp3"]
    assert [bitmod.WEIGHT_TYPES["fp4"].max_magnitude(s) for s in range(4)] == [12, 12, 16, 16]


# --- bit-serial terms -----------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_every_value_decomposes_and_recombines(name):
    values = representable(name)
    terms = bitmod.decompose(values, name)
    assert bitmod.terms_per_weight(name) == TERMS[name]
    assert terms.shape == (len(values), TERMS[name])
    assert [sum(row) for row in term_values(terms)] == values
    assert bitmod.recombine(terms).tolist() == values
    assert terms["exponent"].max() <= 3 and terms["mantissa"].max() <= 1
    assert terms["sign"].max() <= 1
    zero = terms["mantissa"] == 0
    assert not terms["sign"][zero].any() and not terms["exponent"][zero].any()


@pytest.mark.parametrize("name", list(INT_BITS))
def test_booth_digits(name):
    terms = bitmod.decompose(representable(name), name)
    assert (terms["bsig"] == 2 * np.arange(TERMS[name])).all()
    assert terms["exponent"].max() <= 1
    digits = [[v // 4 ** i for i, v in enumerate(row)] for row in term_values(terms)]
    assert all(-2 <= d <= 2 for row in digits for d in row)


@pytest.mark.parametrize("name, value, digits", [
    ("int8", 127, [-1, 0, 0, 2]),
    ("int8", -127, [1, 0, 0, -2]),
    ("int8", -1, [-1, 0, 0, 0]),
    ("int6", 31, [-1, 0, 2]),
    ("int4", 7, [-1, 2]),
    ("int4", -7, [1, -2]),
    ("int3", 3, [-1, 1]),
    ("int3", -3, [1, -1]),
])
def test_booth_examples(name, value, digits):
    row = term_values(bitmod.decompose([value], name))[0]
    assert row == [d * 4 ** i for i, d in enumerate(digits)]


@pytest.mark.parametrize("name, value, exponents, mantissas", [
    ("fp4", 16, (3, 3), (1, 1)),
    ("fp4", 12, (3, 2), (1, 1)),
    ("fp4", -10, (3, 1), (1, 1)),
    ("fp4", 3, (1, 0), (1, 1)),
    ("fp4", 1, (0, 0), (1, 0)),
    ("fp4", 0, (0, 0), (0, 0)),
    ("fp3", -6, (2, 1), (1, 1)),
    ("fp3", 4, (2, 0), (1, 0)),
])
def test_fp_leading_one_examples(name, value, exponents, mantissas):
    terms = bitmod.decompose([value], name)[0]
    assert tuple(terms["exponent"]) == exponents and tuple(terms["mantissa"]) == mantissas
    assert tuple(terms["sign"]) == ((1, 1) if value < 0 else (0, 0))
    assert tuple(terms["bsig"]) == (0, 0)


# --- quantiser --------------------------------------------------------------------------------

def reference_quantize(w: np.ndarray, names: list[str], group: int) -> dict[str, np.ndarray]:
    """Brute force over every (type, selector) and every table entry, in plain Python."""
    options = [(t, s, table) for t, name in enumerate(names)
               for s, table in enumerate(reference_tables(name))]
    m_min = min(max(abs(v) for v in table.values()) for _, _, table in options)
    k, n = w.shape
    out = {key: np.zeros((k // group, n), dtype=int) for key in ("type", "sel", "s8")}
    out.update(values=np.zeros((k, n), dtype=int), codes=np.zeros((k, n), dtype=int))
    out["cs"] = np.zeros(n)
    for col in range(n):
        column = [float(x) for x in w[:, col]]
        cs = max(abs(x) for x in column) / m_min
        out["cs"][col] = cs
        for g in range(k // group):
            weights = column[g * group:(g + 1) * group]
            absmax = max(abs(x) for x in weights)
            best = None
            for t, s, table in options:
                m_c = max(abs(v) for v in table.values())
                s8 = next(c for c in range(256) if cs * c / 255 * m_c >= absmax * (1 - 1e-12))
                scale = cs * s8 / 255
                picks = [min(table.items(), key=lambda cv: (abs(x / scale - cv[1]), abs(cv[1])))
                         if scale else (0, 0) for x in weights]
                sse = sum((x - v * scale) ** 2 for x, (_, v) in zip(weights, picks))
                if best is None or sse < best[0]:
                    best = (sse, t, s, s8, picks)
            _, out["type"][g, col], out["sel"][g, col], out["s8"][g, col], picks = best
            rows = slice(g * group, (g + 1) * group)
            out["codes"][rows, col] = [c for c, _ in picks]
            out["values"][rows, col] = [v for _, v in picks]
    return out


def make_weights(seed: int, k: int, n: int) -> np.ndarray:
    """Gaussian and Student-t columns, skewed groups, an all-zero group and an all-zero column."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((k, n))
    w[:, 1] = rng.standard_t(3, k)
    w[: k // 2, 2] = np.abs(w[: k // 2, 2]) + 0.5
    w[k // 2:, 2] = -np.abs(w[k // 2:, 2]) - 0.5
    w[:, 3] = 0.0
    w[:4, 4] = 0.0
    return w


@pytest.mark.parametrize("names", [
    ["fp4"], ["fp3"], ["int4"], ["int3"], ["fp4", "int4"], ["fp3", "int3", "int8"],
])
def test_quantize_matches_brute_force(names):
    w = make_weights(seed=len("".join(names)), k=16, n=6)
    expected = reference_quantize(w, names, group=4)
    q = bitmod_quant.quantize(w, names, group=4)
    assert q.type_index.tolist() == expected["type"].tolist()
    assert q.selector.tolist() == expected["sel"].tolist()
    assert q.scale_code.tolist() == expected["s8"].tolist()
    assert q.values.tolist() == expected["values"].tolist()
    assert q.codes.tolist() == expected["codes"].tolist()
    np.testing.assert_array_equal(q.channel_scale, expected["cs"])
    assert q.wtypes == tuple(bitmod.weight_type(name) for name in names)


def test_brute_force_cases_use_several_options():
    w = make_weights(seed=3, k=16, n=6)
    assert len(set(reference_quantize(w, ["fp4"], 4)["sel"].ravel())) >= 3
    assert set(reference_quantize(w, ["fp4", "int4"], 4)["type"].ravel()) == {0, 1}


@pytest.mark.parametrize("name, column, values, selector", [
    ("int4", [7, 2.5, -2.5, 0.5, -0.5, 1.5, -1.5, -6.5], [7, 2, -2, 0, 0, 1, -1, -6], 0),
    ("fp4", [12, -10, 5, -5, 7, -7, 0.5, -0.5, 2.5, -2.5, -11, 0],
     [12, -10, 4, -4, 6, -6, 0, 0, 2, -2, -10, 0], 1),
    ("fp3", [4, -4, -3, 1.5, -1.5, 0.5, -0.5, -3.5], [4, -4, -3, 1, -1, 0, 0, -3], 1),
])
def test_ties_go_to_the_lower_magnitude(name, column, values, selector):
    # The column absmax equals the type's smallest largest-magnitude, so the scale is exactly 1.
    q = bitmod_quant.quantize(np.array(column)[:, None], name, group=len(column))
    assert q.group_scale.tolist() == [[1.0]]
    assert q.values[:, 0].tolist() == values
    assert q.selector.tolist() == [[selector]]


def test_group_scales_follow_the_8bit_rule():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((256, 24)) * rng.uniform(0.1, 10, 24)
    q = bitmod_quant.quantize(w, ["fp4", "int4"], group=32)
    m_min = 7  # int4's 7 is below fp4's 12 and 16
    np.testing.assert_array_equal(q.channel_scale, np.abs(w).max(axis=0) / m_min)
    group_absmax = np.abs(w.reshape(8, 32, 24)).max(axis=1)
    m_c = np.array([[q.wtypes[t].max_magnitude(s) for t, s in zip(tr, sr)]
                    for tr, sr in zip(q.type_index, q.selector)])
    reach = q.channel_scale * q.scale_code / 255 * m_c
    below = q.channel_scale * (q.scale_code - 1.0) / 255 * m_c
    assert q.scale_code.min() >= 1
    assert (reach >= group_absmax * (1 - 1e-12)).all()
    assert (below < group_absmax).all()
    assert (np.abs(q.values) <= np.repeat(m_c, 32, axis=0)).all()


def test_dequantize_is_values_times_group_scale():
    w = make_weights(seed=5, k=64, n=8)
    q = bitmod_quant.quantize(w, ["fp3", "int6"], group=16)
    expected = [[int(q.values[r, c]) * (float(q.channel_scale[c]) * int(q.scale_code[r // 16, c])
                                          / 255) for c in range(8)] for r in range(64)]
    assert q.dequantize().tolist() == expected
    assert not q.dequantize()[:, 3].any()
    with pytest.raises(ValueError):
        q.values[0, 0] = 1


def test_columns_are_quantised_independently():
    w = make_weights(seed=11, k=128, n=16)
    order = np.random.default_rng(0).permutation(16)
    q = bitmod_quant.quantize(w, ["fp4", "int4"], group=32)
    p = bitmod_quant.quantize(w[:, order], ["fp4", "int4"], group=32)
    for field in ("codes", "values", "type_index", "selector", "scale_code"):
        np.testing.assert_array_equal(getattr(p, field), getattr(q, field)[:, order])
    np.testing.assert_array_equal(p.channel_scale, q.channel_scale[order])


@pytest.mark.parametrize("distribution", ["gaussian", "student_t3"])
def test_error_ordering(distribution):
    rng = np.random.default_rng(2)
    w = (rng.standard_normal((512, 64)) if distribution == "gaussian"
         else rng.standard_t(3, (512, 64)))
    mse = {name: np.mean((bitmod_quant.quantize(w, name).dequantize() - w) ** 2)
           for name in ["int8", "int6", "fp4", "int4", "fp3", "int3"]}
    assert sorted(mse, key=mse.get) == ["int8", "int6", "fp4", "int4", "fp3", "int3"]


def test_full_size_matrix():
    w = np.random.default_rng(4).standard_normal((4096, 4096)).astype(np.float32)
    q = bitmod_quant.quantize(w, "fp4")
    assert q.values.shape == (4096, 4096) and q.scale_code.shape == (32, 4096)
    assert 0.005 < np.mean((q.dequantize() - w) ** 2) < 0.015


# --- errors -----------------------------------------------------------------------------------

W8 = np.ones((8, 2))
TYPES = "int8, int6, int4, int3, fp4, fp3"
GROUP = "group: must be an integer in 1..8 that divides K=8, got"


@pytest.mark.parametrize("call, message", [
    (lambda: bitmod.weight_type("fp5"), f"wtype: must be one of {TYPES}, got 'fp5'"),
    (lambda: bitmod_quant.quantize(W8, ["fp4", "int5"], 8),
     f"wtype: must be one of {TYPES}, got 'int5'"),
    (lambda: bitmod_quant.quantize(W8, [], 8), f"wtypes: must name at least one of {TYPES}, got none"),
    (lambda: bitmod_quant.quantize(W8, ["fp4", "FP4"], 8),
     "wtypes: must not repeat a type, got ['fp4', 'fp4']"),
    (lambda: bitmod_quant.quantize(np.ones(8), "fp4", 8),
     "w: must be a non-empty 2-D (K, N) array, got shape (8,)"),
    (lambda: bitmod_quant.quantize(np.ones((2, 2, 2)), "fp4", 2),
     "w: must be a non-empty 2-D (K, N) array, got shape (2, 2, 2)"),
    (lambda: bitmod_quant.quantize(np.ones((0, 4)), "fp4", 1),
     "w: must be a non-empty 2-D (K, N) array, got shape (0, 4)"),
    (lambda: bitmod_quant.quantize(np.full((8, 2), np.nan), "fp4", 8),
     "w: must be finite, got NaN or infinity"),
    (lambda: bitmod_quant.quantize(W8, "fp4", 0), f"{GROUP} 0"),
    (lambda: bitmod_quant.quantize(W8, "fp4", 3), f"{GROUP} 3"),
    (lambda: bitmod_quant.quantize(W8, "fp4", 16), f"{GROUP} 16"),
    (lambda: bitmod_quant.quantize(W8, "fp4", 4.0), f"{GROUP} 4.0"),
    (lambda: bitmod_quant.quantize(W8, "fp4"), f"{GROUP} 128"),
    (lambda: bitmod.decode(8, "int4"), "codes: must be int4 codes (0..15 except [8]), got 8"),
    (lambda: bitmod.decode([1, 16], "int4"),
     "codes: must be int4 codes (0..15 except [8]), got 16"),
    (lambda: bitmod.decode(1.0, "int4"), "codes: must be integers, got dtype float64"),
    (lambda: bitmod.decode(0, "fp4", 4), "selector: must be an integer in 0..3 for fp4, got [4]"),
    (lambda: bitmod.decode(0, "int8", 1),
     "selector: must be an integer in 0..0 for int8, got [1]"),
    (lambda: bitmod.encode(5, "fp4"),
     "values: must be representable in fp4 under the selector, got 5"),
    (lambda: bitmod.encode([10, 10], "fp4", [0, 1]),
     "values: must be representable in fp4 under the selector, got 10"),
    (lambda: bitmod.encode(-128, "int8"),
     "values: must be representable in int8 under the selector, got -128"),
    (lambda: bitmod.decompose([5], "fp4"),
     "values: must be fp4 values ([-16, -12, -10, -8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8, "
     "10, 12, 16]), got 5"),
    (lambda: bitmod.decompose([4], "int3"),
     "values: must be int3 values ([-3, -2, -1, 0, 1, 2, 3]), got 4"),
])
def test_errors(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_scale_code_rule_is_the_smallest_nonclipping_code():
    # A single fp4 column: m_min = 12, so an extra-asymmetry group (m_c = 16) with the column's
    # absmax needs ceil(255 * 12 / 16) = ceil(191.25) = 192.
    column = np.array([16.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0])
    q = bitmod_quant.quantize(column[:, None], "fp4", group=8)
    assert q.selector.tolist() == [[2]]
    assert q.scale_code.tolist() == [[192]]
    assert q.channel_scale.tolist() == [16.0 / 12]
    assert math.isclose(q.group_scale[0, 0], 16 / 12 * 192 / 255)
