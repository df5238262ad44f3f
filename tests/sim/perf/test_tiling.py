"""The legal mappings, their traffic and lower bounds (peforge.sim.perf.tiling) against plain
references (the SRAM rule, a tile-by-tile walk, the simulated cycles), the mapper
(peforge.sim.perf.mapper) against exhaustive simulation and for monotonicity, and the cycle models
on numpy arrays against their scalar calls."""

import itertools
import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from peforge.models.bitserial import BitserialConfig
from peforge.models.integer import ceil_div, check_dims
from peforge.models.lmul import DotConfig, MultiplierConfig
from peforge.models.lut import LutConfig
from peforge.models.sparse_dsp import SparseDspConfig
from peforge.models.systolic import SystolicConfig
from hypothesis import given, settings, strategies as st

from peforge.sim.perf import mapper, model as perf, tiling
from peforge.sim.perf.accelerator import Accelerator, Dram, Sram
from peforge.sim.families import family
from peforge.sim.perf.mapper import choose_mapping
from peforge.sim.perf.model import scalesim_compute_cycles
from peforge.sim.perf.pipeline import TimeUnits, simulate_recurrence, tile_steps
from peforge.sim.perf.tiling import Mapping, MappingError, legal_mappings, lower_bounds
from peforge.sim.perf.workloads import Gemm, workload_gemms


def _llama_shapes() -> list[Gemm]:
    shapes = {(g.m, g.k, g.n, g.a_bits, g.w_bits, g.out_bits)
              for phase in ("decode", "prefill")
              for g in workload_gemms("llama2-7b", phase=phase, seq=256)}
    return [Gemm("", m, k, n, a_bits=a, w_bits=w, out_bits=o)
            for m, k, n, a, w, o in sorted(shapes)]


#: LLaMA-2-7B decode and prefill (seq 256), ragged odd shapes, 4- and 3-bit operands whose
#: blocks have fractional bytes.
GEMMS = _llama_shapes() + [
    Gemm("", 1, 1, 1), Gemm("", 17, 33, 65), Gemm("", 100, 300, 50), Gemm("", 7, 5000, 3),
    Gemm("", 255, 4095, 11007), Gemm("", 129, 16, 1000), Gemm("", 33, 4097, 31),
    Gemm("", 256, 4096, 11008, a_bits=4, w_bits=4, out_bits=16),
    Gemm("", 61, 1023, 515, a_bits=8, w_bits=3, out_bits=24),
    Gemm("", 1, 11008, 4096, w_bits=4),
]

SMALL = Sram(size_kib=8, width_bytes=8, banks=1)
NARROW = Sram(size_kib=1024, width_bytes=3, banks=3)
ODD = Sram(size_kib=3, width_bytes=24, banks=3)
HUGE = Sram(size_kib=1 << 16, width_bytes=256, banks=8)

#: Every family, several timing modes, SRAM sizes, port widths and banks, DRAM bandwidths
#: (ideal included).
ACCELERATORS = [
    Accelerator("systolic", SystolicConfig(rows=32, cols=16)),
    Accelerator("systolic", SystolicConfig(rows=8, cols=64, dataflow="ws"),
                input_sram=SMALL, weight_sram=ODD, dram=Dram(bytes_per_cycle=3.3)),
    Accelerator("systolic", SystolicConfig(rows=16, cols=16, bits=4), input_sram=HUGE,
                weight_sram=HUGE, output_sram=HUGE, dram=Dram(bytes_per_cycle=math.inf)),
    # A fast array behind narrow odd ports: port cycles with non-dyadic fractions dominate.
    Accelerator("systolic", SystolicConfig(rows=256, cols=256), input_sram=NARROW,
                weight_sram=NARROW, output_sram=Sram(size_kib=1024, width_bytes=5, banks=7)),
    *(Accelerator("systolic", SystolicConfig(rows=24, cols=40), timing=f"scalesim-{dataflow}",
                  weight_sram=Sram(size_kib=512, width_bytes=16, banks=2))
      for dataflow in ("os", "ws", "is")),
    Accelerator("bitserial", BitserialConfig(rows=8, cols=32, wtypes="fp4,int4,int8"),
                output_sram=ODD),
    Accelerator("bitserial", BitserialConfig(rows=32, cols=8, wtypes="fp4"),
                dram=Dram(bytes_per_cycle=math.inf)),
    Accelerator("lut", LutConfig(m=2, n=128, wbits=1), input_sram=SMALL),
    Accelerator("lut", LutConfig(m=4, n=32, k=3, wbits=3), weight_sram=HUGE,
                dram=Dram(bytes_per_cycle=100.0)),
    Accelerator("sparse-dsp", SparseDspConfig(chain=8, bits=4)),
    Accelerator("sparse-dsp", SparseDspConfig(chain=32, nm="1:8"), output_sram=SMALL),
    Accelerator("lmul", MultiplierConfig(lanes=64, format="bf16"), input_sram=ODD,
                output_sram=Sram(size_kib=1, width_bytes=4)),
    Accelerator("lmul-dot", DotConfig(lanes=16), dram=Dram(bytes_per_cycle=math.inf),
                input_sram=HUGE, weight_sram=HUGE, output_sram=HUGE),
]


