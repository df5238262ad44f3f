"""Property-based tests of the accelerator YAML (``peforge sim --config``, ``gen accelerator``):
any document, damaged text or bytes give an accelerator or one ValueError ``FILE:LINE: field:
...`` on one line, never another exception, and the file is read bounded (no alias bomb built)."""

import re
import tempfile
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from peforge.sim.perf.accelerator import Accelerator, load_accelerator

KEYS = ["family", "pe", "rows", "cols", "dataflow", "bits", "clock_mhz", "input_sram",
        "weight_sram", "output_sram", "size_kib", "banks", "width_bytes", "dram", "name",
        "bytes_per_cycle", "latency_cycles", "timing", "stats", "vector", "lanes", "softmax", "x"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**4),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["systolic", "lut", "bitserial", "tpu", "os", "ws", "rtl",
                                     "scalesim-os", "gaussian", "hbm2", "ddr4-3200", "", "8"]),
                    st.text(max_size=6))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=10)
DOCUMENTS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6)
BOUNDED = settings(max_examples=60, deadline=None, derandomize=True)


def _check(data: bytes):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "accel.yaml"
        path.write_bytes(data)
        try:
            accel = load_accelerator(path)
        except ValueError as error:
            message = str(error)
            assert re.match(rf"^{re.escape(str(path))}:\d+: \S", message), message
            assert "\n" not in message, message
            return None
    assert isinstance(accel, Accelerator) and accel.pes >= 1
    return accel


@BOUNDED
@given(document=DOCUMENTS)
def test_any_document_gives_an_accelerator_or_one_located_error(document):
    _check(yaml.safe_dump(document).encode())


@BOUNDED
@given(document=DOCUMENTS, cut=st.integers(0, 300), junk=st.binary(max_size=6))
def test_any_damaged_file_gives_an_accelerator_or_one_located_error(document, cut, junk):
    text = yaml.safe_dump({"family": "systolic", **document}).encode()
    _check(text[:cut] + junk + text[cut:])


def test_the_shipped_example_and_its_errors_name_file_and_line(tmp_path):
    example = Path(__file__).resolve().parents[3] / "examples" / "accel.yaml"
    assert _check(example.read_bytes()).pe.rows == 16
    path = tmp_path / "a.yaml"
    path.write_text("family: systolic\npe:\n  rows: 4\n  cols: 0\n")
    try:
        load_accelerator(path)
    except ValueError as error:
        # cols is on line 4, inside pe.
        assert str(error) == f"{path}:4: cols: must be an integer in 1..256, got 0"
    path.write_text("family: systolic\nstats: !!python/object/apply:os.system ['true']\n")
    try:
        load_accelerator(path)
    except ValueError as error:
        assert str(error).startswith(f"{path}:2: stats: the tag !!python/object/apply:os.system "
                                     "is not allowed")


def test_an_alias_bomb_is_refused_by_its_size_not_built(tmp_path):
    lines = ["family: systolic", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    message = None
    try:
        load_accelerator(path)
    except ValueError as error:
        message = str(error)
    # a(i) holds 1 + 10 * a(i-1) values (a0: 11), so a4, on line 6, is the first past 100,000:
    # 111,111. a8 (over 10**8) is never built.
    assert message == (f"{path}:6: a4: holds 111111 values once its aliases are expanded, more "
                       "than 100000")
