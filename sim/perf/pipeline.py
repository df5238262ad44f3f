"""The double-buffered tile pipeline of one GEMM: exact event times, by two engines.

A GEMM cut into buffer tiles under a :class:`~peforge.sim.perf.tiling.Mapping` runs as three processes
on one DRAM channel (:mod:`peforge.sim.perf.model` describes the model):

- DMA loads: tile ``i + 1``'s A and W blocks (those not already held, :func:`step_loads`) are
  requested when tile ``i`` has its own operands, and tile ``i + 1`` waits for them;
- compute: a tile whose K step is the first takes one of the two output (accumulator) slots,
  waiting for one if both are taken (it never has to, :func:`_run` says why), then
  runs for its array cycles less the family's pipeline overlap, or its SRAM port cycles if they
  are longer;
- write-back: a tile whose K step is the last requests the write of its output tile; the slot is
  free again when the write has finished.

The channel serves requests one at a time in the order they are made; a transfer of ``b``
bytes takes ``latency_cycles + b / bytes_per_cycle``.

Times are exact. Every duration is a whole number of units of ``1 / per_cycle`` cycle
(:class:`TimeUnits`: ``per_cycle`` is a multiple of the denominators of the DRAM's bytes per
cycle, read as the decimal it was written as, 25.6 = 128/5, and of the SRAM ports' widths), so no
event time is ever rounded; a GEMM's ``cycles`` are its last event's time rounded up to a whole
cycle, plus the overlap.

Two engines give the same times:

- :func:`simulate_events` is the reference: simpy processes, one event per tile and transfer;
- :func:`simulate_recurrence` (the default of :func:`peforge.sim.perf.model.simulate_gemm`) advances
  the same state by one recurrence per tile (:func:`_run`), over the loop nest as runs
  of equal tiles. Within a run it remembers the state relative to its own time at the start of
  each repetition; once one recurs, every further period adds the same time, so whole periods
  are skipped. A GEMM of thousands of tiles takes tens of recurrence steps.
"""

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import simpy

from peforge.sim.perf.accelerator import Accelerator
from peforge.sim.perf.workloads import Gemm

__all__ = ["TimeUnits", "simulate_events", "simulate_recurrence", "ENGINES",
           "tile_steps", "step_loads", "size_classes"]


