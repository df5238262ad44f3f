"""Sparse DSP chain family: configuration, golden model, cycle model and CLI, without RTL."""

import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from peforge.models.numerics.nm_sparse import NMPattern, compress, decompress, pad_k
from peforge.models.params import config_hash
from peforge.models.sparse_dsp import NM_CHOICES, SparseDspConfig, gemm_cycles, golden_gemm
from peforge.sim.families import family
from peforge.sim.rtl.flow import generate

SPARSE_DSP = family("sparse-dsp")

NM_LIST = "1:2, 2:2, 1:4, 2:4, 4:4, 1:8, 2:8, 4:8, 8:8, 1:16, 2:16, 4:16, 8:16, 16:16"


# --- configuration ---------------------------------------------------------------------------

@pytest.mark.parametrize("values, message", [
    ({"nm": "3:4"}, f"nm: must be one of {NM_LIST}, got '3:4'"),
    ({"nm": "2:3"}, f"nm: must be one of {NM_LIST}, got '2:3'"),
    ({"nm": "0:4"}, f"nm: must be one of {NM_LIST}, got '0:4'"),
    ({"chain": 6, "nm": "2:4"}, "chain: must be a multiple of 4 for the sparse pattern 2:4 "
                                "(a window holds whole blocks of 4 indexed activations), got 6"),
    ({"chain": 8, "nm": "4:16"}, "chain: must be a multiple of 16 for the sparse pattern 4:16 "
                                 "(a window holds whole blocks of 16 indexed activations), got 8"),
    ({"acc_bits": 15}, "acc_bits: must be in 16..48 for INT8 activations and 8-bit weights "
                       "(a product needs 16), got 15"),
    ({"bits": 4, "acc_bits": 11}, "acc_bits: must be in 12..48 for INT8 activations and 4-bit "
                                  "weights (a product needs 12), got 11"),
])
def test_config_rejects_bad_fields(values, message):
    with pytest.raises(ValueError) as error:
        SparseDspConfig(**values)
    assert str(error.value) == message


def test_nm_choices_are_every_divisor_pattern():
    expected = [f"{n}:{m}" for m in (2, 4, 8, 16) for n in range(1, m + 1) if m % n == 0]
    assert list(NM_CHOICES) == expected
    assert ", ".join(NM_CHOICES) == NM_LIST


@pytest.mark.parametrize("chain, nm, mux, blocks, n_run, segments", [
    (16, "2:4", 4, 4, 2, 2),   # the default: 2 columns of 8 slices per beat
    (16, "4:16", 16, 1, 4, 4),  # FlightLLM: 16 DSPs, 4 rows of 4 non-zeros
    (32, "8:16", 16, 2, 8, 2),
    (8, "8:8", 8, 1, 8, 1),    # dense: one dot product of 8
    (2, "1:2", 2, 1, 1, 2),
    (3, "2:2", 1, 3, 1, 1),    # dense, M does not divide the chain: no MUX
    (1, "16:16", 1, 1, 1, 1),
])
def test_derived_geometry(chain, nm, mux, blocks, n_run, segments):
    config = SparseDspConfig(chain=chain, nm=nm)
    assert (config.mux, config.blocks, config.n_run, config.segments) == (
        mux, blocks, n_run, segments)
    assert config.pattern == NMPattern.parse(nm)


def test_config_is_frozen_and_hash_follows_fields():
    config = SparseDspConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.chain = 4
    assert config_hash("sparse-dsp", config) == config_hash("sparse-dsp", SparseDspConfig())
    assert config_hash("sparse-dsp", config) != config_hash("sparse-dsp", SparseDspConfig(nm="1:4"))


def test_one_circuit_runs_every_n_of_an_m():
    """The pattern's N is a beat field, so the Verilog depends on chain and M, not on N."""
    def verilog(**params):
        return generate(SPARSE_DSP, SparseDspConfig(**params))[0]

    assert verilog(chain=8, nm="1:4") == verilog(chain=8, nm="2:4") == verilog(chain=8, nm="4:4")
    assert verilog(chain=8, nm="2:4") != verilog(chain=8, nm="2:8")
    assert verilog(chain=3, nm="2:2") == verilog(chain=3, nm="16:16")


# --- golden model ----------------------------------------------------------------------------

def _wrap_int(x: int, bits: int) -> int:
    x %= 1 << bits
    return x - (1 << bits) if x >= 1 << (bits - 1) else x


def _dense_product(a, w):
    """A @ W with Python integers."""
    return [[sum(int(a[r][k]) * int(w[k][c]) for k in range(len(w))) for c in range(len(w[0]))]
            for r in range(len(a))]


