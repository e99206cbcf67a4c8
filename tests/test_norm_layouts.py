"""Norm layers kept in step with channels_last: batch norm's backward is handed a gradient dense
in its output's layout (what makes its CPU kernel fast), instance norm returns its output in
its input's layout; both compute the same function, and the trainer sets them on the CPU in
channels_last only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import tiny_recipe
from torch import nn

from ganzoo.nn.norm_layouts import (
    ChannelsLastInstanceNorm2d,
    _dense_gradient,
    channels_last_norms,
)
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
    assert channels_last_norms(hooked) == 1
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


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.InstanceNorm2d(6),
        lambda: nn.InstanceNorm2d(6, affine=True),
        lambda: nn.InstanceNorm2d(6, track_running_stats=True),
    ],
    ids=["plain", "affine", "running statistics"],
)
@pytest.mark.parametrize("n", [1, 3])
def test_instance_norm_answers_in_its_input_layout_with_the_same_values(make, n) -> None:
    torch.manual_seed(0)
    plain = SkipBlock(make()).to(memory_format=torch.channels_last)
    switched = SkipBlock(make()).to(memory_format=torch.channels_last)
    switched.load_state_dict(plain.state_dict())
    keys = list(switched.state_dict())
    assert channels_last_norms(switched) == 1
    assert type(switched.norm) is ChannelsLastInstanceNorm2d
    assert list(switched.state_dict()) == keys
    if make().affine:  # a trained affine transform, not the identity it starts as
        with torch.no_grad():
            for block in (plain, switched):
                block.norm.weight.copy_(torch.linspace(0.5, 2, 6))
                block.norm.bias.copy_(torch.linspace(-1, 1, 6))
    x = torch.randn(n, 4, 5, 7).contiguous(memory_format=torch.channels_last)
    normed = {}
    for name, block in (("plain", plain), ("switched", switched)):
        block.norm.register_forward_hook(lambda m, a, out, name=name: normed.update({name: out}))
        block(x).square().sum().backward()
    assert not normed["plain"].is_contiguous(memory_format=torch.channels_last)  # PyTorch's NCHW
    assert normed["switched"].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(normed["switched"], normed["plain"], rtol=0, atol=1e-6)
    for p, q in zip(switched.parameters(), plain.parameters(), strict=True):
        # the gradient reaching the norm is O(10) and the norm cancels most of it on the way to
        # the conv (whose weight gradient is O(1e-3)): compared at the incoming scale
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-4)
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(switched.state_dict()[key], value)
    # an NCHW input takes the module's own path, bit for bit
    nchw = torch.randn(n, 6, 5, 7)
    assert torch.equal(switched.norm(nchw), plain.norm(nchw))


def test_only_norms_are_hooked_and_no_graph_no_hook() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.InstanceNorm2d(4),
        nn.SyncBatchNorm(4),
        nn.GroupNorm(2, 4),
        nn.InstanceNorm1d(4),
    )
    keys = list(net.state_dict())
    assert channels_last_norms(net) == 3
    assert list(net.state_dict()) == keys
    assert [m for m in net if m._forward_hooks] == [net[1], net[3]]
    assert type(net[2]) is ChannelsLastInstanceNorm2d and type(net[5]) is nn.InstanceNorm1d
    with torch.no_grad():  # nothing to hook without a graph
        out = net[1](torch.randn(2, 4, 3, 3))
    _dense_gradient(net[1], (), out)
    assert not out.requires_grad


def test_the_trainer_hooks_them_on_the_cpu_in_channels_last_only(tiny_data: Path) -> None:
    def changed(*overrides: str) -> tuple[int, int]:
        """(batch norms hooked, instance norms switched) in G and D."""
        state = TrainState(tiny_recipe(tiny_data, *overrides), torch.device("cpu"), DistInfo())
        modules = [m for net in (state.g_module, state.d_module) for m in net.modules()]
        hooked = sum(_dense_gradient in m._forward_hooks.values() for m in modules)
        return hooked, sum(type(m) is ChannelsLastInstanceNorm2d for m in modules)

    batch = changed()
    assert batch[0] > 0 and batch[1] == 0
    instance = changed("generator.norm=instance", "discriminator.norm=instance")
    assert instance[0] == 0 and instance[1] > 0
    for override in ("train.channels_last=false", "train.precision=reference"):
        assert changed(override) == changed(override, "generator.norm=instance") == (0, 0)