@dataclass(frozen=True)
class TimeUnits:
    """Durations on one accelerator as whole numbers of ``1 / per_cycle`` cycles.

    Attributes
    ----------
    per_cycle : int
        Units per cycle.
    dram_per_bit : int
        Units one bit takes on the DRAM channel (0 for an ideal, infinitely wide DRAM).
    latency : int
        Units of the DRAM's fixed latency per transfer.
    port_per_bit : tuple of int
        Units one bit takes on the input, weight and output SRAM's ports.
    """

    per_cycle: int
    dram_per_bit: int
    latency: int
    port_per_bit: tuple[int, int, int]

    @classmethod
    def of(cls, accel: Accelerator) -> "TimeUnits":
        return cls._of(accel.dram.bytes_per_cycle, accel.dram.latency_cycles,
                       (accel.input_sram.bytes_per_cycle, accel.weight_sram.bytes_per_cycle,
                        accel.output_sram.bytes_per_cycle))

    @classmethod
    @lru_cache(maxsize=256)
    def _of(cls, bandwidth: float, latency: int, ports: tuple[int, int, int]) -> "TimeUnits":
        if math.isinf(bandwidth):
            per_cycle = math.lcm(*(8 * port for port in ports))
            dram_per_bit = 0
        else:
            bandwidth = Fraction(str(bandwidth))
            per_cycle = math.lcm(8 * bandwidth.numerator, *(8 * port for port in ports))
            dram_per_bit = per_cycle * bandwidth.denominator // (8 * bandwidth.numerator)
        return cls(per_cycle, dram_per_bit, latency * per_cycle,
                   tuple(per_cycle // (8 * port) for port in ports))

    def transfer(self, bits: int) -> int:
        """A DRAM transfer of ``bits``: latency plus the bits at the channel's rate."""
        return self.latency + bits * self.dram_per_bit

    def busy(self, widths: tuple[int, int, int], sizes, array_cycles: int, first_k: bool) -> int:
        """A tile's time on the array: its ``array_cycles`` or the cycles the SRAM ports need to
        read its A and W blocks and write (after the first K step, also read back) its output
        tile, whichever is longer. ``widths``: the bits of an A, W and output element."""
        tm, tk, tn = sizes
        a_bits, w_bits, out_bits = widths
        a_port, w_port, out_port = self.port_per_bit
        return max(array_cycles * self.per_cycle, tm * tk * a_bits * a_port,
                   tk * tn * w_bits * w_port,
                   (1 if first_k else 2) * tm * tn * out_bits * out_port)

    def cycles(self, units: int) -> int:
        """``units`` rounded up to whole cycles."""
        return -(-units // self.per_cycle)


def _blocks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def tile_steps(gemm: Gemm, mapping):
    """Tiles in visiting order: ``(m_block, k_block, n_block, sizes, first_k, last_k)``."""
    m_sizes, k_sizes, n_sizes = (_blocks(gemm.m, mapping.tm), _blocks(gemm.k, mapping.tk),
                                 _blocks(gemm.n, mapping.tn))
    outer = ([(i, j) for i in range(len(m_sizes)) for j in range(len(n_sizes))]
             if mapping.order == "mn" else
             [(i, j) for j in range(len(n_sizes)) for i in range(len(m_sizes))])
    for i, j in outer:
        for kk in range(len(k_sizes)):
            yield i, kk, j, (m_sizes[i], k_sizes[kk], n_sizes[j]), kk == 0, kk == len(k_sizes) - 1


def step_loads(gemm: Gemm, steps) -> list[int]:
    """DRAM bits each tile loads before it can run: its A block unless the previous tile used
    the same one, and likewise its W block."""
    loads = []
    previous_a = previous_w = None
    for i, kk, j, (tm, tk, tn), _first_k, _last_k in steps:
        load = 0
        if (i, kk) != previous_a:
            load += tm * tk * gemm.a_bits
            previous_a = (i, kk)
        if (kk, j) != previous_w:
            load += tk * tn * gemm.w_bits
            previous_w = (kk, j)
        loads.append(load)
    return loads


def _compute_cycles(dims: tuple[int, int, int], mapping, tile_cycles, overlap: int) -> int:
    """The array's cycles of all tiles of a GEMM of ``dims`` (m, k, n) back to back (no stall):
    the sum over the tiles of their cycles less the overlap, plus the overlap once."""
    return overlap + sum(count * (tile_cycles(*sizes) - overlap)
                         for sizes, count in _tile_classes(*dims, mapping.tm, mapping.tk,
                                                           mapping.tn))


@lru_cache(maxsize=4096)
def _tile_classes(m: int, k: int, n: int, tm: int, tk: int, tn: int) -> tuple:
    """``((tm, tk, tn), tiles)`` of each size class of the tiles of an ``m x k x n`` GEMM."""
    return tuple(((sm, sk, sn), cm * ck * cn) for sm, cm in size_classes(m, tm)
                 for sk, ck in size_classes(k, tk) for sn, cn in size_classes(n, tn))


def size_classes(total: int, size: int) -> list[tuple[int, int]]:
    """``(block size, how many)`` of a dimension cut into blocks: full blocks and a remainder."""
    full, rest = divmod(total, size)
    return [(size, full)] * bool(full) + [(rest, 1)] * bool(rest)


def simulate_events(accel: Accelerator, gemm: Gemm, mapping, tile_cycles, overlap: int):
    """The reference engine: simpy, one process step per tile and transfer. Returns
    ``(cycles, compute_cycles)`` of one GEMM (``count`` 1) under ``mapping``."""
    units = TimeUnits.of(accel)
    env = simpy.Environment()
    output_slots = simpy.Container(env, capacity=2, init=2)
    steps = list(tile_steps(gemm, mapping))
    loads = step_loads(gemm, steps)
    dram_free = 0

    def transfer(bits):
        # One DRAM channel, first come first served: a transfer starts when the previous one
        # has finished (requests are made in simulated-time order, so this is a FIFO queue).
        nonlocal dram_free
        dram_free = max(env.now, dram_free) + units.transfer(bits)
        yield env.timeout(dram_free - env.now)

    def write_back(bits):
        yield from transfer(bits)
        yield output_slots.put(1)

    def compute():
        # Double buffering: tile i + 1 loads into the slot tile i - 1 freed while tile i runs.
        loading = env.process(transfer(loads[0]))
        for index, (*_, sizes, first_k, last_k) in enumerate(steps):
            if loading is not None:
                yield loading
            following = index + 1
            loading = (env.process(transfer(loads[following]))
                       if following < len(steps) and loads[following] else None)
            if first_k:
                yield output_slots.get(1)
            yield env.timeout(units.busy((gemm.a_bits, gemm.w_bits, gemm.out_bits), sizes,
                                         tile_cycles(*sizes) - overlap, first_k))
            if last_k:
                env.process(write_back(sizes[0] * sizes[2] * gemm.out_bits))

    env.process(compute())
    env.run()
    return (units.cycles(env.now) + overlap,
            _compute_cycles((gemm.m, gemm.k, gemm.n), mapping, tile_cycles, overlap))


def _run(program, tiles: list, state: tuple, memo: dict) -> tuple:
    """Advance the pipeline's ``state`` over ``program``: indices into ``tiles``, each
    ``(load, busy, write_back)`` (units; ``load`` None: nothing to load, ``write_back`` None:
    not the last K step), and runs ``(count, program)``.

    ``state`` is ``(issued, now, dram, write_back)`` between two tiles: ``issued``, when the tile
    just done had its operands, so the next tile's load was requested; ``now``, when it finished
    computing; ``dram``, when the channel is free; ``write_back``, the duration of its output
    tile's write, requested at ``now``. What follows depends only on the state relative to
    ``issued``, the channel's free time clamped there (it is next asked for at ``issued`` or
    later): its key. In a run, the key at the start of each repetition is remembered; once one
    recurs, the rest of the run's whole periods each shift all times by the same amount, and are
    skipped. ``memo`` keeps what a run did from each key it started from, relative to
    ``issued``: a run inside another starts from the same key again and again.

    The output slots are not part of the state: they never delay a tile. Every tile after the
    first loads a block (consecutive tiles differ in their K block, which changes both, or else
    in their A or their W block), and it requests that load after the write-back of the tile
    before the previous one was requested, so the channel, serving in order, has finished that
    write-back, which freed the slot, before the tile has its operands.
    """
    issued, now, dram, write_back = state
    for item in program:
        if item.__class__ is int:
            load, busy, next_write_back = tiles[item]
            ready = now
            if load is not None:
                # Requested at `issued`, before the previous tile's write-back (at `now`).
                dram = (issued if issued > dram else dram) + load
                if dram > ready:
                    ready = dram
            if write_back is not None:
                dram = (now if now > dram else dram) + write_back
            issued, now, write_back = ready, ready + busy, next_write_back
            continue
        key = (id(item), now - issued, dram - issued if dram > issued else 0, write_back)
        done = memo.get(key)
        if done is None:
            start = issued
            issued, now, dram, write_back = _repeat(item, tiles, (issued, now, dram, write_back),
                                                    memo)
            memo[key] = (issued - start, now - start, dram - start, write_back)
        else:
            issued, now, dram, write_back = (issued + done[0], issued + done[1],
                                             issued + done[2], done[3])
    return issued, now, dram, write_back


def _repeat(run: tuple, tiles: list, state: tuple, memo: dict) -> tuple:
    """``state`` after ``run = (count, body)`` (:func:`_run`)."""
    count, body = run
    seen = {}
    done = 0
    while done < count:
        issued, now, dram, write_back = state
        key = (now - issued, dram - issued if dram > issued else 0, write_back)
        if key in seen:
            then, issued_then = seen[key]
            period = done - then
            periods = (count - done) // period
            shift = periods * (issued - issued_then)
            state = (issued + shift, now + shift, dram + shift, write_back)
            for _ in range(count - done - periods * period):
                state = _run(body, tiles, state, memo)
            return state
        seen[key] = (done, issued)
        state = _run(body, tiles, state, memo)
        done += 1
    return state


def _runs(classes: list[tuple[int, int]]) -> list[tuple[int, int, bool, bool]]:
    """The blocks of a dimension (its size classes in order) as runs of equal blocks
    ``(size, count, first, last)``, the first and last block each a run of its own."""
    total = sum(count for _size, count in classes)
    runs, start = [], 0
    for size, count in classes:
        end = start + count
        low, high = start + (start == 0), end - (end == total)
        if start == 0:
            runs.append((size, 1, True, total == 1))
        if high > low:
            runs.append((size, high - low, False, False))
        if end == total and total > 1 and end - 1 >= low:
            runs.append((size, 1, False, True))
        start = end
    return runs


def _repeated(count: int, body: list) -> list:
    return body if count == 1 else [(count, tuple(body))]


@lru_cache(maxsize=4096)
def _loop_nest(m: int, k: int, n: int, a_bits: int, w_bits: int, out_bits: int, tm: int,
               tk: int, tn: int, order: str) -> tuple[tuple, tuple]:
    """The loop nest of a GEMM shape under a tiling as runs of equal tiles: ``(program,
    tiles)``, the program over indices into ``tiles``, each ``(tm, tk, tn, first_k, last_k,
    load_bits)``. Outer blocks ``p`` (M for order ``mn``), then the other outer blocks ``q``, K
    blocks innermost; the loads follow :func:`step_loads`'s rule."""
    m_runs, k_runs, n_runs = (_runs(size_classes(m, tm)), _runs(size_classes(k, tk)),
                              _runs(size_classes(n, tn)))
    by_rows = order == "mn"
    p_runs, q_runs = (m_runs, n_runs) if by_rows else (n_runs, m_runs)
    single_k, single_q = len(k_runs) == 1, len(q_runs) == 1
    tiles: dict[tuple, int] = {}
    program = []
    for p_size, p_count, p_first, _ in p_runs:
        p_body = []
        for q_size, q_count, q_first, _ in q_runs:
            tile_m, tile_n = (p_size, q_size) if by_rows else (q_size, p_size)
            q_body = []
            for tile_k, k_count, first_k, last_k in k_runs:
                a_load, w_load = tile_m * tile_k * a_bits, tile_k * tile_n * w_bits
                if single_k:
                    # The outer (p) operand stays over q; the q operand changes every tile unless
                    # there is one q block, when it is loaded once.
                    p_load, q_load = (a_load, w_load) if by_rows else (w_load, a_load)
                    load = p_load * q_first + q_load * (not single_q or (p_first and q_first))
                else:
                    load = a_load + w_load
                spec = (tile_m, tile_k, tile_n, first_k, last_k, load)
                q_body += _repeated(k_count, [tiles.setdefault(spec, len(tiles))])
            p_body += _repeated(q_count, q_body)
        program += _repeated(p_count, p_body)
    return tuple(program), tuple(tiles)


def simulate_recurrence(accel: Accelerator, gemm: Gemm, mapping, tile_cycles, overlap: int):
    """The fast engine: the same times as :func:`simulate_events`, by the recurrence over runs
    of equal tiles (module docstring). Returns ``(cycles, compute_cycles)``.

    Results are kept per time units, shape, tiling and tile cycles (the same function object for
    the same PE array), everything they depend on: accelerators that differ only in their SRAM
    sizes (which decide which tilings are legal, not how long one takes) share them."""
    return _recurrence(TimeUnits.of(accel), gemm.shape, mapping, tile_cycles, overlap)


@lru_cache(maxsize=16384)
def _recurrence(units: TimeUnits, shape: tuple[int, ...], mapping, tile_cycles,
                overlap: int) -> tuple[int, int]:
    program, specs = _loop_nest(*shape, mapping.tm, mapping.tk, mapping.tn, mapping.order)
    widths, out_bits = shape[3:], shape[5]
    tiles = [(units.transfer(load) if load else None,
              units.busy(widths, (tm, tk, tn), tile_cycles(tm, tk, tn) - overlap, first_k),
              units.transfer(tm * tn * out_bits) if last_k else None)
             for tm, tk, tn, first_k, last_k, load in specs]
    _issued, now, dram, write_back = _run(program, tiles, (0, 0, 0, None), {})
    # The last tile is a last K step: its write-back ends the GEMM.
    return (units.cycles(max(now, dram) + write_back) + overlap,
            _compute_cycles(shape[:3], mapping, tile_cycles, overlap))


#: The engines by name: what ``simulate_gemm(..., engine=...)`` and ``peforge sim --engine`` take.
ENGINES = {"recurrence": simulate_recurrence, "simpy": simulate_events}
