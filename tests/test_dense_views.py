"""Fused Adam steps channels_last weights through contiguous views: bit-identical updates, no
copies of the weights, and optimizer state dicts in the weights' own shapes."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from conftest import tiny_recipe
from torch import nn

import ganzoo.training.state as state_module
from ganzoo.training.dense_views import DenseViews
from ganzoo.training.trainer import train


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


class _PassThrough:
    """The optimizer stepping the channels_last weights themselves (the behaviour before)."""

    def __init__(self, params: list[torch.Tensor]) -> None:
        self.params = params

    def parameters(self) -> list[torch.Tensor]:
        return self.params

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        pass


def test_a_training_run_is_bit_identical_with_and_without_the_views(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = tiny_recipe(tiny_data, "train.max_steps=3", "train.deterministic=true")
    assert recipe.train.channels_last and recipe.optim.fused
    viewed, _ = train(recipe, run_dir=tmp_path / "views", progress=False)
    assert any(p.dim() == 4 and not p.is_contiguous() for p in viewed.g_module.parameters())
    monkeypatch.setattr(state_module, "DenseViews", _PassThrough)
    plain, _ = train(recipe, run_dir=tmp_path / "plain", progress=False)
    for net in ("g_module", "d_module"):
        a, b = getattr(viewed, net).state_dict(), getattr(plain, net).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), net
    saved = viewed.state.opt_g.state_dict()["state"]
    reference = plain.state.opt_g.state_dict()["state"]
    assert all(torch.equal(saved[i]["exp_avg"], reference[i]["exp_avg"]) for i in reference)
