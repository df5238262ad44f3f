"""Bit-serial family: configuration, golden model, cycle model and command line, without RTL.

Expected values are hand-computed or come from plain Python loops over the bit-serial terms of
:func:`peforge.models.numerics.bitmod.decompose` (tested on its own in test_bitmod_quant.py), never from the
code under test.
"""

import dataclasses
import json

import numpy as np
import pytest

from peforge.models.numerics import bitmod, bitmod_quant
from peforge.models.params import config_hash
from peforge.models.bitserial import (BitserialConfig, gemm_cycles, golden_gemm, job_cycles,
                                      width_terms)
from peforge.sim.families import family
from peforge.sim.families.bitserial import random_job

from tests.sim.test_cli import peforge

BITSERIAL = family("bitserial")
TERMS = {"fp3": 2, "fp4": 2, "int3": 2, "int4": 2, "int6": 3, "int8": 4}
ALL_TYPES = "int8, int6, int4, int3, fp4, fp3"


@pytest.mark.parametrize("values, message", [
    ({"rows": 0}, "rows: must be an integer in 1..64, got 0"),
    ({"cols": 65}, "cols: must be an integer in 1..64, got 65"),
    ({"lanes": 17}, "lanes: must be an integer in 1..16, got 17"),
    ({"wtypes": "fp5"}, f"wtypes: must be a comma-separated list of distinct {ALL_TYPES}, "
                        "got 'fp5'"),
    ({"wtypes": "fp4,int8,fp4"}, f"wtypes: must be a comma-separated list of distinct "
                                 f"{ALL_TYPES}, got 'fp4,int8,fp4'"),
    ({"wtypes": ""}, f"wtypes: must be a comma-separated list of distinct {ALL_TYPES}, got ''"),
    ({"wtypes": "fp4, int8"}, f"wtypes: must be a comma-separated list of distinct {ALL_TYPES}, "
                              "got 'fp4, int8'"),
    ({"wtypes": ("fp4",)}, f"wtypes: must be a comma-separated list of distinct {ALL_TYPES}, "
                           "got ('fp4',)"),
    ({"group": 130}, "group: must be a multiple of lanes=4, got 130"),
    ({"group": 12, "wtypes": "fp4"},
     "group: must be at least 16 with lanes=4 and 2 terms per weight (fp4, the fastest type of "
     "fp4), so that a group lasts the dequantiser's 8 cycles, got 12"),
    # An int8 group of 12 would last 12 cycles, but an fp4 group only 6.
    ({"group": 12, "wtypes": "int8,fp4"},
     "group: must be at least 16 with lanes=4 and 2 terms per weight (fp4, the fastest type of "
     "int8,fp4), so that a group lasts the dequantiser's 8 cycles, got 12"),
    ({"group": 4, "lanes": 2, "wtypes": "int6,int8"},
     "group: must be at least 6 with lanes=2 and 3 terms per weight (int6, the fastest type of "
     "int6,int8), so that a group lasts the dequantiser's 8 cycles, got 4"),
    ({"group": 6, "lanes": 2, "wtypes": "int6,fp3"},
     "group: must be at least 8 with lanes=2 and 2 terms per weight (fp3, the fastest type of "
     "int6,fp3), so that a group lasts the dequantiser's 8 cycles, got 6"),
])
def test_config_rejects_bad_fields(values, message):
    with pytest.raises(ValueError) as error:
        BitserialConfig(**values)
    assert str(error.value) == message


def test_shortest_groups_are_accepted():
    """A group of exactly 8 cycles (the dequantiser's) of the fastest allowed type is the
    shortest allowed; 9 (3 slots of int6) is fine too."""
    assert BitserialConfig(lanes=4, group=16, wtypes="fp4").group == 16
    assert BitserialConfig(lanes=4, group=16, wtypes="int8,int4").group == 16
    assert BitserialConfig(lanes=1, group=2, wtypes="int8").group == 2
    assert BitserialConfig(lanes=2, group=6, wtypes="int6").group == 6
    assert BitserialConfig(lanes=2, group=6, wtypes="int8,int6").group == 6