# -- the references: legality, and traffic counted by walking the tiles ----------------------

def reference_legal(accel: Accelerator, gemm: Gemm) -> list[Mapping]:
    """Candidate sizes ``d`` and the powers of two from 16 below it; a tiling fits when twice
    its A block, W block and output tile fit the input, weight and output SRAMs; every order."""
    def sizes(dim):
        return sorted({dim} | {1 << p for p in range(4, dim.bit_length()) if 1 << p < dim})

    found = []
    for tm in sizes(gemm.m):
        for tn in sizes(gemm.n):
            for tk in sizes(gemm.k):
                if (2 * tm * tk * (gemm.a_bits / 8) <= accel.input_sram.size_bytes
                        and 2 * tk * tn * (gemm.w_bits / 8) <= accel.weight_sram.size_bytes
                        and 2 * tm * tn * (gemm.out_bits / 8) <= accel.output_sram.size_bytes):
                    found += [Mapping(tm, tk, tn, order) for order in
                              ("mnk", "nmk", "mkn", "kmn", "nkm", "knm")]
    return found


def walked_traffic(gemm: Gemm, mapping: Mapping) -> tuple[Fraction, Fraction, int, int]:
    """``(dram_read, dram_write, tiles, visits)`` (bytes, and transfers of each kind) by visiting
    the loop nest tile by tile: a block is loaded when the tile before used another one; an
    output tile is written when the next tile has another, read back when a tile comes back to
    it after K block 0."""
    blocks = {dim: -(-size // tile) for dim, size, tile in (
        ("m", gemm.m, mapping.tm), ("k", gemm.k, mapping.tk), ("n", gemm.n, mapping.tn))}
    extent = {"m": (gemm.m, mapping.tm), "k": (gemm.k, mapping.tk), "n": (gemm.n, mapping.tn)}

    def size(dim, index):
        total, tile = extent[dim]
        return min(tile, total - index * tile)

    steps = [dict(zip(mapping.order, index)) for index in
             itertools.product(*(range(blocks[dim]) for dim in mapping.order))]
    read = write = Fraction(0)
    visits = 0
    for number, at in enumerate(steps):
        before = steps[number - 1] if number else None
        after = steps[number + 1] if number + 1 < len(steps) else None
        m_size, k_size, n_size = size("m", at["m"]), size("k", at["k"]), size("n", at["n"])
        if before is None or (before["m"], before["k"]) != (at["m"], at["k"]):
            read += Fraction(m_size * k_size * gemm.a_bits, 8)
        if before is None or (before["k"], before["n"]) != (at["k"], at["n"]):
            read += Fraction(k_size * n_size * gemm.w_bits, 8)
        out = Fraction(m_size * n_size * gemm.out_bits, 8)
        if at["k"] and (before["m"], before["n"]) != (at["m"], at["n"]):
            read += out
        if after is None or (after["m"], after["n"]) != (at["m"], at["n"]):
            write += out
            visits += 1
    return read, write, len(steps), visits


