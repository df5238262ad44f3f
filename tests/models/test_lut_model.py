"""LUT family: configuration, golden model, cycle model, jobs and command line, without RTL."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from peforge.models.lut import LutConfig, golden_gemm, gemm_cycles
from peforge.models.params import config_hash
from peforge.sim.families import family

LUT = family("lut")
FORMATS = [("unsigned", 1), ("unsigned", 2), ("unsigned", 3), ("unsigned", 4),
           ("signed", 2), ("signed", 3), ("signed", 4), ("ternary", 2)]
ACT_RANGES = {8: (-128, 127), 16: (-32768, 32767)}


def _codes(kind, wbits):
    """Every weight value of a format, written out by hand."""
    if kind == "ternary":
        return [-1, 0, 1]
    if kind == "signed":
        return list(range(-(1 << (wbits - 1)), 1 << (wbits - 1)))
    return list(range(1 << wbits))


def _plain_gemm(a, w):
    """A @ W with Python integers."""
    return [[sum(int(x) * int(y) for x, y in zip(row, col)) for col in np.asarray(w).T]
            for row in np.asarray(a)]


def _wrapped(value, bits):
    """``value`` read back from a ``bits``-wide two's-complement register."""
    half = 1 << (bits - 1)
    return (value + half) % (2 * half) - half


# --- configuration -------------------------------------------------------------------------

@pytest.mark.parametrize("values, message", [
    ({"wkind": "signed", "wbits": 1}, "wbits: must be an integer in 2..4 for signed codes, got 1"),
    ({"wkind": "ternary", "wbits": 3}, "wbits: must be 2 for ternary codes, got 3"),
    ({"acc_bits": 3}, "acc_bits: must be an integer in 4..64 (or unset: derived), got 3"),
    # 128 results of 39 bits + last = 4993 bits; 105 * 39 + 1 = 4096 is the widest that fits.
    ({"n": 128, "acc_bits": 40}, "n: 128 columns of 39-bit results make a 4993-bit output beat, "
                                 "over the 4096-bit limit; use n <= 105 or a narrower accumulator"),
])
def test_config_rejects_bad_fields(values, message):
    with pytest.raises(ValueError) as error:
        LutConfig(**values)
    assert str(error.value) == message


def test_widest_output_beat_is_accepted():
    assert LutConfig(n=105, acc_bits=40).n == 105


def test_config_is_frozen_and_hash_follows_fields():
    config = LutConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.k = 2
    assert config_hash("lut", config) == config_hash("lut", LutConfig())
    assert config_hash("lut", config) != config_hash("lut", LutConfig(wkind="signed"))


@pytest.mark.parametrize("params, acc_bits", [
    # 2 * A @ W reaches 2 * 4096 * (-128 * 3) = -3 * 2**20, below -2**21: 23 bits.
    ({}, 23),
    # 2 * 4096 * (-128 * 1) = -2**20 fits 21 bits exactly.
    ({"wbits": 1}, 21),
    # 2 * 4096 * (-32768 * -8) = 2**31 needs 33 bits.
    ({"wkind": "signed", "wbits": 4, "abits": 16}, 33),
    # ternary: 2 * 4096 * 128 = 2**20 needs 22 bits.
    ({"wkind": "ternary"}, 22),
])
def test_default_accumulator_width(params, acc_bits):
    assert LutConfig(**params).acc_bits == acc_bits


# --- golden model --------------------------------------------------------------------------

@pytest.mark.parametrize("kind, wbits", FORMATS)
@pytest.mark.parametrize("abits", [8, 16])
def test_golden_equals_plain_product(kind, wbits, abits):
    """The LUT result (tables, folded indices, bit-planes, correction) equals A @ W, for every
    group size, on ragged depths, with the same vectors as numpy's own product."""
    low, high = ACT_RANGES[abits]
    rng = np.random.default_rng(abits + 10 * wbits + len(kind))
    for k_group in (2, 4, 8):
        config = LutConfig(k=k_group, wbits=wbits, wkind=kind, abits=abits)
        for depth in (1, k_group - 1, k_group, 3 * k_group + 1, 40):
            a = rng.integers(low, high + 1, size=(3, depth))
            w = rng.choice(_codes(kind, wbits), size=(depth, 5))
            got = golden_gemm(config, a, w)
            assert got.tolist() == _plain_gemm(a, w), (k_group, depth)
            assert np.array_equal(got, a @ w)


