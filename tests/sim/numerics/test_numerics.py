"""Whole-model numerics: the numpy MiniLM against sentence-transformers, the arithmetics against
hand-applied quantisers and the goldens, the CLI's errors, and one claim on a tiny subset."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from peforge.models.bitserial import BitserialConfig, golden_gemm as bitserial_golden
from peforge.models.numerics.bitmod_quant import quantize
from peforge.models.numerics.floatfmt import decode, encode, float_format
from peforge.models.numerics.floatmac import FloatMac
from peforge.models.systolic import SystolicConfig, golden_gemm as systolic_golden
from peforge.sim.numerics.arith import ArithError, parse_arith
from peforge.sim.numerics.encoder import load_minilm
from peforge.sim.numerics.study import judge, measure, sentences

REFERENCE = Path(__file__).resolve().parents[3] / "sim" / "numerics" / "data" / "minilm_reference.npy"


@pytest.fixture(scope="module")
def model():
    return load_minilm()


def test_numpy_forward_reproduces_sentence_transformers(model):
    """bench/numerics_reference.py recorded the package's own run (torch, sentence-transformers):
    the numpy forward pass gives the same embeddings within float32 rounding."""
    reference = np.load(REFERENCE)
    texts = sentences(6)
    ours = np.stack([model.embed(text) for text in texts])
    assert ((ours * reference[:6]).sum(axis=1) >= 0.9999).all()
    assert np.abs(ours - reference[:6]).max() < 1e-4


@pytest.mark.slow
def test_numpy_forward_reproduces_every_sentence(model):
    reference = np.load(REFERENCE)
    ours = np.stack([model.embed(text) for text in sentences()])
    assert ((ours * reference).sum(axis=1) >= 0.9999).all()


def _hand_int8(x, axis=None):
    x = np.asarray(x, np.float64)                 # scales are float64 (sim/numerics/arith.py)
    peak = np.abs(x).max(axis=axis, keepdims=axis is not None)
    return np.clip(np.rint(x / (peak / 127)), -128, 127), peak / 127


def test_systolic_int8_is_quantise_then_integer_matmul():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 40)).astype(np.float32)
    w = rng.standard_normal((40, 6)).astype(np.float32)
    (a, sa), (b, sb) = _hand_int8(x), _hand_int8(w, axis=0)
    expected = (a.astype(np.int64) @ b.astype(np.int64)) * sa * sb
    got = parse_arith("systolic:bits=8").gemm(x, w, weight=True)
    assert np.array_equal(got, expected.astype(np.float32))


def test_systolic_float_pe_uses_its_mac():
    """bf16 L-Mul: the operands rounded to bf16 (no scale), then the float MAC PE's golden."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((4, 30)).astype(np.float32), rng.standard_normal((30, 3))
    bf16 = float_format("bf16")
    golden = FloatMac("bf16", exact=False).gemm(encode(bf16, x).astype(np.int64),
                                                  encode(bf16, w).astype(np.int64))
    expected = golden.astype(np.uint32).view(np.float32)
    got = parse_arith("systolic:pe=lmul+format=bf16").gemm(x, w.astype(np.float32), weight=True)
    assert np.array_equal(got, expected)


