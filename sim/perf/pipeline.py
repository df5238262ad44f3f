"""The double-buffered tile pipeline of one GEMM: exact event times, by two engines.

A GEMM cut into buffer tiles under a :class:`~peforge.sim.perf.tiling.Mapping` runs as three processes
on one DRAM channel (:mod:`peforge.sim.perf.model` describes the model):

- DMA loads: tile ``i + 1``'s A and W blocks (those not already held, :func:`step_loads`), and
  the partial sums of its output tile when the loop order left that tile before its last K step,
  are requested when tile ``i`` has its own operands, and tile ``i + 1`` waits for them;
- compute: a tile that starts a visit of an output tile takes one of the two output
  (accumulator) slots, waiting for one if both are taken (it never has to, :func:`_run` says
  why), then runs for its array cycles less the family's pipeline overlap, or its SRAM port
  cycles if they are longer;
- write-back: a tile that ends a visit of its output tile (the next tile has another) requests
  the write of its output tile (partial sums unless its K step is the last); the slot is free
  again when the write has finished.

The channel serves requests one at a time in the order they are made; a transfer of ``b``
bytes takes ``latency_cycles + b / bytes_per_cycle``. With a DRAM of ``beat_bytes``
(:class:`~peforge.sim.perf.accelerator.Dram`) each row of a block counts as whole beats
(:func:`block_bits`).

Times are exact. Every duration is a whole number of units of ``1 / per_cycle`` cycle
(:class:`TimeUnits`: ``per_cycle`` is a multiple of the denominators of the DRAM's bytes per
cycle, read as the decimal it was written as, 25.6 = 128/5, and of the SRAM ports' widths), so no
event time is ever rounded; a GEMM's ``cycles`` are its last event's time rounded up to a whole
cycle. A tile's compute takes its array cycles less the family's pipeline overlap (the next tile
may start then), and its output tile's write-back may start only once those last overlapping
cycles are over too (it is requested, and queued on the channel, at the earlier time).

Two engines give the same times:

- :func:`simulate_events` is the reference: simpy processes, one event per tile and transfer;
- :func:`simulate_recurrence` (the default of :func:`peforge.sim.perf.model.simulate_gemm`) advances
  the same state by one recurrence per tile (:func:`_run`), over the loop nest as runs
  of equal tiles. Within a run it remembers the state relative to its own time at the start of
  each repetition; once one recurs, every further period adds the same time, so whole periods
  are skipped. A GEMM of thousands of tiles takes tens of recurrence steps.
"""

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import simpy

from peforge.sim.perf.accelerator import Accelerator
from peforge.sim.perf.workloads import Gemm

__all__ = ["TimeUnits", "simulate_events", "simulate_recurrence", "ENGINES",
           "tile_steps", "step_loads", "size_classes", "block_bits"]