ACCEL_IDS = [f"{index}-{accel.family}-{accel.timing}" for index, accel in enumerate(ACCELERATORS)]


@pytest.mark.parametrize("accel", ACCELERATORS, ids=ACCEL_IDS)
def test_legal_mappings_equal_the_scalar_reference(accel):
    for gemm in GEMMS:
        assert legal_mappings(accel, gemm) == reference_legal(accel, gemm)


#: Shapes small enough to walk every tile of every candidate.
WALKED = [Gemm("", 1, 1, 1), Gemm("", 17, 33, 65), Gemm("", 100, 300, 50), Gemm("", 7, 500, 3),
          Gemm("", 129, 16, 100), Gemm("", 61, 123, 95, a_bits=4, w_bits=3, out_bits=24),
          Gemm("", 40, 70, 33, out_bits=16)]


def test_closed_form_traffic_equals_walking_the_tiles_in_every_order():
    for gemm in WALKED:
        grid = tiling._grid_of(gemm)
        for (index, order), dram_bytes in np.ndenumerate(grid.dram_bytes):
            mapping = grid.mapping(index, order)
            read, write, tiles, visits = walked_traffic(gemm, mapping)
            traffic = mapper.traffic(gemm.shape, mapping)
            assert (traffic["dram_read"], traffic["dram_write"]) == (read, write), mapping
            assert dram_bytes == read + write
            assert grid.transfers[index, order] == tiles + visits


def test_orders_flagged_as_repeats_visit_an_earlier_orders_tiles_in_the_same_sequence():
    flagged = 0
    for gemm in WALKED:
        grid = tiling._grid_of(gemm)
        for index in range(grid.repeats.shape[0]):
            sequences = [list(tile_steps(gemm, grid.mapping(index, order)))
                         for order in range(len(tiling.ORDERS))]
            for order, sequence in enumerate(sequences):
                earlier = sequence in sequences[:order]
                assert grid.repeats[index, order] == earlier, (gemm, index, order)
                flagged += earlier
    assert flagged > 100


def test_the_orders_differ_in_traffic():
    """On a GEMM of several blocks in every dimension each order moves a different volume: A
    resident orders read A once and spill outputs, W resident ones read W once."""
    gemm = Gemm("", 64, 64, 64)
    volumes = {order: mapper.traffic(gemm.shape, Mapping(16, 32, 16, order)) for order in
               tiling.ORDERS}
    a_total = w_total = 64 * 64
    o_total = 64 * 64 * 4
    # 4 x 2 x 4 blocks (m, k, n)
    assert volumes["mnk"]["dram_read"] == 4 * a_total + 4 * w_total
    assert volumes["mkn"]["dram_read"] == a_total + 4 * w_total + o_total
    assert volumes["mkn"]["dram_write"] == 2 * o_total
    assert volumes["knm"]["dram_read"] == 4 * a_total + w_total + o_total


@pytest.mark.parametrize("accel", ACCELERATORS[:8], ids=ACCEL_IDS[:8])
def test_lower_bounds_never_exceed_the_simulated_cycles(accel):
    tight = 0
    for gemm in WALKED + [Gemm("", 1, 4096, 4096), Gemm("", 256, 4096, 11008)]:
        tile_cycles, overlap = perf._tile_timing(accel, gemm)
        fitting, bounds, _repeats = lower_bounds(accel, gemm, tile_cycles, overlap)
        grid = tiling._grid_of(gemm)
        for (row, order), bound in np.ndenumerate(bounds):
            mapping = grid.mapping(fitting[row], order)
            cycles, _compute = simulate_recurrence(accel, gemm, mapping, tile_cycles, overlap)
            assert bound <= cycles * (1 + 1e-12), (gemm, mapping, bound, cycles)
            tight += bound > 0.9 * cycles
    assert tight > 0