@pytest.mark.parametrize("kind, wbits", FORMATS)
@pytest.mark.parametrize("abits", [8, 16])
def test_default_accumulator_is_exact_and_tight_at_k_max(kind, wbits, abits):
    """At depth k_max every product of extremes is exact; one accumulator bit less wraps one."""
    low, high = ACT_RANGES[abits]
    codes = _codes(kind, wbits)
    k_max = 12
    config = LutConfig(k=4, wbits=wbits, wkind=kind, abits=abits, k_max=k_max)
    narrow = dataclasses.replace(config, acc_bits=config.acc_bits - 1)
    a = np.array([[low] * k_max, [high] * k_max])
    w = np.array([[codes[0], codes[-1]]] * k_max)
    exact = _plain_gemm(a, w)
    assert golden_gemm(config, a, w).tolist() == exact
    assert golden_gemm(narrow, a, w).tolist() != exact


@pytest.mark.parametrize("kind, wbits", [("unsigned", 4), ("signed", 3), ("ternary", 2)])
def test_golden_wraps_like_a_register(kind, wbits):
    """With an 8-bit accumulator the results keep the low 7 bits of A @ W, two's complement."""
    config = LutConfig(wbits=wbits, wkind=kind, acc_bits=8)
    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, size=(4, 9))
    w = rng.choice(_codes(kind, wbits), size=(9, 6))
    expected = [[_wrapped(v, 7) for v in row] for row in _plain_gemm(a, w)]
    assert golden_gemm(config, a, w).tolist() == expected
    assert expected != _plain_gemm(a, w)                   # the vectors do overflow 7 bits


def test_golden_rejects_out_of_range_operands():
    config = LutConfig(abits=8, wkind="signed", wbits=2)
    with pytest.raises(ValueError, match=r"^a: activations must be in -128..127$"):
        golden_gemm(config, np.array([[128]]), np.array([[1]]))
    with pytest.raises(ValueError, match=r"^w_codes: signed 2-bit codes must be in -2..1"):
        golden_gemm(config, np.array([[1]]), np.array([[2]]))


# --- cycle model ---------------------------------------------------------------------------

@pytest.mark.parametrize("params, gemm, cycles", [
    # one tile, one group, W2: 1 precompute + 2 planes + 2 drain rows
    ({}, (2, 4, 64), 1 + 2 + 2),
    ({}, (1, 1, 1), 5),
    # 1 x 8, W1, K = 2: one tile of 4 groups: 1 + 4 + 1
    ({"m": 1, "n": 8, "k": 2, "wbits": 1}, (1, 8, 8), 6),
    # 1 x 8: a tile every 4 passes (no stall), 2 * 3 tiles: 6 * 4 + 2
    ({"m": 1, "n": 8, "k": 2, "wbits": 1}, (2, 7, 17), 26),
    # 2 x 64, K = 4, W3: 2 * 2 tiles of 4 groups * 3 planes, each followed by a 1-cycle stall
    ({"wbits": 3}, (3, 13, 65), 4 * (12 + 1) + 2),
    # 4 x 16 ternary, K = 8: one tile of 2 groups * 2 planes: 1 + 4 + 4 drain rows
    ({"m": 4, "n": 16, "k": 8, "wkind": "ternary"}, (4, 9, 16), 1 + 4 + 4),
])
def test_cycle_model_closed_form(params, gemm, cycles):
    assert gemm_cycles(LutConfig(**params), *gemm) == cycles


# --- the family ------------------------------------------------------------------------------

