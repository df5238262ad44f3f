"""Decoder-only transformers from HuggingFace ``config.json`` files: their shapes
(:class:`TransformerModel`), the GEMMs of their blocks and the whole prefill or decode workload
(blocks, final norm and LM head, with the vector work in between).

Field names of LLaMA, Mistral, Qwen2/3, BitNet, Phi/Phi-3, GPT-2 and OPT configurations are read
(:func:`load_hf_config`). The named models of :data:`MODELS` are such files shipped with peforge
(``peforge/sim/perf/workloads/models/*.json``, the fields of each release's configuration that
shape its compute).
"""

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from peforge.sim.perf.workloads.gemm import Gemm, VectorOp, Workload, positive_int

__all__ = ["TransformerModel", "MODELS", "load_hf_config", "transformer_gemms",
           "transformer_workload", "hf_workload", "MODEL_TYPES"]

#: The ``model_type`` values read, and how each family builds its blocks: a gated FFN
#: (gate/up/down, else fc1/fc2), its norm, rotary or learned positions, and whether attention
#: and FFN run in parallel off one norm (Phi-1/2).
MODEL_TYPES = {
    "llama": {"gated_ffn": True, "norm": "rms", "rotary": True},
    "mistral": {"gated_ffn": True, "norm": "rms", "rotary": True},
    "qwen2": {"gated_ffn": True, "norm": "rms", "rotary": True},
    "qwen3": {"gated_ffn": True, "norm": "rms", "rotary": True},
    "bitnet": {"gated_ffn": True, "norm": "rms", "rotary": True, "w_bits": 2},
    "phi3": {"gated_ffn": True, "norm": "rms", "rotary": True},
    "phi": {"gated_ffn": False, "norm": "layer", "rotary": True, "parallel": True},
    "gpt2": {"gated_ffn": False, "norm": "layer", "rotary": False},
    "opt": {"gated_ffn": False, "norm": "layer", "rotary": False},
}

#: Per field of :class:`TransformerModel`: the config keys that hold it, first match wins.
_FIELDS = {
    "hidden": ("hidden_size", "n_embd"),
    "heads": ("num_attention_heads", "n_head"),
    "layers": ("num_hidden_layers", "n_layer"),
    "ffn": ("intermediate_size", "ffn_dim", "n_inner"),
    "vocab": ("vocab_size",),
}


_MEANING = {"hidden": "hidden size", "heads": "number of attention heads",
            "layers": "number of layers", "ffn": "FFN width", "vocab": "vocabulary size"}


@dataclass(frozen=True)
class TransformerModel:
    """Shapes of a decoder-only transformer.

    ``gated_ffn``: LLaMA-style gate/up/down projections (else OPT-style fc1/fc2);
    ``w_bits``: weight width of the projections (2 for BitNet's ternary weights);
    ``head_dim``: 0 for ``hidden // heads``; ``vocab``: the LM head's outputs (0: no LM head);
    ``norm``: ``rms`` or ``layer``; ``rotary``: rotary position embedding on queries and keys
    (else learned positions added to the embeddings); ``parallel``: attention and FFN read the
    same normed input (one norm and one residual add per block).
    """

    name: str
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    layers: int
    gated_ffn: bool = True
    w_bits: int = 8
    head_dim: int = 0
    vocab: int = 0
    norm: str = "rms"
    rotary: bool = True
    parallel: bool = False

    def __post_init__(self):
        for name in ("hidden", "heads", "kv_heads", "ffn", "layers", "w_bits"):
            if not positive_int(getattr(self, name)):
                raise ValueError(f"{name}: must be a positive integer, got "
                                 f"{getattr(self, name)!r} (model {self.name!r})")
        if self.heads % self.kv_heads:
            raise ValueError(f"kv_heads: {self.kv_heads} must divide heads {self.heads} "
                             f"(model {self.name!r})")
        if self.head_dim == 0 and self.hidden % self.heads:
            raise ValueError(f"heads: {self.heads} must divide hidden {self.hidden} when "
                             f"head_dim is not given (model {self.name!r})")
        if self.norm not in ("rms", "layer"):
            raise ValueError(f"norm: must be rms or layer, got {self.norm!r}")

    @property
    def dim(self) -> int:
        """Width of one attention head."""
        return self.head_dim or self.hidden // self.heads


