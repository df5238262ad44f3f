"""``peforge numerics`` and ``peforge report numerics``: what each PE arithmetic does to a real model.

Each arithmetic runs all-MiniLM-L6-v2's forward pass (:mod:`peforge.sim.numerics.encoder`) on the
shipped sentences with a chosen subset of its GEMMs on the arithmetic (the rest in float32), and
is measured against the float32 run: cosine of each sentence embedding (mean and worst), the
Spearman correlation of the pairwise sentence similarities, the mean relative error
``||y - x @ w|| / ||x @ w||`` of the GEMMs it computed (on their own inputs), and, for weight
quantisers, the relative MSE of the dequantised projection weights.
"""

import time
from collections import Counter
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from peforge.sim.numerics.arith import ArithError, parse_arith
from peforge.sim.numerics.encoder import load_model

__all__ = ["Measurement", "sentences", "gemm_kinds", "checked", "measure", "measure_seconds",
           "arith_gemm", "CLAIMS", "judge", "write_report", "write_decoder_report"]


def sentences(count: int | None = None) -> list[str]:
    """The shipped sentences (24: pairs of paraphrases and unrelated ones), the first ``count``."""
    text = (files("peforge.sim.numerics") / "data" / "sentences.txt").read_text()
    return text.splitlines()[:count]


def gemm_kinds(text: str, model) -> tuple[str, ...]:
    """Kinds of ``model``'s GEMMs named by ``text``: one of its ``gemm_sets`` or a comma list of
    kinds."""
    if text in model.gemm_sets:
        return model.gemm_sets[text]
    kinds = tuple(part.strip() for part in text.split(","))
    for kind in kinds:
        if kind not in model.gemm_sets["all"]:
            raise ArithError(f"gemms: must be one of {', '.join(model.gemm_sets)} or kinds "
                             f"among {', '.join(model.gemm_sets['all'])} ({model.name}), "
                             f"got {kind!r}")
    return kinds


def default_gemms(spec: str) -> str:
    """The GEMMs a spec runs on unless told: ``weights`` for weight quantisers, else ``all``."""
    return "weights" if parse_arith(spec).weights_only else "all"


def checked(spec: str, gemms: str, count: int | None, model):
    """``(Arithmetic, kinds)`` of a measurement on ``model``, every argument checked
    (ArithError/ValueError)."""
    arith = parse_arith(spec)
    kinds = gemm_kinds(gemms, model)
    if arith.weights_only and set(kinds) - set(model.weight_kinds):
        raise ArithError(f"arith {spec!r}: {arith.family} quantises weights: --gemms must name "
                         f"weight GEMMs only ({', '.join(model.weight_kinds)}), got {gemms!r}")
    if count is not None and not 3 <= count <= len(sentences()):
        raise ValueError(f"sentences: must be an integer in 3..{len(sentences())} (a rank "
                         f"correlation needs 3 pairs), got {count}")
    return arith, kinds


@dataclass(frozen=True)
class Measurement:
    """One arithmetic on one GEMM subset; cosines and errors against the float32 run."""

    arith: str
    family: str
    gemms: str
    bits_per_weight: float
    cosine_mean: float
    cosine_worst: float
    spearman: float
    gemm_rel_error: float
    weight_rel_mse: float | None
    sentences: int


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    rank = lambda v: np.argsort(np.argsort(v)).astype(np.float64)
    return float(np.corrcoef(rank(x), rank(y))[0, 1])


def _similarities(embeddings: np.ndarray) -> np.ndarray:
    upper = np.triu_indices(len(embeddings), 1)
    return (embeddings @ embeddings.T)[upper]


def arith_gemm(arith, kinds, weight_kinds):
    """``(gemm, errors)``: a model's ``gemm(kind, x, w)`` running the GEMMs of ``kinds`` on
    ``arith`` (the rest in float32), appending each one's relative error
    ``||y - x @ w|| / ||x @ w||`` to ``errors``."""
    errors = []

    def gemm(kind, x, w):
        exact = x @ w
        if kind not in kinds:
            return exact
        y = arith.gemm(x, w, kind in weight_kinds)
        errors.append(float(np.linalg.norm(y - exact) / max(np.linalg.norm(exact), 1e-30)))
        return y

    return gemm, errors