def test_jobs_cover_ragged_shapes_and_extremes():
    config = LutConfig(m=2, n=16, k=4, wbits=3, wkind="signed", abits=16)
    jobs = LUT.make_jobs(config, np.random.default_rng(0), "full")
    shapes = [LUT.job_shape(job) for job in jobs]
    assert (1, 1, 1) in shapes
    assert any(m % 2 and k % 4 and n % 16 for m, k, n in shapes)        # ragged in all three
    assert any(k > 16 * 4 for _, k, _ in shapes)                        # deep reduction
    corners = {(int(job.a.flat[0]), int(job.w.flat[0])) for job in jobs
               if len(np.unique(job.a)) == 1 and len(np.unique(job.w)) == 1}
    assert {(-32768, -4), (32767, 3), (-32768, 3), (32767, -4), (0, 0)} <= corners
    for job in jobs:
        assert LUT.golden(config, job)["c"].tolist() == _plain_gemm(job.a, job.w)


# --- command line --------------------------------------------------------------------------

def peforge(*args):
    return subprocess.run([sys.executable, "-m", "peforge.sim.cli", *args],
                          capture_output=True, text=True)


@pytest.mark.parametrize("args, message", [
    (["--k", "1"], "k: must be an integer in 2..8, got 1"),
    (["--wbits", "0"], "wbits: must be an integer in 1..4, got 0"),
    (["--wkind", "ternary", "--wbits", "3"], "wbits: must be 2 for ternary codes, got 3"),
    (["--n", "200"], "n: must be an integer in 1..128, got 200"),
    # INT16, W4, K up to 2**24: |A @ W| <= 2**24 * 2**15 * 15 < 2**43 needs 44 bits; 128 of them
    # plus last are 5633 bits; 93 * 44 + 1 = 4093 fit.
    (["--n", "128", "--abits", "16", "--wbits", "4", "--k-max", str(1 << 24)],
     "n: 128 columns of 44-bit results make a 5633-bit output beat, over the 4096-bit limit; "
     "use n <= 93 or a narrower accumulator"),
])
def test_bad_input_is_one_clear_line(args, message, tmp_path):
    result = peforge("gen", "lut", *args, "--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"peforge: error: {message}"]
    assert result.stdout == ""
    assert not list(tmp_path.iterdir())


def test_verify_rejects_before_building():
    result = peforge("verify", "lut", "--k", "1")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["peforge: error: k: must be an integer in 2..8, got 1"]
    assert result.stdout == ""


def test_gen_writes_verilog_and_manifest(tmp_path):
    result = peforge("gen", "lut", "--m", "1", "--n", "8", "--k", "2", "--wbits", "3",
                     "--wkind", "signed", "--abits", "16", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    config = LutConfig(m=1, n=8, k=2, wbits=3, wkind="signed", abits=16)
    digest = config_hash("lut", config)
    verilog = (tmp_path / f"lut_{digest}.v").read_text()
    manifest = json.loads((tmp_path / f"lut_{digest}.json").read_text())
    assert "module lut(" in verilog
    assert manifest["parameters"] == {"m": 1, "n": 8, "k": 2, "wbits": 3, "wkind": "signed",
                                      "abits": 16, "k_max": 4096, "acc_bits": config.acc_bits}
    ports = {port["name"]: port for port in manifest["ports"]}
    # a[1][2] x 16 bits + idx[8] x (1 + 1) bits + last
    assert ports["i_stream__payload"]["width"] == 1 * 2 * 16 + 8 * 2 + 1
    assert ports["o_stream__payload"]["width"] == 8 * (config.acc_bits - 1) + 1
    assert all(ports[name]["meaning"] for name in ("i_stream__payload", "o_stream__payload"))
    # T * (G*wbits + m - 1) + 2: T = ceil(M/1) * ceil(N/8) tiles, G = ceil(K/2) groups
    assert manifest["latency"] == "ceil(M/1) * ceil(N/8) * (ceil(K/2) * 3 + 0) + 2"