def _field(config: dict, source: str, name: str, keys: tuple[str, ...]):
    for key in keys:
        if config.get(key) is not None:
            value = config[key]
            if not positive_int(value):
                raise ValueError(f"{source}: {key}: must be a positive integer, got {value!r}")
            return value
    return None


def load_hf_config(source, *, name: str | None = None) -> TransformerModel:
    """A :class:`TransformerModel` from a HuggingFace ``config.json`` (a path or a parsed
    mapping). Its ``model_type`` must be one of :data:`MODEL_TYPES`; a missing shape field is
    an error naming it (GPT-2's ``n_inner: null`` is its documented ``4 * n_embd``). BitNet
    (``model_type: bitnet`` or ``quantization_config.quant_method: bitnet``) has 2-bit weights."""
    if isinstance(source, dict):
        config, label = source, name or "config"
    else:
        label = str(source)
        try:
            text = Path(source).read_text()
        except OSError as error:
            raise ValueError(f"hf-config: cannot read {source}: {error.strerror or error}"
                             ) from None
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"hf-config: {source}:{error.lineno}:{error.colno}: not JSON: "
                             f"{error.msg}") from None
        if not isinstance(config, dict):
            raise ValueError(f"hf-config: {source} must hold a JSON object")
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or model_type not in MODEL_TYPES:
        raise ValueError(f"{label}: model_type: must be one of {', '.join(MODEL_TYPES)} (a "
                         f"decoder-only transformer), got {model_type!r}")
    if config.get("num_local_experts") or config.get("num_experts"):
        raise ValueError(f"{label}: num_local_experts: mixture-of-experts models are not "
                         f"supported")
    values = {field: _field(config, label, field, keys) for field, keys in _FIELDS.items()}
    if values["ffn"] is None and model_type == "gpt2" and values["hidden"] is not None:
        values["ffn"] = 4 * values["hidden"]
    for field, keys in _FIELDS.items():
        if values[field] is None:
            raise ValueError(f"{label}: {keys[0]}: missing (the model's {_MEANING[field]})")
    kv_heads = _field(config, label, "kv_heads", ("num_key_value_heads",)) or values["heads"]
    head_dim = _field(config, label, "head_dim", ("head_dim",)) or 0
    family = dict(MODEL_TYPES[model_type])
    quant = config.get("quantization_config") or {}
    if isinstance(quant, dict) and quant.get("quant_method") == "bitnet":
        family["w_bits"] = 2
    return TransformerModel(name or (Path(label).stem if not isinstance(source, dict)
                                     else label),
                            values["hidden"], values["heads"], kv_heads, values["ffn"],
                            values["layers"], vocab=values["vocab"], head_dim=head_dim,
                            **family)


_SHIPPED = Path(__file__).parent / "models"

#: The shipped models (HuggingFace configs in ``models/``), by file name.
MODELS = {path.stem: load_hf_config(path) for path in sorted(_SHIPPED.glob("*.json"))}


def _check_phase(phase: str, seq: int) -> int:
    if phase not in ("prefill", "decode"):
        raise ValueError(f"phase: must be one of prefill, decode, got {phase!r}")
    if not positive_int(seq):
        raise ValueError(f"seq: must be a positive integer, got {seq!r}")
    return seq if phase == "prefill" else 1


def transformer_gemms(model: TransformerModel, phase: str, seq: int, *, a_bits: int = 8,
                      out_bits: int = 32) -> list[Gemm]:
    """The GEMMs of all transformer blocks of ``model`` (embedding and LM head left out).

    ``prefill``: ``seq`` tokens at once; attention is computed in full (no causal skipping).
    ``decode``: one new token attending to a KV cache of ``seq`` tokens. Every GEMM's ``count``
    includes the number of layers; attention GEMMs are batched over the query heads (each
    query head reads its group's keys and values: grouped-query attention changes the K and V
    projections' width, ``kv_heads * head_dim``).
    """
    tokens = _check_phase(phase, seq)
    h, d, layers = model.hidden, model.dim, model.layers
    q, kv = model.heads * d, model.kv_heads * d
    proj = {"a_bits": a_bits, "w_bits": model.w_bits, "out_bits": out_bits}
    act = {"a_bits": a_bits, "w_bits": a_bits, "out_bits": out_bits, "w_is_weight": False}
    gemms = [
        Gemm("q_proj", tokens, h, q, layers, **proj),
        Gemm("k_proj", tokens, h, kv, layers, **proj),
        Gemm("v_proj", tokens, h, kv, layers, **proj),
        Gemm("attn_score", tokens, d, seq, layers * model.heads, **act),
        Gemm("attn_value", tokens, seq, d, layers * model.heads, **act),
        Gemm("o_proj", tokens, q, h, layers, **proj),
    ]
    if model.gated_ffn:
        gemms += [Gemm("ffn_gate", tokens, h, model.ffn, layers, **proj),
                  Gemm("ffn_up", tokens, h, model.ffn, layers, **proj),
                  Gemm("ffn_down", tokens, model.ffn, h, layers, **proj)]
    else:
        gemms += [Gemm("ffn_fc1", tokens, h, model.ffn, layers, **proj),
                  Gemm("ffn_fc2", tokens, model.ffn, h, layers, **proj)]
    return gemms


