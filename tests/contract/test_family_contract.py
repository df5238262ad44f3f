"""What the README promises of every family, checked for each one the registry holds (and the
example family of this folder): a validated configuration with clear errors, the documented
ports, a golden model equal to a plain reference, a cycle model equal to the RTL, a latency text
equal to the cycle model, jobs that survive a file, and an energy configuration that generates.

A new family needs no new test here: it is checked once it is registered (and has a plain
reference in :mod:`tests.contract.references`).
"""

import dataclasses
import itertools

import numpy as np
import pytest

from peforge.hw.common.verilog import port_table, to_verilog
from peforge.models.params import config_dict
from peforge.sim.families import Job, evaluate_latency

from tests.conftest import assert_jobs_exact, run_jobs
from tests.contract.references import REFERENCES

#: Small GEMM shapes for the golden models and the RTL runs.
SMALL_SHAPES = [(1, 1, 1), (2, 3, 4), (3, 9, 2)]


def _configs(fam):
    """The default configuration and its reduced (energy) configuration."""
    default = fam.config()
    return [default, fam.energy_config(default)]


def _bad_values(spec):
    """Values the parameter's declaration rejects, derived from its range or choices."""
    if spec.range is not None:
        low, high = spec.range
        return [low - 1, high + 1, str(low), True, low + 0.5]
    if spec.choices is not None:
        first = spec.choices[0]
        return ["no-such-choice", 3] + ([f"{first},{first}", ""] if spec.multiple else [])
    return [1, "yes", None]


def _allowed_text(spec):
    """What the error must show of the allowed values."""
    if spec.range is not None:
        return [f"{spec.range[0]}..{spec.range[1]}"]
    if spec.choices is not None:
        return list(spec.choices)
    return ["true or false"]


# -- configuration ------------------------------------------------------------------------------

def test_config_is_frozen_and_every_field_declared(fam):
    config = fam.make_config()
    assert config == fam.config()
    names = [f.name for f in dataclasses.fields(fam.config)]
    assert list(fam.parameters()) == names
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(config, names[0], getattr(config, names[0]))


def test_unknown_parameter_is_named(fam):
    with pytest.raises(ValueError, match=rf"^no_such_knob: not a parameter of {fam.name} "):
        fam.make_config(no_such_knob=1)


def test_bad_value_of_each_parameter_names_field_and_range(fam):
    for name, (spec, _default) in fam.parameters().items():
        for bad in _bad_values(spec):
            with pytest.raises(ValueError) as error:
                fam.make_config(**{name: bad})
            message = str(error.value)
            assert message.startswith(f"{name}: must be "), message
            assert all(text in message for text in _allowed_text(spec)), message
            assert message.endswith(f"got {bad!r}"), message


# -- ports ---------------------------------------------------------------------------------------

def test_ports_are_the_documented_ones(fam):
    for config in _configs(fam):
        ports = {port["name"] for port in port_table(fam.generator(config))}
        assert ports - {"clk", "rst"} == set(fam.port_docs)
    assert all(meaning.strip() for meaning in fam.port_docs.values())


# -- jobs and the golden model -------------------------------------------------------------------

def test_golden_equals_plain_reference(fam):
    reference = REFERENCES.get(fam.name)
    if reference is None:
        pytest.fail(f"{fam.name}: no plain reference; add one to tests/contract/references.py")
    rng = np.random.default_rng(5)
    for config in _configs(fam):
        for shape in SMALL_SHAPES:
            job = fam.random_job(config, rng, *shape)
            got, want = fam.golden(config, job), reference(config, job)
            assert got.keys() == want.keys()
            for name in want:
                assert np.asarray(got[name]).tolist() == np.asarray(want[name]).tolist(), (
                    f"{fam.name} {shape}: {name}")


