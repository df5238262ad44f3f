"""SmolLM2-135M-Instruct in numpy against HuggingFace transformers' run of the same GGUF, and its
perplexity under the PE arithmetics (a tiny subset here; the whole text in the slow test)."""

from importlib.resources import files

import numpy as np
import pytest

from peforge.sim.numerics.decoder import load_smollm2, nll_of_logits
from peforge.sim.numerics.encoder import ModelError
from peforge.sim.numerics.perplexity import (DECODER_CLAIMS, DECODER_SPECS, measure_perplexity,
                                             text)
from peforge.sim.numerics.study import judge

DATA = files("peforge.sim.numerics") / "data"


@pytest.fixture(scope="module")
def model():
    return load_smollm2()


@pytest.fixture(scope="module")
def reference():
    """transformers' tokens, per-token NLL and logits at positions 0, n // 2, n - 1 for the
    shipped text (LlamaForCausalLM on the same GGUF, float32; bench/decoder_reference.py)."""
    return tuple(np.load(DATA / f"smollm2_transformers_{name}.npy")
                 for name in ("ids", "nll", "logits"))


def test_tokens_are_transformers(model, reference):
    ids, _nll, _logits = reference
    assert len(ids) == 67 and model.tokens(text()).tolist() == ids.tolist()
    assert model.tokenizer.decode(ids.tolist()) == text()


def test_forward_pass_reproduces_transformers(model, reference):
    """Logits at three positions: cosine >= 0.99999 to transformers' (the issue asks 0.9999;
    measured 0.99999998) and within 0.05 of them; every token's NLL within 1e-3 nats and the
    perplexity within 1e-5 (relative): both are float32 runs of the same dequantised weights."""
    ids, nll, logits = reference
    ours = model.logits(ids)
    for row, position in zip(logits.astype(np.float64), (0, len(ids) // 2, len(ids) - 1)):
        mine = ours[position].astype(np.float64)
        assert mine @ row / np.linalg.norm(mine) / np.linalg.norm(row) >= 0.99999
        assert np.abs(mine - row).max() < 0.05
    mine = nll_of_logits(ours[:-1], ids[1:])
    assert np.abs(mine - nll).max() < 1e-3
    assert np.exp(mine.mean()) == pytest.approx(np.exp(nll.mean()), rel=1e-5)


def test_nll_of_logits_is_minus_log_softmax():
    logits = np.array([[0.0, np.log(3.0)], [5.0, 5.0]], dtype=np.float32)
    assert nll_of_logits(logits, np.array([1, 0])) == pytest.approx([np.log(4 / 3), np.log(2)])


def test_fp32_and_lmul_attention_claim_on_eight_tokens(model):
    """The tiny subset: fp32 is the reference itself; the L-Mul attention claim judged on its
    own measurement (the verdict's criterion: perplexity ratio <= 1.01)."""
    exact = measure_perplexity("fp32", "all", 8, model)
    assert (exact.perplexity_ratio, exact.gemm_rel_error, exact.tokens) == (1.0, 0.0, 8)
    spec = "systolic:pe=lmul+format=e4m3"
    found = {f"{spec}@attention": measure_perplexity(spec, "attention", 8, model)}
    ((claim, holds),) = judge(found, DECODER_CLAIMS)
    m = found[f"{spec}@attention"]
    assert claim.claim == "L-Mul in attention is almost lossless"
    assert holds == (m.perplexity / exact.perplexity <= 1.01)
    assert 0 < m.gemm_rel_error < 0.2 and m.weight_rel_mse is None


def test_bad_input_names_it(model, tmp_path):
    (tmp_path / "x.gguf").write_bytes(b"not a gguf")
    with pytest.raises(ModelError, match=r"^model: cannot read .*x\.gguf: "):
        load_smollm2(str(tmp_path / "x.gguf"))
    with pytest.raises(ValueError, match=r"^tokens: must be an integer in 2\.\.\d+"):
        measure_perplexity("fp32", "all", 1, model)
    with pytest.raises(ValueError, match=r"^gemms: must be one of .*\(SmolLM2-135M-Instruct\)"):
        measure_perplexity("fp32", "embeddings", 8, model)


@pytest.mark.slow
def test_every_decoder_claim_on_the_whole_text(model):
    """Every decoder spec of the report on the whole text: each claim's verdict follows from its
    measurements by its stated criterion, recomputed here."""
    found = {f"{spec}@{gemms}": measure_perplexity(spec, gemms, None, model)
             for spec, gemms in DECODER_SPECS}
    ratio = {key: m.perplexity_ratio for key, m in found.items()}
    verdict = {claim.claim: holds for claim, holds in judge(found, DECODER_CLAIMS)}
    assert verdict["L-Mul in attention is almost lossless"] == (
        ratio["systolic:pe=lmul+format=e4m3@attention"] <= 1.01)
    assert verdict["2:4 sparsity costs little"] == (ratio["sparse-dsp:nm=2:4@weights"] <= 1.10)
    assert verdict["LUT-based low-bit GEMMs keep accuracy"] == (
        ratio["lut:wkind=signed+wbits=4@weights"] <= 1.05)
    assert len(verdict) == len(DECODER_CLAIMS)
