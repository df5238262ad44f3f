"""Systolic MAC arrays, output-stationary and weight-stationary, with skewed operand feeds.

The array takes one beat per cycle on ``i_stream`` (valid/ready) and emits one row of results per
cycle on ``o_stream`` (valid only: the consumer must take every beat). Skew registers inside the
array delay input lane ``i`` by ``i`` cycles and deskew the outputs, so beats carry plain rows and
columns of the matrices. The multiply-accumulate is a pluggable unit (:mod:`peforge.hw.common.mac`).

Protocol and cycle counts are documented in :mod:`peforge.models.systolic`; the driver that tiles a
GEMM onto it is :mod:`peforge.hw.systolic.driver`.
"""

from functools import partial

from amaranth import Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from peforge.models.systolic import SystolicConfig

from peforge.hw.common.delays import delayed
from peforge.hw.common.drain import drain_fsm
from peforge.hw.common.mac import mac_shapes, mac_unit
from peforge.hw.common.streams import ValidStream

__all__ = ["SystolicArray", "OutputStationaryPE", "WeightStationaryPE", "stream_layouts"]


class _MacPE(wiring.Component):
    """A PE around one MAC unit of ``numerics`` with ``mul_stages`` register stages after its
    multiplier; a subclass gives ``signature_of(numerics)``."""

    def __init__(self, numerics, mul_stages: int = 0):
        self.mul_stages = mul_stages
        self._mac = mac_unit(numerics, mul_stages)
        super().__init__(self.signature_of(numerics))


