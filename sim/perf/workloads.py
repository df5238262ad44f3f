"""Workloads as lists of GEMMs: plain and batched GEMMs, conv2d lowered by im2col, transformer
blocks of named LLMs (prefill and decode), and SCALE-Sim topology files.

A :class:`Gemm` is ``C[m x n] = A[m x k] @ W[k x n]``, repeated ``count`` times (a batched GEMM:
attention heads, or identical transformer layers).
"""

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["Gemm", "conv2d_gemm", "TransformerModel", "MODELS", "transformer_gemms",
           "load_scalesim_topology", "workload_gemms"]


@dataclass(frozen=True)
class Gemm:
    """One GEMM of a workload.

    Attributes
    ----------
    name : str
    m, k, n : int
        ``A`` is ``m x k``, ``W`` is ``k x n``.
    count : int
        How many times the same GEMM runs (batch, heads, layers).
    a_bits, w_bits, out_bits : int
        Widths of ``A``, ``W`` and ``C`` elements as they move to and from DRAM.
    """

    name: str
    m: int
    k: int
    n: int
    count: int = 1
    a_bits: int = 8
    w_bits: int = 8
    out_bits: int = 32

    def __post_init__(self):
        for field in ("m", "k", "n", "count", "a_bits", "w_bits", "out_bits"):
            if not isinstance(getattr(self, field), int) or getattr(self, field) < 1:
                raise ValueError(f"{field}: must be a positive integer, got "
                                 f"{getattr(self, field)!r} (GEMM {self.name!r})")

    @property
    def shape(self) -> tuple[int, int, int, int, int, int]:
        """``(m, k, n, a_bits, w_bits, out_bits)``: what the GEMM's simulation depends on (not
        its name or count)."""
        return self.m, self.k, self.n, self.a_bits, self.w_bits, self.out_bits

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n * self.count


def conv2d_gemm(name, *, height, width, channels, filters, kernel_h, kernel_w, stride=1,
                padding=0, **widths) -> Gemm:
    """A conv2d lowered to a GEMM by im2col: ``m`` output pixels, ``k = kernel_h * kernel_w *
    channels``, ``n`` filters."""
    out_h = (height + 2 * padding - kernel_h) // stride + 1
    out_w = (width + 2 * padding - kernel_w) // stride + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"kernel: {kernel_h}x{kernel_w} does not fit a {height}x{width} input "
                         f"(conv {name!r})")
    return Gemm(name, out_h * out_w, kernel_h * kernel_w * channels, filters, **widths)


@dataclass(frozen=True)
class TransformerModel:
    """Shapes of a decoder-only transformer.

    ``gated_ffn``: LLaMA-style gate/up/down projections (else OPT-style fc1/fc2);
    ``w_bits``: weight width of the projections (2 for BitNet's ternary weights).
    """

    name: str
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    layers: int
    gated_ffn: bool = True
    w_bits: int = 8

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


#: Published shapes (model configuration files of each release).
MODELS = {model.name: model for model in (
    TransformerModel("llama2-7b", hidden=4096, heads=32, kv_heads=32, ffn=11008, layers=32),
    TransformerModel("llama3-8b", hidden=4096, heads=32, kv_heads=8, ffn=14336, layers=32),
    TransformerModel("bitnet-b1.58-3b", hidden=3200, heads=32, kv_heads=32, ffn=8640, layers=26,
                     w_bits=2),
    TransformerModel("opt-6.7b", hidden=4096, heads=32, kv_heads=32, ffn=16384, layers=32,
                     gated_ffn=False),
)}


