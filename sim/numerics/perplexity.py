"""Perplexity of a decoder-only LM (SmolLM2-135M-Instruct, :mod:`peforge.sim.numerics.decoder`)
on the shipped text under each PE arithmetic, and the papers' claims tested on it.

Each arithmetic runs the decoder on the tokens of ``data/alice.txt`` (the opening paragraph of
*Alice's Adventures in Wonderland*, public domain) with a chosen subset of its GEMMs on the
arithmetic, the rest in float32, and is measured against the float32 run of the same
(dequantised Q4_1) weights: the perplexity ``exp(mean NLL)`` of tokens 1..n-1 and its ratio to
float32's, the mean relative error of the GEMMs it computed, and, for weight quantisers, the
relative MSE of the dequantised weight matrices. The weights were 4-bit already (Q4_1 per block
of 32): a 4-bit arithmetic quantises them a second time, on its own grid.
"""

from dataclasses import dataclass
from importlib.resources import files

import numpy as np

from peforge.sim.numerics.decoder import load_smollm2
from peforge.sim.numerics.study import Claim, arith_gemm, checked, default_gemms

__all__ = ["PerplexityMeasurement", "text", "measure_perplexity", "DECODER_CLAIMS",
           "DECODER_SPECS"]


def text() -> str:
    """The shipped text (one paragraph, no final newline)."""
    return (files("peforge.sim.numerics") / "data" / "alice.txt").read_text().rstrip("\n")


@dataclass(frozen=True)
class PerplexityMeasurement:
    """One arithmetic on one GEMM subset of the decoder; ratios and errors against float32."""

    arith: str
    family: str
    gemms: str
    bits_per_weight: float
    perplexity: float
    perplexity_fp32: float
    perplexity_ratio: float
    gemm_rel_error: float
    weight_rel_mse: float | None
    tokens: int


#: ``(id(model), tokens)`` -> float32 NLLs (models come from the cached :func:`load_smollm2`).
_REFERENCE: dict = {}


def _ids(model, tokens: int | None) -> np.ndarray:
    ids = model.tokens(text())
    if tokens is not None and not 2 <= tokens <= len(ids):
        raise ValueError(f"tokens: must be an integer in 2..{len(ids)} (the shipped text's "
                         f"tokens), got {tokens}")
    return ids[:tokens]


def measure_perplexity(spec: str, gemms: str | None = None, tokens: int | None = None,
                       model=None) -> PerplexityMeasurement:
    """Measure arithmetic ``spec`` on the GEMMs ``gemms`` (default: all, or the weight GEMMs
    for weight quantisers) of ``model`` (default: the packaged SmolLM2) over the first
    ``tokens`` tokens of the shipped text (default all)."""
    model = model or load_smollm2()
    gemms = gemms or default_gemms(spec)
    arith, kinds = checked(spec, gemms, None, model)
    ids = _ids(model, tokens)
    key = (id(model), len(ids))
    if key not in _REFERENCE:
        _REFERENCE[key] = model.token_nll(ids)
    gemm, errors = arith_gemm(arith, kinds, model.weight_kinds)
    reference = float(np.exp(_REFERENCE[key].mean()))
    measured = float(np.exp(model.token_nll(ids, gemm).mean()))
    weight_mse = None
    if arith.family is not None and set(kinds) & set(model.weight_kinds):
        weight_mse = float(np.mean([arith.weight_error(w) for w in model.weight_matrices()]))
    return PerplexityMeasurement(spec, arith.family or "fp32", gemms, arith.bits_per_weight,
                                 measured, reference, measured / reference,
                                 float(np.mean(errors)) if errors else 0.0, weight_mse, len(ids))


_BITMOD = "bitserial:wtypes={}+group=64"


def _ratio_at_most(key, bound):
    return lambda m: m[key].perplexity_ratio <= bound


def _lower(key, other):
    return lambda m: m[key].perplexity < m[other].perplexity


#: The encoder's claims (:data:`~peforge.sim.numerics.study.CLAIMS`) tested on the decoder's
#: perplexity, each criterion fixed before any was measured.
DECODER_CLAIMS = (
    Claim("L-Mul (arXiv 2410.00907)", "L-Mul in attention is almost lossless",
          "L-Mul e4m3 on the attention GEMMs: perplexity at most 1.01 x float32's",
          _ratio_at_most("systolic:pe=lmul+format=e4m3@attention", 1.01),
          (("systolic:pe=lmul+format=e4m3", "attention"),)),
    Claim("L-Mul (arXiv 2410.00907)", "L-Mul with fewer mantissa bits is as precise as fp8 e4m3",
          "L-Mul e4m3 (3 bits) on all GEMMs: perplexity at most 1.02 x exact e4m3's",
          lambda m: m["systolic:pe=lmul+format=e4m3@all"].perplexity
          <= 1.02 * m["systolic:pe=fp+format=e4m3@all"].perplexity,
          (("systolic:pe=lmul+format=e4m3", "all"), ("systolic:pe=fp+format=e4m3", "all"))),
    Claim("BitMoD (HPCA 2025)", "mixed datatypes beat plain INT4 per group",
          "bitserial fp4 on the weight GEMMs, groups of 64 (128 does not divide the width 576): "
          "lower perplexity than int4",
          _lower(_BITMOD.format("fp4") + "@weights", _BITMOD.format("int4") + "@weights"),
          ((_BITMOD.format("fp4"), "weights"), (_BITMOD.format("int4"), "weights"))),
    Claim("BitMoD (HPCA 2025)", "mixed datatypes beat plain INT3 per group",
          "bitserial fp3 on the weight GEMMs, groups of 64: lower perplexity than int3",
          _lower(_BITMOD.format("fp3") + "@weights", _BITMOD.format("int3") + "@weights"),
          ((_BITMOD.format("fp3"), "weights"), (_BITMOD.format("int3"), "weights"))),
    Claim("LUT Tensor Core (ISCA 2025)", "LUT-based low-bit GEMMs keep accuracy",
          "LUT W4 (signed, per column) x A8 on every weight GEMM: perplexity at most 1.05 x "
          "float32's",
          _ratio_at_most("lut:wkind=signed+wbits=4@weights", 1.05),
          (("lut:wkind=signed+wbits=4", "weights"),)),
    Claim("FlightLLM (FPGA 2024)", "2:4 sparsity costs little",
          "2:4 magnitude pruning (no retraining), INT8 weights, every weight GEMM: perplexity "
          "at most 1.10 x float32's",
          _ratio_at_most("sparse-dsp:nm=2:4@weights", 1.10),
          (("sparse-dsp:nm=2:4", "weights"),)),
)

#: Every decoder measurement of the report: the claims' and int8 on all GEMMs.
DECODER_SPECS = tuple(dict.fromkeys(
    [spec for claim in DECODER_CLAIMS for spec in claim.specs] + [("systolic:bits=8", "all")]))