def exhaustive(accel, gemm):
    """The best (cycles, listing index) over every legal mapping, each simulated."""
    tile_cycles, overlap = perf._tile_timing(accel, gemm)
    legal = legal_mappings(accel, gemm)
    scored = [(simulate_recurrence(accel, gemm, mapping, tile_cycles, overlap)[0], index)
              for index, mapping in enumerate(legal)]
    cycles, index = min(scored)
    return legal[index], cycles, len(legal)


@pytest.mark.parametrize("accel", ACCELERATORS, ids=ACCEL_IDS)
def test_branch_and_bound_finds_the_exhaustive_optimum(accel):
    for gemm in WALKED + [Gemm("", 1, 4096, 4096), Gemm("", 33, 4097, 31)]:
        if not legal_mappings(accel, gemm):
            with pytest.raises(MappingError, match="^buffers: no tile of a"):
                perf.simulate_gemm(accel, gemm)
            continue
        tile_cycles, overlap = perf._tile_timing(accel, gemm)
        choice = choose_mapping(accel, gemm, tile_cycles, overlap, "recurrence")
        mapping, cycles, legal = exhaustive(accel, gemm)
        assert (choice.mapping, choice.cycles) == (mapping, cycles)
        assert choice.simulated + choice.pruned == legal and choice.simulated >= 1


@pytest.mark.parametrize("output_kib, bandwidth, shape, order", [
    (4, 8.0, (512, 512, 2048), "mkn"),  # A resident: A read once, W many times, sums spill
    (2, 2.0, (2048, 512, 64), "nkm"),  # W resident
])
def test_the_mapper_beats_k_innermost_with_a_resident_operand(output_kib, bandwidth, shape,
                                                               order):
    """With a 4 KiB weight SRAM and a small output SRAM, tiles are thin: reading the large
    operand once and spilling partial sums beats every K-innermost mapping."""
    accel = Accelerator("systolic", SystolicConfig(rows=16, cols=16),
                        input_sram=Sram(size_kib=64), weight_sram=Sram(size_kib=4),
                        output_sram=Sram(size_kib=output_kib),
                        dram=Dram(bytes_per_cycle=bandwidth))
    gemm = Gemm("", *shape)
    result = perf.simulate_gemm(accel, gemm)
    assert result.mapping.order == order
    tile_cycles, overlap = perf._tile_timing(accel, gemm)
    k_innermost = min(simulate_recurrence(accel, gemm, mapping, tile_cycles, overlap)[0]
                      for mapping in legal_mappings(accel, gemm) if mapping.order[-1] == "k")
    assert result.cycles < k_innermost


def test_a_gemm_too_large_to_map_exactly_is_refused():
    accel = Accelerator("systolic", SystolicConfig())
    with pytest.raises(MappingError, match=r"^gemm: 4000000000x4000000000x4000000000 is "
                                           r"6.4e\+28 MACs, at or above the 2\*\*62"):
        perf.simulate_gemm(accel, Gemm("huge", 4 * 10**9, 4 * 10**9, 4 * 10**9))
    # Just below the limit the grid is exact: a single row of a huge GEMM maps and runs.
    result = perf.simulate_gemm(accel, Gemm("row", 1, 2**20, 2**20))
    assert result.dram_read_bytes >= 2**40


@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data())
def test_more_sram_or_dram_bandwidth_never_costs_cycles(data):
    """On random accelerators and GEMMs, growing any one SRAM or the DRAM bandwidth never
    increases the chosen mapping's cycles (the choice is optimal over a superset, and each
    mapping's cycles are monotone in every transfer time)."""
    name = data.draw(st.sampled_from(["systolic", "lut", "sparse-dsp", "bitserial"]))
    kib = st.sampled_from([1, 2, 4, 8, 32, 128])
    accel = Accelerator(name, family(name).config(), input_sram=Sram(size_kib=data.draw(kib)),
                        weight_sram=Sram(size_kib=data.draw(kib)),
                        output_sram=Sram(size_kib=data.draw(kib)),
                        dram=Dram(bytes_per_cycle=data.draw(st.sampled_from([0.5, 3.2, 25.6])),
                                  latency_cycles=data.draw(st.sampled_from([0, 7, 100]))))
    gemm = Gemm("g", *(data.draw(st.integers(1, 300)) for _ in range(3)))
    try:
        base = perf.simulate_gemm(accel, gemm).cycles
    except MappingError:
        return
    factor = data.draw(st.sampled_from([2, 3, 16]))
    grown = [replace(accel, **{name: replace(getattr(accel, name), size_kib=getattr(
                 accel, name).size_kib * factor)}) for name in ("input_sram", "weight_sram",
                                                                 "output_sram")]
    grown.append(replace(accel, dram=replace(accel.dram, bytes_per_cycle=accel.dram.bytes_per_cycle
                                             * factor)))
    for bigger in grown:
        assert perf.simulate_gemm(bigger, gemm).cycles <= base, bigger