def _chain_order_loops(a, values, indices, pattern, chain, acc_bits, overflow):
    """The documented hardware order with Python integers: per window, a column's sum starts at
    0 and adds slot t of every block b for t = 0.., b = 0..; window sums then accumulate."""
    g = pattern.m if chain % pattern.m == 0 else 1      # activations per MUX block
    n = pattern.n * g // pattern.m                       # kept weights per block
    blocks = chain // g
    low, high = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1

    def fit(x):
        return _wrap_int(x, acc_bits) if overflow == "wrap" else min(max(x, low), high)

    k = len(a[0])
    out = []
    for row in a:
        out_row = []
        for c in range(len(values[0])):
            acc = None
            for w in range(math.ceil(k / chain)):
                window_sum = 0
                for t in range(n):
                    for b in range(blocks):
                        block = w * blocks + b
                        slot = block * n + t
                        if slot < len(values):
                            pos = block * g + int(indices[slot][c]) % g
                            x = int(row[pos]) if pos < k else 0
                            window_sum = fit(window_sum + x * int(values[slot][c]))
                acc = window_sum if acc is None else fit(acc + window_sum)
            out_row.append(acc)
        out.append(out_row)
    return out


def _job(rng, config, r, k, c, overflowing=False):
    """Random INT8 activations and compressed weights; with ``overflowing``, A[0, :] and
    W[:, 0] are at their maxima, so C[0, 0] exceeds 16 bits."""
    a = rng.integers(-128, 128, size=(r, k))
    low, high = -(1 << (config.bits - 1)), (1 << (config.bits - 1)) - 1
    w = rng.integers(low, high, size=(k, c), endpoint=True)
    if overflowing:
        a[0], w[:, 0] = 127, high
    values, indices = compress(pad_k(w, config.pattern), config.pattern)
    return a, values, indices


def _fitting_chains():
    """Every pattern on chains of M, 2M and 3 slices, where the pattern fits."""
    for text in NM_CHOICES:
        pattern = NMPattern.parse(text)
        for chain in sorted({pattern.m, 2 * pattern.m, 3}):
            if chain <= 32 and (pattern.dense or chain % pattern.m == 0):
                yield text, chain


@pytest.mark.parametrize("nm, chain", list(_fitting_chains()))
def test_golden_equals_product_of_decompressed_weights(nm, chain, rng):
    config = SparseDspConfig(chain=chain, nm=nm)
    for r, k, c in [(1, 1, 1), (2, chain, 3), (3, 2 * chain + 5, 2 * config.segments + 1)]:
        a, values, indices = _job(rng, config, r, k, c)
        w = decompress(values, indices, config.pattern)[:k]
        assert golden_gemm(config, a, values, indices).tolist() == _dense_product(a, w)


@pytest.mark.parametrize("nm, chain", [("1:2", 4), ("2:4", 8), ("2:8", 16), ("4:16", 32),
                                       ("8:8", 8), ("2:2", 3)])
@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
def test_golden_overflow_follows_chain_order(nm, chain, overflow, rng):
    """Narrow accumulators overflow on these jobs; wrap equals the exact product modulo
    2**acc_bits, saturate the clamped sums in the documented order."""
    config = SparseDspConfig(chain=chain, nm=nm, acc_bits=16, overflow=overflow)
    a, values, indices = _job(rng, config, 3, 3 * chain + 1, 2 * config.segments + 1,
                              overflowing=True)
    got = golden_gemm(config, a, values, indices).tolist()
    assert got == _chain_order_loops(a, values, indices, config.pattern, chain, 16, overflow)
    exact = _dense_product(a, decompress(values, indices, config.pattern)[:a.shape[1]])
    if overflow == "wrap":
        assert got == [[_wrap_int(x, 16) for x in row] for row in exact]
    else:
        assert got[0][0] == 32767 != exact[0][0]
        assert all(-32768 <= x <= 32767 for row in got for x in row)


def test_saturate_order_by_hand():
    """Products 16129, 16129, 16129, -16256 (exact sum 32131) in a 16-bit accumulator. A chain of 4
    clamps at the third slice: min(48387, 32767) - 16256 = 16511. A chain of 2 sums the two
    windows 32258 and -127 without clamping: 32131."""
    a = np.array([[127, 127, 127, 127]])
    w = np.array([[127], [127], [127], [-128]])
    values, indices = compress(w, NMPattern(2, 2))
    for chain, expected in ((4, 16511), (2, 32131)):
        config = SparseDspConfig(chain=chain, nm="2:2", acc_bits=16, overflow="saturate")
        assert golden_gemm(config, a, values, indices).tolist() == [[expected]]


