"""Large designs verified bit-exact and cycle-exact on the bulk path (``make test-all``): 64 x 64
and 128 x 128 systolic arrays (int8 OS and WS, and the L-Mul bf16 PE) on GEMMs with K >= 1024,
and every other family at the largest size its parameters document."""

import pytest

from peforge.sim.families import family
from peforge.sim.rtl.flow import verify

pytestmark = [pytest.mark.slow, pytest.mark.verilator]


def _passes(name, shapes, **config):
    fam = family(name)
    report = verify(fam, fam.make_config(**config), backend="bulk", shapes=shapes)
    assert [(job.outputs_match, job.cycles, job.model_cycles) for job in report.jobs] == \
        [(True, job.model_cycles, job.model_cycles) for job in report.jobs]


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("pe", [{"dataflow": "os"}, {"dataflow": "ws"},
                                {"dataflow": "os", "pe": "lmul", "format": "bf16"}],
                         ids=["int8-os", "int8-ws", "lmul-bf16-os"])
def test_large_systolic_array_on_a_long_gemm(size, pe):
    # ragged in M and N, K of 1024 (8 or 16 K blocks for ws)
    _passes("systolic", [(size + 3, 1024, size - 5)], rows=size, cols=size, **pe)


def test_shared_split_accumulator_array():
    """32 x 32 exact bf16 PEs with both registers (1,024 PEs: the shared form, its PE with the
    ``combine`` port): ragged, K odd."""
    _passes("systolic", [(35, 257, 29)], rows=32, cols=32, pe="fp", mul_stages=1, add_stages=1)


@pytest.mark.parametrize("name, config, shape", [
    ("bitserial", {"rows": 64, "cols": 64, "lanes": 16}, (67, 1024, 61)),
    ("lut", {"m": 8, "n": 128}, (9, 1024, 130)),
    ("sparse-dsp", {"chain": 32}, (5, 1024, 7)),
    ("lmul", {"lanes": 64}, (9, 1024, 3)),
    ("lmul-dot", {"lanes": 64}, (9, 1024, 3)),
], ids=lambda value: value if isinstance(value, str) else None)
def test_other_families_at_their_largest_size(name, config, shape):
    _passes(name, [shape], **config)
