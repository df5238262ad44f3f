"""Property-based tests (hypothesis) over the sweep file format, ranges, point keys and results
databases: whatever the input, a value or one clear error, never a traceback or unbounded work."""

import hashlib
import json
import math
import sqlite3

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from peforge.sim.explore.points import make_task
from peforge.sim.explore.results import PointKeys, ResultStore, point_key, result_key
from peforge.sim.explore.spec import MAX_AXIS_VALUES, SweepError, WorkloadSpec, load_sweep

from tests.sim.explore.test_sweep import TOPOLOGY

#: Bounded runs: a few seconds each in `make test`.
BOUNDED = settings(max_examples=60, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow])

KEYS = ["name", "workloads", "axes", "families", "constraints", "objectives", "workload",
        "phase", "seq", "systolic", "lut", "bitserial", "pe.rows", "pe.bits", "clock_mhz",
        "weight_sram.size_kib", "from", "to", "step", "times", "cycles", "x"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(
                        ["layers.csv", "llama2-7b", "prefill", "decode", "min", "max", "os",
                         "cycles <= 5", "utilisation >= nan", "..", "", "lut", "systolic"]),
                    st.text(max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=12)
DOCUMENTS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6)


def _check_load(tmp_path, text: str):
    """Load ``text`` as a sweep file: a sweep, or a SweepError naming the file."""
    (tmp_path / "layers.csv").write_text(TOPOLOGY)
    path = tmp_path / "s.yaml"
    path.write_text(text)
    try:
        sweep = load_sweep(path)
    except SweepError as error:
        message = str(error)
        assert message.startswith((f"{path}:", "sweep: ")) and "\n" not in message, message
        return None
    assert sweep.size >= 1 and sweep.workloads
    return sweep


@BOUNDED
@given(document=DOCUMENTS)
def test_any_document_loads_or_is_one_clear_error(tmp_path, document):
    _check_load(tmp_path, yaml.safe_dump(document))


@BOUNDED
@given(document=DOCUMENTS, cut=st.integers(0, 400), junk=st.text(max_size=6))
def test_any_damaged_text_loads_or_is_one_clear_error(tmp_path, document, cut, junk):
    """The valid shape, with its text cut short and junk (quotes, brackets, tags, anchors,
    aliases) spliced in."""
    base = {"workloads": {"workload": "layers.csv"}, "families": {"systolic": {"pe.rows": [2]}},
            **document}
    text = yaml.safe_dump(base)
    cut = min(cut, len(text))
    _check_load(tmp_path, text[:cut] + junk + text[cut:])


@BOUNDED
@given(low=st.integers(-50, 10**6), high=st.integers(-50, 10**7), step=st.integers(1, 10**5))
def test_step_ranges_are_python_ranges_or_refused_by_size(tmp_path, low, high, step):
    text = (f"workloads: {{workload: layers.csv, seq: {{from: {low}, to: {high}, step: {step}}}}}"
            "\nfamilies: [lut]\n")
    expected = range(low, high + 1, step)
    if len(expected) > MAX_AXIS_VALUES:
        (tmp_path / "layers.csv").write_text(TOPOLOGY)
        (tmp_path / "s.yaml").write_text(text)
        try:
            load_sweep(tmp_path / "s.yaml")
        except SweepError as error:
            assert f"the range holds {len(expected)} values, more than" in str(error)
        else:
            raise AssertionError("an oversized range was expanded")
        return
    sweep = _check_load(tmp_path, text)
    if sweep is not None:  # refused when empty, or a seq < 1, or more than 1000 workloads
        assert [w.seq for w in sweep.workloads] == list(expected)


@BOUNDED
@given(low=st.floats(1e-3, 1e3), high=st.floats(1e-3, 1e12) | st.just(math.inf),
       times=st.floats(1.5, 100))