def test_config_is_frozen_and_hash_follows_fields():
    config = BitserialConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.wtypes = "int8"
    assert config_hash("bitserial", config) == config_hash("bitserial", BitserialConfig())
    assert config_hash("bitserial", config) != config_hash("bitserial",
                                                           BitserialConfig(wtypes="int8,fp4"))


@pytest.mark.parametrize("wtypes, terms, min_terms, pad_type, code_bits", [
    ("fp4", 2, 2, 0, 4), ("fp3", 2, 2, 0, 3), ("int3", 2, 2, 0, 3), ("int4", 2, 2, 0, 4),
    ("int6", 3, 3, 0, 6), ("int8", 4, 4, 0, 8), ("fp4,int4,int8", 4, 2, 0, 8),
    ("int8,int6,fp3", 4, 2, 2, 8), ("int6,int8", 4, 3, 0, 8), ("fp3,int6", 3, 2, 0, 6),
    ("int8,fp3,int3", 4, 2, 1, 8),
])
def test_terms_per_slot_range_over_the_types(wtypes, terms, min_terms, pad_type, code_bits):
    config = BitserialConfig(wtypes=wtypes, lanes=1, group=4)
    assert (config.terms, config.min_terms, config.pad_type) == (terms, min_terms, pad_type)
    assert config.code_bits == code_bits


def test_accumulator_widths():
    """Worst |a*w| is 128 * 127 (int8), 128 * 16 (fp4 special), 128 * 6 (fp3 special)."""
    config = BitserialConfig(wtypes="fp4,int4,int8", group=128, k_max=4096)
    # 128 * 128*127 = 2,080,768 < 2**21; 4096 * 128*127 = 66,584,576 < 2**26; times 255 < 2**34.
    assert (config.group_bits, config.raw_bits, config.scaled_bits) == (22, 27, 35)
    config = BitserialConfig(wtypes="fp4", group=16, k_max=16)
    # 16 * 128*16 = 32,768 = 2**15 needs 16 bits of magnitude; times 255: 8,355,840 < 2**23.
    assert (config.group_bits, config.raw_bits, config.scaled_bits) == (17, 17, 24)
    config = BitserialConfig(wtypes="fp3", group=16, k_max=1)
    # 128*6 = 768 < 2**10; 16 * 768 = 12,288 < 2**14; 768 * 255 = 195,840 < 2**18.
    assert (config.group_bits, config.raw_bits, config.scaled_bits) == (15, 11, 19)


def reference(group, a, values, scale):
    """Plain Python: group sums accumulated term by term, as the PE does, then both results."""
    m, k = len(a), len(a[0])
    n = len(values[0])
    c_raw = [[0] * n for _ in range(m)]
    c_scaled = [[0] * n for _ in range(m)]
    for row in range(m):
        for col in range(n):
            for g in range(len(scale)):
                group_sum = 0
                for kk in range(g * group, min(k, (g + 1) * group)):
                    wtype, value = values[kk][col]
                    for term in bitmod.decompose([value], wtype)[0]:
                        weight = (-1) ** int(term["sign"]) * int(term["mantissa"]) * 2 ** (
                            int(term["exponent"]) + int(term["bsig"]))
                        group_sum += a[row][kk] * weight
                c_raw[row][col] += group_sum
                c_scaled[row][col] += group_sum * scale[g][col]
    return c_raw, c_scaled


def test_golden_hand_example():
    """fp4 group (selector 2: code 0b1000 = +16) then a ragged int8 group of one weight."""
    config = BitserialConfig(wtypes="fp4,int8", lanes=1, group=4)
    out = golden_gemm(config, a=[[3, -2, 7, 1, 5]],
                      codes=[[0b1000], [0b1101], [0], [0], [0b10000001]],
                      type_index=[[0], [1]], selector=[[2], [0]], scale_code=[[200], [3]])
    # group 0: 3*16 + (-2)*(-6) + 7*0 + 1*0 = 60; group 1: 5*(-127) = -635
    assert out["c_raw"].tolist() == [[60 - 635]]
    assert out["c_scaled"].tolist() == [[60 * 200 - 635 * 3]]


