"""The PE grid of a systolic array: PEs (or blocks of PEs) wired to their neighbours, and
:class:`PeBlock`, a block of PEs with the edge ports of its grid.

A PE class lists its inputs as ``LINKS``, in the order each PE's inputs are wired (the flat
array's Verilog text depends on it): ``(input, output, direction)`` for a port pair that passes
values between neighbours, travelling ``right``, ``down`` or ``up``, and ``(input, None, None)``
for a broadcast input that every PE takes from one signal. A grid's edges are the link ports
left open at its border; a block of blocks is wired exactly as a grid of PEs, because a block's
edge ports carry one lane per PE along that edge.
"""

from amaranth import Cat, Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["link_grid", "PeBlock"]


def link_grid(m: Module, cells, links, feed) -> dict[str, list]:
    """Wire the grid ``cells`` (a list of rows) in ``m`` and return its edge outputs.

    Cell by cell (row-major), input by input of ``links``: a link input is driven from the
    neighbour it comes from, or on the border by ``feed(input name, lane)``; a broadcast input by
    ``feed(input name, None)``. Lanes run along the border: ``right`` links' inputs enter the
    first column and their outputs leave the last one, lane = row; ``down`` links enter the
    first row and leave the last, ``up`` links enter the last row and leave the first, lane =
    column. The result maps each link output name to its border values in lane order.
    """
    rows, cols = len(cells), len(cells[0])
    step = {"right": (0, -1), "down": (-1, 0), "up": (1, 0)}
    for i in range(rows):
        for j in range(cols):
            cell = cells[i][j]
            for i_name, o_name, direction in links:
                di, dj = step.get(direction, (0, 0))
                if direction is None:
                    value = feed(i_name, None)
                elif 0 <= i + di < rows and 0 <= j + dj < cols:
                    value = getattr(cells[i + di][j + dj], o_name)
                else:
                    value = feed(i_name, i if direction == "right" else j)
                m.d.comb += getattr(cell, i_name).eq(value)
    edges = {}
    for _, o_name, direction in links:
        if direction is None:
            continue
        if direction == "right":
            edges[o_name] = [getattr(row[-1], o_name) for row in cells]
        else:
            edges[o_name] = [getattr(cell, o_name)
                             for cell in cells[-1 if direction == "down" else 0]]
    return edges


class PeBlock(wiring.Component):
    """``rows x cols`` PEs of ``pe_class`` as one component with the edge ports of their grid.

    A block of one PE holds that PE (named ``pe``); a larger one holds two blocks, its rows split
    into a ``ceil(rows / 2)`` and a ``floor(rows / 2)`` block when ``rows >= cols``, else its
    columns, named ``r<first row>_c<first column>`` (offsets within this block). Built from
    shared parts (:mod:`peforge.hw.common.hierarchy`), a ``2**n x 2**n`` array is then
    ``2 * n + 1`` distinct blocks, each converted once.

    Parameters
    ----------
    rows, cols : int
        Block shape, at least 1 x 1.
    pe_class : type
        The PE: ``LINKS`` and ``signature_of(numerics)``.
    numerics
        The PEs' MAC numerics.
    pe : callable
        ``() -> PE component`` (the PE itself or a stand-in for it).
    block : callable
        ``(rows, cols) -> component`` with the signature of ``PeBlock(rows, cols, ...)``: the
        two halves.

    Ports
    -----
    For each link ``(input, output, direction)`` of the PE: ``input`` In and ``output`` Out, an
    ``ArrayLayout`` of the PE's port shape with one lane per PE along the edge (``rows`` lanes
    for ``right`` links, ``cols`` for ``down`` and ``up``; lane order of :func:`link_grid`).
    For each broadcast input: In of the PE's port shape, to every PE.

    The block adds no logic and no latency: every register is in a PE.
    """

    def __init__(self, rows: int, cols: int, pe_class: type, numerics, *, pe, block):
        if rows < 1 or cols < 1:
            raise ValueError(f"PeBlock: needs at least 1 x 1 PEs, got {rows} x {cols}")
        self.rows, self.cols, self._pe_class = rows, cols, pe_class
        self._pe, self._block = pe, block
        super().__init__(self.signature_of(rows, cols, pe_class, numerics))

    @staticmethod
    def signature_of(rows: int, cols: int, pe_class: type, numerics) -> wiring.Signature:
        """The block's signature, without building one."""
        pe_members = pe_class.signature_of(numerics).members
        members = {}
        for i_name, o_name, direction in pe_class.LINKS:
            if direction is None:
                members[i_name] = In(pe_members[i_name].shape)
                continue
            lanes = rows if direction == "right" else cols
            members[i_name] = In(data.ArrayLayout(pe_members[i_name].shape, lanes))
            members[o_name] = Out(data.ArrayLayout(pe_members[o_name].shape, lanes))
        return wiring.Signature(members)

    def elaborate(self, platform):
        m = Module()
        rows, cols = self.rows, self.cols
        if rows == cols == 1:
            m.submodules.pe = pe = self._pe()
            cells, row_spans, col_spans = [[pe]], [(0, 1)], [(0, 1)]
        elif rows >= cols:
            top = (rows + 1) // 2
            cells = [[self._block(top, cols)], [self._block(rows - top, cols)]]
            row_spans, col_spans = [(0, top), (top, rows)], [(0, cols)]
            m.submodules.r0_c0, m.submodules[f"r{top}_c0"] = cells[0][0], cells[1][0]
        else:
            left = (cols + 1) // 2
            cells = [[self._block(rows, left), self._block(rows, cols - left)]]
            row_spans, col_spans = [(0, rows)], [(0, left), (left, cols)]
            m.submodules.r0_c0, m.submodules[f"r0_c{left}"] = cells[0]

        directions = {i_name: direction for i_name, _, direction in self._pe_class.LINKS}

        def feed(name, lane):
            """This block's input ``name``: whole if broadcast, else the lanes that border cell
            ``lane`` takes."""
            port = getattr(self, name)
            if lane is None:
                return port
            start, stop = (row_spans if directions[name] == "right" else col_spans)[lane]
            return Cat(*(port[k] for k in range(start, stop)))

        for o_name, values in link_grid(m, cells, self._pe_class.LINKS, feed).items():
            m.d.comb += getattr(self, o_name).eq(Cat(*values))
        return m