def test_golden_rejects_bad_operands():
    config = SparseDspConfig(chain=4, nm="2:4", bits=4)
    values, indices = np.array([[7], [-8]]), np.array([[0], [3]])
    assert golden_gemm(config, np.array([[1, 2, 3, 4]]), values, indices).tolist() == [[7 - 32]]
    with pytest.raises(ValueError, match=r"^a: must be in -128..127 \(8-bit\), got 1..128$"):
        golden_gemm(config, np.array([[1, 2, 3, 128]]), values, indices)
    with pytest.raises(ValueError, match=r"^values: must be in -8..7 \(4-bit\), got -8..8$"):
        golden_gemm(config, np.array([[1, 2, 3, 4]]), np.array([[8], [-8]]), indices)
    with pytest.raises(ValueError, match="indices: must be in 0..3 for m=4, got 4"):
        golden_gemm(config, np.array([[1, 2, 3, 4]]), values, np.array([[0], [4]]))
    with pytest.raises(ValueError, match="values: K=8 needs 4 rows"):
        golden_gemm(config, np.ones((1, 5), dtype=int), values, indices)


# --- cycle model -----------------------------------------------------------------------------

@pytest.mark.parametrize("params, shape, cycles", [
    # R * ceil(C / S) * ceil(K / L) beats + areg + mreg + L * preg + 1
    ({}, (1, 16, 2), 1 + 1 + 1 + 16 + 1),                      # 2:4 on 16: S = 2
    ({}, (3, 33, 5), 3 * 3 * 3 + 19),
    ({"nm": "4:4"}, (3, 33, 5), 3 * 5 * 3 + 19),               # dense: one column per beat
    ({"chain": 32, "nm": "4:16", "areg": 2}, (2, 100, 9), 2 * 3 * 4 + 2 + 1 + 32 + 1),
    ({"chain": 3, "nm": "2:2", "areg": 0, "mreg": 0, "preg": 0}, (2, 7, 3), 2 * 3 * 3 + 1),
    ({"chain": 1, "nm": "2:2"}, (1, 1, 1), 1 + 4),
])
def test_cycle_model_closed_form(params, shape, cycles):
    assert gemm_cycles(SparseDspConfig(**params), *shape) == cycles


# --- command line ----------------------------------------------------------------------------

def peforge(*args, cwd):
    return subprocess.run([sys.executable, "-m", "peforge.sim.cli", *args], cwd=cwd,
                          capture_output=True, text=True)


def test_gen_writes_verilog_and_manifest(tmp_path):
    result = peforge("gen", "sparse-dsp", "--chain", "16", "--nm", "2:4", "--bits", "8",
                     "--out", str(tmp_path / "rtl"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    digest = config_hash("sparse-dsp", SparseDspConfig(chain=16, nm="2:4", bits=8))
    manifest = json.loads((tmp_path / "rtl" / f"sparse_dsp_{digest}.json").read_text())
    assert "module sparse_dsp(" in (tmp_path / "rtl" / f"sparse_dsp_{digest}.v").read_text()
    assert manifest["parameters"] == {"chain": 16, "nm": "2:4", "bits": 8, "acc_bits": 48,
                                      "overflow": "wrap", "areg": 1, "mreg": 1, "preg": 1}
    ports = {port["name"]: port["width"] for port in manifest["ports"]}
    # a[16] x 8 + w[16] x 8 + idx[16] x 2 + n_log2 (0..2: 2 bits) + last; data[4] x 48
    assert ports["i_stream__payload"] == 16 * 8 + 16 * 8 + 16 * 2 + 2 + 1
    assert ports["o_stream__payload"] == 4 * 48


@pytest.mark.parametrize("args, message", [
    (["--nm", "3:4"], f"nm: must be one of {NM_LIST}, got '3:4'"),
    (["--nm", "2:3"], f"nm: must be one of {NM_LIST}, got '2:3'"),
    (["--chain", "0"], "chain: must be an integer in 1..32, got 0"),
    (["--chain", "6", "--nm", "2:4"], "chain: must be a multiple of 4 for the sparse pattern 2:4"),
    (["--bits", "16"], "bits: must be an integer in 2..8, got 16"),
])
@pytest.mark.parametrize("command", ["gen", "verify"])
def test_bad_input_is_one_clear_line(command, args, message, tmp_path):
    out = ["--out", str(tmp_path / "rtl")] if command == "gen" else []
    result = peforge(command, "sparse-dsp", *args, *out, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"peforge: error: {message}")
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
    assert not (tmp_path / "rtl").exists()
