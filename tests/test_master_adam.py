"""MasterAdam: Adam over fp32 masters reading bf16 gradients and writing bf16 weights in one
pass; PyTorch's Adam to rounding, compiled = uncompiled bit for bit, Adam's state dict."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from ganzoo.training import master_adam
from ganzoo.training.master_adam import MasterAdam
from ganzoo.training.master_weights import MasterWeights

BETAS = (0.5, 0.999)


@pytest.fixture(autouse=True)
def _fresh_kernel_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(master_adam, "_compiled", {})


def _net(channels_last: bool = True) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 4, 2, 1), nn.BatchNorm2d(16), nn.LeakyReLU(0.2), nn.Conv2d(16, 1, 3)
    )
    return net.to(memory_format=torch.channels_last) if channels_last else net


def _grads(net: nn.Module, steps: int) -> list[list[torch.Tensor]]:
    """Fixed gradients per step, in each parameter's dtype and layout (the weights' own
    gradients would depend on the weights and so on every rounding before)."""
    g = torch.Generator().manual_seed(1)
    return [
        [torch.randn(p.shape, generator=g).to(p.dtype).contiguous(memory_format=_fmt(p))
         for p in net.parameters()]
        for _ in range(steps)
    ]  # fmt: skip


def _fmt(p: torch.Tensor) -> torch.memory_format:
    cl = p.ndim == 4 and p.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if cl and not p.is_contiguous() else torch.contiguous_format


def _train(opt: torch.optim.Optimizer, net: nn.Module, grads: list[list[torch.Tensor]]) -> None:
    for step in grads:
        opt.zero_grad()
        for p, g in zip(net.parameters(), step):
            p.grad = g.clone()
        opt.step()


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_the_masters_follow_torch_adam_to_rounding(weight_decay: float) -> None:
    """The masters after 20 steps equal PyTorch's Adam stepping fp32 copies with the same
    (bf16) gradients, to fp32 rounding; the bf16 weights are the masters rounded."""
    net = _net()
    reference = [p.detach().clone().requires_grad_() for p in net.parameters()]
    weights = MasterWeights(net)
    opt = MasterAdam(weights, 2e-3, BETAS, weight_decay)
    ref_opt = torch.optim.Adam(reference, lr=2e-3, betas=BETAS, weight_decay=weight_decay)
    grads = _grads(net, 20)
    _train(opt, net, grads)
    for step in grads:
        for p, g in zip(reference, step):
            p.grad = g.float()
        ref_opt.step()
    for master, ref in zip(weights.parameters(), reference):
        torch.testing.assert_close(master, ref.detach(), rtol=1e-5, atol=1e-6)
    assert weights.pairs and all(torch.equal(p, m.to(p.dtype)) for p, m in weights.pairs)
    moved = [not torch.equal(m, r) for m, r in zip(weights.parameters(), _net().parameters())]
    assert all(moved)


def test_compiled_and_uncompiled_give_the_same_bits() -> None:
    """The compiled kernel and the function as written: same masters, weights and moments
    bit for bit (the square root is the correctly rounded one in both)."""
    runs = []
    for compiled in (True, False):
        net = _net()
        weights = MasterWeights(net)
        opt = MasterAdam(weights, 2e-3, BETAS, 0.01, compiled=compiled)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _train(opt, net, _grads(net, 6))
        if compiled and any("could not be compiled" in str(w.message) for w in caught):
            pytest.skip("torch.compile cannot build kernels here (no C++ compiler)")
        runs.append((net, weights, opt))
    (net_a, w_a, opt_a), (net_b, w_b, opt_b) = runs
    assert master_adam._compiled["kernel"] is not master_adam.adam_update  # compiled ran
    for a, b in zip(w_a.parameters(), w_b.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(net_a.parameters(), net_b.parameters()):
        assert torch.equal(a, b)
    for sa, sb in zip(opt_a.state.values(), opt_b.state.values()):
        assert all(torch.equal(sa[k], sb[k]) for k in ("step", "exp_avg", "exp_avg_sq"))


def test_layouts_are_kept_and_the_flat_kernel_takes_channels_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """channels_last weights are stepped as flat views of their memory (no copy): the
    moments take the weights' layout, and the result equals the contiguous layout's."""
    flat_calls = []
    real_flat = master_adam._flat
    monkeypatch.setattr(master_adam, "_flat", lambda t: flat_calls.append(t.shape) or real_flat(t))
    results = []
    for channels_last in (True, False):
        net = _net(channels_last)
        weights = MasterWeights(net)
        opt = MasterAdam(weights, 2e-3, BETAS, compiled=False)
        _train(opt, net, _grads(net, 3))
        for master in weights.parameters():
            state = opt.state[master]
            assert state["exp_avg"].stride() == state["exp_avg_sq"].stride() == master.stride()
        assert net[0].weight.is_contiguous(memory_format=torch.channels_last) == channels_last
        results.append([m.contiguous() for m in weights.parameters()])
    assert (16, 3, 4, 4) in flat_calls
    assert all(torch.equal(a, b) for a, b in zip(*results))


def test_the_state_dict_is_adams_and_loads_from_another_layout() -> None:
    """Checkpoints move between precisions: MasterAdam's state dict has Adam's structure, and
    an fp32 run's Adam state (contiguous moments) loads into channels_last masters."""
    net = _net(channels_last=False)
    adam = torch.optim.Adam(net.parameters(), lr=2e-3, betas=BETAS)
    _train(adam, net, _grads(net, 2))
    saved = adam.state_dict()
    target = _net()
    opt = MasterAdam(MasterWeights(target), 2e-3, BETAS)
    assert opt.state_dict()["param_groups"][0].keys() == saved["param_groups"][0].keys()
    opt.load_state_dict(saved)
    mine = opt.state_dict()
    assert mine["state"].keys() == saved["state"].keys()
    for i, state in saved["state"].items():
        assert mine["state"][i].keys() == state.keys()
        assert all(torch.equal(mine["state"][i][k], state[k]) for k in state)
    conv = next(iter(opt.state))  # the first conv's master: channels_last
    assert (
        opt.state[conv]["exp_avg"].stride()
        == conv.stride()
        != saved["state"][0]["exp_avg"].stride()
    )
    _train(opt, target, _grads(target, 1))  # and it steps on
    assert opt.state[conv]["step"].item() == 3


