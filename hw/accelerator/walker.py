"""The loop nest of a tiled GEMM, one buffer tile per step, as the performance model visits it.

Tiles ``tm x tk x tn`` (the last of each dimension ragged) in loop order ``mn`` (M blocks
outermost, then N blocks) or ``nm``, K blocks innermost: :func:`peforge.sim.perf.pipeline.tile_steps`.
A tile loads its A block unless the previous tile used the same one, and likewise its W block
(:func:`peforge.sim.perf.pipeline.step_loads`). Each loaded block goes into the other of its two
scratchpad slots, so the slot bits toggle per load; an output tile takes the other output slot.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["TileWalker", "DIM_BITS"]

#: Bits of M, K, N, tile sizes and block offsets (dimensions up to 65535).
DIM_BITS = 16


class TileWalker(wiring.Component):
    """Steps through the tiles of a GEMM.

    Ports
    -----
    m, k, n, tm, tk, tn : In(16); order : In(1)
        The GEMM and its tiling (``order`` 0: mn, 1: nm); held while walking.
    restart : In(1)
        Go to the first tile (takes effect on the next cycle).
    advance : In(1)
        Go to the next tile (next cycle). Not after the last tile.
    m0, k0, n0 : Out(16)
        The tile's offsets; ``sm, sk, sn`` : Out(16) its sizes.
    first_k, last_k, last_tile : Out(1)
    load_a, load_w : Out(1)
        The tile loads its A, its W block.
    a_slot, w_slot, c_slot : Out(1)
        Scratchpad slots of its A block, W block and output tile.
    """

    m: In(DIM_BITS)
    k: In(DIM_BITS)
    n: In(DIM_BITS)
    tm: In(DIM_BITS)
    tk: In(DIM_BITS)
    tn: In(DIM_BITS)
    order: In(1)
    restart: In(1)
    advance: In(1)
    m0: Out(DIM_BITS)
    k0: Out(DIM_BITS)
    n0: Out(DIM_BITS)
    sm: Out(DIM_BITS)
    sk: Out(DIM_BITS)
    sn: Out(DIM_BITS)
    first_k: Out(1)
    last_k: Out(1)
    last_tile: Out(1)
    load_a: Out(1)
    load_w: Out(1)
    a_slot: Out(1)
    w_slot: Out(1)
    c_slot: Out(1)

    def elaborate(self, platform):
        m = Module()
        last_m, last_n, single_m, single_n, single_k = (Signal(name=name) for name in (
            "last_m", "last_n", "single_m", "single_n", "single_k"))
        m.d.comb += [
            self.last_k.eq(self.k0 + self.tk >= self.k),
            last_m.eq(self.m0 + self.tm >= self.m),
            last_n.eq(self.n0 + self.tn >= self.n),
            single_m.eq(self.tm >= self.m), single_n.eq(self.tn >= self.n),
            single_k.eq(self.tk >= self.k),
            self.first_k.eq(self.k0 == 0),
            self.last_tile.eq(self.last_k & last_m & last_n),
            self.sm.eq(Mux(last_m, self.m - self.m0, self.tm)),
            self.sk.eq(Mux(self.last_k, self.k - self.k0, self.tk)),
            self.sn.eq(Mux(last_n, self.n - self.n0, self.tn)),
        ]
        load_a, load_w = Signal(), Signal()
        with m.If(self.restart):
            m.d.sync += [self.m0.eq(0), self.k0.eq(0), self.n0.eq(0), self.load_a.eq(1),
                         self.load_w.eq(1), self.a_slot.eq(0), self.w_slot.eq(0),
                         self.c_slot.eq(0)]
        with m.Elif(self.advance):
            with m.If(~self.last_k):
                m.d.comb += [load_a.eq(1), load_w.eq(1)]
                m.d.sync += self.k0.eq(self.k0 + self.tk)
            with m.Else():
                m.d.sync += [self.k0.eq(0), self.c_slot.eq(~self.c_slot)]
                with m.If(self.order == 0):
                    with m.If(~last_n):
                        m.d.comb += [load_a.eq(~single_k), load_w.eq(1)]
                        m.d.sync += self.n0.eq(self.n0 + self.tn)
                    with m.Else():
                        m.d.comb += [load_a.eq(1), load_w.eq(~(single_k & single_n))]
                        m.d.sync += [self.n0.eq(0), self.m0.eq(self.m0 + self.tm)]
                with m.Else():
                    with m.If(~last_m):
                        m.d.comb += [load_w.eq(~single_k), load_a.eq(1)]
                        m.d.sync += self.m0.eq(self.m0 + self.tm)
                    with m.Else():
                        m.d.comb += [load_w.eq(1), load_a.eq(~(single_k & single_m))]
                        m.d.sync += [self.m0.eq(0), self.n0.eq(self.n0 + self.tn)]
            m.d.sync += [self.load_a.eq(load_a), self.load_w.eq(load_w),
                         self.a_slot.eq(self.a_slot ^ load_a),
                         self.w_slot.eq(self.w_slot ^ load_w)]
        return m
