"""A configurable sparse DSP chain (FlightLLM): DSP48-like slices, sparse MUXes, reduction nodes.

Protocol, slice order, numerics and the cycle count are documented in
:mod:`peforge.models.sparse_dsp`; the GEMM driver is :mod:`peforge.hw.sparse_dsp.driver`.
"""

from amaranth import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from peforge.models.sparse_dsp import ACT_BITS, SparseDspConfig

from peforge.hw.common.delays import delayed
from peforge.hw.common.streams import ValidStream

__all__ = ["DSPSlice", "SparseMux", "SparseDspChain", "stream_layouts", "fit", "sparse_mux"]


def fit(value, acc_bits: int, overflow: str):
    """``value`` (a sum one or more bits wider than the accumulator) brought to
    ``signed(acc_bits)``: its low bits (``"wrap"``) or clamped to the range (``"saturate"``)."""
    low_bits = value[:acc_bits].as_signed()
    if overflow == "wrap":
        return low_bits
    high = (1 << (acc_bits - 1)) - 1
    return Mux(value > high, high, Mux(value < -high - 1, -high - 1, low_bits))


class DSPSlice(wiring.Component):
    """One DSP48-like slice: ``P = A * B + (PCIN if cascade else 0)``.

    Parameters
    ----------
    a_bits, b_bits : int
        Operand widths (two's complement).
    acc_bits : int
        Width of the adder and of ``p``.
    overflow : {"wrap", "saturate"}
        What the adder does with a sum outside ``signed(acc_bits)``.
    areg, mreg, preg : int
        Register stages on the A/B inputs, on the product and on P.

    Ports
    -----
    a : In(signed(a_bits)); b : In(signed(b_bits))
        Operands, registered ``areg`` times, multiplied, the product registered ``mreg`` times.
    pcin : In(signed(acc_bits)); cascade : In(1)
        Cascade input and the Z multiplexer (1: add ``pcin``, 0: add 0, the chain is broken);
        both are used ``areg + mreg`` cycles after the operands they go with.
    p : Out(signed(acc_bits))
        The sum, registered ``preg`` times (PCOUT): ``areg + mreg + preg`` cycles after ``a``.
    """

    def __init__(self, a_bits: int, b_bits: int, acc_bits: int, overflow: str,
                 areg: int, mreg: int, preg: int):
        self.acc_bits, self.overflow = acc_bits, overflow
        self.areg, self.mreg, self.preg = areg, mreg, preg
        super().__init__({
            "a": In(signed(a_bits)), "b": In(signed(b_bits)),
            "pcin": In(signed(acc_bits)), "cascade": In(1),
            "p": Out(signed(acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        a = delayed(m, self.a, self.areg, "areg")
        b = delayed(m, self.b, self.areg, "breg")
        product = delayed(m, a * b, self.mreg, "mreg")
        total = Signal(signed(self.acc_bits))
        m.d.comb += [
            total.eq(fit(product + Mux(self.cascade, self.pcin, 0), self.acc_bits, self.overflow)),
            self.p.eq(delayed(m, total, self.preg, "preg")),
        ]
        return m


def sparse_mux(candidates, select):
    """The sparse MUX: ``candidates[select]`` (a block's activations, the stored weight's
    index)."""
    return Array(candidates)[select]


class SparseMux(wiring.Component):
    """One sparse MUX of the chain as a component (:func:`sparse_mux`): ``act = a[idx]``.

    Parameters
    ----------
    mux : int
        Candidates ``G``, a power of two >= 2.

    Ports
    -----
    a : In(ArrayLayout(signed(8), mux))
        The block's activations.
    idx : In(unsigned(log2(mux)))
        The stored weight's index.
    act : Out(signed(8))
        The selected activation.
    """

    def __init__(self, mux: int):
        if mux < 2 or mux & (mux - 1):
            raise ValueError(f"mux: must be a power of two >= 2, got {mux}")
        self.mux = mux
        super().__init__({"a": In(data.ArrayLayout(signed(ACT_BITS), mux)),
                          "idx": In(unsigned(mux.bit_length() - 1)),
                          "act": Out(signed(ACT_BITS))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.act.eq(sparse_mux([self.a[i] for i in range(self.mux)], self.idx))
        return m


class SparseDspChain(wiring.Component):
    """A chain of ``chain`` DSP slices with sparse MUXes, ``mux`` reduction groups and output
    accumulators.

    Parameters
    ----------
    chain : int
        Slices ``L``, also the activations per input beat.
    mux : int
        ``G``: activations per block, inputs of each sparse MUX, reduction groups; divides
        ``chain`` (a power of two).
    bits : int
        Weight width.
    acc_bits, overflow, areg, mreg, preg
        As for :class:`DSPSlice`; the output accumulators share ``acc_bits`` and ``overflow``.

    Ports
    -----
    i_stream : In(stream.Signature(...)), always ready
        Payload: ``a`` (``chain`` x INT8, the window), ``w`` (``chain`` x ``bits``, one weight
        per slice), ``idx`` (``chain`` x ``log2(mux)`` bits, each slice's MUX select inside its
        block), ``n_log2`` (``log2`` of the kept weights per block ``N``: the reduction node after
        group ``k`` breaks the chain when ``N`` divides ``k + 1``), ``last`` (final window of the
        dot products: the accumulators emit and restart). With ``mux == 1`` (dense only) there
        is neither ``idx`` nor ``n_log2``: slice ``j`` takes ``a[j]``.
    o_stream : Out(ValidStream(...))
        Payload ``data`` (``mux`` x ``signed(acc_bits)``): the accumulator after every reduction
        group; segment ``g`` is ``data[(g + 1) * N - 1]``. Valid ``areg + mreg + chain * preg + 1``
        cycles after the ``last`` beat was accepted.
    """

    def __init__(self, chain: int, mux: int, bits: int, acc_bits: int, overflow: str,
                 areg: int, mreg: int, preg: int):
        if mux < 1 or mux & (mux - 1) or chain % mux:
            raise ValueError(f"mux: must be a power of two dividing chain={chain}, got {mux}")
        self.chain, self.mux, self.bits = chain, mux, bits
        self.acc_bits, self.overflow = acc_bits, overflow
        self.areg, self.mreg, self.preg = areg, mreg, preg
        self.in_layout, self.out_layout = stream_layouts(chain, mux, bits, acc_bits)
        super().__init__({
            "i_stream": In(stream.Signature(self.in_layout)),
            "o_stream": Out(ValidStream(self.out_layout)),
        })

    @classmethod
    def from_config(cls, config: SparseDspConfig) -> "SparseDspChain":
        return cls(config.chain, config.mux, config.bits, config.acc_bits, config.overflow,
                   config.areg, config.mreg, config.preg)

    def elaborate(self, platform):
        m = Module()
        chain, mux, preg = self.chain, self.mux, self.preg
        blocks = chain // mux
        fill = self.areg + self.mreg
        slices = [DSPSlice(ACT_BITS, self.bits, self.acc_bits, self.overflow,
                           self.areg, self.mreg, preg) for _ in range(chain)]
        for j, dsp in enumerate(slices):
            m.submodules[f"dsp_{j}"] = dsp

        beat = self.i_stream.payload
        fire = Signal()
        m.d.comb += [self.i_stream.ready.eq(1), fire.eq(self.i_stream.valid)]

        for j, dsp in enumerate(slices):
            # Sparse MUX: slice j picks from block j mod B of the window, then its operands wait
            # j * preg cycles for the partial sum rippling down the cascade.
            base = (j % blocks) * mux
            act = Signal(signed(ACT_BITS), name=f"act_{j}")
            if mux > 1:
                m.d.comb += act.eq(sparse_mux([beat.a[base + i] for i in range(mux)],
                                              beat.idx[j]))
            else:
                m.d.comb += act.eq(beat.a[j])
            m.d.comb += [dsp.a.eq(delayed(m, act, j * preg, f"a{j}_skew")),
                         dsp.b.eq(delayed(m, beat.w[j], j * preg, f"w{j}_skew"))]
            if j % blocks:
                m.d.comb += [dsp.pcin.eq(slices[j - 1].p), dsp.cascade.eq(1)]
            elif j:
                # Reduction node after group k = j/B - 1: the chain goes on unless N divides k+1,
                # i.e. unless log2(N) <= the trailing zeros of k+1.
                group = j // blocks
                goes_on = Signal(name=f"cascade_{group}")
                m.d.comb += goes_on.eq(beat.n_log2 > _trailing_zeros(group))
                m.d.comb += [dsp.pcin.eq(slices[j - 1].p),
                             dsp.cascade.eq(delayed(m, goes_on, j * preg + fill,
                                                    f"cascade_{group}"))]

        # Every group's sum, deskewed to the chain's end, into its accumulator.
        ends = fill + chain * preg
        arrived = delayed(m, fire, ends, "valid")
        last = delayed(m, fire & beat.last, ends, "last")
        fresh = Signal(init=1)
        acc = Signal(self.out_layout)
        for k in range(mux):
            end = (k + 1) * blocks
            window_sum = delayed(m, slices[end - 1].p, (chain - end) * preg, f"node{k}_deskew")
            total = Mux(fresh, window_sum,
                        fit(acc.data[k] + window_sum, self.acc_bits, self.overflow))
            with m.If(arrived):
                m.d.sync += acc.data[k].eq(total)
        with m.If(arrived):
            m.d.sync += fresh.eq(last)
        m.d.sync += self.o_stream.valid.eq(arrived & last)
        m.d.comb += self.o_stream.payload.eq(acc)
        return m


def stream_layouts(chain: int, mux: int, bits: int, acc_bits: int):
    """Payload layouts of :class:`SparseDspChain`'s input and output streams."""
    index_bits = mux.bit_length() - 1
    fields = {"a": data.ArrayLayout(signed(ACT_BITS), chain),
              "w": data.ArrayLayout(signed(bits), chain)}
    if index_bits:
        fields.update(idx=data.ArrayLayout(unsigned(index_bits), chain),
                      n_log2=range(index_bits + 1))
    fields["last"] = 1
    in_layout = data.StructLayout(fields)
    out_layout = data.StructLayout({"data": data.ArrayLayout(signed(acc_bits), mux)})
    return in_layout, out_layout


def _trailing_zeros(value: int) -> int:
    return (value & -value).bit_length() - 1