def test_zero_grad_drops_the_bf16_gradients() -> None:
    net = _net()
    opt = MasterAdam(MasterWeights(net), 2e-3, BETAS)
    net(torch.randn(1, 3, 8, 8)).mean().backward()
    assert net[0].weight.grad is not None and net[0].weight.grad.dtype == torch.bfloat16
    opt.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    with pytest.raises(ValueError, match="no closure"):
        opt.step(lambda: 0.0)


def test_without_a_compiler_it_warns_once_and_gives_the_same_bits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_compile(fn, **_):  # noqa: ANN001, ANN202
        def call(*args):  # noqa: ANN002, ANN202
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

        return call

    monkeypatch.setattr(master_adam.torch, "compile", broken_compile)
    runs = []
    for compiled in (True, False):
        net = _net()
        weights = MasterWeights(net)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _train(MasterAdam(weights, 2e-3, BETAS, compiled=compiled), net, _grads(net, 3))
        runs.append((weights, [str(w.message) for w in caught]))
    messages = runs[0][1]
    assert len(messages) == 1 and "could not be compiled" in messages[0]
    assert "No working C++ compiler" in messages[0] and "same results" in messages[0]
    assert not runs[1][1]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][0].parameters(), runs[1][0].parameters()))


def test_the_fp32_parameters_gathered_into_one_pass_step_as_alone() -> None:
    """The norms' fp32 parameters are gathered into one kernel call: bit for bit what
    :func:`adam_update` gives each of them alone."""
    net = _net()
    weights = MasterWeights(net)
    kept = [p for p in net.parameters() if p.dtype == torch.float32]
    assert len(kept) == 2  # BatchNorm's weight and bias
    alone = [p.detach().clone() for p in kept]
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in kept]
    grads = _grads(net, 4)
    _train(MasterAdam(weights, 2e-3, BETAS, 0.01, compiled=False), net, grads)
    fp32 = [i for i, p in enumerate(net.parameters()) if p.dtype == torch.float32]
    for t, step in enumerate(grads, start=1):
        scalars = master_adam._scalars(
            {"betas": BETAS, "eps": 1e-8, "lr": 2e-3, "weight_decay": 0.01}, t
        )
        for p, (m, v), i in zip(alone, moments, fp32):
            master_adam.adam_update(p, step[i], m, v, scalars)
    assert all(torch.equal(a, b) for a, b in zip(alone, kept))


def test_the_cpu_compile_does_not_print_the_cuda_home_note(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Inductor's first CPU compile logs "No CUDA runtime is found, using CUDA_HOME=..." on
    machines without CUDA; a training console must not show it (other warnings pass)."""
    import logging

    master_adam._kernel(compiled=True)
    logger = logging.getLogger("torch.utils.cpp_extension")
    with caplog.at_level(logging.WARNING, logger="torch.utils.cpp_extension"):
        logger.warning("No CUDA runtime is found, using CUDA_HOME='/usr/local'")
        logger.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
