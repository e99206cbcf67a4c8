"""Dense gradients for batch norm: the hook hands BN's backward a gradient dense in its output's
layout (what makes its CPU kernel fast), computes the same function, and the trainer sets it on
the CPU in channels_last only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import tiny_recipe
from torch import nn

from ganzoo.nn.dense_norm_grads import _dense_gradient, dense_batch_norm_gradients
from ganzoo.training.distributed import DistInfo
from ganzoo.training.state import TrainState


class SkipBlock(nn.Module):
    """A U-Net skip: the gradient reaching the norm is a slice of the concatenation's."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, padding=1)
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.norm(self.conv(x))], 1)


def _run(block: nn.Module, layout: torch.memory_format, n: int) -> tuple[torch.Tensor, list]:
    """Output, and the gradients the norm's output received (as its backward saw them)."""
    seen: list[torch.Tensor] = []

    def watch(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        out.register_hook(seen.append)  # runs after the dense hook, registered before it

    block.norm.register_forward_hook(watch)
    torch.manual_seed(1)
    x = torch.randn(n, 4, 5, 7).contiguous(memory_format=layout)
    out = block(x)
    out.backward(torch.randn(out.shape).contiguous(memory_format=layout))
    return out, seen


@pytest.mark.parametrize(
    "layout, n", [(torch.channels_last, 1), (torch.channels_last, 3), (torch.contiguous_format, 2)]
)
def test_the_norm_sees_a_dense_gradient_and_computes_the_same(layout, n) -> None:
    torch.manual_seed(0)
    plain = SkipBlock(nn.BatchNorm2d(6)).to(memory_format=layout)
    hooked = SkipBlock(nn.BatchNorm2d(6)).to(memory_format=layout)
    hooked.load_state_dict(plain.state_dict())
    assert dense_batch_norm_gradients(hooked) == 1
    out_plain, seen_plain = _run(plain, layout, n)
    out_hooked, seen_hooked = _run(hooked, layout, n)
    # without the hook the norm's gradient is a strided slice; with it, dense in the layout
    assert not seen_plain[0].is_contiguous(memory_format=layout)
    assert seen_hooked[0].is_contiguous(memory_format=layout)
    assert torch.equal(seen_hooked[0], seen_plain[0])
    assert torch.equal(out_hooked, out_plain)
    for p, q in zip(hooked.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-5)  # the conv bias: ~0
    for key, value in plain.state_dict().items():  # running statistics too
        torch.testing.assert_close(hooked.state_dict()[key], value)


def test_only_batch_norms_are_hooked_and_no_graph_no_hook() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.InstanceNorm2d(4), nn.SyncBatchNorm(4)
    )
    keys = list(net.state_dict())
    assert dense_batch_norm_gradients(net) == 2
    assert list(net.state_dict()) == keys
    assert [m for m in net if m._forward_hooks] == [net[1], net[3]]
    with torch.no_grad():  # nothing to hook without a graph
        out = net[1](torch.randn(2, 4, 3, 3))
    _dense_gradient(net[1], (), out)
    assert not out.requires_grad


def test_the_trainer_hooks_them_on_the_cpu_in_channels_last_only(tiny_data: Path) -> None:
    def hooked(*overrides: str) -> int:
        state = TrainState(tiny_recipe(tiny_data, *overrides), torch.device("cpu"), DistInfo())
        return sum(
            _dense_gradient in m._forward_hooks.values()
            for net in (state.g_module, state.d_module)
            for m in net.modules()
        )

    assert hooked() > 0
    assert hooked("train.channels_last=false") == 0
    assert hooked("train.precision=reference") == 0
