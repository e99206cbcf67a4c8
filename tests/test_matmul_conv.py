"""Small convolutions as one matrix multiply: the same function (outputs and all gradients) as
the torch modules, taken only where it applies, and switched on by the trainer on the CPU."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_model, tiny_recipe
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

import ganzoo.nn.matmul_conv as matmul_conv
from ganzoo.nn.matmul_conv import (
    MAX_ROWS,
    MatmulConv2d,
    MatmulConvTranspose2d,
    small_convolutions_as_matmuls,
)
from ganzoo.recipe import load_recipe
from ganzoo.run_dir import RESUMABLE
from ganzoo.training.distributed import DistInfo
from ganzoo.training.state import TrainState

LAYERS = {
    "conv k4 s2 p1": (lambda: nn.Conv2d(6, 10, 4, 2, 1), (2, 6, 8, 8)),
    "conv k3 s1 p1 no bias": (lambda: nn.Conv2d(6, 10, 3, 1, 1, bias=False), (1, 6, 5, 7)),
    "conv k4 s1 p1 (PatchGAN's)": (lambda: nn.Conv2d(6, 10, 4, 1, 1), (1, 6, 6, 5)),
    "conv 1x1": (lambda: nn.Conv2d(6, 10, 1), (3, 6, 2, 3)),
    "conv k4 s2 p1 to 1x1": (lambda: nn.Conv2d(6, 10, 4, 2, 1), (1, 6, 2, 2)),
    "transposed k4 s2 p1": (lambda: nn.ConvTranspose2d(6, 10, 4, 2, 1), (2, 6, 4, 4)),
    "transposed from 1x1 no bias": (
        lambda: nn.ConvTranspose2d(6, 10, 4, 2, 1, bias=False),
        (1, 6, 1, 1),
    ),
    "transposed k3 s2 p1 output_padding 1": (
        lambda: nn.ConvTranspose2d(6, 10, 3, 2, 1, output_padding=1),
        (1, 6, 3, 5),
    ),
    "transposed k3 s1 p0": (lambda: nn.ConvTranspose2d(6, 10, 3), (2, 6, 3, 2)),
}
LAYOUTS = {"NCHW": torch.contiguous_format, "NHWC": torch.channels_last}


def _pair(make, layout):
    torch.manual_seed(0)
    plain = make().to(memory_format=layout)
    switched = copy.deepcopy(plain)
    assert small_convolutions_as_matmuls(switched) == 1
    return plain, switched


def _calls(monkeypatch) -> list[str]:
    """Record each call of the matrix-multiply functions the modules make."""
    calls: list[str] = []
    for name in ("conv2d_as_matmul", "conv_transpose2d_as_matmul"):
        real = getattr(matmul_conv, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(matmul_conv, name, spy)
    return calls


def _forward_backward(net: nn.Module, x: torch.Tensor, grad: torch.Tensor | None = None):
    x = x.detach().clone().requires_grad_(True)
    y = net(x)
    grad = torch.randn_like(y, dtype=torch.float32) if grad is None else grad
    y.float().backward(grad)
    grads = {n: p.grad for n, p in net.named_parameters()}
    return y, x.grad, grads, grad


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("layer", LAYERS.values(), ids=LAYERS.keys())
def test_the_matmul_path_is_the_same_function(layer, layout, monkeypatch) -> None:
    make, shape = layer
    plain, switched = _pair(make, layout)
    x = torch.randn(shape).contiguous(memory_format=layout)
    y, dx, dw, grad = _forward_backward(plain, x)
    calls = _calls(monkeypatch)
    y2, dx2, dw2, _ = _forward_backward(switched, x, grad)
    assert calls, "the small layer did not take the matrix-multiply path"
    assert y2.shape == y.shape and y2.dtype == y.dtype
    torch.testing.assert_close(y2, y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dx2, dx, rtol=1e-5, atol=1e-5)
    assert dw.keys() == dw2.keys()
    for name in dw:
        torch.testing.assert_close(dw2[name], dw[name], rtol=1e-5, atol=1e-5)
    if layout == torch.channels_last and y.shape[-1] * y.shape[-2] > 1:
        assert y2.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("layer", LAYERS.values(), ids=LAYERS.keys())
def test_under_bf16_autocast_it_rounds_as_onednn_does(layer, monkeypatch) -> None:
    make, shape = layer
    plain, switched = _pair(make, torch.channels_last)
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, dx, dw, grad = _forward_backward(plain, x)
        calls = _calls(monkeypatch)
        y2, dx2, dw2, _ = _forward_backward(switched, x, grad)
    assert calls and y2.dtype == y.dtype == torch.bfloat16
    # float32 sums rounded once to bf16 (8 bits): at most one unit in the last place apart
    torch.testing.assert_close(y2.float(), y.float(), rtol=2**-7, atol=1e-2)
    torch.testing.assert_close(dx2, dx, rtol=2**-7, atol=2e-2)
    for name in dw:
        assert dw2[name].dtype == torch.float32
        torch.testing.assert_close(dw2[name], dw[name], rtol=2**-6, atol=5e-2)


def test_more_rows_than_the_limit_take_the_modules_own_path(monkeypatch) -> None:
    side = int(MAX_ROWS**0.5) + 1  # side * side output positions > MAX_ROWS
    for make, shape in (
        (lambda: nn.Conv2d(4, 5, 3, 1, 1), (1, 4, side, side)),
        (lambda: nn.Conv2d(4, 5, 3, 1, 1), (MAX_ROWS + 1, 4, 1, 1)),
        (lambda: nn.ConvTranspose2d(4, 5, 4, 2, 1), (1, 4, side, side)),
    ):
        plain, switched = _pair(make, torch.channels_last)
        x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
        calls = _calls(monkeypatch)
        assert torch.equal(switched(x), plain(x)) and not calls


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2),
        lambda: nn.Conv2d(4, 6, 3, padding=2, dilation=2),
        lambda: nn.Conv2d(4, 6, 3, padding=1, padding_mode="reflect"),
        lambda: nn.Conv2d(4, 6, 3, padding="same"),
        lambda: nn.ConvTranspose2d(4, 6, 3, groups=2),
        lambda: nn.ConvTranspose2d(4, 6, 3, dilation=2),
    ],
    ids=["groups", "dilation", "reflect", "same", "transposed groups", "transposed dilation"],
)
def test_layers_the_matmul_does_not_cover_keep_their_own_path(make, monkeypatch) -> None:
    plain, switched = _pair(make, torch.contiguous_format)
    x = torch.randn(1, 4, 3, 3)
    calls = _calls(monkeypatch)
    assert torch.equal(switched(x), plain(x)) and not calls


def test_only_plain_convolutions_are_switched_and_nothing_saved_changes() -> None:
    class Custom(nn.Conv2d):
        pass

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        spectral_norm(nn.Conv2d(4, 4, 3)),
        Custom(4, 4, 1),
        nn.Sequential(nn.ConvTranspose2d(4, 2, 4, 2, 1), nn.Linear(2, 2)),
    )
    keys = list(net.state_dict())
    assert small_convolutions_as_matmuls(net) == 2
    assert type(net[0]) is MatmulConv2d and type(net[3][0]) is MatmulConvTranspose2d
    assert type(net[2]) is Custom and not isinstance(net[1], MatmulConv2d)
    assert list(net.state_dict()) == keys
    twin = copy.deepcopy(net)  # the EMA of G is a deep copy
    assert type(twin[0]) is MatmulConv2d and twin[0].weight is not net[0].weight


def _state(recipe) -> TrainState:
    return TrainState(recipe, torch.device("cpu"), DistInfo())


def test_the_trainer_switches_them_on_the_cpu_unless_told_not_to(tiny_data: Path) -> None:
    on = _state(tiny_recipe(tiny_data))
    for net in (on.g_module, on.d_module):
        convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        assert convs and all(isinstance(m, (MatmulConv2d, MatmulConvTranspose2d)) for m in convs)
    for override in ("train.small_convs_as_matmuls=false", "train.precision=reference"):
        off = _state(tiny_recipe(tiny_data, override))
        for net in (off.g_module, off.d_module):
            assert not any(
                isinstance(m, (MatmulConv2d, MatmulConvTranspose2d)) for m in net.modules()
            )


def test_the_setting_is_saved_only_when_off_and_may_change_on_resume() -> None:
    default = load_recipe("recipes/pix2pix_unet256.yaml")
    assert default.train.small_convs_as_matmuls
    assert "small_convs_as_matmuls" not in default.to_dict()["train"]
    off = load_recipe("recipes/pix2pix_unet256.yaml", ["train.small_convs_as_matmuls=false"])
    assert off.to_dict()["train"]["small_convs_as_matmuls"] is False
    reference = load_recipe("recipes/pix2pix_unet256.yaml", ["train.precision=reference"])
    assert reference.train.small_convs_as_matmuls is False
    assert "train.small_convs_as_matmuls" in RESUMABLE


def test_cpu_inference_takes_it_and_answers_as_the_plain_network(
    tiny_data: Path, tmp_path: Path
) -> None:
    import ganzoo
    from ganzoo.artifacts.loading import load_generator

    model = tiny_model(tiny_data, tmp_path)
    plain, _, _ = load_generator(model)  # what export and the Hub push load: untouched
    assert not any(isinstance(m, MatmulConv2d) for m in plain.modules())
    translator = ganzoo.load(model, device="cpu", mode="eval")
    switched = [m for m in translator.generator.modules() if isinstance(m, MatmulConv2d)]
    assert switched
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(translator(x), plain(x), rtol=1e-5, atol=1e-5)


def test_low_precision_inference_casts_the_weights_once_with_the_same_outputs(
    tiny_data: Path, tmp_path: Path
) -> None:
    import ganzoo

    model = tiny_model(tiny_data, tmp_path / "model")
    every_call = ganzoo.load(model, device="cpu", mode="eval")  # fp32 weights
    once = ganzoo.load(model, device="cpu", mode="eval", precision="bf16")
    convs = [m for m in once.generator.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    norms = [m for m in once.generator.modules() if isinstance(m, nn.BatchNorm2d)]
    assert convs and all(m.weight.dtype == torch.bfloat16 for m in convs)
    assert norms and all(m.weight.dtype == torch.float32 for m in norms)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    every_call.precision = "bf16"  # autocast casts its fp32 weights at each call
    assert torch.equal(once(x), every_call(x))
    # folders too: translate runs in the model's precision (bf16 weights need autocast)
    from PIL import Image

    (tmp_path / "in").mkdir()
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)).save(
        tmp_path / "in" / "a.png"
    )
    result = once.translate(tmp_path / "in", tmp_path / "out")
    assert result.outputs == [tmp_path / "out" / "a.png"] and result.outputs[0].is_file()
