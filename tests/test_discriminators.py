"""Discriminators: published parameter counts, output shapes and receptive fields, the branch /
feature contract, norms, spectral norm, attention, and the sizes each one takes.

Full-size networks are built on the meta device (shapes and counts without compute); forward,
backward and receptive-field probes use narrow ones (the field does not depend on width).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from ganzoo import registry
from ganzoo.attention import SelfAttention
from ganzoo.discriminators import (
    MultiDepthDiscriminator,
    MultiscaleDiscriminator,
    PatchGAN,
    PixelDiscriminator,
)
from ganzoo.errors import RegistryError, SizeError
from ganzoo.nn import check_image_size
from ganzoo.nn.receptive_field import (
    conv_chain,
    probe_boxes,
    receptive_field,
    receptive_field_by_probe,
)

NORMS = ["batch", "instance", "syncbatch", "none"]


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def logit_shapes(net: nn.Module, height: int, width: int | None = None) -> list[tuple[int, int]]:
    """Logit sizes per branch for a 1 x 6 x height x width input, computed on the meta device."""
    with torch.device("meta"):
        out = net(torch.empty(1, 6, height, width or height))
    return [tuple(branch[-1].shape[-2:]) for branch in out]


def meta(builder, *args, **params):
    with torch.device("meta"):
        return builder(*args, **params)


# -- patchgan / pixel -------------------------------------------------------------------------


def test_patchgan_parameter_count_is_pix2pix():
    assert n_params(meta(PatchGAN, 6)) == 2_768_705


@pytest.mark.parametrize("n_layers, side", [(1, 126), (2, 62), (3, 30), (4, 14), (5, 6)])
def test_patchgan_output_size_at_256(n_layers, side):
    assert logit_shapes(meta(PatchGAN, 6, n_layers=n_layers), 256) == [(side, side)]


def test_patchgan_features_and_biases():
    net = meta(PatchGAN, 6)
    with torch.device("meta"):
        (branch,) = net(torch.empty(1, 6, 256, 256))
    assert [f.shape[1:] for f in branch] == [
        (64, 128, 128),
        (128, 64, 64),
        (256, 32, 32),
        (512, 31, 31),
        (1, 30, 30),
    ]
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.bias is not None for c in convs] == [True, False, False, False, True]
    convs = [m for m in meta(PatchGAN, 6, norm="instance").modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is not None for c in convs)
    assert all(c.kernel_size == (4, 4) and c.padding == (1, 1) for c in convs)
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    leaks = [m for m in net.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(leaks) == 4 and all(m.negative_slope == 0.2 for m in leaks)


@pytest.mark.parametrize("n_layers, field", [(1, 16), (2, 34), (3, 70), (4, 142)])
def test_patchgan_receptive_field_by_probe(n_layers, field):
    net = PatchGAN(6, n_layers=n_layers, ndf=1)
    assert receptive_field_by_probe(net, 6, 160, 160) == [(field, field)]
    assert receptive_field(conv_chain(net.model)) == field


def test_patchgan_five_layers_field_needs_a_larger_probe():
    net = PatchGAN(6, n_layers=5, ndf=1)
    top, left, bottom, right = probe_boxes(net, 6, 128, 128)[0]
    assert (top, left, bottom, right) == (0, 0, 127, 127)  # clipped: sees the whole crop
    assert receptive_field_by_probe(net, 6, 128, 128, max_side=1024) == [(286, 286)]


def test_pixel_discriminator_is_pix2pix():
    net = meta(PixelDiscriminator, 6)
    assert n_params(net) == 9_024
    assert logit_shapes(net, 256) == [(256, 256)]
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 1)] * 3
    assert [c.bias is not None for c in convs] == [True, False, False]
    small = PixelDiscriminator(6, ndf=2)
    assert len(small(torch.randn(1, 6, 8, 8))[0]) == 3
    assert receptive_field_by_probe(small, 6, 9, 9) == [(1, 1)]


# -- multiscale -------------------------------------------------------------------------------


def test_multiscale_is_pix2pixhd():
    net = meta(MultiscaleDiscriminator, 6)
    # pix2pixHD NLayerDiscriminator: padding 2 and a bias on every conv; instance norm
    one_scale = 6 * 64 * 16 + 64 + 64 * 128 * 16 + 128 + 128 * 256 * 16 + 256
    one_scale += 256 * 512 * 16 + 512 + 512 * 16 + 1
    assert one_scale == 2_767_809
    assert n_params(net) == 3 * one_scale
    assert logit_shapes(net, 256) == [(35, 35), (19, 19), (11, 11)]
    assert logit_shapes(net, 256, 512) == [(35, 67), (19, 35), (11, 19)]
    pool = net.downsample
    assert isinstance(pool, nn.AvgPool2d) and not pool.count_include_pad
    assert (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
    assert all(
        isinstance(m, nn.InstanceNorm2d) for m in net.modules() if "Norm" in type(m).__name__
    )


@pytest.mark.parametrize("num_d", [1, 2, 4])
def test_multiscale_branches_carry_intermediate_features(num_d):
    net = MultiscaleDiscriminator(6, num_d=num_d, n_layers=2, ndf=2)
    out = net(torch.randn(2, 6, 64, 64))
    assert len(out) == num_d
    assert all(len(branch) == 4 for branch in out)
    assert [branch[0].shape[-1] for branch in out] == [33, 17, 9, 5][:num_d]  # full size first
    assert [branch[1].shape[1] for branch in out] == [4] * num_d


def test_multiscale_receptive_fields_by_probe():
    net = MultiscaleDiscriminator(6, ndf=1)
    # 70 at full size; through one and two 3x3 stride-2 poolings: 3 + 2 * 69, 7 + 4 * 69
    assert receptive_field_by_probe(net, 6, 448, 448) == [(70, 70), (141, 141), (283, 283)]


# -- multidepth -------------------------------------------------------------------------------


def test_multidepth_heads_at_256():
    assert logit_shapes(meta(MultiDepthDiscriminator, 6), 256) == [
        (30, 30),
        (14, 14),
        (6, 6),
        (1, 1),
    ]
    assert logit_shapes(meta(MultiDepthDiscriminator, 6, branches=3), 256) == [
        (30, 30),
        (14, 14),
        (1, 1),
    ]
    assert logit_shapes(meta(MultiDepthDiscriminator, 6, branches=2), 256) == [(30, 30), (1, 1)]
    net = meta(MultiDepthDiscriminator, 6)
    global_convs = [m for m in net.heads[-1].modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in global_convs] == [(2, 2)] * 4 + [(1, 1)]
    assert global_convs[-1].kernel_size == (4, 4)  # on the 2x2 map, as the authors' layer_8


def test_multidepth_parameter_count():
    trunk = 6 * 64 * 16 + 64 + 64 * 128 * 16 + 128 * 2 + 128 * 256 * 16 + 256 * 2
    widen = 256 * 512 * 16 + 512 * 2  # 4 ndf -> 8 ndf conv + batch norm
    deep = 512 * 512 * 16 + 512 * 2  # 8 ndf -> 8 ndf conv + batch norm
    logit = 512 * 16 + 1
    heads = [
        widen + logit,
        widen + deep + logit,
        widen + 2 * deep + logit,
        widen + 3 * deep + logit,
    ]
    assert n_params(meta(MultiDepthDiscriminator, 6)) == trunk + sum(heads) == 34_259_780


def test_multidepth_receptive_fields_by_probe():
    net = MultiDepthDiscriminator(6, ndf=1)
    assert receptive_field_by_probe(net, 6, 320, 320)[:3] == [(70, 70), (142, 142), (286, 286)]
    assert probe_boxes(net, 6, 256, 256)[3] == (0, 0, 255, 255)  # global: every input pixel


@pytest.mark.parametrize(
    "image_size, branches",
    [(64, 2), (64, 3), (128, 4), (96, 4), ((128, 256), 4), ((256, 128), 3), ((96, 160), 2)],
)
def test_multidepth_global_head_sees_the_whole_input(image_size, branches):
    net = MultiDepthDiscriminator(6, branches=branches, ndf=1, image_size=image_size)
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    assert check_image_size(net, "multidepth", height, width) is None
    out = net(torch.randn(2, 6, height, width))
    assert len(out) == branches and tuple(out[-1][-1].shape) == (2, 1, 1, 1)
    assert probe_boxes(net, 6, height, width)[-1] == (0, 0, height - 1, width - 1)


def test_multidepth_shares_one_trunk():
    net = MultiDepthDiscriminator(6, ndf=1, image_size=96)
    trunk = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.in_channels == 6]
    assert len(trunk) == 1
    out = net(torch.randn(2, 6, 96, 96))
    for branch in out:
        assert all(a is b for a, b in zip(branch[:3], out[0][:3], strict=True))
    for i in range(len(out)):
        net.zero_grad()
        net(torch.randn(2, 6, 96, 96))[i][-1].mean().backward()
        for p in net.trunk.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0
        others = [h for j, h in enumerate(net.heads) if j != i]
        assert all(p.grad is None for h in others for p in h.parameters())


def test_multidepth_sizes():
    assert meta(MultiDepthDiscriminator, 6).min_side == 256
    assert MultiDepthDiscriminator(6, branches=2, ndf=1, image_size=64).min_side == 64
    with pytest.raises(SizeError, match="at least 96x96"):
        MultiDepthDiscriminator(6, branches=4, ndf=1, image_size=64)
    net = MultiDepthDiscriminator(6, ndf=1, image_size=(128, 256))
    assert net.min_side == 128
    with pytest.raises(SizeError, match="set image_size"):
        net(torch.randn(1, 6, 128, 128))
    with pytest.raises(RegistryError, match="branches"):
        registry.create("discriminator", "multidepth", 6, branches=5)


@pytest.mark.parametrize("image_size", [96, (96, 160)])
def test_multidepth_reflect_padding_as_the_authors(image_size):
    net = MultiDepthDiscriminator(6, ndf=1, image_size=image_size, padding_mode="reflect")
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.padding_mode == "reflect" for c in convs)
    height, width = net.min_hw
    assert [b[-1].shape[-2:] for b in check_forward_backward_at(net, height, width)][-1] == (1, 1)


# -- every discriminator ----------------------------------------------------------------------

SMALL = {
    "patchgan": (dict(ndf=2, image_size=32), 32),
    "pixel": (dict(ndf=2, image_size=8), 8),
    "multiscale": (dict(num_d=2, n_layers=2, ndf=2, image_size=32), 32),
    "multidepth": (dict(ndf=1, image_size=96), 96),
}


def build(name: str, **extra):
    params, side = SMALL[name]
    return registry.create("discriminator", name, 6, **{**params, **extra}), side


def check_forward_backward(net: nn.Module, side: int) -> list[list[torch.Tensor]]:
    return check_forward_backward_at(net, side, side)


def check_forward_backward_at(net: nn.Module, height: int, width: int) -> list[list[torch.Tensor]]:
    out = net(torch.randn(2, 6, height, width))
    assert isinstance(out, list) and out and all(isinstance(b, list) and b for b in out)
    for branch in out:
        assert branch[-1].shape[:2] == (2, 1)
    sum(branch[-1].mean() for branch in out).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    return out


@pytest.mark.parametrize("spectral_norm", [False, True])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", list(SMALL))
def test_forward_backward(name, norm, spectral_norm):
    torch.manual_seed(0)
    net, side = build(name, norm=norm, spectral_norm=spectral_norm)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert all(parametrize.is_parametrized(c, "weight") == spectral_norm for c in convs)
    check_forward_backward(net, side)


@pytest.mark.parametrize(
    "name, resolution, blocks, height",
    # pix2pixHD's padding-2 convs make each map one pixel more than its nominal resolution
    [("patchgan", 8, 1, 8), ("pixel", 8, 1, 8), ("multiscale", 8, 2, 9), ("multidepth", 24, 1, 24)],
)
@pytest.mark.parametrize("spectral_norm", [False, True])
def test_attention_inside(name, resolution, blocks, height, spectral_norm):
    torch.manual_seed(0)
    spec = {"block": "self_attention", "resolution": resolution, "key_reduction": 2}
    net, side = build(name, attention=[spec], spectral_norm=spectral_norm)
    found = [m for m in net.modules() if isinstance(m, SelfAttention)]
    assert len(found) == blocks
    assert all(parametrize.is_parametrized(m.query, "weight") == spectral_norm for m in found)
    seen = []
    for m in found:
        m.register_forward_hook(lambda _, inputs, y: seen.append((inputs[0].shape, y.shape)))
    check_forward_backward(net, side)
    assert [x[-1] for x, _ in seen] == [height] * blocks
    assert all(x == y for x, y in seen)
    assert all(m.gamma.grad.abs() > 0 for m in found)


@pytest.mark.parametrize("name", list(SMALL))
def test_attention_at_a_missing_resolution_is_an_error(name):
    with pytest.raises(RegistryError, match="resolution 5 fits no layer"):
        build(name, attention=[{"block": "self_attention", "resolution": 5}])


@pytest.mark.parametrize(
    "name, params, min_side",
    [
        ("patchgan", dict(n_layers=1), 6),
        ("patchgan", dict(n_layers=3), 24),
        ("patchgan", dict(n_layers=5), 96),
        ("pixel", {}, 2),
        ("multiscale", dict(num_d=3), 5),
        ("multidepth", dict(branches=2, image_size=64), 64),
    ],
)
def test_min_side_is_the_smallest_side_taken(name, params, min_side):
    net = registry.create("discriminator", name, 6, ndf=1, norm="instance", **params)
    assert (net.size_divisor, net.min_side) == (1, min_side)
    check_forward_backward(net, min_side)  # instance norm in training mode at the smallest side
    with pytest.raises(SizeError):
        check_image_size(net, name, min_side - 1, min_side)


def test_registered_with_papers():
    assert {"patchgan", "pixel", "multiscale", "multidepth"} <= set(registry.list("discriminator"))
    for name in SMALL:
        entry = registry.get("discriminator", name)
        assert entry.paper and entry.summary()
    with pytest.raises(RegistryError, match="did you mean 'n_layers'"):
        registry.create("discriminator", "patchgan", 6, nlayers=3)
    with pytest.raises(RegistryError, match="n_layers must be at least 1"):
        PatchGAN(6, n_layers=0)
