"""Fused Adam steps channels_last weights through contiguous views: bit-identical updates, no
copies of the weights, and optimizer state dicts in the weights' own shapes."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ganzoo.training.dense_views import DenseViews


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.ConvTranspose2d(8, 5, 4)).to(
        memory_format=torch.channels_last
    )


def _steps(net: nn.Module, opt: torch.optim.Optimizer, n: int) -> None:
    torch.manual_seed(1)
    for _ in range(n):
        opt.zero_grad(set_to_none=True)
        x = torch.randn(2, 3, 9, 9).contiguous(memory_format=torch.channels_last)
        net(x).square().mean().backward()
        opt.step()


def _adam(params: list[torch.Tensor]) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=1e-2, fused=True)


def test_views_step_the_weights_in_place_bit_for_bit() -> None:
    plain, viewed = _net(), _net()
    views = DenseViews(list(viewed.parameters()))
    assert len(views.orders) == 2  # the two 4-D channels_last weights; biases as they are
    opt = _adam(views.parameters())
    views.attach(opt)
    storage = viewed[0].weight.data_ptr()
    _steps(plain, _adam(list(plain.parameters())), 3)
    _steps(viewed, opt, 3)
    for a, b in zip(plain.parameters(), viewed.parameters()):
        assert torch.equal(a, b)
    assert viewed[0].weight.data_ptr() == storage
    assert viewed[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_the_state_dict_holds_moments_in_weight_shapes_and_resumes_exactly() -> None:
    net = _net()
    views = DenseViews(list(net.parameters()))
    opt = _adam(views.parameters())
    views.attach(opt)
    _steps(net, opt, 2)
    saved = copy.deepcopy(opt.state_dict())
    weights = [p.detach().clone() for p in net.parameters()]
    for i, p in enumerate(net.parameters()):
        assert saved["state"][i]["exp_avg"].shape == p.shape
    live = opt.state[views.parameters()[0]]["exp_avg"]
    assert live.is_contiguous()  # saving did not touch the live moments
    _steps(net, opt, 2)
    straight = [p.detach().clone() for p in net.parameters()]

    resumed = _net()
    with torch.no_grad():
        for p, w in zip(resumed.parameters(), weights):
            p.copy_(w)
    views2 = DenseViews(list(resumed.parameters()))
    opt2 = _adam(views2.parameters())
    views2.attach(opt2)
    opt2.load_state_dict(saved)
    _steps(resumed, opt2, 2)
    for a, b in zip(straight, resumed.parameters()):
        assert torch.equal(a, b)