def measure(spec: str, gemms: str = "all", count: int | None = None, model=None) -> Measurement:
    """Measure arithmetic ``spec`` on the GEMMs ``gemms`` of ``model`` (default: the packaged
    all-MiniLM-L6-v2) over the first ``count`` sentences."""
    model = model or load_model()
    arith, kinds = checked(spec, gemms, count, model)
    gemm, errors = arith_gemm(arith, kinds, model.weight_kinds)
    texts = sentences(count)
    reference = np.stack([model.embed(text) for text in texts])
    measured = np.stack([model.embed(text, gemm) for text in texts])
    cosines = (reference * measured).sum(axis=1) / np.linalg.norm(measured, axis=1)
    weight_mse = None
    if arith.family is not None and set(kinds) & set(model.weight_kinds):
        weight_mse = float(np.mean([arith.weight_error(w) for w in model.weight_matrices()]))
    return Measurement(spec, arith.family or "fp32", gemms, arith.bits_per_weight,
                       float(cosines.mean()), float(cosines.min()),
                       _spearman(_similarities(reference), _similarities(measured)),
                       float(np.mean(errors)) if errors else 0.0, weight_mse, len(texts))


#: ``(id(model), count)`` -> (seconds of the float32 run, its GEMMs ``(kind, x, w)``).
_FLOAT_RUNS: dict = {}


def _float_run(model, count):
    """The float32 forward pass over the first ``count`` sentences, timed, with its GEMMs
    (kept per model object and count: models come from the cached :func:`load_model`)."""
    key = (id(model), count)
    if key not in _FLOAT_RUNS:
        calls = []

        def gemm(kind, x, w):
            calls.append((kind, x, w))
            return x @ w

        model.embed(sentences(1)[0])        # first calls (imports, allocations) not timed
        started = time.perf_counter()
        for text in sentences(count):
            model.embed(text, gemm)
        _FLOAT_RUNS[key] = (time.perf_counter() - started, calls)
    return _FLOAT_RUNS[key]


