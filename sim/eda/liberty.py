"""Liberty libraries as the energy model reads them: pin capacitances, internal energy tables,
leakage and area of every cell (:func:`read_liberty`)."""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Liberty", "CellPower", "read_liberty"]

_TOKEN = re.compile(r'\s*(?:/\*.*?\*/\s*|\\\s*)*(?:("[^"]*")|([{}();:,])|([^\s{}();:,"\\]+))',
                    re.S)


def _parse_liberty(text: str) -> dict:
    """The Liberty group tree: ``{"name", "args", "attrs", "groups"}`` per group; simple
    attributes (``a : v;``) and complex ones (``a (v, ...);``) both land in ``attrs``."""
    tokens = []
    position = 0
    while True:
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            break
        position = match.end()
        quoted, punct, word = match.groups()
        tokens.append(quoted[1:-1] if quoted is not None else (punct or word))
    root = {"name": "", "args": [], "attrs": {}, "groups": []}
    stack, index = [root], 0
    while index < len(tokens):
        token = tokens[index]
        if token == "}":
            stack.pop()
            index += 1
            continue
        if index + 1 < len(tokens) and tokens[index + 1] == ":":
            end = tokens.index(";", index + 2) if ";" in tokens[index + 2:index + 6] else index + 3
            stack[-1]["attrs"][token] = " ".join(tokens[index + 2:end])
            index = end + (1 if end < len(tokens) and tokens[end] == ";" else 0)
            continue
        if index + 1 < len(tokens) and tokens[index + 1] == "(":
            close = tokens.index(")", index + 2)
            args = [t for t in tokens[index + 2:close] if t != ","]
            after = tokens[close + 1] if close + 1 < len(tokens) else ";"
            if after == "{":
                group = {"name": token, "args": args, "attrs": {}, "groups": []}
                stack[-1]["groups"].append(group)
                stack.append(group)
                index = close + 2
            else:
                stack[-1]["attrs"][token] = args
                index = close + (2 if after == ";" else 1)
            continue
        index += 1
    return root["groups"][0] if root["groups"] else root


def _numbers(values) -> list[float]:
    items = values if isinstance(values, list) else [values]
    return [float(x) for item in items for x in item.replace("\\", " ").split(",") if x.strip()]


@dataclass(frozen=True)
class _Table:
    """An energy table read at the smallest input transition: energies (pJ) against load (pF);
    one point when it does not depend on the load."""

    loads: tuple[float, ...]
    energies: tuple[float, ...]

    def at(self, load_pf: float) -> float:
        return float(np.interp(load_pf, self.loads, self.energies))


@dataclass(frozen=True)
class CellPower:
    """What the energy model takes from one Liberty cell (units pF, pJ, nW, um2)."""

    area_um2: float
    leakage_nw: float
    inputs: dict        # pin -> capacitance (pF)
    outputs: tuple      # output pin names
    input_energy: dict  # pin -> pJ per toggle (pins with their own internal_power)
    output_energy: dict  # pin -> _Table, pJ per output toggle


@dataclass(frozen=True)
class Liberty:
    """A Liberty library's cells, for :func:`switching_energy`."""

    name: str
    voltage: float
    cells: dict


def _energy_table(group: dict, templates: dict) -> _Table:
    """Mean of a group's rise and fall tables, at the smallest input transition."""
    tables = []
    for kind in ("rise_power", "fall_power"):
        for table in (g for g in group["groups"] if g["name"] == kind):
            template = templates.get(table["args"][0] if table["args"] else "", {})
            variables = [template.get(f"variable_{i}") for i in (1, 2)]
            index = {i: _numbers(table["attrs"].get(f"index_{i}", template.get(f"index_{i}", [])))
                     for i in (1, 2)}
            values = np.array(_numbers(table["attrs"]["values"]))
            if variables[1] is None or not index[2]:
                grid = values.reshape(len(index[1]) or 1, 1)
            else:
                grid = values.reshape(len(index[1]), len(index[2]))
            load_axis = next((axis for axis, var in enumerate(variables)
                              if var == "total_output_net_capacitance"), None)
            if load_axis is None:
                tables.append(((0.0,), (float(grid.flat[0]),)))
            elif load_axis == 0:
                tables.append((tuple(index[1]), tuple(grid[:, 0])))
            else:
                tables.append((tuple(index[2]), tuple(grid[0, :])))
    if not tables:
        return _Table((0.0,), (0.0,))
    loads = tuple(sorted({load for table, _ in tables for load in table}))
    energies = tuple(float(np.mean([np.interp(load, table, values) for table, values in tables]))
                     for load in loads)
    return _Table(loads, energies)


def read_liberty(path: Path) -> Liberty:
    """Pin capacitances, internal energies, leakage and area of every cell of a Liberty file.

    Units follow the file's (``capacitive_load_unit``; energies in that unit x V^2); OSU018 is
    pF, pJ, nW and um2.
    """
    lib = _parse_liberty(Path(path).read_text(errors="replace"))
    templates = {g["args"][0]: {**g["attrs"]} for g in lib["groups"]
                 if g["name"] in ("power_lut_template", "lu_table_template") and g["args"]}
    voltage = float(lib["attrs"].get("nom_voltage", "0") or 0)
    cells = {}
    for cell in (g for g in lib["groups"] if g["name"] == "cell"):
        inputs, outputs, input_energy, output_energy = {}, [], {}, {}
        for pin in (g for g in cell["groups"] if g["name"] == "pin"):
            name = pin["args"][0]
            powers = [g for g in pin["groups"] if g["name"] == "internal_power"]
            if pin["attrs"].get("direction") == "input":
                inputs[name] = float(pin["attrs"].get("capacitance", "0"))
                if powers:
                    input_energy[name] = _energy_table(powers[0], templates).at(0.0)
            elif pin["attrs"].get("direction") == "output":
                outputs.append(name)
                tables = [_energy_table(group, templates) for group in powers]
                loads = tuple(sorted({x for t in tables for x in t.loads})) or (0.0,)
                output_energy[name] = _Table(loads, tuple(
                    float(np.mean([t.at(x) for t in tables])) if tables else 0.0 for x in loads))
        cells[cell["args"][0]] = CellPower(
            area_um2=float(cell["attrs"].get("area", "0")),
            leakage_nw=float(cell["attrs"].get("cell_leakage_power", "0")),
            inputs=inputs, outputs=tuple(outputs), input_energy=input_energy,
            output_energy=output_energy)
    return Liberty(lib["args"][0] if lib["args"] else "", voltage, cells)