def test_split_accumulator_pe_sums_even_and_odd_steps_apart():
    """``add_stages=1``: the PE's golden (its own order, checked against the RTL and a float64
    reference in tests/hw/test_pe_stages.py), not the k order."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((16, 255)).astype(np.float32), rng.standard_normal((255, 16))
    fp16 = float_format("fp16")
    a, b = encode(fp16, x).astype(np.int64), encode(fp16, w).astype(np.int64)
    config = SystolicConfig(pe="fp", format="fp16", add_stages=1)
    expected = systolic_golden(config, a, b).astype(np.uint32).view(np.float32)
    split = parse_arith("systolic:pe=fp+format=fp16+add_stages=1").gemm(
        x, w.astype(np.float32), weight=True)
    single = parse_arith("systolic:pe=fp+format=fp16").gemm(x, w.astype(np.float32), weight=True)
    assert np.array_equal(split, expected) and not np.array_equal(split, single)


def test_fp8_operands_are_scaled_so_products_stay_in_range():
    """e4m3: max|x| becomes sqrt(224) (15 after rounding, at most 16); a product of two maxima is
    then at most 256 < 448, not NaN (e4m3 has no infinity)."""
    x = np.array([[2.0, -1.0]], np.float32)
    w = np.array([[3.0], [0.5]], np.float32)
    got = parse_arith("systolic:pe=fp+format=e4m3").gemm(x, w, weight=True)
    assert got[0, 0] == pytest.approx(2 * 3 - 0.5, rel=0.07)     # e4m3 has a 3-bit mantissa


def test_bitserial_is_bitmod_then_the_family_golden():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 256)).astype(np.float32)
    w = rng.standard_normal((256, 4)).astype(np.float32)
    a, sa = _hand_int8(x)
    config = BitserialConfig(wtypes="fp4", group=128)
    q = quantize(w, ["fp4"], 128)
    raw = bitserial_golden(config, a.astype(np.int64), q.codes, q.type_index, q.selector,
                           q.scale_code)["c_scaled"]
    expected = (raw * q.channel_scale / 255 * sa).astype(np.float32)
    got = parse_arith("bitserial:wtypes=fp4").gemm(x, w, weight=True)
    assert np.array_equal(got, expected)


def test_ternary_lut_weights_are_absmean():
    w = np.array([[0.9, -0.1], [-0.4, 0.2], [0.05, -0.3]], np.float32)
    arith = parse_arith("lut:wkind=ternary+wbits=2")
    scale = np.abs(w).mean(axis=0)                                 # 0.45, 0.2
    codes = np.array([[1, 0], [-1, 1], [0, -1]])                    # rint(w / scale), clipped
    assert np.allclose(arith._dequantized(w), codes * scale)


def test_two_four_pruning_keeps_the_two_largest_of_every_four():
    w = np.array([[4.0], [-1.0], [0.5], [-3.0], [1.0], [2.0], [-2.5], [0.1]], np.float32)
    kept = parse_arith("sparse-dsp:nm=2:4")._dequantized(w)[:, 0] != 0
    assert kept.tolist() == [True, False, False, True, False, True, True, False]


def test_bits_per_weight():
    assert parse_arith("bitserial:wtypes=fp4+group=128").bits_per_weight == 4 + 8 / 128
    assert parse_arith("sparse-dsp:nm=2:4").bits_per_weight == (8 + 2) * 2 / 4
    assert parse_arith("systolic:pe=lmul+format=e4m3").bits_per_weight == 8


@pytest.mark.parametrize("spec,message", [
    ("nosuch", "family must be fp32 or one of"),
    ("lmul-dot", "computes no whole GEMM"),
    ("systolic:pe=lmul+format=e9", "format: must be one of"),
    ("systolic:rowz=2", "rowz: not a parameter of systolic"),
    ("systolic:bits=x", "bits: must be an integer"),
    ("systolic:signed=false", "signed: must be true"),
    ("sparse-dsp:overflow=saturate", "overflow: must be wrap"),
    ("lut:wbits", "expected key=value"),
])
def test_bad_specs_name_the_problem(spec, message):
    with pytest.raises(ArithError, match=message):
        parse_arith(spec)


def _peforge(*args):
    return subprocess.run([sys.executable, "-m", "peforge.sim.cli", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("args,message", [
    (["--arith", "lut", "--gemms", "all"], "lut quantises weights"),
    (["--arith", "fp32", "--sentences", "2"], "sentences: must be an integer in 3..24"),
    (["--arith", "fp32", "--gemms", "bogus"], "gemms: must be one of"),
    (["--arith", "fp32", "--arith", "bad"], "family must be fp32"),
    (["--arith", "fp32", "--model", "/nonexistent"], "model: cannot read /nonexistent"),
])
def test_cli_errors_are_one_line(args, message):
    result = _peforge("numerics", *args)
    assert result.returncode == 2
    assert result.stdout == ""                   # nothing printed before the error
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_fp32_measures_itself_exactly(model):
    m = measure("fp32", "all", 3, model)
    assert (m.spearman, m.gemm_rel_error) == (1.0, 0.0)
    assert m.cosine_worst >= 1 - 2 ** -23            # unit vectors, float32 dot product


def test_lmul_attention_claim_on_three_sentences(model):
    """The report's first claim on a tiny subset: L-Mul e4m3 in attention only; judge reads the
    claims whose measurements are there."""
    spec = "systolic:pe=lmul+format=e4m3"
    found = {f"{spec}@attention": measure(spec, "attention", 3, model)}
    ((claim, holds),) = judge(found)
    assert claim.claim == "L-Mul in attention is almost lossless"
    assert holds and found[f"{spec}@attention"].cosine_mean >= 0.99


def test_report_on_three_sentences_writes_table_claims_and_plot(tmp_path):
    """write_report on a two-spec subset: one row per spec, each claim whose measurements are
    there judged by its criterion on the table's own numbers, and a PNG plot."""
    import pandas as pd

    from peforge.sim.numerics.study import write_report

    specs = (("systolic:pe=lmul+format=e4m3", "attention"), ("sparse-dsp:nm=2:4", "weights"))
    csv, claims, plot = write_report(tmp_path, count=3, specs=specs, decoder_specs=())
    table = pd.read_csv(csv)
    assert list(table["arith"]) == [spec for spec, _ in specs] and set(table["sentences"]) == {3}
    lmul, sparse = table["cosine_mean"]
    lines = claims.read_text().splitlines()
    assert lines[0] == "all-MiniLM-L6-v2, 3 sentences, against float32"
    verdict = {line.split(": ", 2)[2]: line.split(":")[0] for line in lines[1::2]}
    assert verdict == {"L-Mul in attention is almost lossless":
                       "holds" if lmul >= 0.99 and table["spearman"][0] >= 0.99 else "fails",
                       "2:4 sparsity costs little": "holds" if sparse >= 0.99 else "fails"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
