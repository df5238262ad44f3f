"""The work items every workload source produces: GEMMs (the PE array's work), vector operations
(the rest of a network: softmax, norms, activations, elementwise ops, reductions), and a
:class:`Workload` that holds both.

A :class:`Gemm` is ``C[m x n] = A[m x k] @ W[k x n]``, repeated ``count`` times (a batched GEMM:
attention heads, groups of a grouped convolution, or identical transformer layers).
"""

import math
from dataclasses import dataclass

from peforge.sim.perf.workloads.weight_sparsity import WeightSparsity

__all__ = ["Gemm", "conv2d_gemm", "VectorOp", "VECTOR_KINDS", "Workload", "positive_int",
           "matmul_shape", "conv_shape"]


def positive_int(value) -> bool:
    """Whether ``value`` is an ``int`` (not a ``bool``) of at least 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class Gemm:
    """One GEMM of a workload.

    Attributes
    ----------
    name : str
    m, k, n : int
        ``A`` is ``m x k``, ``W`` is ``k x n``.
    count : int
        How many times the same GEMM runs (batch, heads, groups, layers).
    a_bits, w_bits, out_bits : int
        Widths of ``A``, ``W`` and ``C`` elements as they move to and from DRAM.
    w_is_weight : bool
        ``W`` is a model parameter (a trained weight, known before the run: what a bit-serial
        or sparse array can pre-process) rather than an activation computed at run time
        (attention's keys and values).
    w_sparsity : WeightSparsity or None
        ``W``'s zeros and N:M structure along K, measured on its values (an ONNX model's
        initializers); None (the default, every source without the values): unknown, and a
        sparse array assumes the weights are pruned to its own pattern.
    """

    name: str
    m: int
    k: int
    n: int
    count: int = 1
    a_bits: int = 8
    w_bits: int = 8
    out_bits: int = 32
    w_is_weight: bool = True
    w_sparsity: WeightSparsity | None = None

    def __post_init__(self):
        for field in ("m", "k", "n", "count", "a_bits", "w_bits", "out_bits"):
            if not positive_int(getattr(self, field)):
                raise ValueError(f"{field}: must be a positive integer, got "
                                 f"{getattr(self, field)!r} (GEMM {self.name!r})")
        if not isinstance(self.w_is_weight, bool):
            raise ValueError(f"w_is_weight: must be true or false, got {self.w_is_weight!r} "
                             f"(GEMM {self.name!r})")
        if self.w_sparsity is not None and not isinstance(self.w_sparsity, WeightSparsity):
            raise ValueError(f"w_sparsity: must be a WeightSparsity or None, got "
                             f"{self.w_sparsity!r} (GEMM {self.name!r})")

    @property
    def shape(self) -> tuple[int, int, int, int, int, int]:
        """``(m, k, n, a_bits, w_bits, out_bits)``: what the GEMM's simulation depends on (not
        its name or count)."""
        return self.m, self.k, self.n, self.a_bits, self.w_bits, self.out_bits

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n * self.count


def matmul_shape(a: tuple, b: tuple) -> tuple[int, int, int, int]:
    """``(m, k, n, count)`` of ``A @ B`` (shapes ``a``, ``b``) under numpy's matmul
    broadcasting; when ``B`` has no batch dimensions, ``A``'s leading dimensions fold into ``m``
    (one weight matrix for every row)."""
    if len(a) == 1:
        a = (1, *a)
    if len(b) == 1:
        b = (*b, 1)
    if len(b) == 2:
        return math.prod(a[:-1]), a[-1], b[-1], 1
    rank = max(len(a), len(b)) - 2
    batch_a, batch_b = (1,) * (rank + 2 - len(a)) + a[:-2], (1,) * (rank + 2 - len(b)) + b[:-2]
    return a[-2], a[-1], b[-1], math.prod(max(x, y) for x, y in zip(batch_a, batch_b))


def conv_shape(x: tuple, w: tuple, y: tuple, group: int, transposed: bool
               ) -> tuple[int, int, int, int]:
    """``(m, k, n, count)`` of a 1-, 2- or 3-d convolution of input ``x`` ``[N, C, *in]``,
    weights ``w`` and output ``y`` ``[N, M, *out]`` in ``group`` groups, by im2col per group:
    ``m = N * output pixels``, ``k = C / group * kernel``, ``n = M / group``. Transposed
    (``w`` is ``[C, M / group, *kernel]``): each input pixel times the kernel,
    ``m = N * input pixels``, ``k = C / group``, ``n = M / group * kernel``."""
    if transposed:
        return x[0] * math.prod(x[2:]), x[1] // group, w[1] * math.prod(w[2:]), group
    return y[0] * math.prod(y[2:]), w[1] * math.prod(w[2:]), w[0] // group, group


def conv2d_gemm(name, *, height, width, channels, filters, kernel_h, kernel_w, stride=1,
                padding=0, **widths) -> Gemm:
    """A conv2d lowered to a GEMM by im2col: ``m`` output pixels (``(H + 2p - kh) // s + 1``
    rows), ``k = kernel_h * kernel_w * channels``, ``n`` filters."""
    out_h = (height + 2 * padding - kernel_h) // stride + 1
    out_w = (width + 2 * padding - kernel_w) // stride + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"kernel: {kernel_h}x{kernel_w} does not fit a {height}x{width} input "
                         f"(conv {name!r})")
    return Gemm(name, out_h * out_w, kernel_h * kernel_w * channels, filters, **widths)


#: The classes of vector work, as a vector unit's ``ops_per_cycle`` names them:
#: ``elementwise`` (add, mul, ...: one operation per element), ``activation`` (GELU, SiLU,
#: sigmoid, tanh, exp, ...), ``softmax`` (max, exp, sum, divide), ``norm`` (layer and RMS norm)
#: and ``reduction`` (sums, means, pooling windows).
VECTOR_KINDS = ("elementwise", "activation", "softmax", "norm", "reduction")


@dataclass(frozen=True)
class VectorOp:
    """One operation outside the GEMMs, repeated ``count`` times.

    Attributes
    ----------
    name : str
    kind : str
        One of :data:`VECTOR_KINDS`.
    elements : int
        Elements the operation processes: the largest of its inputs and output (an elementwise
        op's broadcast output, a reduction's input, a softmax's row elements times rows).
    read_bytes, write_bytes : int
        Bytes of its inputs read and of its output written (at their element widths).
    count : int
    op_type : str
        The operator it came from (``Softmax``, ``aten.gelu``, ``rms_norm``).
    """

    name: str
    kind: str
    elements: int
    read_bytes: int
    write_bytes: int
    count: int = 1
    op_type: str = ""

    def __post_init__(self):
        if self.kind not in VECTOR_KINDS:
            raise ValueError(f"kind: must be one of {', '.join(VECTOR_KINDS)}, got "
                             f"{self.kind!r} (vector op {self.name!r})")
        for field in ("elements", "count"):
            if not positive_int(getattr(self, field)):
                raise ValueError(f"{field}: must be a positive integer, got "
                                 f"{getattr(self, field)!r} (vector op {self.name!r})")
        for field in ("read_bytes", "write_bytes"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{field}: must be an integer >= 0, got {value!r} "
                                 f"(vector op {self.name!r})")


@dataclass(frozen=True)
class Workload:
    """What a network runs: its GEMMs and its vector operations, in graph order.

    ``warnings``: what the source could not map or had to assume (operators skipped by name
    and count, a topology file's first row skipped as SCALE-Sim does): one line each, for the
    user to see."""

    name: str
    gemms: tuple[Gemm, ...]
    vector_ops: tuple[VectorOp, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def macs(self) -> int:
        return sum(gemm.macs for gemm in self.gemms)