def test_geometric_ranges_are_sized_before_they_are_built(tmp_path, low, high, times):
    def number(value):  # a YAML 1.1 float (a dot and a signed exponent), exact
        return ".inf" if value == math.inf else f"{value:.17e}"

    text = (f"workloads: {{workload: layers.csv}}\naxes:\n  clock_mhz: {{from: {number(low)}, "
            f"to: {number(high)}, times: {number(times)}}}\nfamilies: [lut]\n")
    sweep = _check_load(tmp_path, text)
    if sweep is None:
        return
    values = dict((axis.key, axis.values) for axis in sweep.axes["lut"])["clock_mhz"]
    assert len(values) <= MAX_AXIS_VALUES and values[0] == low
    assert all(b == a * times for a, b in zip(values, values[1:]))
    assert values[-1] <= high * (1 + 1e-9) < values[-1] * times


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                        st.floats(allow_nan=False, allow_infinity=False),
                        st.text(max_size=10))


@BOUNDED
@given(config=st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=8),
       workloads=st.lists(st.builds(WorkloadSpec, st.text(max_size=10),
                                    st.sampled_from(["prefill", "decode"]),
                                    st.integers(1, 10**6),
                                    st.none() | st.text("0123456789abcdef", min_size=16,
                                                        max_size=16)), max_size=4),
       level=st.sampled_from(["model", "synth", "verify"]))
def test_point_keys_are_the_documented_hashes(config, workloads, level):
    """PointKeys' fast path equals point_key / result_key, and both the documented form: sha256
    of the sorted-key JSON, 12 hex digits, a topology's digest inside its workload."""
    def sha(value):
        return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]

    fields = [w.key_fields() for w in workloads]
    point, rows = PointKeys(fields, level)(config)
    assert point == point_key(config, level) == sha({"config": config, "level": level})
    assert rows == tuple(result_key(config, f, level) for f in fields) == tuple(
        sha({"config": config, "workload": f, "level": level}) for f in fields)
    assert all(("topology_sha256" in f) == (w.digest is not None)
               for w, f in zip(workloads, fields))


@BOUNDED
@given(values=st.fixed_dictionaries({"family": st.sampled_from(["systolic", "lut", "tpu"])},
                                    optional={"pe.rows": JSON_VALUES, "clock_mhz": JSON_VALUES,
                                              "dram.bytes_per_cycle": JSON_VALUES}))
def test_any_point_gives_a_task_with_keys_or_a_stored_error(values):
    task = make_task(values, (WorkloadSpec("llama2-7b", "decode", 16),), "model")
    assert (task.accel is None) == (task.error is not None)
    assert len(task.keys) == 1 and len(task.point) == 12


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 10**5), flips=st.lists(st.tuples(st.integers(0, 10**5),
                                                           st.integers(0, 255)), max_size=4))
def test_any_damaged_database_opens_or_is_one_clear_error(tmp_path, cut, flips):
    good = tmp_path / "good.db"
    if not good.exists():
        with ResultStore(good) as store:
            store.write_point([{"key": f"k{i}", "point": "p", "family": "lut",
                                "config": {"pe.n": i}, "workload": "w", "phase": "prefill",
                                "seq": 1, "level": "model", "status": "ok", "error": None,
                                "metrics": {"cycles": float(i)}, "started_at": "t",
                                "finished_at": "t", "seconds": 0.0} for i in range(200)])
    data = bytearray(good.read_bytes())
    del data[min(cut, len(data)):]
    for offset, byte in flips:
        if offset < len(data):
            data[offset] = byte
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(bytes(data))
    for sidecar in ("-wal", "-shm"):
        (tmp_path / f"damaged.db{sidecar}").unlink(missing_ok=True)
    try:
        with ResultStore(damaged, readonly=True) as store:
            store.table()
    except ValueError as error:
        assert str(error).startswith(f"db: {damaged}") and "\n" not in str(error)
    except sqlite3.DatabaseError:
        pass  # damage past what quick_check reads: the command line turns it into one line
    assert damaged.read_bytes() == bytes(data)
