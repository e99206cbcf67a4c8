"""LinesToFacePhoto's generator and recipe as LiYuhangUSTC/Lines2Face builds them, pix2pixHD's
local enhancer, and SketchyGAN's miu-ReLU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT

from ganzoo import registry
from ganzoo.generators.lines2face import SameConv2d, SameConvTranspose2d, StridedMRU
from ganzoo.generators.mru import MiuReLU
from ganzoo.recipe import load_recipe


def count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def lines2face(**params) -> torch.nn.Module:  # noqa: ANN003
    # spectral norm keeps the count (weight -> parametrizations.weight.original) and is slow on
    # the meta device
    with torch.device("meta"):
        return registry.create("generator", "lines2face", 3, 3, spectral_norm=False, **params)


def test_parameter_count_by_hand() -> None:
    # MRU with x channels c, image 3, output o: mask (c+3)c9+c, gate and z (c+3)o9+o each,
    # 1x1 shortcut c*o+o; a deMRU counts the same (transposed convs have as many weights)
    def mru(c: int, o: int) -> int:
        return (c + 3) * c * 9 + c + 2 * ((c + 3) * o * 9 + o) + c * o + o

    encoder = (
        3 * 64 * 16
        + 64
        + sum(mru(c, o) for c, o in [(64, 128), (128, 256), (256, 384), (384, 512), (512, 512)])
    )
    assert mru(64, 128) == 201_600  # encoder_2
    middle = 8 * (2 * (512 * 512 * 9 + 512) + 2 * 2 * 512)  # convs + affine instance norms
    decoder = sum(
        mru(c, o) for c, o in [(512, 512), (1024, 512), (896, 256), (512, 128), (256, 128)]
    )
    out = (128 + 64) * 3 * 16 + 3
    assert encoder + middle + decoder + out == 97_064_515
    assert count(lines2face()) == 97_064_515
    # with the released code's self-attention (flag_condition=False, channel_fac 16) and with
    # the paper's CSAM, both after the last deMRU at 128x128
    released = [{"block": "self_attention", "resolution": 128, "key_reduction": 16}]
    assert count(lines2face(attention=released, image_size=256)) == 97_064_515 + 18_577
    paper = [{"block": "conditional_self_attention", "resolution": 128}]
    assert count(lines2face(attention=paper, image_size=256)) == 97_064_515 + 19_009


def test_layout_and_shapes() -> None:
    torch.manual_seed(0)
    g = registry.create("generator", "lines2face", 3, 3, ngf=4, n_blocks=2, image_size=192)
    y = g(torch.randn(2, 3, 192, 192))
    assert y.shape == (2, 3, 192, 192) and y.abs().max() <= 1
    assert [u.gate.out_channels for u in g.encoder] == [8, 16, 24, 32, 32]
    assert [u.gate.out_channels for u in g.decoder] == [32, 32, 16, 8, 8]
    assert [u.mask.in_channels for u in g.decoder] == [35, 67, 59, 35, 19]  # + skips + image
    blocks = list(g.middle)
    conv = blocks[0].body[0]
    assert (conv.dilation, conv.padding_mode) == ((2, 2), "reflect")
    assert all(hasattr(b.body[0], "parametrizations") for b in blocks)  # spectral norm
    assert not hasattr(g.encoder[0].gate, "parametrizations")  # not on the MRUs
    assert (g.size_divisor, g.min_side) == (64, 192)


def test_same_padding_is_tensorflows() -> None:
    # TF SAME, stride 2, kernel 3 on an even side pads (0, 1); the transposed conv is its
    # adjoint: <conv(x), y> = <x, conv_transpose(y)> with the same weights
    torch.manual_seed(0)
    conv = SameConv2d(2, 3, 3, stride=2, bias=False).double()
    x = torch.randn(1, 2, 8, 6, dtype=torch.float64)
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
    torch.testing.assert_close(conv(x), expected)
    for k in (3, 1):
        down = SameConv2d(2, 3, k, stride=2, bias=False).double()
        up = SameConvTranspose2d(3, 2, k, stride=2, bias=False).double()
        up.weight.data = down.weight.data.clone()
        y = torch.randn(1, 3, 4, 3, dtype=torch.float64)
        assert up(y).shape == x.shape
        torch.testing.assert_close((down(x) * y).sum(), (x * up(y)).sum())


def test_the_strided_mru_is_the_released_formula() -> None:
    torch.manual_seed(0)
    unit = StridedMRU(4, 3, 6, up=False).double()
    x = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    image = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    small = F.interpolate(image, size=(8, 8), mode="bilinear", align_corners=False)
    xi = torch.cat([x, small], 1)
    m = torch.sigmoid(unit.mask(xi))
    n = torch.sigmoid(unit.gate(xi))
    z = torch.relu(unit.conv(torch.cat([x * m, small], 1)))
    expected = unit.shortcut(x) * (1 - n) + z * n
    torch.testing.assert_close(unit(x, image), expected)
    assert expected.shape == (1, 6, 4, 4)
    assert StridedMRU(4, 3, 6, up=True).double()(x, image).shape == (1, 6, 16, 16)


def test_the_recipe_is_the_released_training() -> None:
    r = load_recipe(ROOT / "recipes" / "lines2face.yaml")
    assert (r.optim.lr_g, r.optim.lr_d, r.optim.betas) == (1e-4, 4e-4, (0.5, 0.999))
    assert r.loss.objective.name == "vanilla" and r.loss.l1 == 100
    # main.py: discrim_loss = mean over branches of -(log D(real) + log(1 - D(fake))), unhalved
    assert r.loss.objective.params == {"d_scale": 1}
    assert (r.loss.feature_matching, r.loss.feature_matching_form, r.loss.style) == (
        1,
        "lines2face",
        1,
    )
    d = r.discriminator.params
    assert r.discriminator.name == "multidepth" and d["branches"] == 4
    assert d["spectral_norm"] and d["padding_mode"] == "reflect" and d["hidden_bias"]
    assert r.schedule.name == "constant" and r.data.batch_size == 8
    assert "attention" not in r.generator.params  # stage one
    two = load_recipe(ROOT / "recipes" / "lines2face_stage2.yaml")
    assert two.generator.params["attention"][0].block == "conditional_self_attention"
    assert two.optim.train_only.discriminator == [] and two.train.init_from == "runs/lines2face"
    three = load_recipe(ROOT / "recipes" / "lines2face_stage3.yaml")
    assert three.optim.train_only is None and three.train.init_from == "runs/lines2face_stage2"
    composite = load_recipe(ROOT / "recipes" / "mru_csam_multidepth.yaml")
    assert composite.generator.name == "mru"  # today's composite, under its own name


def test_pix2pixhd_local_enhancer_count_by_hand() -> None:
    # ngf 32, 1 enhancer, 3 local blocks, instance norm, every conv with a bias:
    # the global generator at ngf 64 without its final 7x7 conv (64*3*49 + 3)
    global_part = 182_443_267 - (64 * 3 * 49 + 3)
    down = (3 * 32 * 49 + 32) + (32 * 64 * 9 + 64)
    blocks = 3 * 2 * (64 * 64 * 9 + 64)
    up = (64 * 32 * 9 + 32) + (32 * 3 * 49 + 3)
    with torch.device("meta"):
        g = registry.create("generator", "pix2pixhd_local", 3, 3)
    assert count(g) == global_part + down + blocks + up == 182_701_827
    small = registry.create(
        "generator", "pix2pixhd_local", 3, 3, ngf=4, n_downsample_global=2, n_blocks_global=1
    )
    assert small(torch.randn(1, 3, 32, 48)).shape == (1, 3, 32, 48)
    assert small.size_divisor == 8


def test_miu_relu_is_sketchygans() -> None:
    x = torch.tensor([-2.0, 0.0, 3.0])
    expected = (x + torch.sqrt(0.3**2 + x**2)) / 2
    torch.testing.assert_close(MiuReLU()(x), expected)
    assert MiuReLU()(torch.zeros(1)).item() == pytest.approx(0.15)
    g = registry.create("generator", "mru", 3, 3, depth=2, ngf=4, activation="miu_relu")
    assert any(isinstance(m, MiuReLU) for m in g.modules())
