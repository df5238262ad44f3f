"""The bulk path (generated C++ harness + driver replay) gives what the beat-by-beat cocotb bench
gives, job for job, on every family; and both equal the golden and cycle models."""

import numpy as np
import pytest

from peforge.sim.families import families, family
from peforge.sim.rtl.bulk import BulkError, ReplayPorts, run_jobs_bulk
from peforge.sim.rtl.flow import generate, verify
from peforge.sim.rtl.harness import build_harness, stream_widths
from tests.conftest import assert_jobs_exact, run_jobs

#: One small configuration per family (a few seconds of C++ compile each).
SMALL = {"systolic": {"rows": 3, "cols": 2, "dataflow": "ws"}, "bitserial": {"rows": 2, "cols": 2},
         "lut": {"n": 8}, "sparse-dsp": {"chain": 4}, "lmul": {"lanes": 4},
         "lmul-dot": {"lanes": 4}}


def _bulk(fam, config, jobs):
    verilog, _ = generate(fam, config)
    return run_jobs_bulk(fam, config, jobs, build_harness(verilog, fam.top_name))


@pytest.mark.verilator
@pytest.mark.parametrize("name", sorted(families()))
def test_bulk_equals_cocotb_and_models(name):
    fam = family(name)
    config = fam.make_config(**SMALL[name])
    jobs = fam.make_jobs(config, np.random.default_rng(3), "quick")
    bulk = _bulk(fam, config, jobs)
    cocotb = run_jobs("verilator", fam, config, jobs)
    assert [cycles for _, cycles in bulk.results] == [cycles for _, cycles in cocotb]
    for (got, _), (want, _) in zip(bulk.results, cocotb):
        assert got.keys() == want.keys()
        for key in want:
            assert np.array_equal(np.asarray(got[key], dtype=object),
                                  np.asarray(want[key], dtype=object))
    assert_jobs_exact(fam, config, jobs, bulk.results)


@pytest.mark.verilator
def test_fixed_point_takes_one_run_per_dependent_k_block():
    """Output-stationary beats depend on the job only: one harness run. Weight-stationary beats
    carry the previous K block's partial sums: K = 7 on 3 rows is 3 blocks, 3 runs."""
    fam = family("systolic")
    rng = np.random.default_rng(5)
    for dataflow, runs in (("os", 1), ("ws", 3)):
        config = fam.make_config(rows=3, cols=2, dataflow=dataflow)
        job = fam.job_from_arrays({"a": rng.integers(1, 100, (4, 7)),
                                   "b": rng.integers(1, 100, (7, 3))})
        bulk = _bulk(fam, config, [job])
        assert bulk.passes == runs
        assert_jobs_exact(fam, config, [job], bulk.results)
        # the last run's trace covers reset-free job cycles: first beat to last output, exactly
        assert bulk.cycles == bulk.results[0][1]


def test_replay_refuses_ports_outside_the_streams():
    ports = ReplayPorts()
    ports.start_job()
    with pytest.raises(BulkError, match="driver sets mode: the bulk path plays only i_stream"):
        ports.set("mode", 1)
    with pytest.raises(BulkError, match="driver reads status: the bulk path records only"):
        ports.get("status")


def test_stream_widths_read_from_the_top_module():
    verilog = ("module other(a);\n  input [99:0] i_stream__payload;\nendmodule\n"
               "module top(a);\n  input [609:0] i_stream__payload;\n"
               "  output o_stream__payload;\nendmodule\n")
    assert stream_widths(verilog, "top") == (610, 1)


@pytest.mark.verilator
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_32x32_full_gemm_with_ragged_edges(dataflow):
    """A 32 x 32 array (shared-PE Verilog) on a GEMM that leaves partial tiles in M, K and N."""
    fam = family("systolic")
    config = fam.make_config(rows=32, cols=32, dataflow=dataflow)
    report = verify(fam, config, backend="bulk", shapes=[(70, 100, 45)])
    assert [(job.outputs_match, job.cycles == job.model_cycles) for job in report.jobs] == \
        [(True, True)]


@pytest.mark.verilator
def test_shared_bitserial_array_runs_bit_exact():
    """The bit-serial array from shared parts (the form of 16 x 16 and up) on ragged GEMMs, with
    mixed weight types: outputs and cycles equal the golden and cycle models."""
    fam = family("bitserial")
    config = fam.make_config(rows=3, cols=2)
    verilog, _ = generate(fam, config, hierarchical=True)
    assert "bitserial_pe pe_2_1 (" in verilog
    jobs = [fam.random_job(config, np.random.default_rng(seed), *shape)
            for seed, shape in enumerate([(4, 256, 3), (1, 384, 5), (7, 128, 1)])]
    bulk = run_jobs_bulk(fam, config, jobs, build_harness(verilog, fam.top_name))
    assert_jobs_exact(fam, config, jobs, bulk.results)
