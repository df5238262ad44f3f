"""The tile pipeline: the recurrence engine gives the simpy reference's times exactly."""

import math
import random
from dataclasses import replace
from fractions import Fraction

import pytest

from peforge.models.systolic import SystolicConfig, gemm_cycles
from peforge.sim.perf import model as perf
from peforge.sim.perf.accelerator import Accelerator, Dram, Sram
from peforge.sim.families import family
from peforge.sim.perf.pipeline import ENGINES, TimeUnits, simulate_events, simulate_recurrence
from peforge.sim.perf.tiling import Mapping
from peforge.sim.perf.workloads import Gemm

BIG = Sram(size_kib=1 << 20, width_bytes=1 << 20)


def _random_accelerator(rng: random.Random) -> Accelerator:
    name = rng.choice(["systolic", "lut", "bitserial", "sparse-dsp"])
    fam = family(name)

    # A third are tiled but never wait for memory: ideal DRAM, wide SRAM ports.
    ideal = rng.random() < 1 / 3

    def sram():
        return Sram(size_kib=rng.choice([1, 2, 4, 16, 64]),
                    width_bytes=1 << 20 if ideal else rng.choice([1, 16, 256]),
                    banks=rng.choice([1, 2, 3]))

    dram = (Dram(bytes_per_cycle=math.inf, latency_cycles=0) if ideal else
            Dram(bytes_per_cycle=rng.choice([math.inf, 0.5, 3.2, 12.8, 25.6, 1000.0]),
                 latency_cycles=rng.choice([0, 7, 100]),
                 beat_bytes=rng.choice([None, None, 8, 64])))
    return Accelerator(name, fam.config(), input_sram=sram(), weight_sram=sram(),
                       output_sram=sram(), dram=dram)


def _random_gemm(rng: random.Random) -> Gemm:
    return Gemm("g", *(rng.choice([1, 3, 16, 40, 100, 257]) for _ in range(3)),
                a_bits=rng.choice([4, 8]), w_bits=rng.choice([2, 4, 8]),
                out_bits=rng.choice([16, 32]))


def _tiles(gemm: Gemm, mapping) -> int:
    return math.prod(math.ceil(dim / size) for dim, size in
                     ((gemm.m, mapping.tm), (gemm.k, mapping.tk), (gemm.n, mapping.tn)))


def test_recurrence_equals_the_simpy_reference_on_every_mapping():
    rng = random.Random(9)
    compared = stalled = 0
    for _ in range(250):
        accel, gemm = _random_accelerator(rng), _random_gemm(rng)
        tile_cycles, overlap = perf._tile_timing(accel, gemm)
        for mapping in perf.legal_mappings(accel, gemm):
            if _tiles(gemm, mapping) > 1500:
                continue
            events = simulate_events(accel, gemm, mapping, tile_cycles, overlap)
            assert simulate_recurrence(accel, gemm, mapping, tile_cycles, overlap) == events, (
                accel, gemm, mapping)
            compared += 1
            stalled += events[0] > events[1]
    # The cases cover stalled and stall-free pipelines alike.
    assert stalled > 500 and compared - stalled > 500, (compared, stalled)


@pytest.mark.parametrize("shape", [(1, 4096, 4096), (256, 4096, 11008), (256, 11008, 4096),
                                   (256, 128, 256)])
def test_engines_agree_on_llama_shapes_through_simulate_gemm(shape):
    accel = Accelerator("systolic", SystolicConfig(rows=32, cols=16),
                        weight_sram=Sram(size_kib=128))
    gemm = Gemm("g", *shape, count=32)
    results = {engine: perf.simulate_gemm(accel, gemm, engine=engine) for engine in ENGINES}
    assert results["recurrence"] == results["simpy"]


def test_a_single_tile_takes_its_load_compute_and_write_back_exactly():
    # 16x16x16 at 8-bit operands: 512 B of A and W in, 1024 B of 32-bit outputs back. At
    # 25.6 B/cycle (128/5 exactly) that is 20 and 40 cycles plus 100 latency each.
    config = SystolicConfig(rows=16, cols=16)
    accel = Accelerator("systolic", config, input_sram=BIG, weight_sram=BIG, output_sram=BIG,
                        dram=Dram(bytes_per_cycle=25.6, latency_cycles=100))
    result = perf.simulate_gemm(accel, Gemm("g", 16, 16, 16))
    assert result.cycles == 120 + gemm_cycles(config, 16, 16, 16) + 140
    assert result.compute_cycles == gemm_cycles(config, 16, 16, 16)


def test_time_units_are_exact_for_decimal_bandwidths():
    accel = Accelerator("systolic", SystolicConfig(),
                        dram=Dram(bytes_per_cycle=25.6, latency_cycles=3))
    units = TimeUnits.of(accel)
    # 1 bit at 128/5 bytes per cycle, and at the 256-byte SRAM ports.
    assert Fraction(units.dram_per_bit, units.per_cycle) == Fraction(5, 128 * 8)
    assert all(Fraction(port, units.per_cycle) == Fraction(1, 256 * 8)
               for port in units.port_per_bit)
    assert units.transfer(8 * 256) == 3 * units.per_cycle + 10 * units.per_cycle
    assert units.cycles(units.per_cycle * 7 + 1) == 8