def measure_seconds(spec: str, gemms: str = "all", count: int | None = None,
                    model=None) -> float:
    """The seconds :func:`measure` of the same arguments is estimated to take here, without
    running it: twice the float32 run timed (the reference, and the arithmetic's run outside
    its GEMMs), plus, per GEMM kind the arithmetic computes, its median-sized GEMM of the run
    timed once on the arithmetic and scaled by the kind's multiply-accumulates, plus the weight
    errors timed on one matrix of each shape and scaled by the matrices of that shape."""
    model = model or load_model()
    arith, kinds = checked(spec, gemms, count, model)
    float_seconds, calls = _float_run(model, count)
    seconds = 2 * float_seconds
    for kind in kinds:
        sized = sorted((x.shape[0] * x.shape[1] * w.shape[1], i)
                       for i, (k, x, w) in enumerate(calls) if k == kind)
        macs, index = sized[len(sized) // 2]
        _kind, x, w = calls[index]
        started = time.perf_counter()
        arith.gemm(x, w, kind in model.weight_kinds)
        seconds += (time.perf_counter() - started) * sum(m for m, _i in sized) / macs
    if arith.family is not None and set(kinds) & set(model.weight_kinds):
        matrices = model.weight_matrices()
        for shape, number in Counter(w.shape for w in matrices).items():
            started = time.perf_counter()
            arith.weight_error(next(w for w in matrices if w.shape == shape))
            seconds += (time.perf_counter() - started) * number
    return seconds


@dataclass(frozen=True)
class Claim:
    """A paper's claim, the measurement that tests it and the criterion it must meet."""

    paper: str
    claim: str
    criterion: str
    test: object            # {spec: Measurement} -> bool
    specs: tuple            # ((spec, gemms), ...) it reads


def _at_least(spec, key, bound):
    return lambda m: getattr(m[spec], key) >= bound


CLAIMS = (
    Claim("L-Mul (arXiv 2410.00907)", "L-Mul in attention is almost lossless",
          "L-Mul e4m3 (3 mantissa bits) on the attention GEMMs: mean cosine >= 0.99 and "
          "similarity Spearman >= 0.99",
          lambda m: m["systolic:pe=lmul+format=e4m3@attention"].cosine_mean >= 0.99
          and m["systolic:pe=lmul+format=e4m3@attention"].spearman >= 0.99,
          (("systolic:pe=lmul+format=e4m3", "attention"),)),
    Claim("L-Mul (arXiv 2410.00907)", "L-Mul with fewer mantissa bits is as precise as fp8 e4m3",
          "peforge's PEs have no 4-bit-mantissa format, so measured on the nearest pair: L-Mul "
          "e4m3 (3 bits) on all GEMMs has a mean cosine within 0.005 of exact e4m3",
          lambda m: m["systolic:pe=lmul+format=e4m3@all"].cosine_mean
          >= m["systolic:pe=fp+format=e4m3@all"].cosine_mean - 0.005,
          (("systolic:pe=lmul+format=e4m3", "all"), ("systolic:pe=fp+format=e4m3", "all"))),
    Claim("BitMoD (HPCA 2025)", "mixed datatypes beat plain INT4 per group",
          "bitserial fp4 (BitMoD's mixed fp4 types per group of 128) has a lower weight MSE and "
          "a higher mean cosine than int4 per group of 128",
          lambda m: m["bitserial:wtypes=fp4@weights"].weight_rel_mse
          < m["bitserial:wtypes=int4@weights"].weight_rel_mse
          and m["bitserial:wtypes=fp4@weights"].cosine_mean
          > m["bitserial:wtypes=int4@weights"].cosine_mean,
          (("bitserial:wtypes=fp4", "weights"), ("bitserial:wtypes=int4", "weights"))),
    Claim("BitMoD (HPCA 2025)", "mixed datatypes beat plain INT3 per group",
          "bitserial fp3 has a lower weight MSE and a higher mean cosine than int3 (groups of 128)",
          lambda m: m["bitserial:wtypes=fp3@weights"].weight_rel_mse
          < m["bitserial:wtypes=int3@weights"].weight_rel_mse
          and m["bitserial:wtypes=fp3@weights"].cosine_mean
          > m["bitserial:wtypes=int3@weights"].cosine_mean,
          (("bitserial:wtypes=fp3", "weights"), ("bitserial:wtypes=int3", "weights"))),
    Claim("LUT Tensor Core (ISCA 2025)", "LUT-based low-bit GEMMs keep accuracy",
          "LUT W4 (signed, per column) x A8 on every weight GEMM: mean cosine >= 0.99",
          _at_least("lut:wkind=signed+wbits=4@weights", "cosine_mean", 0.99),
          (("lut:wkind=signed+wbits=4", "weights"),)),
    Claim("FlightLLM (FPGA 2024)", "2:4 sparsity costs little",
          "2:4 magnitude pruning (no retraining), INT8 weights, every weight GEMM: mean "
          "cosine >= 0.99",
          _at_least("sparse-dsp:nm=2:4@weights", "cosine_mean", 0.99),
          (("sparse-dsp:nm=2:4", "weights"),)),
)

#: Every measurement of the report: the claims' and a sweep over bits per weight.
REPORT_SPECS = tuple(dict.fromkeys(
    [spec for claim in CLAIMS for spec in claim.specs]
    + [("systolic:bits=8", "all"), ("systolic:bits=4", "weights"),
       ("systolic:pe=fp+format=bf16", "all"), ("systolic:pe=lmul+format=bf16", "attention"),
       ("systolic:pe=fp+format=e5m2", "all"), ("systolic:pe=lmul+format=e5m2", "attention"),
       ("bitserial:wtypes=int8", "weights"), ("bitserial:wtypes=fp4,int4", "weights"),
       ("lut:wkind=signed+wbits=2", "weights"), ("lut:wkind=ternary+wbits=2", "weights"),
       ("lut:wkind=unsigned+wbits=4", "weights"), ("sparse-dsp:nm=4:8", "weights"),
       ("sparse-dsp:nm=1:4", "weights")]))


def judge(measurements: dict, claims=CLAIMS) -> list[tuple[Claim, bool]]:
    """``(claim, holds)`` for every one of ``claims`` whose measurements
    ``{"spec@gemms": measurement}`` holds."""
    return [(claim, bool(claim.test(measurements))) for claim in claims
            if all(f"{spec}@{gemms}" in measurements for spec, gemms in claim.specs)]


def _verdicts(found: dict, claims) -> list[str]:
    return [f"{'holds' if holds else 'fails'}: {claim.paper}: {claim.claim}\n"
            f"    criterion: {claim.criterion}\n" for claim, holds in judge(found, claims)]


def write_report(out: Path, count: int | None = None, specs=REPORT_SPECS, decoder_specs=None,
                 tokens: int | None = None) -> tuple[Path, ...]:
    """Measure ``specs`` on ``count`` sentences of the encoder and ``decoder_specs`` (default
    :data:`~peforge.sim.numerics.perplexity.DECODER_SPECS`; none if empty) on ``tokens``
    tokens of the decoder's text, and write numerics.csv, perplexity.csv (with decoder specs),
    claims.txt and numerics.png into ``out``."""
    import pandas as pd

    from peforge.sim.numerics import perplexity
    from peforge.sim.studies.tables import write_table

    model = load_model()
    found = {f"{spec}@{gemms}": measure(spec, gemms, count, model) for spec, gemms in specs}
    table = pd.DataFrame([asdict(m) for m in found.values()])
    out.mkdir(parents=True, exist_ok=True)
    write_table(table, out / "numerics.csv")
    lines = [f"all-MiniLM-L6-v2, {table['sentences'].iloc[0]} sentences, against float32\n",
             *_verdicts(found, CLAIMS)]
    paths = [out / "numerics.csv"]
    decoder_specs = perplexity.DECODER_SPECS if decoder_specs is None else decoder_specs
    if decoder_specs:
        lines += write_decoder_report(out, decoder_specs, tokens)
        paths.append(out / "perplexity.csv")
    (out / "claims.txt").write_text("".join(lines))
    return (*paths, out / "claims.txt", _plot(table, out / "numerics.png"))


def write_decoder_report(out: Path, specs, tokens: int | None = None) -> list[str]:
    """Measure the decoder's perplexity under ``specs`` on ``tokens`` tokens, write
    perplexity.csv into ``out`` and return the claims.txt lines of its verdicts."""
    import pandas as pd

    from peforge.sim.numerics import perplexity
    from peforge.sim.studies.tables import write_table

    decoded = {f"{spec}@{gemms}": perplexity.measure_perplexity(spec, gemms, tokens)
               for spec, gemms in specs}
    rows = pd.DataFrame([asdict(m) for m in decoded.values()])
    out.mkdir(parents=True, exist_ok=True)
    write_table(rows, out / "perplexity.csv")
    return [f"\nSmolLM2-135M-Instruct (its Q4_1 weights dequantised), {rows['tokens'].iloc[0]} "
            f"tokens of alice.txt, perplexity {rows['perplexity_fp32'].iloc[0]:.3f} in float32\n",
            *_verdicts(decoded, perplexity.DECODER_CLAIMS)]


def _plot(table, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, rows in table.groupby("family"):
        axes.scatter(rows["bits_per_weight"], 1 - rows["cosine_mean"], label=name, s=30)
    axes.set_yscale("log")
    axes.set_xlabel("bits per weight (with group scales and sparse indices)")
    axes.set_ylabel("1 - mean cosine to float32")
    axes.set_title("all-MiniLM-L6-v2 sentence embeddings on each PE arithmetic")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