@pytest.mark.parametrize("accel", ACCELERATORS[:4], ids=ACCEL_IDS[:4])
def test_vectorised_port_cycles_are_the_pipelines_exact_ones_rounded(accel):
    # The pipeline's port time of a first K step is exact; one float division rounds it.
    units = TimeUnits.of(accel)
    for gemm in GEMMS:
        grid = tiling._grid_of(gemm)
        port = tiling._port_cycles((accel.input_sram.bytes_per_cycle,
                                    accel.weight_sram.bytes_per_cycle,
                                    accel.output_sram.bytes_per_cycle), grid)
        for (a, b, c), value in np.ndenumerate(port):
            sizes = (int(grid.sm[a, 0, 0]), int(grid.sk[0, 0, c]), int(grid.sn[0, b, 0]))
            widths = (gemm.a_bits, gemm.w_bits, gemm.out_bits)
            assert value == float(Fraction(units.busy(widths, sizes, 0, True), units.per_cycle))


def test_the_grid_is_cached_per_shape_and_read_only():
    grid = tiling._grid_of(Gemm("a", 256, 4096, 11008))
    assert tiling._grid_of(Gemm("b", 256, 4096, 11008, count=3)) is grid
    with pytest.raises(ValueError, match="read-only"):
        grid.tiles[0, 0, 0] = 0


# -- cycle models on arrays -------------------------------------------------------------------

#: ``(family, configuration, w_bits)``: each family, pace-changing options and weight widths.
CYCLE_MODELS = [
    ("systolic", SystolicConfig(rows=5, cols=7), None),
    ("systolic", SystolicConfig(rows=16, cols=3, dataflow="ws"), None),
    ("bitserial", BitserialConfig(rows=4, cols=8, lanes=2, group=16), None),
    ("bitserial", BitserialConfig(rows=4, cols=8, lanes=2, group=16), 4),
    ("bitserial", BitserialConfig(rows=3, cols=5, wtypes="int6,int8", group=32), 6),
    ("lut", LutConfig(m=3, n=10, k=3, wbits=4), None),
    ("sparse-dsp", SparseDspConfig(chain=8, nm="1:4"), None),
    ("sparse-dsp", SparseDspConfig(chain=5, nm="4:4", preg=0), None),
    ("lmul", MultiplierConfig(lanes=7), None),
    ("lmul-dot", DotConfig(lanes=3), None),
]


def _shape_arrays(rng):
    """Broadcasting ``m`` (P, 1, 1), ``k`` (1, 1, R), ``n`` (1, Q, 1) with ragged sizes."""
    m, k, n = (rng.integers(1, 300, size) for size in (6, 9, 7))
    return m[:, None, None], k[None, None, :], n[None, :, None]


@pytest.mark.parametrize("name, config, w_bits", CYCLE_MODELS)
def test_family_cycles_on_arrays_equal_the_scalar_calls(name, config, w_bits):
    fam = family(name)
    m, k, n = _shape_arrays(np.random.default_rng(7))
    cycles = fam.gemm_cycles(config, m, k, n, w_bits)
    assert cycles.shape == (6, 7, 9) and cycles.dtype == np.int64
    for (i, j, l), value in np.ndenumerate(cycles):
        scalar = fam.gemm_cycles(config, int(m[i, 0, 0]), int(k[0, 0, l]), int(n[0, j, 0]),
                                 w_bits)
        assert type(scalar) is int and value == scalar


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_scalesim_cycles_on_arrays_equal_the_scalar_calls(dataflow):
    m, k, n = _shape_arrays(np.random.default_rng(11))
    cycles = scalesim_compute_cycles(dataflow, 12, 20, m, k, n)
    for (i, j, l), value in np.ndenumerate(cycles):
        scalar = scalesim_compute_cycles(dataflow, 12, 20, int(m[i, 0, 0]), int(k[0, 0, l]),
                                         int(n[0, j, 0]))
        assert type(scalar) is int and value == scalar