def test_unknown_engine_is_an_error():
    with pytest.raises(ValueError, match="engine: must be one of recurrence, simpy"):
        perf.simulate_gemm(Accelerator("systolic", SystolicConfig()), Gemm("g", 4, 4, 4),
                           engine="spice")


def test_cycles_ignore_clock_statistics_and_dram_type_and_share_one_simulation():
    gemm = Gemm("g", 64, 512, 96)
    base = Accelerator("systolic", SystolicConfig(rows=8, cols=8))
    others = [Accelerator("systolic", SystolicConfig(rows=8, cols=8), clock_mhz=500.0,
                          stats="uniform", dram=Dram(name="hbm2")),
              Accelerator("systolic", SystolicConfig(rows=8, cols=8), stats="zeros")]
    perf.clear_caches()
    first = perf.simulate_gemm(base, gemm)
    assert all(perf.simulate_gemm(other, gemm) == first for other in others)
    assert len(perf._results_by_inputs) == 1


def test_cli_sim_prints_the_same_table_with_either_engine(capsys, tmp_path):
    from peforge.sim.cli import main

    outputs = []
    for engine in ENGINES:
        csv = tmp_path / f"{engine}.csv"
        assert main(["sim", "--family", "lut", "--workload", "llama2-7b", "--phase", "prefill",
                     "--seq", "64", "--weight-kib", "64", "--engine", engine,
                     "--csv", str(csv)]) == 0
        outputs.append((capsys.readouterr().out.replace(str(csv), ""), csv.read_text()))
    assert outputs[0] == outputs[1]
    assert outputs[0][1].count("\n") == 11  # the header, 9 GEMMs and the total row


def test_results_shared_by_sram_sizes_equal_results_computed_afresh():
    # A sweep over SRAM sizes reuses a shape's result when the sizes admit the same tilings
    # (perf._results_by_inputs); each must equal the result of that accelerator alone.
    config = SystolicConfig(rows=16, cols=8)
    gemms = [Gemm("g", 1, 4096, 4096), Gemm("g", 256, 4096, 1000), Gemm("g", 100, 300, 77)]
    accels = [Accelerator("systolic", config, input_sram=Sram(size_kib=i),
                          weight_sram=Sram(size_kib=w), output_sram=Sram(size_kib=o),
                          dram=Dram(bytes_per_cycle=bw))
              for i in (16, 64, 256) for w in (32, 128, 512) for o in (16, 64)
              for bw in (12.8, 51.2)]
    perf.clear_caches()
    shared = [perf.simulate_gemm(accel, gemm) for accel in accels for gemm in gemms]
    assert len(perf._results_by_inputs) < 0.6 * len(shared)  # the sizes did share results
    alone = []
    for accel in accels:
        for gemm in gemms:
            perf.clear_caches()
            alone.append(perf.simulate_gemm(accel, gemm))
    assert shared == alone
    assert len({result.mapping for result in alone}) > 3


def test_whole_beat_rows_hand_count():
    # One 5x3x5 tile of int8, 8-byte beats at 8 bytes per cycle: A is 5 rows of 3 bytes (5
    # beats), W 3 rows of 5 bytes (3 beats), C 5 rows of 20 bytes (3 beats each, 15 in all).
    from peforge.sim.perf.mapper import traffic

    shape, mapping = (5, 3, 5, 8, 8, 32), Mapping(5, 3, 5, "mnk")
    moved = traffic(shape, mapping, 64)
    assert (moved["dram_read"], moved["dram_write"]) == (64, 100)
    assert (moved["input_sram_write"], moved["weight_sram_write"]) == (40, 24)
    assert traffic(shape, mapping)["dram_read"] == 30
    gemm = Gemm("g", 5, 3, 5)
    exact = Accelerator("systolic", SystolicConfig(rows=4, cols=4),
                        dram=Dram(bytes_per_cycle=8, latency_cycles=0))
    beats = replace(exact, dram=replace(exact.dram, beat_bytes=8))
    tile_cycles, _ = perf._tile_timing(exact, gemm)
    for engine in ENGINES:
        # Load, compute, write back, none overlapping: 8 + T + 15 cycles against
        # ceil(30 / 8 + T + 100 / 8).
        assert perf.simulate_mapping(beats, gemm, mapping, engine=engine).cycles == \
            tile_cycles(5, 3, 5) + 23
        assert perf.simulate_mapping(exact, gemm, mapping, engine=engine).cycles == \
            tile_cycles(5, 3, 5) + 17
    with pytest.raises(ValueError, match=r"^dram.beat_bytes: must be a positive integer, got 0$"):
        replace(exact, dram=replace(exact.dram, beat_bytes=0))
