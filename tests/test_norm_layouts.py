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
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_instance_norm_answers_in_its_input_layout_with_the_same_values(make, n, mode) -> None:
    torch.manual_seed(0)
    plain = SkipBlock(make()).to(memory_format=torch.channels_last)
    switched = SkipBlock(make()).to(memory_format=torch.channels_last)
    switched.load_state_dict(plain.state_dict())
    keys = list(switched.state_dict())
    assert channels_last_norms(switched) == 1
    assert channels_last_norms(switched) == 0  # a second call changes nothing
    assert type(switched.norm) is ChannelsLastInstanceNorm2d
    assert list(switched.state_dict()) == keys
    if make().affine:  # a trained affine transform, not the identity it starts as
        with torch.no_grad():
            for block in (plain, switched):
                block.norm.weight.copy_(torch.linspace(0.5, 2, 6))
                block.norm.bias.copy_(torch.linspace(-1, 1, 6))
    if make().track_running_stats:  # running statistics that are not the initial ones
        for block in (plain, switched):
            block.norm.running_mean.fill_(0.3)
            block.norm.running_var.fill_(2.0)
    for block in (plain, switched):
        block.train(mode == "train")
    x = torch.randn(n, 4, 5, 7).contiguous(memory_format=torch.channels_last)
    normed, grads = {}, {}
    for name, block in (("plain", plain), ("switched", switched)):

        def watch(module: nn.Module, args: tuple, out: torch.Tensor, name: str = name) -> None:
            if out.requires_grad:  # the calls on NCHW / unbatched inputs below have no graph
                normed[name] = out
                out.register_hook(lambda g: grads.update({name: g}))  # after the dense hook

        block.norm.register_forward_hook(watch)
        block(x).square().sum().backward()
    assert not normed["plain"].is_contiguous(memory_format=torch.channels_last)  # PyTorch's NCHW
    assert normed["switched"].is_contiguous(memory_format=torch.channels_last)
    assert grads["switched"].is_contiguous(memory_format=torch.channels_last)
    fast = not make().track_running_stats  # per sample, batch norm's kernel
    kernel = type(normed["switched"].grad_fn).__name__
    assert (kernel in ("NativeBatchNormBackward0", "CatBackward0")) == fast, kernel
    torch.testing.assert_close(normed["switched"], normed["plain"], rtol=0, atol=1e-6)
    for p, q in zip(switched.parameters(), plain.parameters(), strict=True):
        # the gradient reaching the norm is O(10) and the norm cancels most of it on the way to
        # the conv (whose weight gradient is O(1e-3)): compared at the incoming scale
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-4)
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(switched.state_dict()[key], value)
    # NCHW and unbatched inputs take the module's own path, bit for bit
    for other in (torch.randn(n, 6, 5, 7), torch.randn(6, 5, 7)):
        assert torch.equal(switched.norm(other), plain.norm(other))


@pytest.mark.parametrize("track_running_stats", [False, True])
@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_instance_norm_gradient_is_right_whatever_the_layouts(track_running_stats, n, mode) -> None:
    """Against the all-NCHW computation, for every layout of the input and of the gradient
    handed back. PyTorch's own module fails this at batch 1 with a channels_last gradient
    (wrong by O(1) on 2.14), which the switched module must not inherit."""
    torch.manual_seed(0)
    make = lambda: nn.InstanceNorm2d(6, affine=True, track_running_stats=track_running_stats)  # noqa: E731
    reference = make().train(mode == "train")
    with torch.no_grad():
        reference.weight.copy_(torch.linspace(0.5, 2, 6))
    switched = nn.Sequential(make())
    switched[0].load_state_dict(reference.state_dict())
    channels_last_norms(switched)
    switched.train(mode == "train")
    x0, g0 = torch.randn(n, 6, 5, 7), torch.randn(n, 6, 5, 7)
    x = x0.clone().requires_grad_()
    expected = torch.autograd.grad(reference(x), [x, reference.weight, reference.bias], g0)
    cl = torch.channels_last
    for x_layout in (torch.contiguous_format, cl):
        for g_layout in (torch.contiguous_format, cl):
            x = x0.contiguous(memory_format=x_layout).requires_grad_()
            norm = switched[0]
            got = torch.autograd.grad(
                switched(x), [x, norm.weight, norm.bias], g0.contiguous(memory_format=g_layout)
            )
            for a, b in zip(got, expected, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_instance_norm_in_bf16_with_float32_affine_parameters() -> None:
    torch.manual_seed(0)
    plain = nn.InstanceNorm2d(8, affine=True)
    with torch.no_grad():
        plain.weight.copy_(torch.linspace(0.5, 2, 8))
        plain.bias.copy_(torch.linspace(-1, 1, 8))
    switched = nn.Sequential(nn.InstanceNorm2d(8, affine=True))
    switched[0].load_state_dict(plain.state_dict())
    channels_last_norms(switched)
    x = torch.randn(2, 8, 6, 6).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    out = switched(x)
    assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, plain(x), rtol=0, atol=0)


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
    assert [m for m in net if m._forward_hooks] == [net[1], net[2], net[3]]
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
    assert instance[0] == instance[1] > 0  # switched, and their gradients made dense
    for override in ("train.channels_last=false", "train.precision=reference"):
        assert changed(override) == changed(override, "generator.norm=instance") == (0, 0)