def block_bits(rows: int, cols: int, bits: int, beat_bits: int = 0) -> int:
    """Bits a block of ``rows x cols`` elements of ``bits`` takes on the DRAM channel: exactly
    its bits (``beat_bits`` 0), or each row rounded up to whole beats of ``beat_bits``."""
    if not beat_bits:
        return rows * cols * bits
    return rows * -(-cols * bits // beat_bits) * beat_bits


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
    beat_bits : int
        Bits of the DMA's beat, each block row's granularity on the channel (0: exact bits).
    """

    per_cycle: int
    dram_per_bit: int
    latency: int
    port_per_bit: tuple[int, int, int]
    beat_bits: int = 0

    @classmethod
    def of(cls, accel: Accelerator) -> "TimeUnits":
        return cls._of(accel.dram.bytes_per_cycle, accel.dram.latency_cycles,
                       (accel.input_sram.bytes_per_cycle, accel.weight_sram.bytes_per_cycle,
                        accel.output_sram.bytes_per_cycle), accel.dram.beat_bytes or 0)

    @classmethod
    @lru_cache(maxsize=256)
    def _of(cls, bandwidth: float, latency: int, ports: tuple[int, int, int],
            beat_bytes: int) -> "TimeUnits":
        if math.isinf(bandwidth):
            per_cycle = math.lcm(*(8 * port for port in ports))
            dram_per_bit = 0
        else:
            bandwidth = Fraction(str(bandwidth))
            per_cycle = math.lcm(8 * bandwidth.numerator, *(8 * port for port in ports))
            dram_per_bit = per_cycle * bandwidth.denominator // (8 * bandwidth.numerator)
        return cls(per_cycle, dram_per_bit, latency * per_cycle,
                   tuple(per_cycle // (8 * port) for port in ports), 8 * beat_bytes)

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
    """Tiles in visiting order: ``(m_block, k_block, n_block, sizes, first_k, new_output,
    write)``: ``first_k``, the tile is the first K step of its output tile; ``new_output``, the
    tile before it had another output tile (or there is none): it takes an output slot;
    ``write``, the tile after it has another output tile (or there is none): the output tile
    (partial sums unless ``k_block`` is the last) is written back to DRAM after it."""
    sizes = {"m": _blocks(gemm.m, mapping.tm), "k": _blocks(gemm.k, mapping.tk),
             "n": _blocks(gemm.n, mapping.tn)}
    positions = [dict(zip(mapping.order, index)) for index in
                 itertools.product(*(range(len(sizes[dim])) for dim in mapping.order))]
    outputs = [(at["m"], at["n"]) for at in positions]
    for step, at in enumerate(positions):
        i, kk, j = at["m"], at["k"], at["n"]
        yield (i, kk, j, (sizes["m"][i], sizes["k"][kk], sizes["n"][j]), kk == 0,
               step == 0 or outputs[step - 1] != outputs[step],
               step == len(positions) - 1 or outputs[step + 1] != outputs[step])


def step_loads(gemm: Gemm, steps, beat_bits: int = 0) -> list[int]:
    """DRAM bits each tile loads before it can run (:func:`block_bits` of ``beat_bits``): its A
    block unless the previous tile used the same one, likewise its W block, and its output
    tile's partial sums when it comes back to an output tile left before its last K step."""
    loads = []
    previous_a = previous_w = None
    for i, kk, j, (tm, tk, tn), first_k, new_output, _write in steps:
        load = 0
        if (i, kk) != previous_a:
            load += block_bits(tm, tk, gemm.a_bits, beat_bits)
            previous_a = (i, kk)
        if (kk, j) != previous_w:
            load += block_bits(tk, tn, gemm.w_bits, beat_bits)
            previous_w = (kk, j)
        if new_output and not first_k:
            load += block_bits(tm, tn, gemm.out_bits, beat_bits)
        loads.append(load)
    return loads


def _compute_cycles(dims: tuple[int, int, int], mapping, tile_cycles, overlap: int,
                    waits: int) -> int:
    """The cycles the array is on a tile in a GEMM of ``dims`` (m, k, n): the sum over the tiles
    of their cycles less the overlap, plus the overlap once, and once more for each of the
    ``waits`` tiles after the first that did not start as the one before ended (that one's
    last cycles are then its own, not shared with the next tile's first)."""
    return overlap * (1 + waits) + sum(count * (tile_cycles(*sizes) - overlap)
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
    loads = step_loads(gemm, steps, units.beat_bits)
    dram_free = 0
    waits = 0
    finish = overlap * units.per_cycle

    def transfer(bits, after=0):
        # One DRAM channel, first come first served: a transfer starts when the previous one
        # has finished (requests are made in simulated-time order, so this is a FIFO queue),
        # and not before `after` units from its request.
        nonlocal dram_free
        dram_free = max(env.now + after, dram_free) + units.transfer(bits)
        yield env.timeout(dram_free - env.now)

    def write_back(bits):
        # It may start once the tile's last cycle, shared with the next tile's first, is over.
        yield from transfer(bits, finish)
        yield output_slots.put(1)

    def compute():
        # Double buffering: tile i + 1 loads into the slot tile i - 1 freed while tile i runs.
        nonlocal waits
        loading = env.process(transfer(loads[0]))
        for index, (*_, sizes, first_k, new_output, write) in enumerate(steps):
            ended = env.now
            if loading is not None:
                yield loading
            following = index + 1
            loading = (env.process(transfer(loads[following]))
                       if following < len(steps) and loads[following] else None)
            if new_output:
                yield output_slots.get(1)
            waits += index > 0 and env.now > ended
            yield env.timeout(units.busy((gemm.a_bits, gemm.w_bits, gemm.out_bits), sizes,
                                         tile_cycles(*sizes) - overlap, first_k))
            if write:
                env.process(write_back(block_bits(sizes[0], sizes[2], gemm.out_bits,
                                                  units.beat_bits)))

    env.process(compute())
    env.run()
    return (units.cycles(env.now),
            _compute_cycles((gemm.m, gemm.k, gemm.n), mapping, tile_cycles, overlap, waits))


def _run(program, tiles: list, state: tuple, memo: dict, finish: int) -> tuple:
    """Advance the pipeline's ``state`` over ``program``: indices into ``tiles``, each
    ``(load, busy, write_back)`` (units; ``load`` None: nothing to load, ``write_back`` None:
    not the last K step), and runs ``(count, program)``.

    ``state`` is ``(issued, now, dram, write_back, waits)`` between two tiles: ``issued``, when
    the tile just done had its operands, so the next tile's load was requested; ``now``, when
    it finished computing; ``dram``, when the channel is free; ``write_back``, the duration of
    its output tile's write, requested at ``now``; ``waits``, how many tiles so far started
    later than ``now`` of the one before them (the first tile counts when its loads take
    time: :func:`_recurrence` takes it off). What follows depends only on the state relative to
    ``issued``, the channel's free time clamped there (it is next asked for at ``issued`` or
    later): its key. In a run, the key at the start of each repetition is remembered; once one
    recurs, the rest of the run's whole periods each shift all times by the same amount, and are
    skipped. ``memo`` keeps what a run did from each key it started from, relative to
    ``issued``: a run inside another starts from the same key again and again.

    The output slots are not part of the state: they never delay a tile. Every tile after the
    first loads a block (consecutive tiles differ in their K block, which changes both, or else
    in their A or their W block), and it requests that load after the write-back of the tile
    before the previous one was requested, so the channel, serving in order, has finished that
    write-back, which freed the slot, before the tile has its operands. At most the visit of
    the previous tile still holds a slot. A spilled output tile read back by a later tile was
    written by a tile at least two before it, so its write, requested earlier, is served first.
    """
    issued, now, dram, write_back, waits = state
    for item in program:
        if item.__class__ is int:
            load, busy, next_write_back = tiles[item]
            ready = now
            if load is not None:
                # Requested at `issued`, before the previous tile's write-back (at `now`).
                dram = (issued if issued > dram else dram) + load
                if dram > ready:
                    ready = dram
                    waits += 1
            if write_back is not None:
                # Requested `finish` after `now`, when the tile's shared last cycle is over.
                dram = (now + finish if now + finish > dram else dram) + write_back
            issued, now, write_back = ready, ready + busy, next_write_back
            continue
        key = (id(item), now - issued, dram - issued if dram > issued else 0, write_back)
        done = memo.get(key)
        if done is None:
            start, waited = issued, waits
            issued, now, dram, write_back, waits = _repeat(
                item, tiles, (issued, now, dram, write_back, waits), memo, finish)
            memo[key] = (issued - start, now - start, dram - start, write_back, waits - waited)
        else:
            issued, now, dram, write_back, waits = (issued + done[0], issued + done[1],
                                                    issued + done[2], done[3], waits + done[4])
    return issued, now, dram, write_back, waits


def _repeat(run: tuple, tiles: list, state: tuple, memo: dict, finish: int) -> tuple:
    """``state`` after ``run = (count, body)`` (:func:`_run`)."""
    count, body = run
    seen = {}
    done = 0
    while done < count:
        issued, now, dram, write_back, waits = state
        key = (now - issued, dram - issued if dram > issued else 0, write_back)
        if key in seen:
            then, issued_then, waits_then = seen[key]
            period = done - then
            periods = (count - done) // period
            shift = periods * (issued - issued_then)
            state = (issued + shift, now + shift, dram + shift, write_back,
                     waits + periods * (waits - waits_then))
            for _ in range(count - done - periods * period):
                state = _run(body, tiles, state, memo, finish)
            return state
        seen[key] = (done, issued, waits)
        state = _run(body, tiles, state, memo, finish)
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


def _changed(order: str, blocks: dict, flags: tuple[bool, bool, bool]) -> set | None:
    """The dimensions whose block index differs between a tile and its neighbour in the loop
    nest ``order``: ``flags`` say, per loop (outermost first), whether the tile is at that
    loop's first block (neighbour before it) or last block (after it). None: no neighbour."""
    if all(flags):
        return None
    for depth in (2, 1, 0):
        if not flags[depth]:
            return {order[depth]} | {dim for dim in order[depth + 1:] if blocks[dim] > 1}


@lru_cache(maxsize=4096)
def _loop_nest(m: int, k: int, n: int, a_bits: int, w_bits: int, out_bits: int, tm: int,
               tk: int, tn: int, order: str, beat_bits: int = 0) -> tuple[tuple, tuple]:
    """The loop nest of a GEMM shape under a tiling as runs of equal tiles: ``(program,
    tiles)``, the program over indices into ``tiles``, each ``(tm, tk, tn, first_k, write,
    load_bits)``, the loops in ``order``; loads (:func:`block_bits` of ``beat_bits``) and
    write-backs follow :func:`step_loads` and :func:`tile_steps`: what changes from one tile to
    the next depends only on which loops are at their first or last block."""
    runs = {"m": _runs(size_classes(m, tm)), "k": _runs(size_classes(k, tk)),
            "n": _runs(size_classes(n, tn))}
    blocks = {dim: sum(count for _size, count, _first, _last in dim_runs)
              for dim, dim_runs in runs.items()}
    outer, middle, inner = order
    tiles: dict[tuple, int] = {}
    program = []
    for o_size, o_count, o_first, o_last in runs[outer]:
        o_body = []
        for d_size, d_count, d_first, d_last in runs[middle]:
            d_body = []
            for i_size, i_count, i_first, i_last in runs[inner]:
                size = {outer: o_size, middle: d_size, inner: i_size}
                before = _changed(order, blocks, (o_first, d_first, i_first))
                after = _changed(order, blocks, (o_last, d_last, i_last))
                first_k = {outer: o_first, middle: d_first, inner: i_first}["k"]
                load = 0
                if before is None or before & {"m", "k"}:
                    load += block_bits(size["m"], size["k"], a_bits, beat_bits)
                if before is None or before & {"k", "n"}:
                    load += block_bits(size["k"], size["n"], w_bits, beat_bits)
                if before is not None and before & {"m", "n"} and not first_k:
                    load += block_bits(size["m"], size["n"], out_bits, beat_bits)
                write = after is None or bool(after & {"m", "n"})
                spec = (size["m"], size["k"], size["n"], first_k, write, load)
                d_body += _repeated(i_count, [tiles.setdefault(spec, len(tiles))])
            o_body += _repeated(d_count, d_body)
        program += _repeated(o_count, o_body)
    return tuple(program), tuple(tiles)


def simulate_recurrence(accel: Accelerator, gemm: Gemm, mapping, tile_cycles, overlap: int):
    """The fast engine: the same times as :func:`simulate_events`, by the recurrence over runs
    of equal tiles (module docstring). Returns ``(cycles, compute_cycles)``.

    Results are kept per time units, shape, tiling and tile cycles (the same function object for
    the same PE array), everything they depend on: accelerators that differ only in their SRAM
    sizes (which decide which tilings are legal, not how long one takes) share them."""
    return _recurrence(TimeUnits.of(accel), gemm.shape, mapping, tile_cycles, overlap)


@lru_cache(maxsize=65536)
def _recurrence(units: TimeUnits, shape: tuple[int, ...], mapping, tile_cycles,
                overlap: int) -> tuple[int, int]:
    program, specs = _loop_nest(*shape, mapping.tm, mapping.tk, mapping.tn, mapping.order,
                                units.beat_bits)
    widths, out_bits = shape[3:], shape[5]
    tiles = [(units.transfer(load) if load else None,
              units.busy(widths, (tm, tk, tn), tile_cycles(tm, tk, tn) - overlap, first_k),
              units.transfer(block_bits(tm, tn, out_bits, units.beat_bits)) if write else None)
             for tm, tk, tn, first_k, write, load in specs]
    finish = overlap * units.per_cycle
    _issued, now, dram, write_back, waits = _run(program, tiles, (0, 0, 0, None, 0), {},
                                                 finish)
    first = program[0]
    while first.__class__ is not int:
        first = first[1][0]
    waits -= tiles[first][0] > 0
    # The last tile ends its output tile's last visit: its write-back ends the GEMM.
    return (units.cycles(max(now + finish, dram) + write_back),
            _compute_cycles(shape[:3], mapping, tile_cycles, overlap, waits))


#: The engines by name: what ``simulate_gemm(..., engine=...)`` and ``peforge sim --engine`` take.
ENGINES = {"recurrence": simulate_recurrence, "simpy": simulate_events}


def simulator(engine: str, accel: Accelerator, gemm: Gemm, tile_cycles, overlap: int):
    """``mapping -> (cycles, compute_cycles)`` of ``gemm`` on ``accel`` by ``engine``: what the
    mapper calls for each mapping it simulates (the time units worked out once)."""
    if engine != "recurrence":
        return lambda mapping: ENGINES[engine](accel, gemm, mapping, tile_cycles, overlap)
    units, shape = TimeUnits.of(accel), gemm.shape
    return lambda mapping: _recurrence(units, shape, mapping, tile_cycles, overlap)
