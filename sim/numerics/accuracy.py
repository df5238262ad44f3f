"""Accuracy metrics of a design point, for sweeps: what its PE arithmetic does to a real model.

``accuracy_cosine`` is the mean cosine to float32 of all-MiniLM-L6-v2's sentence embeddings over
the first :data:`SENTENCES` shipped sentences, with every GEMM the arithmetic runs on it (all for
the systolic PEs; the weight GEMMs for the weight quantisers: bitserial, LUT, sparse-dsp), as
``peforge numerics`` measures it (:func:`peforge.sim.numerics.study.measure`). It depends only on
the parameters the arithmetic reads (:data:`ARITH_PARAMETERS`), not on the array's shape, so
the points of a sweep share one measurement per arithmetic, kept in the peforge cache (keyed by
the spec and the caller's model version).
"""

from functools import lru_cache

from peforge.sim.numerics.arith import SUPPORTED, ArithError

__all__ = ["ACCURACY_METRICS", "SENTENCES", "ARITH_PARAMETERS", "arith_spec", "accuracy_metrics",
           "accuracy_seconds"]

#: Metric name -> what it is (the sweep metric columns).
ACCURACY_METRICS = {"accuracy_cosine": "mean cosine to float32 of all-MiniLM-L6-v2 sentence "
                    "embeddings on the PE's arithmetic (6 shipped sentences; 1 = lossless)"}

SENTENCES = 6

#: Per family, the configuration parameters its numerics reads (the rest is the array's shape).
ARITH_PARAMETERS = {
    "systolic": ("pe", "format", "bits", "signed", "k_max", "acc_bits", "add_stages"),
    "bitserial": ("wtypes", "group", "k_max"),
    "lut": ("wkind", "wbits", "abits", "k_max", "acc_bits"),
    "sparse-dsp": ("nm", "bits", "acc_bits", "overflow"),
}


#: Parameters a spec names only when set (at 0 a spec reads as before they existed).
_NAMED_WHEN_SET = ("add_stages",)


def arith_spec(family: str, config) -> str:
    """The ``peforge numerics`` spec of a PE configuration, e.g. ``systolic:pe=int+bits=8+...``;
    ArithError for a family numerics cannot run."""
    if family not in ARITH_PARAMETERS:
        raise ArithError(f"accuracy: family {family} computes no whole GEMM in numerics (it "
                         f"has accuracy metrics on {', '.join(SUPPORTED)})")
    items = []
    for name in ARITH_PARAMETERS[family]:
        value = getattr(config, name)
        if value is not None and not (name in _NAMED_WHEN_SET and not value):
            items.append(f"{name}={str(value).lower() if isinstance(value, bool) else value}")
    return f"{family}:{'+'.join(items)}"


def _cache_path(spec: str, version: str):
    from peforge.sim.cache import content_key, entry_path

    return entry_path("numerics", "accuracy", content_key(spec, version), ".json")


@lru_cache(maxsize=64)
def _measured(spec: str, version: str) -> dict:
    from peforge.sim.cache import cached_json
    from peforge.sim.numerics.study import default_gemms, measure

    def run() -> dict:
        m = measure(spec, default_gemms(spec), SENTENCES)
        return {"accuracy_cosine": m.cosine_mean}

    return cached_json(_cache_path(spec, version), run)[0]


def accuracy_metrics(family: str, config, version: str) -> dict:
    """``{metric: value}`` of :data:`ACCURACY_METRICS` for a PE configuration (computed once per
    spec and ``version``, then read from the cache)."""
    return dict(_measured(arith_spec(family, config), version))


def accuracy_seconds(spec: str, version: str) -> float:
    """The estimated seconds of the accuracy metrics of arithmetic ``spec``: 0 when the cache
    holds them for ``version``, else :func:`~peforge.sim.numerics.study.measure_seconds` of the
    measurement :func:`accuracy_metrics` runs."""
    from peforge.sim.numerics.study import default_gemms, measure_seconds

    if _cache_path(spec, version).exists():
        return 0.0
    return measure_seconds(spec, default_gemms(spec), SENTENCES)
