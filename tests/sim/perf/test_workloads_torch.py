"""from_torch: PyTorch modules through torch.export (skipped where torch is not installed: it
is not a dependency of peforge). Shapes, counts, widths, weight flags and weight sparsity counted
by hand."""

import pytest

from peforge.sim.perf.workloads import Gemm, from_torch
from peforge.sim.perf.workloads.weight_sparsity import WeightSparsity

torch = pytest.importorskip("torch")
nn = torch.nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 32)
        self.norm = nn.LayerNorm(32)
        self.conv = nn.Conv2d(8, 16, 3, groups=2)
        self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.up = nn.ConvTranspose2d(16, 6, 3, stride=2, bias=False)

    def forward(self, x, image):
        h = torch.nn.functional.gelu(self.norm(self.fc(x)))
        scores = torch.softmax(h @ h.transpose(-1, -2), dim=-1)
        return scores, self.up(self.depthwise(self.conv(image)))


def test_gemms_and_vector_work_of_a_module():
    workload = from_torch(Block(), (torch.randn(2, 5, 64), torch.randn(1, 8, 10, 10)))
    assert workload.warnings == ()
    shapes = [(g.m, g.k, g.n, g.count, g.w_is_weight) for g in workload.gemms]
    assert shapes == [
        (2 * 5, 64, 32, 1, True),          # fc: every token through one weight
        (5, 32, 5, 2, False),              # h @ h^T per batch
        (8 * 8, 4 * 9, 8, 2, True),        # 8 -> 16 channels in 2 groups, 10x10 -> 8x8
        (8 * 8, 9, 1, 16, True),           # depthwise 3x3, padded
        (8 * 8, 16, 6 * 9, 1, True),       # transposed: each input pixel times the kernel
    ]
    assert all((g.a_bits, g.w_bits, g.out_bits) == (32, 32, 32) for g in workload.gemms)
    kinds = [(op.kind, op.elements) for op in workload.vector_ops]
    assert ("norm", 2 * 5 * 32) in kinds and ("activation", 2 * 5 * 32) in kinds
    assert ("softmax", 2 * 5 * 5) in kinds
    norm = next(op for op in workload.vector_ops if op.kind == "norm")
    assert norm.read_bytes == (2 * 5 * 32 + 32 + 32) * 4 and norm.write_bytes == 2 * 5 * 32 * 4


def test_widths_follow_the_dtype():
    module = nn.Linear(16, 8, bias=False).to(torch.bfloat16)
    with torch.no_grad():
        module.weight.fill_(0.5)
    (gemm,) = from_torch(module, (torch.randn(4, 16, dtype=torch.bfloat16),)).gemms
    assert gemm == Gemm(gemm.name, 4, 16, 8, 1, 16, 16, 16,
                        w_sparsity=WeightSparsity(0, 128, 16, (2, 4, 8, 16)))


def test_weight_sparsity_is_measured_on_the_parameters():
    # linear: W[N = 2, K = 8] rows (1, 1, 0, 0, 2, 0, 3, 0) and (0, 0, 0, 5, 0, 0, 0, 0) are
    # its columns along K: 11 of 16 zero, the first pair holds 2, each group of 4 at most 2
    linear = nn.Linear(8, 2, bias=False)
    conv = nn.Conv2d(4, 2, (1, 2), bias=False)
    with torch.no_grad():
        linear.weight[:] = torch.tensor([[1., 1, 0, 0, 2, 0, 3, 0], [0, 0, 0, 5, 0, 0, 0, 0]])
        # 2:4 along the input channels at each kernel position (channels-last K)
        conv.weight.zero_()
        conv.weight[0, :2] = 1.0
        conv.weight[1, 2:] = 2.0
    (gemm,) = from_torch(linear, (torch.randn(3, 8),)).gemms
    assert gemm.w_sparsity == WeightSparsity(11, 16, 8, (2, 2, 4, 4))
    (gemm,) = from_torch(conv, (torch.randn(1, 4, 5, 5),)).gemms
    assert gemm.w_sparsity == WeightSparsity(8, 16, 8, (2, 2, 4, 4))
    assert str(gemm.w_sparsity.pattern) == "2:4"


class Sorts(nn.Module):
    def forward(self, x):
        return torch.sort(x @ x.T).values


def test_unmapped_operators_are_listed_and_bad_modules_refused():
    workload = from_torch(Sorts(), (torch.randn(3, 4),))
    assert len(workload.gemms) == 1 and workload.warnings == (
        "torch: Sorts: operators not mapped, their work is missing from the totals: sort x1",)

    class NotTraceable(nn.Module):
        def forward(self, x):
            return x.numpy()

    with pytest.raises(ValueError, match="^torch: NotTraceable does not export with "
                                         "torch.export: "):
        from_torch(NotTraceable(), (torch.randn(2),))