def transformer_gemms(model: TransformerModel, phase: str, seq: int, *, a_bits: int = 8,
                      out_bits: int = 32) -> list[Gemm]:
    """The GEMMs of all transformer blocks of ``model`` (embedding and LM head left out).

    ``prefill``: ``seq`` tokens at once; attention is computed in full (no causal skipping).
    ``decode``: one new token attending to a KV cache of ``seq`` tokens. Every GEMM's ``count``
    includes the number of layers; attention GEMMs are batched over the query heads.
    """
    if phase not in ("prefill", "decode"):
        raise ValueError(f"phase: must be one of prefill, decode, got {phase!r}")
    if seq < 1:
        raise ValueError(f"seq: must be a positive integer, got {seq}")
    tokens = seq if phase == "prefill" else 1
    h, kv, d, layers = model.hidden, model.kv_heads * model.head_dim, model.head_dim, model.layers
    proj = {"a_bits": a_bits, "w_bits": model.w_bits, "out_bits": out_bits}
    act = {"a_bits": a_bits, "w_bits": a_bits, "out_bits": out_bits}
    gemms = [
        Gemm("q_proj", tokens, h, h, layers, **proj),
        Gemm("k_proj", tokens, h, kv, layers, **proj),
        Gemm("v_proj", tokens, h, kv, layers, **proj),
        Gemm("attn_score", tokens, d, seq, layers * model.heads, **act),
        Gemm("attn_value", tokens, seq, d, layers * model.heads, **act),
        Gemm("o_proj", tokens, h, h, layers, **proj),
    ]
    if model.gated_ffn:
        gemms += [Gemm("ffn_gate", tokens, h, model.ffn, layers, **proj),
                  Gemm("ffn_up", tokens, h, model.ffn, layers, **proj),
                  Gemm("ffn_down", tokens, model.ffn, h, layers, **proj)]
    else:
        gemms += [Gemm("ffn_fc1", tokens, h, model.ffn, layers, **proj),
                  Gemm("ffn_fc2", tokens, model.ffn, h, layers, **proj)]
    return gemms


def load_scalesim_topology(path) -> list[Gemm]:
    """GEMMs from a SCALE-Sim topology CSV, in either of its formats.

    GEMM format: ``name, M, N, K`` — SCALE-Sim's A is ``M x K`` and its B ``K x N`` (its
    ``load_arrays_gemm``), so peforge's ``m, k, n = M, K, N``. Conv format: ``name, ifmap height,
    ifmap width, filter height, filter width, channels, filters, stride`` (no padding, as
    SCALE-Sim), lowered by im2col. A header line is recognised by its first numeric column.
    """
    gemms = []
    with open(path, newline="") as handle:
        for number, row in enumerate(csv.reader(handle), 1):
            cells = [cell.strip() for cell in row if cell.strip()]
            if not cells or not cells[1:] or not cells[1].isdigit():
                continue  # header or blank line
            try:
                values = [int(cell) for cell in cells[1:]]
            except ValueError:
                raise ValueError(f"{path}:{number}: expected integers after the layer name, "
                                 f"got {row}") from None
            if len(values) == 3:
                big_m, big_n, big_k = values
                gemms.append(Gemm(cells[0], big_m, big_k, big_n))
            elif len(values) == 7:
                height, width, kh, kw, channels, filters, stride = values
                gemms.append(conv2d_gemm(cells[0], height=height, width=width, channels=channels,
                                         filters=filters, kernel_h=kh, kernel_w=kw, stride=stride))
            else:
                raise ValueError(f"{path}:{number}: a SCALE-Sim row has 3 (GEMM) or 7 (conv) "
                                 f"numbers after the name, got {len(values)}")
    if not gemms:
        raise ValueError(f"topology: no layers in {path}")
    return gemms


@lru_cache(maxsize=256)
def _model_gemms(name: str, phase: str, seq: int) -> tuple[Gemm, ...]:
    """A named model's GEMMs, built once per phase and length (sweeps ask for them per point)."""
    return tuple(transformer_gemms(MODELS[name], phase, seq))


def workload_gemms(name: str, *, phase: str = "prefill", seq: int = 2048) -> list[Gemm]:
    """A named workload (a model of :data:`MODELS`) or a SCALE-Sim CSV path."""
    if name in MODELS:
        return list(_model_gemms(name, phase, seq))
    if Path(name).suffix == ".csv" and Path(name).exists():
        return load_scalesim_topology(name)
    raise ValueError(f"workload: must be one of {', '.join(MODELS)} or a SCALE-Sim .csv file, "
                     f"got {name!r}")

