"""Systolic MAC arrays, output-stationary and weight-stationary, with skewed operand feeds.

The array takes one beat per cycle on ``i_stream`` (valid/ready) and emits one row of results per
cycle on ``o_stream`` (valid only: the consumer must take every beat). Skew registers inside the
array delay input lane ``i`` by ``i`` cycles and deskew the outputs, so beats carry plain rows and
columns of the matrices. The multiply-accumulate is a pluggable unit (:mod:`peforge.hw.common.mac`).

Protocol and cycle counts are documented in :mod:`peforge.models.systolic`; the driver that tiles a
GEMM onto it is :mod:`peforge.hw.systolic.driver`.
"""

from functools import partial

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from peforge.models.systolic import SystolicConfig

from peforge.hw.common.delays import delayed
from peforge.hw.common.drain import drain_fsm
from peforge.hw.common.floatmac import FloatMacUnit
from peforge.hw.common.mac import mac_shapes, mac_unit
from peforge.hw.common.streams import ValidStream
from peforge.hw.common.verilog import index_shape

from peforge.hw.systolic.grid import link_grid

__all__ = ["SystolicArray", "OutputStationaryPE", "SplitAccumulatorPE", "WeightStationaryPE",
           "stream_layouts"]


class _MacPE(wiring.Component):
    """A PE around one MAC unit of ``numerics`` with ``mul_stages`` register stages after its
    multiplier; a subclass gives ``signature_of(numerics)``."""

    def __init__(self, numerics, mul_stages: int = 0):
        self.numerics, self.mul_stages = numerics, mul_stages
        self._mac = self.make_mac(numerics, mul_stages)
        super().__init__(self.signature_of(numerics))

    @staticmethod
    def make_mac(numerics, mul_stages: int) -> wiring.Component:
        return mac_unit(numerics, mul_stages)


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

    #: Inputs from neighbours or shared by all PEs, in wiring order (:mod:`~peforge.hw.systolic.grid`).
    LINKS = (("a_in", "a_out", "right"), ("valid_in", "valid_out", "right"),
             ("b_in", "b_out", "down"), ("drain", None, None), ("acc_in", "acc", "up"))

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
        step = self._forward(m)
        with m.If(self.drain):
            m.d.sync += self.acc.eq(self.acc_in)
        with m.Elif(step):
            m.d.sync += self.acc.eq(mac.result)
        return m

    def _forward(self, m) -> Signal:
        """Register ``a``, ``b`` and ``valid`` on to the neighbours; return ``valid_in``
        delayed to the cycle its product reaches the adder."""
        m.d.sync += [self.a_out.eq(self.a_in), self.b_out.eq(self.b_in),
                     self.valid_out.eq(self.valid_in)]
        return delayed(m, self.valid_in, self.mul_stages, "mac_valid")


