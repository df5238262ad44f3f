"""The accuracy metric in sweeps: accuracy_cosine as an objective next to the model's metrics."""

import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

from peforge.sim.explore.points import build_accelerator, make_task, model_version
from peforge.sim.explore.results import ResultStore
from peforge.sim.explore.search import accuracy_specs, run_sweep
from peforge.sim.explore.spec import load_sweep
from peforge.sim.numerics.accuracy import SENTENCES, _cache_path, arith_spec
from peforge.sim.numerics.arith import ArithError
from peforge.sim.numerics.study import measure, measure_seconds

SWEEP = """\
name: accuracy
workloads:
  workload: layers.csv
families:
  systolic:
    pe.bits: [4, 8]
    pe.rows: [4, 8]
  lmul:
    pe.lanes: [4]
objectives: {accuracy_cosine: max, energy_pj: min}
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("accuracy")
    (tmp_path / "layers.csv").write_text("layer, M, N, K\ng1, 64, 96, 128\n")
    (tmp_path / "s.yaml").write_text(textwrap.dedent(SWEEP))
    sweep = load_sweep(tmp_path / "s.yaml")
    run_sweep(sweep, tmp_path / "r.db", workers=1, quiet=True)
    with ResultStore(tmp_path / "r.db") as store:
        return sweep, store.table()


def test_spec_of_a_configuration_names_the_arithmetic_parameters_only():
    small = build_accelerator({"family": "systolic", "pe.rows": 4, "pe.bits": 4})
    large = build_accelerator({"family": "systolic", "pe.rows": 32, "pe.bits": 4})
    assert arith_spec("systolic", small.pe) == arith_spec("systolic", large.pe) == (
        "systolic:pe=int+format=bf16+bits=4+signed=true+k_max=4096+acc_bits=20")
    split = build_accelerator({"family": "systolic", "pe.pe": "fp", "pe.add_stages": 1})
    assert arith_spec("systolic", split.pe) == (
        "systolic:pe=fp+format=bf16+bits=8+signed=true+k_max=4096+add_stages=1")
    sparse = build_accelerator({"family": "sparse-dsp", "pe.nm": "1:4"})
    assert arith_spec("sparse-dsp", sparse.pe) == "sparse-dsp:nm=1:4+bits=8+acc_bits=48+overflow=wrap"
    with pytest.raises(ArithError, match="family lmul computes no whole GEMM"):
        arith_spec("lmul", build_accelerator({"family": "lmul"}).pe)


def test_sweep_stores_the_accuracy_of_each_points_arithmetic(swept):
    """Each ok row's accuracy_cosine is the mean cosine `peforge numerics` measures for the
    point's spec (same for both array sizes); int8 is far closer to float32 than int4."""
    sweep, table = swept
    assert sweep.optional_metrics == ("accuracy_cosine",)
    ok = table[table["status"] == "ok"]
    assert len(ok) == 4
    for bits in (4, 8):
        rows = ok[ok["pe.bits"] == bits]
        spec = arith_spec("systolic", build_accelerator({"family": "systolic",
                                                         "pe.bits": bits}).pe)
        expected = measure(spec, "all", SENTENCES).cosine_mean
        assert list(rows["accuracy_cosine"]) == [expected, expected]
    assert (ok[ok["pe.bits"] == 8]["accuracy_cosine"].iloc[0]
            > 0.98 > 0.5 > ok[ok["pe.bits"] == 4]["accuracy_cosine"].iloc[0])


def test_a_family_without_numerics_fails_its_points_with_the_reason(swept):
    _sweep, table = swept
    (error,) = table[table["family"] == "lmul"]["error"]
    assert error.startswith("ArithError: accuracy: family lmul computes no whole GEMM")


def test_rows_with_the_accuracy_metric_have_keys_of_their_own(swept):
    sweep, _table = swept
    values = next(sweep.points())
    plain = make_task(values, sweep.workloads, "model")
    with_accuracy = make_task(values, sweep.workloads, "model", sweep.optional_metrics)
    assert plain.point != with_accuracy.point and set(plain.keys).isdisjoint(with_accuracy.keys)


