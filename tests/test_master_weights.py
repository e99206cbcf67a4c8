"""bf16 weights with fp32 masters (``train.precision: bf16-master``): what is bf16, what stays
fp32, what checkpoints hold, and that an update below bf16's resolution is not lost."""

from __future__ import annotations

from pathlib import Path

import torch
from conftest import tiny_recipe
from torch import nn

from ganzoo.artifacts.checkpoint import list_checkpoints, load_checkpoint
from ganzoo.nn.spectral import apply_spectral_norm
from ganzoo.training.master_adam import MasterAdam
from ganzoo.training.master_weights import MasterWeights
from ganzoo.training.trainer import train


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 3, 3)
    )


def test_a_bf16_master_run_trains_bf16_weights_and_saves_fp32_masters(
    tiny_data: Path, tmp_path: Path
) -> None:
    recipe = tiny_recipe(
        tiny_data, "train.precision=bf16-master", "train.max_steps=3", "optim.ema_decay=0.9"
    )
    trainer, final = train(recipe, run_dir=tmp_path / "run", progress=False)
    assert trainer.precision == "bf16-master" and trainer.amp_dtype is None
    assert final["val_l1"] == final["val_l1"]  # not NaN
    state = trainer.state
    for module, weights in zip((state.g_module, state.d_module), state.masters):
        convs = [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
        norms = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
        assert convs and all(m.weight.dtype == torch.bfloat16 for m in convs)
        assert norms and all(
            t.dtype == torch.float32 for m in norms for t in (m.weight, m.running_var)
        )
        # the bf16 weights are the masters rounded; the optimizer steps the fp32 masters
        for p, master in weights.pairs:
            assert master.dtype == torch.float32 and torch.equal(p, master.to(p.dtype))
    assert all(p.dtype == torch.float32 for g in state.opt_g.param_groups for p in g["params"])
    assert isinstance(state.opt_g, MasterAdam)  # on the CPU: the copies fused into Adam
    assert all(p.dtype == torch.float32 for p in state.ema.module.parameters())
    saved = load_checkpoint(list_checkpoints(tmp_path / "run" / "checkpoints")[-1])
    for key in ("generator", "discriminator", "ema"):
        floats = [v for v in saved[key].values() if v.is_floating_point()]
        assert floats and all(v.dtype == torch.float32 for v in floats), key
    masters = dict(zip(dict(state.g_module.named_parameters()), state.masters[0].parameters()))
    assert all(torch.equal(saved["generator"][k], v) for k, v in masters.items())


def test_an_update_below_bf16_resolution_accumulates_in_the_master() -> None:
    torch.manual_seed(0)
    net = _net()
    weights = MasterWeights(net)
    opt = torch.optim.SGD(weights.parameters(), lr=1e-5)
    weights.attach(opt)
    first = net[0].weight.detach().clone()
    master = weights.masters[id(net[0].weight)]
    start = master.clone()
    out = net(torch.randn(2, 3, 8, 8))
    assert out.dtype == torch.float32  # outputs come back fp32 for the losses
    out.square().mean().backward()
    assert net[0].weight.grad.dtype == torch.bfloat16
    opt.step()
    assert net[0].weight.grad is None and master.grad.dtype == torch.float32
    assert not torch.equal(master, start)  # the fp32 master moved ...
    assert torch.equal(net[0].weight, master.to(torch.bfloat16))  # ... and bf16 follows it
    assert net[0].weight.dtype == first.dtype == torch.bfloat16


def test_loading_a_state_dict_fills_the_masters_exactly() -> None:
    torch.manual_seed(0)
    source, net = _net(), _net()
    weights = MasterWeights(net)
    net.load_state_dict(source.state_dict())
    for (name, value), master in zip(source.named_parameters(), weights.parameters()):
        assert torch.equal(master, value), name
    assert all(v.dtype == torch.float32 for v in net.state_dict().values() if v.is_floating_point())


def test_spectral_normed_layers_stay_fp32() -> None:
    torch.manual_seed(0)
    net = apply_spectral_norm(
        nn.Sequential(nn.Conv2d(3, 8, 3), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 3))
    )
    weights = MasterWeights(net)
    assert not weights.pairs or all(p.ndim == 1 for p, _ in weights.pairs)  # biases only
    out = net(torch.randn(1, 3, 8, 8))
    out.mean().backward()
    assert out.dtype == torch.float32
    assert net[0].parametrizations.weight.original.dtype == torch.float32


def test_a_run_resumes_across_precisions(tiny_data: Path, tmp_path: Path) -> None:
    """An fp32 checkpoint (weights and Adam moments in the weights' shapes) continues under
    bf16-master, whose masters start as its weights exactly."""
    run = tmp_path / "run"
    train(tiny_recipe(tiny_data, "train.max_steps=2"), run_dir=run, progress=False)
    saved = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])
    trainer, final = train(
        None,
        run_dir=run,
        resume=True,
        overrides=["train.max_steps=4", "train.precision=bf16-master"],
        progress=False,
    )
    assert final["step"] == 4 and trainer.precision == "bf16-master"
    moments = trainer.state.opt_g.state_dict()["state"]
    shapes = [p.shape for p in trainer.state.g_module.parameters()]
    assert all(moments[i]["exp_avg"].shape == shape for i, shape in enumerate(shapes))
    assert saved["generator"].keys() == trainer.state.g_module.state_dict().keys()