@pytest.mark.parametrize("wtypes, group", [("fp4,int4,int8", 8), ("fp3,int6,int3", 10)])
def test_golden_equals_term_by_term_loops(wtypes, group, rng):
    config = BitserialConfig(wtypes=wtypes, lanes=2, group=group)
    m, k, n = 3, 2 * group + 3, 6
    job = random_job(config, rng, m, k, n)
    types = config.weight_types

    def value(kk, col):
        g = kk // group
        wtype = types[job.type_index[g][col]]
        return wtype.name, int(bitmod.decode(job.codes[kk][col], wtype, job.selector[g][col]))

    values = [[value(kk, col) for col in range(n)] for kk in range(k)]
    c_raw, c_scaled = reference(group, job.a.tolist(), values, job.scale_code.tolist())
    out = BITSERIAL.golden(config, job)
    assert out["c_raw"].tolist() == c_raw
    assert out["c_scaled"].tolist() == c_scaled
    assert sorted(set(job.type_index.flat)) == list(range(len(types)))


def test_golden_wraps_like_a_register():
    """With k_max = group, two groups of the largest products overflow and keep the low bits."""
    config = BitserialConfig(wtypes="int8", lanes=1, group=2, k_max=2)
    # raw: 2 * 128*127 = 32,512 < 2**15 -> 16 bits; scaled: 32,512 * 255 < 2**23 -> 24 bits
    assert (config.raw_bits, config.scaled_bits) == (16, 24)
    minus_127 = 0b10000001
    out = golden_gemm(config, a=[[-128] * 4], codes=[[minus_127]] * 4, type_index=[[0], [0]],
                      selector=[[0], [0]], scale_code=[[255], [255]])
    exact_raw = 4 * 128 * 127
    exact_scaled = exact_raw * 255

    def wrap(value, bits):
        low = value % 2 ** bits
        return low - 2 ** bits if low >= 2 ** (bits - 1) else low

    assert out["c_raw"].tolist() == [[wrap(exact_raw, 16)]] != [[exact_raw]]
    assert out["c_scaled"].tolist() == [[wrap(exact_scaled, 24)]] != [[exact_scaled]]


@pytest.mark.parametrize("act, int8_code, fp4_selector, per_int8, per_fp4", [
    (-128, 0b10000001, 3, 128 * 127, 128 * 16),  # -128 * -127 and -128 * -16 (special)
    (127, 0b01111111, 2, 127 * 127, 127 * 16),   # 127 * 127 and 127 * +16 (special)
])
def test_extreme_sums_fit_without_wrapping_up_to_k_max(act, int8_code, fp4_selector, per_int8,
                                                       per_fp4):
    """K = k_max = 16: groups of four weights alternate int8 and fp4, all at their extremes."""
    config = BitserialConfig(wtypes="int8,fp4", lanes=1, group=4, k_max=16)
    out = golden_gemm(config, a=[[act] * 16], codes=([[int8_code]] * 4 + [[0b1000]] * 4) * 2,
                      type_index=[[0], [1], [0], [1]],
                      selector=[[0], [fp4_selector], [0], [fp4_selector]],
                      scale_code=[[255]] * 4)
    assert out["c_raw"].tolist() == [[8 * per_int8 + 8 * per_fp4]]
    assert out["c_scaled"].tolist() == [[(8 * per_int8 + 8 * per_fp4) * 255]]