# --- The dry run's estimate --------------------------------------------------------------------

def test_the_accuracy_specs_of_a_sweep_are_its_distinct_arithmetics(tmp_path):
    """pe.rows does not change the arithmetic, lmul has none: two specs for four systolic points
    (the accumulator's default width is 2 x bits + log2(k_max))."""
    (tmp_path / "layers.csv").write_text("layer, M, N, K\ng1, 64, 96, 128\n")
    (tmp_path / "s.yaml").write_text(SWEEP)
    assert accuracy_specs(load_sweep(tmp_path / "s.yaml")) == (
        "systolic:pe=int+format=bf16+bits=4+signed=true+k_max=4096+acc_bits=20",
        "systolic:pe=int+format=bf16+bits=8+signed=true+k_max=4096+acc_bits=28")


def test_measure_seconds_estimates_the_measurement():
    """Within a factor of 3 of the measurement it estimates (timings on a shared machine)."""
    estimate = measure_seconds("systolic:bits=8", "all", 3)
    started = time.perf_counter()
    measure("systolic:bits=8", "all", 3)
    assert 1 / 3 < estimate / (time.perf_counter() - started) < 3


ESTIMATE = re.compile(r"^estimated time: (\d+\.\d) s = (\d+\.\d) s for the points on 1 workers "
                      r"\(the model timed on \d+ points here\) \+ (\d+\.\d) s for the accuracy of "
                      r"2 arithmetics \((\d) cached; one measurement each, not shared among "
                      r"workers\); nothing was run, (.+) is unchanged$")


def _dry_run(folder, cache, sweep_text):
    """The estimate line of ``peforge sweep --dry-run`` with ``$PEFORGE_CACHE`` at ``cache``."""
    (folder / "s.yaml").write_text(sweep_text)
    done = subprocess.run([sys.executable, "-m", "peforge.sim.cli", "sweep", str(folder / "s.yaml"),
                           "--db", str(folder / "r.db"), "--dry-run", "--workers", "1"],
                          capture_output=True, text=True,
                          env={**os.environ, "PEFORGE_CACHE": str(cache)})
    assert done.returncode == 0, done.stderr
    assert not (folder / "r.db").exists()
    return done.stdout.splitlines()[1]


def test_the_dry_run_adds_the_accuracy_of_each_uncached_arithmetic(tmp_path, monkeypatch):
    """Without the accuracy objective the estimate is the points' alone; with it, the printed
    total is the points' part plus the accuracy's, which is 0 once the cache holds both specs."""
    (tmp_path / "layers.csv").write_text("layer, M, N, K\ng1, 64, 96, 128\n")
    plain = _dry_run(tmp_path, tmp_path / "cache", SWEEP.replace("accuracy_cosine: max, ", ""))
    assert plain.startswith("estimated time: ") and "accuracy" not in plain
    assert " s on 1 workers (the model timed on " in plain
    line = _dry_run(tmp_path, tmp_path / "cache", SWEEP)
    total, points, accuracy, cached, db = ESTIMATE.match(line).groups()
    assert float(total) == pytest.approx(float(points) + float(accuracy), abs=1e-9)
    assert float(accuracy) >= 1.0 and cached == "0" and db == str(tmp_path / "r.db")
    monkeypatch.setenv("PEFORGE_CACHE", str(tmp_path / "cache"))
    for spec in accuracy_specs(load_sweep(tmp_path / "s.yaml")):
        path = _cache_path(spec, model_version())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('{"accuracy_cosine": 0.5}')
    line = _dry_run(tmp_path, tmp_path / "cache", SWEEP)
    total, points, accuracy, cached, _db = ESTIMATE.match(line).groups()
    assert (accuracy, cached, total) == ("0.0", "2", points)
