"""The generated Verilog of the configurations the shipped energy table holds is byte-identical to
what the generators wrote before the layout of hw/, models/ and sim/ changed.

``tests/data/verilog_sha256.json`` was recorded from the tree before the change: the sha256 of the
full top of every design and tested configuration of ``bench/energy_table.py`` and of the reduced
top of every shipped-table point (every accelerator of ``sweeps/*.yaml``)."""

import hashlib
import json
from pathlib import Path

import pytest

from peforge.hw.common.verilog import to_verilog
from peforge.sim.eda import energy
from peforge.sim.families import family

RECORDED = json.loads((Path(__file__).parents[1] / "data" / "verilog_sha256.json").read_text())


def _config(entry):
    fam = family(entry["family"])
    return fam, fam.config(**{key: tuple(value) if isinstance(value, list) else value
                              for key, value in entry["config"].items()})


@pytest.mark.parametrize("entry", RECORDED, ids=lambda e: f"{e['family']}-{e['kind']}")
def test_verilog_is_byte_identical(entry):
    fam, config = _config(entry)
    verilog = to_verilog(fam.generator(config), fam.top_name)
    assert hashlib.sha256(verilog.encode()).hexdigest() == entry["sha256"]


def test_every_shipped_entry_is_a_recorded_reduced_top():
    """Each shipped-table entry's key is made from the Verilog of one recorded reduced top: the
    table still matches what the generators write."""
    reduced = {}
    for entry in RECORDED:
        fam, config = _config(entry)
        small, shape, verilog = energy.reduced_top(fam, config)
        reduced[(fam.name, hashlib.sha256(verilog.encode()).hexdigest())] = (verilog, shape)
    table = energy.shipped_table()
    assert len(table) >= 100
    for key, value in table.items():
        matches = [energy.shipped_key(verilog, value["stats"], value["seed"], tuple(value["shape"]))
                   for (name, _), (verilog, _) in reduced.items() if name == value["family"]]
        assert key in matches, (value["family"], value["stats"])
