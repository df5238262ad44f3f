"""Workloads: what a network runs on the accelerator, as :class:`Gemm` objects (the PE array's
work) and :class:`VectorOp` objects (softmax, norms, activations, elementwise ops, reductions),
one module per source:

- :mod:`~peforge.sim.perf.workloads.gemm`: the work items, plain GEMMs and conv2d by im2col;
- :mod:`~peforge.sim.perf.workloads.weight_sparsity`: a GEMM weight's measured zeros and N:M
  structure (``Gemm.w_sparsity``, from the sources that have the values: ONNX and PyTorch);
- :mod:`~peforge.sim.perf.workloads.scalesim`: SCALE-Sim topology CSV files;
- :mod:`~peforge.sim.perf.workloads.hf`: HuggingFace ``config.json`` of decoder-only
  transformers, and the shipped named models (:data:`MODELS`);
- :mod:`~peforge.sim.perf.workloads.onnx_graph`: ONNX files (``load_onnx``; their weights'
  values: :mod:`~peforge.sim.perf.workloads.onnx_weights`);
- :mod:`~peforge.sim.perf.workloads.torch_graph`: PyTorch modules (``from_torch``, when torch
  is installed).

``load_onnx`` and ``from_torch`` are imported on first use (``onnx`` and ``torch`` take a while
to import, and a sweep over named models needs neither).
"""

import warnings
from functools import lru_cache
from pathlib import Path

from peforge.sim.perf.workloads.gemm import (VECTOR_KINDS, Gemm, VectorOp, Workload,
                                             conv2d_gemm)
from peforge.sim.perf.workloads.hf import (MODELS, TransformerModel, hf_workload,
                                           load_hf_config, model_gemms, transformer_gemms,
                                           transformer_workload)
from peforge.sim.perf.workloads.scalesim import TopologyWarning, load_scalesim_topology

__all__ = ["Gemm", "VectorOp", "VECTOR_KINDS", "Workload", "conv2d_gemm", "TransformerModel",
           "MODELS", "load_hf_config", "transformer_gemms", "transformer_workload",
           "load_scalesim_topology", "TopologyWarning", "load_onnx", "from_torch",
           "hf_workload", "workload_gemms", "load_workload"]


def __getattr__(name):
    if name == "load_onnx":
        from peforge.sim.perf.workloads.onnx_graph import load_onnx
        return load_onnx
    if name == "from_torch":
        from peforge.sim.perf.workloads.torch_graph import from_torch
        return from_torch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=16)
def _onnx_gemms(path: str, mtime_ns: int, dims: tuple) -> tuple[Gemm, ...]:
    """An ONNX file's GEMMs, read once per version of the file and dims (sweeps ask per
    point)."""
    return __getattr__("load_onnx")(path, dims=dict(dims)).gemms


def workload_gemms(name: str, *, phase: str = "prefill", seq: int = 2048,
                   dims: dict | None = None) -> list[Gemm]:
    """The GEMMs of a named workload: a model of :data:`MODELS` (its transformer blocks), a
    SCALE-Sim ``.csv`` file, an ONNX ``.onnx`` file (dynamic dimensions bound by ``dims``) or a
    HuggingFace ``.json`` config (the whole decoder, LM head included)."""
    if name in MODELS:
        return list(model_gemms(name, phase, seq))
    suffix = Path(name).suffix
    if suffix in (".csv", ".onnx", ".json") and Path(name).exists():
        if suffix == ".csv":
            return load_scalesim_topology(name)
        if suffix == ".onnx":
            return list(_onnx_gemms(name, Path(name).stat().st_mtime_ns,
                                    tuple(sorted((dims or {}).items()))))
        return list(transformer_workload(load_hf_config(name), phase, seq).gemms)
    raise ValueError(f"workload: must be one of {', '.join(MODELS)} or a SCALE-Sim .csv, "
                     f".onnx or HuggingFace config .json file, got {name!r}")


def load_workload(*, workload: str | None = None, topology=None, onnx=None, hf_config=None,
                  phase: str = "prefill", seq: int = 2048, dims: dict | None = None,
                  compat: bool = False) -> Workload:
    """The :class:`Workload` of exactly one source: a named ``workload`` (its blocks' GEMMs, as
    :func:`workload_gemms`), a SCALE-Sim ``topology`` (read as SCALE-Sim does when ``compat``),
    an ``onnx`` file (``dims`` bind its dynamic dimensions) or an ``hf_config`` (a shipped
    model's name or a ``config.json`` path: the whole decoder with its vector work). Warnings
    of the source are in the workload's ``warnings``."""
    given = {name: value for name, value in (("workload", workload), ("topology", topology),
                                             ("onnx", onnx), ("hf_config", hf_config))
             if value is not None}
    if len(given) != 1:
        raise ValueError(f"workload: give exactly one of workload, topology, onnx, hf_config, "
                         f"got {', '.join(given) or 'none'}")
    if dims and onnx is None:
        raise ValueError("dim: binds the dimensions of an ONNX model (--onnx) only")
    if onnx is not None:
        return __getattr__("load_onnx")(onnx, dims=dims)
    if hf_config is not None:
        return hf_workload(hf_config, phase, seq)
    if topology is not None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TopologyWarning)
            gemms = load_scalesim_topology(topology, compat=compat)
        return Workload(Path(topology).stem, tuple(gemms),
                        warnings=tuple(str(w.message) for w in caught
                                       if issubclass(w.category, TopologyWarning)))
    return Workload(f"{workload} {phase} {seq}", tuple(workload_gemms(workload, phase=phase,
                                                                       seq=seq)))