def test_float_result_is_c_scaled_times_channel_scale(rng):
    """The documented float rule: c_scaled * channel_scale / 255 is A @ the dequantised weights."""
    config = BitserialConfig(wtypes="fp4,int4,int8", lanes=4, group=16)
    w = rng.standard_t(3, size=(48, 5))
    q = bitmod_quant.quantize(w, ["fp4", "int4", "int8"], 16)
    a = rng.integers(-128, 128, size=(3, 48))
    out = golden_gemm(config, a, q.codes, q.type_index, q.selector, q.scale_code)
    np.testing.assert_allclose(out["c_scaled"] * q.channel_scale / 255, a @ q.dequantize(),
                               rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(out["c_raw"], a @ q.values.astype(np.int64))


@pytest.mark.parametrize("arrays, message", [
    ({"type_index": [[2]]}, "type_index: must be integers in 0..1, got 2"),
    ({"codes": [[0b10000000]]}, "codes: must be int8 codes (0..255 except [128]), got 128"),
    ({"codes": [[256]]}, "codes: must be integers in 0..255, got 256"),
    ({"selector": [[1]]}, "selector: must be an integer in 0..0 for int8, got [1]"),
    ({"scale_code": [[256]]}, "scale_code: must be integers in 0..255, got 256"),
    ({"a": [[128]]}, "a: must be integers in -128..127, got 128"),
    ({"a": [[1, 2]]}, "a: must have shape (1, 1), got (1, 2)"),
    ({"type_index": [[0], [0]]}, "type_index: must have shape (1, 1), got (2, 1)"),
])
def test_golden_rejects_bad_operands(arrays, message):
    config = BitserialConfig(wtypes="int8,fp4", lanes=1, group=4)
    job = {"a": [[1]], "codes": [[1]], "type_index": [[0]], "selector": [[0]],
           "scale_code": [[1]]} | arrays
    with pytest.raises(ValueError) as error:
        golden_gemm(config, **job)
    assert str(error.value) == message


@pytest.mark.parametrize("params, m, k, n, cycles", [
    # tiles * (ceil(K/group) * group/lanes * terms + 8 + rows + 1)
    ({"rows": 4, "cols": 8, "lanes": 4, "group": 16, "wtypes": "fp4"}, 4, 16, 8, 4 * 2 + 13),
    ({"rows": 4, "cols": 8, "lanes": 4, "group": 16, "wtypes": "fp4"}, 5, 17, 9, 4 * (16 + 13)),
    ({"rows": 4, "cols": 8, "lanes": 4, "group": 16, "wtypes": "int8"}, 4, 16, 8, 16 + 13),
    ({"rows": 4, "cols": 8, "lanes": 4, "group": 16, "wtypes": "int6,fp3"}, 4, 1, 8, 12 + 13),
    ({"rows": 1, "cols": 1, "lanes": 1, "group": 2, "wtypes": "int8"}, 1, 1, 1, 8 + 10),
    ({}, 64, 64, 64, 64 * (32 * 4 + 17)),  # the default 8x8, fp4,int4,int8, group 128
])
def test_cycle_model_closed_form(params, m, k, n, cycles):
    assert gemm_cycles(BitserialConfig(**params), m, k, n) == cycles


@pytest.mark.parametrize("wtype", sorted(TERMS))
def test_cycles_per_group_scale_with_terms(wtype):
    """One more group of K costs group/lanes slots of as many cycles as the type has terms."""
    config = BitserialConfig(rows=4, cols=4, lanes=4, group=32, wtypes=wtype)
    tiles = 2 * 3
    extra = gemm_cycles(config, 5, 64, 9) - gemm_cycles(config, 5, 32, 9)
    assert extra == tiles * (32 // 4) * TERMS[wtype]


@pytest.mark.parametrize("wtypes, w_bits, terms", [
    # the fewest terms among the allowed types whose codes are at least w_bits wide
    ("fp4,int4,int8", 2, 2), ("fp4,int4,int8", 4, 2), ("fp4,int4,int8", 5, 4),
    ("fp4,int4,int8", 8, 4), ("int6,int8", 2, 3), ("int6,int8", 6, 3), ("int6,int8", 7, 4),
    ("fp3,int6", 3, 2), ("fp3,int6", 4, 3),
    # no allowed type is that wide: the widest allowed type's pace
    ("fp4", 8, 2), ("fp3,int6", 8, 3),
])
def test_pace_of_a_weight_width(wtypes, w_bits, terms):
    config = BitserialConfig(rows=4, cols=4, lanes=4, group=32, wtypes=wtypes)
    assert width_terms(config, w_bits) == terms
    # 5 x 40 x 9: 2 x 3 tiles of 2 groups of 8 slots
    assert gemm_cycles(config, 5, 40, 9, w_bits) == 6 * (2 * 8 * terms + 8 + 4 + 1)
    assert gemm_cycles(config, 5, 40, 9) == 6 * (2 * 8 * TERMS[wtypes.split(",")[-1]] + 13)


@pytest.mark.parametrize("w_bits", [0, 2.5, "4"])
def test_pace_rejects_bad_width(w_bits):
    with pytest.raises(ValueError) as error:
        width_terms(BitserialConfig(), w_bits)
    assert str(error.value) == f"w_bits: must be a positive integer, got {w_bits!r}"


def test_job_cycles_hand_example():
    """2 x 2 array, 2 lanes, groups of 8 (4 slots): M = 3 (2 row tiles), N = 3 (2 column tiles),
    3 groups. Types (fp4, int6, int8 = 2, 3, 4 terms) per group and column:
    columns 0, 1 (tile 0): [fp4 fp4], [fp4 int6], [int8 fp4] -> 2 + 3 + 4 terms per slot;
    column 2 (tile 1, alone: the padded column is fp4): fp4, int6, fp4 -> 2 + 3 + 2."""
    config = BitserialConfig(rows=2, cols=2, lanes=2, group=8, wtypes="fp4,int6,int8")
    type_index = [[0, 0, 0], [0, 1, 1], [2, 0, 0]]
    assert job_cycles(config, 3, type_index) == 2 * ((4 * 9 + 11) + (4 * 7 + 11))


def test_job_cycles_per_slot_is_the_most_terms_of_its_columns(rng):
    """Random type assignments (each column's groups random, some all-narrow columns), against a
    plain loop over tiles, groups and columns."""
    for wtypes, params in (("fp4,int4,int8", dict(rows=3, cols=4, lanes=2, group=8)),
                           ("int8,int6,fp3,int3", dict(rows=2, cols=5, lanes=4, group=16))):
        config = BitserialConfig(wtypes=wtypes, **params)
        names = wtypes.split(",")
        narrow = [i for i, name in enumerate(names) if TERMS[name] == 2]
        for trial in range(20):
            m, groups, n = (int(x) for x in rng.integers(1, 12, size=3))
            type_index = rng.integers(0, len(names), size=(groups, n))
            if trial % 2:  # whole tiles of narrow types, so fast slots occur
                type_index = rng.choice(narrow, size=(groups, n))
                type_index[:, ::3] = rng.integers(0, len(names), size=(groups, (n + 2) // 3))
            expected = 0
            for _row_tile in range(-(-m // config.rows)):
                for start in range(0, n, config.cols):
                    cycles = 0
                    for g in range(groups):
                        slot = max(TERMS[names[type_index[g, col]]]
                                   for col in range(start, min(n, start + config.cols)))
                        cycles += (config.group // config.lanes) * slot
                    expected += cycles + 8 + config.rows + 1
            assert job_cycles(config, m, type_index) == expected


@pytest.mark.parametrize("wtype, w_bits", [("int8", None), ("int8", 8), ("fp4", 4), ("int4", 2)])
def test_job_of_one_type_takes_the_shape_model_of_its_width(wtype, w_bits):
    """A job whose groups all hold one type takes what the shape-level model says for that
    type's width; with no width, the widest allowed type (int8 here)."""
    config = BitserialConfig(rows=4, cols=4, lanes=4, group=32, wtypes="fp4,int4,int8")
    index = config.wtypes.split(",").index(wtype)
    for m, k, n in ((1, 1, 1), (5, 40, 9), (8, 96, 4)):
        type_index = np.full((-(-k // 32), n), index)
        assert job_cycles(config, m, type_index) == gemm_cycles(config, m, k, n, w_bits)


@pytest.mark.parametrize("m, type_index, message", [
    (0, [[0]], "m: GEMM dimensions must be >= 1, got 0"),
    (1, [[3]], "type_index: must be integers in 0..2, got 3"),
    (1, [0, 1], "type_index: must be a non-empty 2-D (groups, N) array, got shape (2,)"),
    (1, np.zeros((0, 3), dtype=int), "type_index: must be a non-empty 2-D (groups, N) array, "
                                     "got shape (0, 3)"),
])
def test_job_cycles_rejects_bad_input(m, type_index, message):
    with pytest.raises(ValueError) as error:
        job_cycles(BitserialConfig(), m, type_index)
    assert str(error.value) == message


def test_family_job_cycles_follow_the_job_types(rng):
    """The family's job-level count reads the job's types: an all-fp4 job on the default
    8 x 8 array (4 lanes, groups of 128: 32 slots) is 2 terms per slot, an all-int8 one 4."""
    config = BitserialConfig()
    fp4 = random_job(config, rng, 8, 256, 8, np.zeros((2, 8), dtype=int))
    int8 = random_job(config, rng, 8, 256, 8, np.full((2, 8), 2))
    assert BITSERIAL.job_cycles(config, fp4) == 2 * 32 * 2 + 17
    assert BITSERIAL.job_cycles(config, int8) == 2 * 32 * 4 + 17 == BITSERIAL.gemm_cycles(config, 8,
                                                                                      256, 8)
    with pytest.raises(ValueError, match=r"^type_index: must have shape \(2, 8\), got \(1, 8\)$"):
        random_job(config, rng, 8, 256, 8, np.zeros((1, 8), dtype=int))


# --- command line -----------------------------------------------------------------------------

def test_gen_writes_verilog_and_manifest(tmp_path):
    result = peforge("gen", "bitserial", "--rows", "8", "--cols", "8", "--wtypes",
                     "fp4,int4,int8", "--group", "128", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    digest = config_hash("bitserial", BitserialConfig())
    manifest = json.loads((tmp_path / f"bitserial_{digest}.json").read_text())
    assert "module bitserial(" in (tmp_path / f"bitserial_{digest}.v").read_text()
    assert manifest["parameters"] == {"rows": 8, "cols": 8, "lanes": 4, "wtypes": "fp4,int4,int8",
                                      "group": 128, "k_max": 4096}
    ports = {port["name"]: port for port in manifest["ports"]}
    # a: 8 rows x 4 lanes x 8 bits; code: 8 cols x 4 lanes x 8 bits; per column 2-bit type,
    # 2-bit selector, 8-bit scale; group_last, last
    assert ports["i_stream__payload"]["width"] == 8 * 4 * 8 + 8 * 4 * 8 + 8 * (2 + 2 + 8) + 2
    # c_raw 27 bits and c_scaled 35 bits per column (test_accumulator_widths), last
    assert ports["o_stream__payload"]["width"] == 8 * (27 + 35) + 1
    # slowest case: every group of int8 (4 terms), 128/4 slots each; 8 dequantiser cycles,
    # 8 rows drained, 1
    assert manifest["latency"] == ("ceil(M/8) * ceil(N/8) * (ceil(K/128) * 128 + 17) at most "
                                   "(the job's data sets the pace)")


def test_list_shows_the_weight_type_list():
    lines = peforge("list").stdout.splitlines()
    assert any(line.strip() == f"--wtypes     a comma-separated list of distinct {ALL_TYPES}; "
               "default fp4,int4,int8. weight types a group may use" for line in lines)


@pytest.mark.parametrize("args, message", [
    (["--wtypes", "fp4,int5"], "wtypes: must be a comma-separated list of distinct "
                               f"{ALL_TYPES}, got 'fp4,int5'"),
    (["--group", "8", "--wtypes", "fp4"], "group: must be at least 16 with lanes=4 and 2 terms "
                                          "per weight (fp4, the fastest type of fp4), so that a "
                                          "group lasts"),
    (["--group", "12"], "group: must be at least 16 with lanes=4 and 2 terms per weight (fp4, "
                        "the fastest type of fp4,int4,int8), so that a group lasts"),
    (["--group", "10"], "group: must be a multiple of lanes=4, got 10"),
    (["--group", "5000"], "group: must be an integer in 1..4096, got 5000"),
    (["--rows", "0"], "rows: must be an integer in 1..64, got 0"),
    (["--cols", "65"], "cols: must be an integer in 1..64, got 65"),
])
@pytest.mark.parametrize("command", ["gen", "verify"])
def test_bad_input_is_one_clear_line(command, args, message, tmp_path):
    extra = ["--out", str(tmp_path)] if command == "gen" else []
    result = peforge(command, "bitserial", *args, *extra)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"peforge: error: {message}")
    assert result.stdout == ""
    assert not list(tmp_path.iterdir())
