"""Run ZigZag (the ``zigzag-dse`` package) on GEMM layers in a subprocess of its own venv, for
``bench/mapper_vs_zigzag.py``.

ZigZag is never a dependency of peforge: ``python`` is a venv's interpreter with ``zigzag-dse``
installed (3.9.1 also needs ``six``, which it does not declare)::

    python3 -m venv /tmp/zigzag-venv
    /tmp/zigzag-venv/bin/pip install zigzag-dse six

The accelerator given to ZigZag is peforge's output-stationary systolic array and its memories:
a ``rows x cols`` operational array with M unrolled over the rows and N over the columns (the
spatial mapping), a per-PE output register of the output width, three SRAMs (input for A as
ZigZag's I1, weight for W as I2, output), each of its size, ``force_double_buffering`` (so a tile
gets half of it, as peforge's double-buffered tiles do) and read and write ports of its
``width_bytes * banks``, and a DRAM holding all three operands behind one read-write port of the
DRAM's bytes per cycle (ZigZag's bandwidths are whole bits per cycle). ZigZag's LOMA search
minimises its own latency (``opt="latency"``). A GEMM ``m x k x n`` is ZigZag's layer
``O[d][k] += I[d][c] * W[c][k]`` with D = m, C = k, K = n.
"""

import json
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["run_layers"]

# Runs inside the ZigZag venv: argv = spec.json, output folder. Prints one JSON line per layer.
ZIGZAG_DRIVER = r"""
import json, logging, sys, time
from importlib.metadata import version
import yaml
logging.disable(logging.CRITICAL)
from zigzag.api import get_hardware_performance_zigzag

spec_path, out = sys.argv[1:]
spec = json.load(open(spec_path))
a = spec["accel"]
ob = a["out_bits"]

def port(name, kind, bits, allocation):
    return {"name": name, "type": kind, "bandwidth_min": min(8, bits), "bandwidth_max": bits,
            "allocation": allocation}

def sram(operand, size_bytes, port_bytes):
    extra = operand == "O"
    return {"size": 8 * size_bytes, "r_cost": 1.0, "w_cost": 1.0, "area": 0, "latency": 1,
            "auto_cost_extraction": False, "operands": [operand],
            "ports": [port("r_port_1", "read", 8 * port_bytes,
                           [f"{operand}, tl"] + [f"{operand}, th"] * extra),
                      port("w_port_1", "write", 8 * port_bytes,
                           [f"{operand}, fh"] + [f"{operand}, fl"] * extra)],
            "served_dimensions": ["D1", "D2"], "force_double_buffering": True}

register = {"size": ob, "r_cost": 0.01, "w_cost": 0.01, "area": 0, "latency": 1,
            "auto_cost_extraction": False, "operands": ["O"],
            "ports": [port("r_port_1", "read", ob, ["O, tl"]),
                      port("r_port_2", "read", ob, ["O, th"]),
                      port("w_port_1", "write", ob, ["O, fh"]),
                      port("w_port_2", "write", ob, ["O, fl"])],
            "served_dimensions": []}
dram = {"size": 10 ** 12, "r_cost": 100, "w_cost": 100, "area": 0, "latency": 1,
        "auto_cost_extraction": False, "operands": ["I1", "I2", "O"],
        "ports": [port("rw_port_1", "read_write", int(8 * a["dram_bytes_per_cycle"]),
                       [f"{o}, {d}" for o in ("I1", "I2") for d in ("fh", "tl")]
                       + [f"O, {d}" for d in ("fh", "tl", "fl", "th")])],
        "served_dimensions": ["D1", "D2"]}
hardware = {"name": "peforge_os", "memories": {
    "reg_O": register, "input_sram": sram("I1", a["input_bytes"], a["input_port"]),
    "weight_sram": sram("I2", a["weight_bytes"], a["weight_port"]),
    "output_sram": sram("O", a["output_bytes"], a["output_port"]), "dram": dram},
    "operational_array": {"unit_energy": 0.04, "unit_area": 1, "dimensions": ["D1", "D2"],
                          "sizes": [a["rows"], a["cols"]]}}
yaml.safe_dump(hardware, open(f"{out}/hardware.yaml", "w"), sort_keys=False)
mapping = [{"name": "default",
            "spatial_mapping": {"D1": [f"D, {a['rows']}"], "D2": [f"K, {a['cols']}"]},
            "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}]
yaml.safe_dump(mapping, open(f"{out}/mapping.yaml", "w"), sort_keys=False)
for index, (name, m, k, n) in enumerate(spec["layers"]):
    layer = [{"id": 0, "name": name, "operator_type": "Gemm",
              "equation": "O[d][k]+=I[d][c]*W[c][k]", "dimension_relations": [],
              "loop_dims": ["D", "C", "K"], "loop_sizes": [m, k, n],
              "operand_precision": {"I": a["a_bits"], "W": a["w_bits"], "O": ob, "O_final": ob},
              "operand_source": {"I": 0}}]
    start = time.perf_counter()
    _energy, latency, cmes = get_hardware_performance_zigzag(
        layer, f"{out}/hardware.yaml", f"{out}/mapping.yaml", opt="latency",
        dump_folder=f"{out}/layer{index}", loma_show_progress_bar=False)
    seconds = time.perf_counter() - start
    cme = cmes[0][1][0][0]
    loops = {str(operand): [[(str(dim), int(size)) for dim, size in level] for level in levels]
             for operand, levels in cme.temporal_mapping.mapping_dic_origin.items()}
    print(json.dumps({"name": name, "latency": float(latency), "seconds": seconds,
                      "loops": loops, "version": version("zigzag-dse")}), flush=True)
"""


def run_layers(python: str, accel: dict, layers) -> tuple[list[dict], float]:
    """Run ZigZag once over ``layers`` (``(name, m, k, n)``) on the accelerator ``accel`` (the
    keys the driver reads: rows, cols, a_bits, w_bits, out_bits, input_bytes, weight_bytes,
    output_bytes, input_port, weight_port, output_port, dram_bytes_per_cycle). Returns one dict
    per layer (``latency`` cycles, ``seconds`` of its search and evaluation timed inside the
    subprocess, ``loops``: per operand I, W, O the temporal loops ``(dim, size)`` at each memory
    level, innermost level and loop first) and the whole subprocess's seconds."""
    with tempfile.TemporaryDirectory(prefix="zigzag-bench-") as folder:
        spec = Path(folder) / "spec.json"
        spec.write_text(json.dumps({"accel": accel, "layers": [list(layer) for layer in layers]}))
        start = time.perf_counter()
        proc = subprocess.run([python, "-c", ZIGZAG_DRIVER, str(spec), folder],
                              capture_output=True, text=True, cwd=folder)
        process_s = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"ZigZag failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n"
                               f"{proc.stderr[-3000:]}")
        return [json.loads(line) for line in proc.stdout.splitlines()
                if line.startswith("{")], process_s