class SplitAccumulatorPE(OutputStationaryPE):
    """An output-stationary float PE whose fp32 adder is registered halfway
    (:class:`~peforge.hw.common.floatmac.FloatMacUnit` with ``add_stages=1``): a MAC step's sum
    is written a cycle after its operands, so steps alternate between two partial sums, ``acc``
    (steps 0, 2, ...) and ``acc_1`` (steps 1, 3, ...), both ``+0`` at a tile's start.

    Ports as :class:`OutputStationaryPE`, and ``combine : In(1)``: the adder adds ``acc_1`` to
    ``acc``, written to ``acc`` a cycle later (the array raises it once the tile's last sum is
    written, two cycles before draining). ``drain`` also clears ``acc_1``.
    """

    LINKS = OutputStationaryPE.LINKS + (("combine", None, None),)

    @staticmethod
    def make_mac(numerics, mul_stages: int) -> wiring.Component:
        return FloatMacUnit(numerics, mul_stages, add_stages=1)

    @staticmethod
    def signature_of(numerics) -> wiring.Signature:
        members = OutputStationaryPE.signature_of(numerics).members
        return wiring.Signature({**members, "combine": In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mac = mac = self._mac
        zero = self.numerics.zero
        acc_1, part = Signal.like(self.acc, name="acc_1", init=zero), Signal(name="part")
        m.d.comb += [mac.a.eq(self.a_in), mac.b.eq(self.b_in), mac.combine.eq(self.combine),
                     mac.acc.eq(Mux(part & ~self.combine, acc_1, self.acc)),
                     mac.addend.eq(acc_1)]
        step = self._forward(m)
        summed, summed_part = delayed(m, step, 1, "summed"), delayed(m, part, 1, "summed_part")
        combined = delayed(m, self.combine, 1, "combined")
        with m.If(self.drain):
            m.d.sync += [self.acc.eq(self.acc_in), acc_1.eq(zero), part.eq(0)]
        with m.Elif(combined):
            m.d.sync += self.acc.eq(mac.result)
        with m.Elif(summed):
            with m.If(summed_part):
                m.d.sync += acc_1.eq(mac.result)
            with m.Else():
                m.d.sync += self.acc.eq(mac.result)
        with m.If(step & ~self.drain):
            m.d.sync += part.eq(~part)
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

    #: Inputs from neighbours or shared by all PEs, in wiring order (:mod:`~peforge.hw.systolic.grid`).
    LINKS = (("a_in", "a_out", "right"), ("w_in", "w", "down"), ("psum_in", "psum_out", "down"),
             ("load", None, None))

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
    add_stages : int
        ``os`` float PEs only: 1 registers each PE's adder halfway (:class:`SplitAccumulatorPE`);
        a tile waits 3 cycles more: its last sum, then ``combine`` and its sum.
    pe : callable, optional
        ``numerics -> PE component`` with the signature of the dataflow's PE; default
        :class:`OutputStationaryPE` (with ``mul_stages``) or :class:`WeightStationaryPE`. Area
        composition (:mod:`peforge.sim.eda.synth`) passes a black-box stand-in here.
    parts : optional
        Shared parts (:class:`~peforge.hw.systolic.hierarchical.SharedParts`): ``block(rows,
        cols)`` gives the PE grid as one component with the signature of
        :class:`~peforge.hw.systolic.grid.PeBlock`, ``skew(lanes, width)`` and ``line(width,
        cycles)`` the skew and delay registers (:class:`~peforge.hw.common.delays.Skew`,
        :class:`~peforge.hw.common.delays.DelayLine`). Default: ``pe`` and the registers placed
        in the array itself (PEs named ``pe_<row>_<col>``).

    Ports
    -----
    i_stream : In(stream.Signature(...))
        ``os`` payload: ``a`` (rows operands: one column of the A tile), ``b`` (cols operands: one
        row of the B tile), ``last`` (final K step of the tile). ``ws`` payload: ``load`` (this beat
        is a weight row: ``b`` enters row 0 and older rows shift down, so the bottom row is sent
        first), ``a`` (rows operands: one row of the A tile), ``d`` (cols accumulator values added
        to the column sums: the previous K-tile's partial sums), ``last`` (final row of the tile).
        ``ready`` is low while a tile finishes (``rows + cols - 2`` cycles, ``os``:
        ``+ mul_stages + 3 * add_stages``) and, for ``os``, while it drains.
    o_stream : Out(ValidStream(...))
        Payload ``data`` (cols accumulator values: one row of the result tile) and ``last`` (final
        row of the tile). ``os`` emits ``rows`` beats per tile, row 0 first; ``ws`` one beat per
        streamed row, ``rows + cols - 1`` cycles after it was accepted.
    """

    def __init__(self, rows: int, cols: int, dataflow: str, numerics, *, mul_stages: int = 0,
                 add_stages: int = 0, pe=None, parts=None):
        if dataflow not in ("os", "ws"):
            raise ValueError(f"dataflow: must be one of os, ws, got {dataflow!r}")
        if mul_stages and dataflow != "os":
            raise ValueError(f"mul_stages: must be 0 with dataflow={dataflow}, got {mul_stages}")
        if add_stages and dataflow != "os":
            raise ValueError(f"add_stages: must be 0 with dataflow={dataflow}, got {add_stages}")
        self.rows, self.cols, self.dataflow, self.numerics = rows, cols, dataflow, numerics
        self.mul_stages, self.add_stages = mul_stages, add_stages
        self.pe = pe if pe is not None else self.pe_factory(dataflow, mul_stages, add_stages)
        self.parts = parts
        self.in_layout, self.out_layout = stream_layouts(rows, cols, dataflow, numerics)
        super().__init__({
            "i_stream": In(stream.Signature(self.in_layout)),
            "o_stream": Out(ValidStream(self.out_layout)),
        })

    @classmethod
    def from_config(cls, config: SystolicConfig, *, pe=None, parts=None) -> "SystolicArray":
        return cls(config.rows, config.cols, config.dataflow, config.mac,
                   mul_stages=config.mul_stages, add_stages=config.add_stages, pe=pe,
                   parts=parts)

    @staticmethod
    def pe_class(dataflow: str, add_stages: int = 0) -> type:
        """The PE component of a dataflow (``os`` with ``add_stages``: the split one)."""
        if dataflow == "os":
            return SplitAccumulatorPE if add_stages else OutputStationaryPE
        return WeightStationaryPE

    @classmethod
    def pe_factory(cls, dataflow: str, mul_stages: int = 0, add_stages: int = 0):
        """``numerics -> PE`` of a dataflow (``os``: with ``mul_stages`` and ``add_stages``)."""
        if dataflow == "os":
            return partial(cls.pe_class(dataflow, add_stages), mul_stages=mul_stages)
        return WeightStationaryPE

    def elaborate(self, platform):
        if self.dataflow == "os":
            return self._elaborate_output_stationary()
        return self._elaborate_weight_stationary()

    def _pe_grid(self, m, feeds: dict) -> dict[str, list]:
        """Add the PE grid to ``m`` with each border input driven by ``feeds[name](lane)`` and
        each broadcast input by ``feeds[name](None)``; return the border outputs by PE port
        name, one value per lane (:func:`~peforge.hw.systolic.grid.link_grid`)."""
        links = self.pe_class(self.dataflow, self.add_stages).LINKS
        if self.parts is None:
            pes = [[self.pe(self.numerics) for _ in range(self.cols)] for _ in range(self.rows)]
            for i, j in _grid(self.rows, self.cols):
                m.submodules[f"pe_{i}_{j}"] = pes[i][j]
            return link_grid(m, pes, links, lambda name, lane: feeds[name](lane))
        m.submodules.grid = grid = self.parts.block(self.rows, self.cols)
        lanes = {"right": self.rows, "down": self.cols, "up": self.cols}
        edges = {}
        for i_name, o_name, direction in links:
            port = getattr(grid, i_name)
            if direction is None:
                m.d.comb += port.eq(feeds[i_name](None))
                continue
            m.d.comb += [port[lane].eq(feeds[i_name](lane)) for lane in range(lanes[direction])]
            edges[o_name] = [getattr(grid, o_name)[lane] for lane in range(lanes[direction])]
        return edges

    def _skewed(self, m, values: list, name: str, reverse: bool = False):
        """``lane -> value``: lane ``k`` of ``values`` delayed ``k`` cycles (``reverse``:
        ``len(values) - 1 - k``); in place, the registers of lane ``k`` are named
        ``name.format(k)`` (made when the lane is first asked for)."""
        lanes = len(values)

        def cycles(k):
            return lanes - 1 - k if reverse else k
        if self.parts is None:
            return lambda k: delayed(m, values[k], cycles(k), name.format(k))
        width = len(Value.cast(values[0]))
        m.submodules[name.format("")] = skew = self.parts.skew(lanes, width)
        order = list(reversed(values)) if reverse else values
        m.d.comb += skew.i.eq(Cat(*order))
        return lambda k: skew.o[cycles(k) * width:(cycles(k) + 1) * width]

    def _line(self, m, value, cycles: int, name: str):
        """``value`` delayed ``cycles`` cycles (in place: registers ``<name>_d<stage>``)."""
        if self.parts is None or cycles == 0:
            return delayed(m, value, cycles, name)
        m.submodules[name] = line = self.parts.line(len(Value.cast(value)), cycles)
        m.d.comb += line.i.eq(value)
        return line.o

    def _elaborate_output_stationary(self):
        m = Module()
        rows, cols = self.rows, self.cols
        fire = Signal()
        drain = Signal()
        m.d.comb += fire.eq(self.i_stream.valid & self.i_stream.ready)
        payload = self.i_stream.payload
        feeds = {"a_in": self._skewed(m, [payload.a[i] for i in range(rows)], "a{}_skew"),
                 "valid_in": self._skewed(m, [fire] * rows, "valid{}_skew"),
                 "b_in": self._skewed(m, [payload.b[j] for j in range(cols)], "b{}_skew"),
                 "acc_in": lambda j: Const(self.numerics.zero), "drain": lambda _: drain}
        combine = None
        if self.add_stages:
            combine = Signal()
            feeds["combine"] = lambda _: combine
        edges = self._pe_grid(m, feeds)

        # The tile's last beat reaches the far corner rows + cols - 2 cycles after it is accepted
        # and its accumulator mul_stages cycles later (add_stages: its sum one more, then every
        # PE adds its two partial sums, 2 cycles); then the accumulators shift up one row per
        # cycle, row 0 on the output.
        drain_fsm(m, rows=rows, i_ready=self.i_stream.ready, ready=1,
                  tile_end=fire & payload.last, drain=drain, o_stream=self.o_stream,
                  wait_state="WAVEFRONT", before_end=combine,
                  wait_cycles=rows + cols - 2 + self.mul_stages + 3 * self.add_stages)
        for j in range(cols):
            m.d.comb += self.o_stream.payload.data[j].eq(edges["acc"][j])
        return m

    def _elaborate_weight_stationary(self):
        m = Module()
        rows, cols = self.rows, self.cols
        fire = Signal()
        compute = Signal()
        payload = self.i_stream.payload
        m.d.comb += [fire.eq(self.i_stream.valid & self.i_stream.ready),
                     compute.eq(fire & ~payload.load)]
        feeds = {"a_in": self._skewed(m, [payload.a[i] for i in range(rows)], "a{}_skew"),
                 "w_in": lambda j: payload.b[j],
                 "psum_in": self._skewed(m, [payload.d[j] for j in range(cols)], "d{}_skew"),
                 "load": lambda _: fire & payload.load}
        edges = self._pe_grid(m, feeds)

        # A row accepted at edge t leaves column j's bottom PE after edge t + rows - 1 + j; the
        # deskew delays column j by cols - 1 - j so the whole row is out rows + cols - 1 cycles on.
        latency = rows + cols - 1
        deskewed = self._skewed(m, edges["psum_out"], "c{}_deskew", reverse=True)
        for j in range(cols):
            m.d.comb += self.o_stream.payload.data[j].eq(deskewed(j))
        m.d.comb += [self.o_stream.valid.eq(self._line(m, compute, latency, "out_valid")),
                     self.o_stream.payload.last.eq(
                         self._line(m, compute & payload.last, latency, "out_last"))]

        # New weights may shift in only once the tile's last row has passed every PE.
        wavefront = rows + cols - 2
        if not wavefront:
            m.d.comb += self.i_stream.ready.eq(1)
            return m
        count = Signal(index_shape(wavefront))
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