def _bytes(elements: int, bits: int) -> int:
    return (elements * bits + 7) // 8


def _vector_ops(model: TransformerModel, tokens: int, seq: int, a_bits: int,
                out_bits: int) -> list[VectorOp]:
    """The vector work of the blocks and the final norm: norms and residual adds on
    ``tokens x hidden`` activations, rotary embedding of queries and keys, the softmax over
    every head's ``tokens x seq`` scores and the FFN's activation (and gating product). What
    a GEMM wrote is read at ``out_bits``, what feeds a GEMM is written at ``a_bits``."""
    layers, norm = model.layers, f"{model.norm}_norm"
    h = tokens * model.hidden
    qk = tokens * (model.heads + model.kv_heads) * model.dim
    ffn, scores = tokens * model.ffn, model.heads * tokens * seq

    def op(name, kind, elements, read_bits, count, op_type, inputs=1):
        return VectorOp(name, kind, elements, inputs * _bytes(elements, read_bits),
                        _bytes(elements, a_bits), count, op_type)

    ops = [] if model.rotary else [op("position_add", "elementwise", h, a_bits, 1, "add", 2)]
    ops.append(op("attn_norm", "norm", h, a_bits, layers, norm))
    if not model.parallel:
        ops.append(op("ffn_norm", "norm", h, a_bits, layers, norm))
    if model.rotary:
        ops.append(op("rotary", "elementwise", qk, out_bits, layers, "rotary"))
    ops.append(op("softmax", "softmax", scores, out_bits, layers, "softmax"))
    ops.append(op("ffn_act", "activation", ffn, out_bits, layers, "activation"))
    if model.gated_ffn:
        ops.append(op("ffn_gating", "elementwise", ffn, a_bits, layers, "mul", 2))
    blocks = 1 if model.parallel else 2
    ops.append(op("residual_add", "elementwise", h, out_bits, blocks * layers, "add", 2))
    ops.append(op("final_norm", "norm", h, a_bits, 1, norm))
    return ops


def transformer_workload(model: TransformerModel, phase: str, seq: int, *, a_bits: int = 8,
                         out_bits: int = 32) -> Workload:
    """The whole decoder's work for one prefill of ``seq`` tokens (logits of every token, as
    the model's forward pass computes them) or one decode step against a KV cache of ``seq``:
    the blocks' GEMMs (:func:`transformer_gemms`), the LM head (``tokens x hidden x vocab``, at
    ``a_bits`` weights: BitNet keeps its head in full precision; none when ``vocab`` is 0) and
    the vector work (norms, rotary embedding, softmax, activations, residual adds)."""
    tokens = _check_phase(phase, seq)
    gemms = transformer_gemms(model, phase, seq, a_bits=a_bits, out_bits=out_bits)
    if model.vocab:
        gemms.append(Gemm("lm_head", tokens, model.hidden, model.vocab, 1, a_bits, a_bits,
                          out_bits))
    return Workload(f"{model.name} {phase} {seq}", tuple(gemms),
                    tuple(_vector_ops(model, tokens, seq, a_bits, out_bits)))


def hf_workload(source, phase: str, seq: int) -> Workload:
    """:func:`transformer_workload` of a shipped model's name (:data:`MODELS`) or of a
    ``config.json`` path."""
    model = MODELS.get(str(source)) or load_hf_config(source)
    return transformer_workload(model, phase, seq)


@lru_cache(maxsize=256)
def model_gemms(name: str, phase: str, seq: int) -> tuple[Gemm, ...]:
    """A named model's block GEMMs, built once per phase and length (sweeps ask for them per
    point)."""
    return tuple(transformer_gemms(MODELS[name], phase, seq))