class OutputStationaryPE(_MacPE):
    """One output-stationary PE: forwards ``a`` right and ``b`` down, accumulates ``a * b``.

    With ``mul_stages`` the product of a MAC step reaches the accumulator that many cycles
    after its operands (``valid_in`` is delayed as much, as ``mac_valid_d<i>``).

    Ports
    -----
    a_in, b_in : In(operand); a_out, b_out : Out(operand)
        Operands, forwarded through one register each.
    valid_in : In(1); valid_out : Out(1)
        The operands are a MAC step; forwarded with ``a``.
    drain : In(1)
        Shift mode: ``acc`` loads ``acc_in`` (the accumulator of the PE below) instead of
        accumulating.
    acc_in : In(acc); acc : Out(acc)
        Accumulator chain for draining; ``acc`` is the register itself.
    """

    @staticmethod
    def signature_of(numerics) -> wiring.Signature:
        """The PE's signature for ``numerics``, without building one."""
        op, acc = mac_shapes(numerics)
        return wiring.Signature({
            "a_in": In(op), "b_in": In(op), "valid_in": In(1), "drain": In(1), "acc_in": In(acc),
            "a_out": Out(op), "b_out": Out(op), "valid_out": Out(1),
            "acc": Out(acc, init=numerics.zero),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mac = mac = self._mac
        m.d.comb += [mac.a.eq(self.a_in), mac.b.eq(self.b_in), mac.acc.eq(self.acc)]
        m.d.sync += [self.a_out.eq(self.a_in), self.b_out.eq(self.b_in),
                     self.valid_out.eq(self.valid_in)]
        step = delayed(m, self.valid_in, self.mul_stages, "mac_valid")
        with m.If(self.drain):
            m.d.sync += self.acc.eq(self.acc_in)
        with m.Elif(step):
            m.d.sync += self.acc.eq(mac.result)
        return m


class WeightStationaryPE(_MacPE):
    """One weight-stationary PE: holds a weight, forwards ``a`` right and the partial sum down.

    Ports
    -----
    a_in : In(operand); a_out : Out(operand)
        Activation, forwarded through one register.
    load : In(1); w_in : In(operand); w : Out(operand)
        When ``load``, the weight register takes ``w_in`` (the weight of the PE above): weights
        shift down a column one row per load beat.
    psum_in : In(acc); psum_out : Out(acc)
        ``psum_out`` registers ``psum_in + a_in * w`` every cycle.
    """

    def __init__(self, numerics):
        super().__init__(numerics)      # no product register: the partial sums keep their timing

    @staticmethod
    def signature_of(numerics) -> wiring.Signature:
        """The PE's signature for ``numerics``, without building one."""
        op, acc = mac_shapes(numerics)
        return wiring.Signature({
            "a_in": In(op), "load": In(1), "w_in": In(op), "psum_in": In(acc),
            "a_out": Out(op), "w": Out(op), "psum_out": Out(acc),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mac = mac = self._mac
        m.d.comb += [mac.a.eq(self.a_in), mac.b.eq(self.w), mac.acc.eq(self.psum_in)]
        m.d.sync += [self.a_out.eq(self.a_in), self.psum_out.eq(mac.result)]
        with m.If(self.load):
            m.d.sync += self.w.eq(self.w_in)
        return m


class SystolicArray(wiring.Component):
    """A ``rows x cols`` systolic array with skewed feeds, a controller and a result stream.

    Parameters
    ----------
    rows, cols : int
        Array shape.
    dataflow : {"os", "ws"}
        Output- or weight-stationary.
    numerics
        MAC numerics (e.g. :class:`peforge.models.numerics.mac.IntMac`); its unit comes from
        :func:`peforge.hw.common.mac.mac_unit`.
    mul_stages : int
        ``os`` only: register stages after each PE's multiplier (:class:`OutputStationaryPE`);
        a tile's wavefront takes that many cycles more.
    pe : callable, optional
        ``numerics -> PE component`` with the signature of the dataflow's PE; default
        :class:`OutputStationaryPE` (with ``mul_stages``) or :class:`WeightStationaryPE`. Area
        composition (:mod:`peforge.sim.eda.synth`) passes a black-box stand-in here.

    Ports
    -----
    i_stream : In(stream.Signature(...))
        ``os`` payload: ``a`` (rows operands: one column of the A tile), ``b`` (cols operands: one
        row of the B tile), ``last`` (final K step of the tile). ``ws`` payload: ``load`` (this beat
        is a weight row: ``b`` enters row 0 and older rows shift down, so the bottom row is sent
        first), ``a`` (rows operands: one row of the A tile), ``d`` (cols accumulator values added
        to the column sums: the previous K-tile's partial sums), ``last`` (final row of the tile).
        ``ready`` is low while a tile finishes (``rows + cols - 2`` cycles, ``os``:
        ``+ mul_stages``) and, for ``os``, while it drains.
    o_stream : Out(ValidStream(...))
        Payload ``data`` (cols accumulator values: one row of the result tile) and ``last`` (final
        row of the tile). ``os`` emits ``rows`` beats per tile, row 0 first; ``ws`` one beat per
        streamed row, ``rows + cols - 1`` cycles after it was accepted.
    """

    def __init__(self, rows: int, cols: int, dataflow: str, numerics, *, mul_stages: int = 0,
                 pe=None):
        if dataflow not in ("os", "ws"):
            raise ValueError(f"dataflow: must be one of os, ws, got {dataflow!r}")
        if mul_stages and dataflow != "os":
            raise ValueError(f"mul_stages: must be 0 with dataflow={dataflow}, got {mul_stages}")
        self.rows, self.cols, self.dataflow, self.numerics = rows, cols, dataflow, numerics
        self.mul_stages = mul_stages
        self.pe = pe if pe is not None else self.pe_factory(dataflow, mul_stages)
        self.in_layout, self.out_layout = stream_layouts(rows, cols, dataflow, numerics)
        super().__init__({
            "i_stream": In(stream.Signature(self.in_layout)),
            "o_stream": Out(ValidStream(self.out_layout)),
        })

    @classmethod
    def from_config(cls, config: SystolicConfig, *, pe=None) -> "SystolicArray":
        return cls(config.rows, config.cols, config.dataflow, config.mac,
                   mul_stages=config.mul_stages, pe=pe)

    @staticmethod
    def pe_class(dataflow: str) -> type:
        """The PE component of a dataflow."""
        return OutputStationaryPE if dataflow == "os" else WeightStationaryPE

    @classmethod
    def pe_factory(cls, dataflow: str, mul_stages: int = 0):
        """``numerics -> PE`` of a dataflow (``os``: with ``mul_stages``)."""
        if dataflow == "os":
            return partial(OutputStationaryPE, mul_stages=mul_stages)
        return WeightStationaryPE

    def elaborate(self, platform):
        if self.dataflow == "os":
            return self._elaborate_output_stationary()
        return self._elaborate_weight_stationary()

    def _pe_grid(self, m):
        """The ``rows x cols`` PEs, added to ``m`` as ``pe_<row>_<col>``."""
        pes = [[self.pe(self.numerics) for _ in range(self.cols)] for _ in range(self.rows)]
        for i, j in _grid(self.rows, self.cols):
            m.submodules[f"pe_{i}_{j}"] = pes[i][j]
        return pes

    def _elaborate_output_stationary(self):
        m = Module()
        rows, cols = self.rows, self.cols
        pes = self._pe_grid(m)

        fire = Signal()
        drain = Signal()
        m.d.comb += fire.eq(self.i_stream.valid & self.i_stream.ready)
        payload = self.i_stream.payload
        for i, j in _grid(rows, cols):
            pe = pes[i][j]
            if j == 0:
                m.d.comb += [pe.a_in.eq(delayed(m, payload.a[i], i, f"a{i}_skew")),
                             pe.valid_in.eq(delayed(m, fire, i, f"valid{i}_skew"))]
            else:
                m.d.comb += [pe.a_in.eq(pes[i][j - 1].a_out),
                             pe.valid_in.eq(pes[i][j - 1].valid_out)]
            if i == 0:
                m.d.comb += pe.b_in.eq(delayed(m, payload.b[j], j, f"b{j}_skew"))
            else:
                m.d.comb += pe.b_in.eq(pes[i - 1][j].b_out)
            below = pes[i + 1][j].acc if i + 1 < rows else Const(self.numerics.zero)
            m.d.comb += [pe.drain.eq(drain), pe.acc_in.eq(below)]

        # The tile's last beat reaches the far corner rows + cols - 2 cycles after it is accepted
        # and its accumulator mul_stages cycles later; then the accumulators shift up one row per
        # cycle, row 0 on the output.
        drain_fsm(m, rows=rows, i_ready=self.i_stream.ready, ready=1,
                  tile_end=fire & payload.last, drain=drain, o_stream=self.o_stream,
                  wait_state="WAVEFRONT", wait_cycles=rows + cols - 2 + self.mul_stages)
        for j in range(cols):
            m.d.comb += self.o_stream.payload.data[j].eq(pes[0][j].acc)
        return m

    def _elaborate_weight_stationary(self):
        m = Module()
        rows, cols = self.rows, self.cols
        pes = self._pe_grid(m)

        fire = Signal()
        compute = Signal()
        payload = self.i_stream.payload
        m.d.comb += [fire.eq(self.i_stream.valid & self.i_stream.ready),
                     compute.eq(fire & ~payload.load)]
        for i, j in _grid(rows, cols):
            pe = pes[i][j]
            a_in = delayed(m, payload.a[i], i, f"a{i}_skew") if j == 0 else pes[i][j - 1].a_out
            if i == 0:
                w_in = payload.b[j]
                psum_in = delayed(m, payload.d[j], j, f"d{j}_skew")
            else:
                w_in, psum_in = pes[i - 1][j].w, pes[i - 1][j].psum_out
            m.d.comb += [pe.a_in.eq(a_in), pe.w_in.eq(w_in), pe.psum_in.eq(psum_in),
                         pe.load.eq(fire & payload.load)]

        # A row accepted at edge t leaves column j's bottom PE after edge t + rows - 1 + j; the
        # deskew delays column j by cols - 1 - j so the whole row is out rows + cols - 1 cycles on.
        latency = rows + cols - 1
        for j in range(cols):
            column_sum = delayed(m, pes[rows - 1][j].psum_out, cols - 1 - j, f"c{j}_deskew")
            m.d.comb += self.o_stream.payload.data[j].eq(column_sum)
        m.d.comb += [self.o_stream.valid.eq(delayed(m, compute, latency, "out_valid")),
                     self.o_stream.payload.last.eq(
                         delayed(m, compute & payload.last, latency, "out_last"))]

        # New weights may shift in only once the tile's last row has passed every PE.
        wavefront = rows + cols - 2
        if not wavefront:
            m.d.comb += self.i_stream.ready.eq(1)
            return m
        count = Signal(range(max(wavefront, 2)))
        with m.FSM():
            with m.State("STREAM"):
                m.d.comb += self.i_stream.ready.eq(1)
                with m.If(compute & payload.last):
                    m.d.sync += count.eq(wavefront - 1)
                    m.next = "WAVEFRONT"
            with m.State("WAVEFRONT"):
                m.d.sync += count.eq(count - 1)
                with m.If(count == 0):
                    m.next = "STREAM"
        return m


def stream_layouts(rows: int, cols: int, dataflow: str, numerics):
    """Payload layouts of :class:`SystolicArray`'s input and output streams."""
    op, acc = mac_shapes(numerics)
    fields = {"a": data.ArrayLayout(op, rows)}
    if dataflow == "os":
        fields["b"] = data.ArrayLayout(op, cols)
    else:
        fields.update(load=1, b=data.ArrayLayout(op, cols), d=data.ArrayLayout(acc, cols))
    fields["last"] = 1
    return data.StructLayout(fields), data.StructLayout({"data": data.ArrayLayout(acc, cols),
                                                         "last": 1})


def _grid(rows, cols):
    return ((i, j) for i in range(rows) for j in range(cols))