def test_jobs_are_frozen_records_that_survive_a_file(fam):
    config = fam.config()
    rng = np.random.default_rng(6)
    for m, k, n in SMALL_SHAPES:
        job = fam.random_job(config, rng, m, k, n)
        assert isinstance(job, fam.job_type) and isinstance(job, Job)
        # the job's GEMM: this one, or (a bank of multipliers) as many products
        shape = fam.job_shape(job)
        assert shape == (m, k, n) or shape == (m * k * n, 1, 1)
        assert fam.gemm_cycles(config, *shape) == fam.gemm_cycles(config, m, k, n)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(job, next(iter(job.arrays())), None)
        plain = {name: np.asarray(value).tolist() for name, value in job.arrays().items()}
        copied = fam.job_from_arrays({name: np.array(value) for name, value in plain.items()})
        assert type(copied) is type(job) and fam.job_shape(copied) == shape
        assert {name: value.tolist() for name, value in copied.arrays().items()} == plain


# -- cycle model ---------------------------------------------------------------------------------

def test_latency_text_is_the_cycle_model(fam):
    dims = (1, 2, 3, 5, 8, 13, 64, 100, 257)
    for config in _configs(fam):
        text = fam.latency(config)
        for m, k, n in itertools.product(dims, repeat=3):
            assert evaluate_latency(text, m, k, n) == fam.gemm_cycles(config, m, k, n), (
                f"{text} at {m} x {k} x {n}")


def test_cycle_model_broadcasts_over_shapes(fam):
    config = fam.config()
    m, k, n = np.array([1, 4, 9]), np.array([[1], [7]]), 3
    grid = fam.gemm_cycles(config, m, k, n)
    assert grid.shape == (2, 3)
    assert grid.tolist() == [[fam.gemm_cycles(config, int(mm), int(kk), n) for mm in m]
                             for kk in k[:, 0]]


def test_a_measured_weight_never_makes_a_gemm_faster_than_assumed(fam):
    """:meth:`Family.run_config`: unknown sparsity keeps the configuration; a measured dense
    weight gives a configuration of the family that takes at least as many cycles."""
    from peforge.sim.perf.workloads.weight_sparsity import measure_sparsity

    config = fam.config()
    assert fam.run_config(config, None) == config
    run = fam.run_config(config, measure_sparsity(np.ones((64, 8))))
    assert isinstance(run, fam.config)
    assert fam.gemm_cycles(run, 8, 64, 8) >= fam.gemm_cycles(config, 8, 64, 8)


def test_cycle_model_rejects_empty_dimensions(fam):
    for name in "mkn":
        dims = {"m": 2, "k": 3, "n": 4, name: 0}
        with pytest.raises(ValueError, match=rf"^{name}: (GEMM )?dimensions must be >= 1, got 0$"):
            fam.gemm_cycles(fam.config(), **dims)


def test_rtl_equals_golden_and_cycle_model_amaranth(fam):
    """The family's own verification jobs on the reduced configuration, Amaranth's simulator:
    bit-exact, and measured cycles equal to :meth:`job_cycles` (for a data-paced family, at most
    :meth:`gemm_cycles` of the shape)."""
    config = _configs(fam)[1]
    jobs = fam.make_jobs(config, np.random.default_rng(0), "quick")
    results = run_jobs("amaranth", fam, config, jobs)
    assert_jobs_exact(fam, config, jobs, results)
    for job, (_outputs, cycles) in zip(jobs, results):
        bound = fam.gemm_cycles(config, *fam.job_shape(job))
        assert cycles <= bound if fam.data_paced else cycles == bound


@pytest.mark.verilator
def test_rtl_equals_golden_and_cycle_model_verilator(fam):
    """Small random jobs, back to back in one Verilator run of the reduced configuration."""
    config = _configs(fam)[1]
    rng = np.random.default_rng(1)
    jobs = [fam.random_job(config, rng, *shape) for shape in SMALL_SHAPES]
    assert_jobs_exact(fam, config, jobs, run_jobs("verilator", fam, config, jobs))


# -- energy ----------------------------------------------------------------------------------

def test_energy_configuration_generates(fam):
    config = fam.config()
    small = fam.energy_config(config)
    assert isinstance(small, fam.config)
    assert fam.make_config(**config_dict(small)) == small
    assert 1 <= fam.pes(small) <= fam.pes(config)
    shape = fam.energy_shape(small)
    assert len(shape) == 3 and all(isinstance(d, int) and d >= 1 for d in shape)
    verilog = to_verilog(fam.generator(small), fam.top_name)
    assert f"module {fam.top_name}(" in verilog