@pytest.mark.parametrize("name, config, w_bits", CYCLE_MODELS)
def test_family_cycles_reject_an_array_with_a_zero_dimension(name, config, w_bits):
    k = np.array([[[3, 0, 5]]])
    with pytest.raises(ValueError, match=r"^k: (GEMM )?dimensions must be >= 1, got 0$"):
        family(name).gemm_cycles(config, np.array([[[2]]]), k, np.array([[[4]]]), w_bits)


def test_ceil_div_is_exact_beyond_float_precision():
    a, b = 10**20 + 1, 10**10
    assert math.ceil(a / b) == 10**10  # the float quotient loses the remainder
    assert ceil_div(a, b) == 10**10 + 1 and type(ceil_div(a, b)) is int
    assert ceil_div(np.array([0, 1, 7, 8, 9]), 8).tolist() == [0, 1, 1, 1, 2]


def test_check_dims_names_the_first_bad_dimension_and_its_smallest_value():
    check_dims("GEMM dimensions", m=1, k=np.array([1, 2]), n=np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match="^n: GEMM dimensions must be >= 1, got -3$"):
        check_dims("GEMM dimensions", m=4, n=np.array([[2, -3, 0]]), k=0)


def test_legal_key_is_equal_exactly_when_the_same_tilings_fit():
    gemm = Gemm("g", 256, 4096, 1000)
    config = family("systolic").config()
    seen = {}
    for i, w, o in itertools.product((8, 64, 512), (16, 128, 1024), (8, 64)):
        accel = Accelerator("systolic", config, input_sram=Sram(size_kib=i),
                            weight_sram=Sram(size_kib=w), output_sram=Sram(size_kib=o))
        legal = tuple(legal_mappings(accel, gemm))
        seen.setdefault(tiling.legal_key(accel, gemm), set()).add(legal)
    assert all(len(sets) == 1 for sets in seen.values())
    assert len({next(iter(sets)) for sets in seen.values()}) == len(seen) > 3


@pytest.mark.parametrize("objective", ["energy", "edp"])
def test_energy_objectives_find_the_exhaustive_optimum(objective):
    """The energy bound (PE and DRAM energy, leakage over the bound cycles) prunes soundly: the
    choice is the best of every legal mapping simulated and costed."""
    accel = Accelerator("systolic", SystolicConfig(rows=8, cols=8), input_sram=Sram(16),
                        weight_sram=Sram(8), output_sram=Sram(8), dram=Dram(bytes_per_cycle=4.0))
    for gemm in (Gemm("", 64, 128, 96), Gemm("", 1, 512, 300), Gemm("", 100, 30, 70)):
        tile_cycles, overlap = perf._tile_timing(accel, gemm)
        energy = perf._energy_terms(accel, gemm)[3]
        scores = []
        for index, mapping in enumerate(legal_mappings(accel, gemm)):
            cycles = simulate_recurrence(accel, gemm, mapping, tile_cycles, overlap)[0]
            pj = energy(mapping, cycles)
            scores.append((pj if objective == "energy" else pj * cycles, index, mapping))
        best = min(scores)
        result = perf.simulate_gemm(accel, gemm, objective=objective)
        assert result.mapping == best[2]
        assert result.simulated < len(scores)
    cycles_choice = perf.simulate_gemm(accel, Gemm("", 64, 128, 96))
    assert cycles_choice.cycles <= perf.simulate_gemm(accel, Gemm("", 64, 128, 96),
                                                      objective="energy").cycles
