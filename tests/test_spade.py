"""SPADE (Park et al., CVPR 2019) as NVlabs/SPADE builds and trains it: the generator's layers,
its parameter counts, the SPADE layer, the recipe's defaults, and a tiny model that learns.

Source lines cited are NVlabs/SPADE at the commits docs/faithfulness.md lists:
generator.py 0ff661e7, architecture.py 9ebceac2, normalization.py 29f7c108, loss.py /
base_options.py 1eb35f1b, discriminator.py c0d50e6c, pix2pix_model.py / train_options.py 1aa3633e,
data/ade20k_dataset.py a0a13825, data/cityscapes_dataset.py 1a687bae, data/coco_dataset.py
1eb35f1b.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT
from torch import nn
from torch.nn.utils import parametrize

from ganzoo import registry
from ganzoo.build import build_discriminator, check_recipe
from ganzoo.data.source import PairSource
from ganzoo.errors import RegistryError, SizeError
from ganzoo.generators.spade import SPADE, SPADEGenerator, SPADEResnetBlock
from ganzoo.recipe import from_dict, load_recipe
from ganzoo.recipe_tree import load_tree
from ganzoo.registry import register

RECIPE = ROOT / "recipes" / "spade_labels.yaml"


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def spade_g(in_channels: int, **params) -> SPADEGenerator:  # noqa: ANN003
    # spectral norm keeps the count (weight -> parametrizations.weight.original) and is slow on
    # the meta device
    with torch.device("meta"):
        return registry.create("generator", "spade", in_channels, 3, spectral=False, **params)


# -- parameter counts ---------------------------------------------------------------------------
def official_g_params(semantic_nc: int, nf: int = 64, most: bool = False) -> int:
    """SPADEGenerator's parameter count from the official layer shapes (use_vae off)."""

    def spade(norm_nc: int) -> int:
        # normalization.py SPADE: nhidden = 128 hard-coded, ks 3 from 'spade...3x3';
        # mlp_shared conv(label_nc -> 128) + mlp_gamma, mlp_beta conv(128 -> norm_nc), all biased;
        # the param-free norm (affine=False) has no parameters
        return semantic_nc * 128 * 9 + 128 + 2 * (128 * norm_nc * 9 + norm_nc)

    def block(fin: int, fout: int) -> int:
        # architecture.py SPADEResnetBlock: fmiddle = min(fin, fout); conv_0 3x3 fin->fmiddle,
        # conv_1 3x3 fmiddle->fout (biased); if fin != fout: conv_s 1x1 bias=False + norm_s
        mid = min(fin, fout)
        total = fin * mid * 9 + mid + mid * fout * 9 + fout + spade(fin) + spade(mid)
        if fin != fout:
            total += fin * fout + spade(fin)
        return total

    # generator.py SPADEGenerator: fc = Conv2d(semantic_nc, 16 nf, 3, padding=1); head_0,
    # G_middle_0, G_middle_1 16nf->16nf; up_0 16->8, up_1 8->4, up_2 4->2, up_3 2->1 (x nf);
    # 'most': up_4 nf -> nf // 2; conv_img = Conv2d(final_nc, 3, 3, padding=1)
    total = semantic_nc * 16 * nf * 9 + 16 * nf
    total += 3 * block(16 * nf, 16 * nf)
    total += block(16 * nf, 8 * nf) + block(8 * nf, 4 * nf) + block(4 * nf, 2 * nf)
    total += block(2 * nf, nf)
    final_nc = nf
    if most:
        total += block(nf, nf // 2)
        final_nc = nf // 2
    return total + final_nc * 3 * 9 + 3


@pytest.mark.parametrize(
    ("dataset", "semantic_nc", "upsampling", "expected"),
    [
        # base_options.py: semantic_nc = label_nc + contain_dontcare_label + (not no_instance)
        # ade20k_dataset.py: label_nc 150, contain_dontcare_label, no_instance -> 151
        ("ade20k", 151, "normal", 96_492_483),
        # coco_dataset.py: label_nc 182, contain_dontcare_label, instance maps -> 184
        ("coco", 184, "normal", 97_480_899),
        # cityscapes_dataset.py: label_nc 35, no dontcare, instance maps -> 36; 'more'
        ("cityscapes", 36, "more", 93_048_003),
    ],
)
def test_generator_parameter_count(
    dataset: str, semantic_nc: int, upsampling: str, expected: int
) -> None:
    assert official_g_params(semantic_nc) == expected
    assert count(spade_g(semantic_nc, num_upsampling_layers=upsampling)) == expected
    # spectral norm keeps the count (one parameter per weight, plus buffers)
    with torch.device("meta"):
        spectral = registry.create("generator", "spade", semantic_nc, 3, ngf=4)
    assert count(spectral) == count(spade_g(semantic_nc, ngf=4))


def test_most_adds_an_up_4_block() -> None:
    g = spade_g(151, num_upsampling_layers="most")
    # up_4 (64 -> 32) adds 920,960; conv_img then reads 32 channels, not 64: -864
    assert count(g) == official_g_params(151, most=True) == 96_492_483 + 920_960 - 864
    assert (g.up_4.conv_0.in_channels, g.up_4.conv_1.out_channels) == (64, 32)
    assert g.conv_img.in_channels == 32


def test_counts_match_a_published_training_log() -> None:
    # BaseNetwork.print_network prints millions to one decimal. A third-party SPADE fork's
    # train.py keeps, as comments, the log of a run with --label_nc 19 --no_instance
    # --dataset_mode custom (no dontcare): "Network [SPADEGenerator] was created. Total number
    # of parameters: 92.5 million." and "Network [MultiscaleDiscriminator] ... 5.6 million."
    assert round(count(spade_g(19)) / 1e6, 1) == 92.5
    # discriminator.py NLayerDiscriminator, n_layers_D 4, ndf 64, input 19 + 3: conv s2 (bias)
    # ->64, then norm_layer(conv) (bias removed by get_nonspade_norm_layer, instance norm
    # affine=False) 64->128 s2, 128->256 s2, 256->512 s1, then conv 512->1 (bias); kw 4
    official_scale = (22 * 64 * 16 + 64) + 64 * 128 * 16 + 128 * 256 * 16 + 256 * 512 * 16
    official_scale += 512 * 16 + 1
    assert round(2 * official_scale / 1e6, 1) == 5.6
    with torch.device("meta"):
        d = registry.create(
            "discriminator",
            "multiscale",
            22,
            num_d=2,
            n_layers=3,
            norm="instance",
            spectral_norm="hidden",
            hidden_bias=False,
        )
    assert count(d) == 2 * official_scale
    # pix2pixHD's form keeps the normalised convs' biases
    with torch.device("meta"):
        hd = registry.create("discriminator", "multiscale", 22, num_d=2, n_layers=3)
    assert count(hd) == 2 * (official_scale + 128 + 256 + 512)


def test_spade_discriminator_wraps_only_the_normalised_convs() -> None:
    d = registry.create(
        "discriminator",
        "multiscale",
        7,
        num_d=2,
        n_layers=3,
        ndf=4,
        norm="instance",
        spectral_norm="hidden",
        hidden_bias=False,
    )
    convs = {n: m for n, m in d.named_modules() if isinstance(m, nn.Conv2d)}
    wrapped = {n for n, m in convs.items() if parametrize.is_parametrized(m, "weight")}
    assert wrapped == {f"scales.{s}.{k}.0" for s in (0, 1) for k in (1, 2, 3)}
    assert {n for n, m in convs.items() if m.bias is None} == wrapped
    everything = registry.create("discriminator", "multiscale", 7, ndf=4, spectral_norm=True)
    convs = [m for m in everything.modules() if isinstance(m, nn.Conv2d)]
    assert all(parametrize.is_parametrized(m, "weight") for m in convs)


def test_the_spade_recipe_discriminator_starts_with_zero_biases() -> None:
    # NVlabs/SPADE models/networks/__init__.py create_network calls init_weights on D too;
    # base_network.py init_weights sets every conv bias to 0 (pix2pixHD's weights_init does not)
    d = build_discriminator(load_recipe(RECIPE, ["discriminator.ndf=4", "data.crop_size=64"]))
    biases = [m.bias for m in d.modules() if isinstance(m, nn.Conv2d) and m.bias is not None]
    assert len(biases) == 4 and all(not b.any() for b in biases)  # first and last conv per scale
    hd = registry.create("discriminator", "multiscale", 7, num_d=2, ndf=4)
    assert all(m.bias.any() for m in hd.modules() if isinstance(m, nn.Conv2d))


# -- layers ------------------------------------------------------------------------------------
def test_layers_and_spectral_norm_follow_the_source() -> None:
    g = registry.create("generator", "spade", 5, 3, ngf=4, nhidden=16)
    widths = [
        (b.conv_0.in_channels, b.conv_1.out_channels)
        for b in (g.head_0, g.G_middle_0, g.G_middle_1, g.up_0, g.up_1, g.up_2, g.up_3)
    ]
    assert widths == [(64, 64), (64, 64), (64, 64), (64, 32), (32, 16), (16, 8), (8, 4)]
    assert g.fc.in_channels == 5 and g.fc.out_channels == 64 and g.fc.kernel_size == (3, 3)
    assert not g.head_0.learned_shortcut and not hasattr(g.head_0, "conv_s")
    assert g.up_0.learned_shortcut and g.up_0.conv_s.bias is None
    assert g.up_0.conv_0.out_channels == 32  # fmiddle = min(fin, fout)
    assert g.up_0.norm_0.mlp_shared[0].in_channels == 5
    assert g.up_0.norm_0.mlp_gamma.out_channels == 64 and g.up_0.norm_1.mlp_beta.out_channels == 32
    assert isinstance(g.up_0.norm_0.param_free_norm, nn.BatchNorm2d)
    assert not g.up_0.norm_0.param_free_norm.affine
    # spectral norm on the blocks' convs only: not fc, conv_img nor the SPADE layers' convs
    wrapped = {n for n, m in g.named_modules() if parametrize.is_parametrized(m, "weight")}
    blocks = ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3")
    expected = {f"{b}.conv_{i}" for b in blocks for i in (0, 1)}
    expected |= {f"{b}.conv_s" for b in ("up_0", "up_1", "up_2", "up_3")}
    assert wrapped == expected
    inst = registry.create("generator", "spade", 5, 3, ngf=4, norm="instance", spectral=False)
    assert isinstance(inst.head_0.norm_0.param_free_norm, nn.InstanceNorm2d)
    assert not any(parametrize.is_parametrized(m) for m in inst.modules())


def test_xavier_init_with_gain_002_and_zero_biases() -> None:
    torch.manual_seed(0)
    g = registry.create("generator", "spade", 5, 3, ngf=4, nhidden=16, spectral=False)
    w = g.G_middle_0.conv_0.weight  # 64 -> 64, 3x3: xavier std = gain * sqrt(2 / (fan_in + out))
    expected_std = 0.02 * (2 / (64 * 9 + 64 * 9)) ** 0.5
    assert w.std().item() == pytest.approx(expected_std, rel=0.1)
    assert all(m.bias.abs().sum() == 0 for m in g.modules() if getattr(m, "bias", None) is not None)


@pytest.mark.parametrize(
    ("upsampling", "size"),
    [("normal", (32, 32)), ("normal", (64, 96)), ("more", (64, 128)), ("most", (128, 128))],
)
def test_output_shapes(upsampling: str, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    g = registry.create(
        "generator", "spade", 4, 3, ngf=4, nhidden=8, num_upsampling_layers=upsampling
    )
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (2, *size)), 4).permute(0, 3, 1, 2)
    y = g(x.float())
    assert y.shape == (2, 3, *size) and y.abs().max() <= 1
    assert g.size_divisor == {"normal": 32, "more": 64, "most": 128}[upsampling]


def test_sizes_it_cannot_take_are_one_line_errors() -> None:
    g = registry.create("generator", "spade", 4, 3, ngf=2, nhidden=4, spectral=False)
    with pytest.raises(SizeError) as err:
        g(torch.zeros(1, 4, 48, 64))
    message = str(err.value)
    assert "\n" not in message and "multiple of 32" in message and "48x64" in message
    more = registry.create(
        "generator", "spade", 4, 3, ngf=2, nhidden=4, spectral=False, num_upsampling_layers="more"
    )
    with pytest.raises(SizeError, match="multiple of 64"):
        more(torch.zeros(1, 4, 32, 32))
    with pytest.raises(RegistryError, match="num_upsampling_layers"):
        registry.create("generator", "spade", 4, 3, num_upsampling_layers="many")


@pytest.mark.parametrize("norm", ["batch", "syncbatch"])
def test_one_image_on_the_1x1_grid_with_batch_norm_is_a_one_line_error(norm: str) -> None:
    g = registry.create("generator", "spade", 4, 3, ngf=1, nhidden=4, norm=norm)
    one = torch.zeros(1, 4, 32, 32)  # 32x32 starts from a 1x1 grid: one value per channel
    with pytest.raises(SizeError) as err:
        g(one)
    assert "\n" not in str(err.value) and "data.batch_size to 2" in str(err.value)
    assert g(torch.zeros(2, 4, 32, 32)).shape == (2, 3, 32, 32)
    assert g(torch.zeros(1, 4, 64, 32)).shape == (1, 3, 64, 32)
    assert g.eval()(one).shape == (1, 3, 32, 32)  # running statistics: any batch
    with pytest.raises(RegistryError, match="ngf of at least 2"):
        registry.create("generator", "spade", 4, 3, ngf=1, num_upsampling_layers="most")


@pytest.mark.parametrize(
    ("upsampling", "sides"),
    [
        # generator.py forward: up before G_middle_0; 'more'/'most' one more up before
        # G_middle_1; up before each of up_0..up_3; 'most': up, up_4
        ("normal", [1, 2, 2, 4, 8, 16, 32]),
        ("more", [1, 2, 4, 8, 16, 32, 64]),
        ("most", [1, 2, 4, 8, 16, 32, 64, 128]),
    ],
)
def test_each_block_runs_at_the_source_resolution(upsampling: str, sides: list[int]) -> None:
    g = registry.create(
        "generator",
        "spade",
        2,
        3,
        ngf=2,
        nhidden=4,
        spectral=False,
        num_upsampling_layers=upsampling,
    )
    names = ["head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3", "up_4"]
    seen: list[tuple[str, int]] = []
    for name in names[: len(sides)]:
        getattr(g, name).register_forward_hook(
            lambda m, args, out, name=name: seen.append((name, out.shape[-1]))
        )
    side = sides[-1]
    g(torch.ones(2, 2, side, side))
    assert seen == list(zip(names, sides, strict=False))


def test_the_block_normalises_before_each_conv() -> None:
    # architecture.py forward: x_s = conv_s(norm_s(x, seg)) when learned;
    # dx = conv_1(actvn(norm_1(conv_0(actvn(norm_0(x, seg))), seg))), actvn leaky 0.2
    torch.manual_seed(0)
    block = SPADEResnetBlock(8, 4, 3, "instance", nhidden=8, kernel_size=3)
    x, seg = torch.randn(2, 8, 8, 8), torch.rand(2, 3, 16, 16)

    def act(t: torch.Tensor) -> torch.Tensor:
        return nn.functional.leaky_relu(t, 0.2)

    dx = block.conv_1(act(block.norm_1(block.conv_0(act(block.norm_0(x, seg))), seg)))
    assert torch.allclose(block(x, seg), block.conv_s(block.norm_s(x, seg)) + dx, atol=1e-6)
    same = SPADEResnetBlock(4, 4, 3, "instance", nhidden=8, kernel_size=3)
    y = torch.randn(2, 4, 8, 8)
    dy = same.conv_1(act(same.norm_1(same.conv_0(act(same.norm_0(y, seg))), seg)))
    assert torch.allclose(same(y, seg), y + dy, atol=1e-6)


def test_spade_is_the_plain_norm_when_gamma_and_beta_are_zero() -> None:
    torch.manual_seed(0)
    layer = SPADE(6, 3, "instance", nhidden=8, kernel_size=3)
    for conv in (layer.mlp_gamma, layer.mlp_beta):
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    x, seg = torch.randn(2, 6, 8, 8), torch.rand(2, 3, 4, 4)
    expected = nn.functional.instance_norm(x)
    assert torch.allclose(layer(x, seg), expected, atol=1e-6)
    # and out = norm(x) * (1 + gamma) + beta with gamma, beta from the nearest-resized map
    nn.init.constant_(layer.mlp_gamma.bias, 0.5)
    nn.init.constant_(layer.mlp_beta.bias, -0.25)
    assert torch.allclose(layer(x, seg), expected * 1.5 - 0.25, atol=1e-6)


def test_the_label_map_modulates_the_output() -> None:
    torch.manual_seed(0)
    g = registry.create("generator", "spade", 3, 3, ngf=4, nhidden=8, norm="instance").eval()
    left = torch.zeros(1, 3, 64, 64)
    left[:, 0] = 1
    right = left.clone()
    right[:, :, :, 32:] = 0
    right[:, 1, :, 32:] = 1  # class 1 on the right half
    with torch.no_grad():
        a, b = g(left), g(right)
    assert (a - b).abs().amax().item() > 1e-4
    # the block's SPADE layer sees the map resized (nearest) to its features
    block = SPADEResnetBlock(4, 4, 3, "instance", nhidden=8, kernel_size=3)
    x = torch.randn(1, 4, 8, 8)
    seen = block.norm_0(x, right)
    assert torch.equal(seen, block.norm_0(x, right[:, :, ::8, ::8]))
    # instance norm cannot normalise the 1x1 starting grid of a 32x32 output
    with pytest.raises(SizeError, match="at least 64"):
        g(left[:, :, :32, :32])


def test_hinge_can_leave_the_discriminator_loss_unhalved() -> None:
    logits = torch.zeros(1, 1, 2, 2)
    half = registry.create("objective", "hinge")
    spade = registry.create("objective", "hinge", d_scale=1)
    assert half.d_scale == 0.5 and spade.d_scale == 1.0
    assert spade.d_loss(logits, logits).item() == pytest.approx(2.0)
    with pytest.raises(RegistryError, match="d_scale"):
        registry.create("objective", "hinge", d_scale=0)


# -- the recipe ------------------------------------------------------------------------------
def test_recipe_has_the_official_defaults() -> None:
    tree = load_tree(RECIPE)
    data, g, d, loss, optim = (
        tree[k] for k in ("data", "generator", "discriminator", "loss", "optim")
    )
    # data/ade20k_dataset.py: label_nc 150 + contain_dontcare_label, the ids as read (its
    # postprocess computes label - 1 on a new tensor and never stores it): 151 channels, ADE
    # id k on channel k, as here; no_instance; preprocess resize_and_crop, load_size 286
    # (training), crop_size 256; base_options.py: batchSize 1, aspect_ratio 1, flips (no_flip
    # off)
    assert data["name"] == "paired_folders" and data["root"] == "datasets/ade20k"
    assert data["labels"] == {"num_classes": 151, "ignore_index": 255}
    assert data["out_channels"] == 3 and load_recipe(RECIPE).data.in_channels == 151
    assert (data["preprocess"], data["load_size"], data["crop_size"]) == (
        "resize_and_crop",
        286,
        256,
    )
    assert (data["flip"], data["batch_size"]) == (True, 1)
    # generator.py: norm_G 'spectralspadesyncbatch3x3', num_upsampling_layers 'normal';
    # base_options.py: ngf 64, init_type xavier, init_variance 0.02; normalization.py nhidden 128
    assert g == {
        "name": "spade",
        "ngf": 64,
        "num_upsampling_layers": "normal",
        "norm": "syncbatch",
        "spectral": True,
        "nhidden": 128,
        "kernel_size": 3,
        "init": "xavier",
        "init_gain": 0.02,
    }
    # train_options.py netD multiscale; discriminator.py num_D 2, n_layers_D 4 (its last hidden
    # conv stride 1 = ganzoo's n_layers 3), base_options.py norm_D 'spectralinstance';
    # train_options.py ndf 64; loss.py GANLoss.__call__ divides the scales' sum by len(input)
    assert d == {
        "name": "multiscale",
        "num_d": 2,
        "n_layers": 3,
        "ndf": 64,
        "norm": "instance",
        "spectral_norm": "hidden",
        "hidden_bias": False,
        "init": "xavier",
        "init_gain": 0.02,
        "zero_bias": True,
        "reduction": "mean",
    }
    # train_options.py gan_mode hinge, lambda_feat 10, lambda_vgg 10; pix2pix_model.py:
    # D_Fake + D_real unhalved, feature matching lambda_feat / num_D per scale, no L1 term;
    # loss.py VGGLoss on the generator's raw output
    assert loss == {
        "objective": {"name": "hinge", "d_scale": 1},
        "l1": 0,
        "feature_matching": 10,
        "feature_matching_form": "pix2pixhd",  # weights 4 / (n_layers + 1) = 1 and 1 / num_D
        "perceptual": 10,
        "perceptual_input": "raw",
    }
    # train_options.py: lr 0.0002, beta1 0, beta2 0.9 (TTUR on); pix2pix_model.py
    # create_optimizers: G lr / 2, D lr * 2; D_steps_per_G 1; no image pool
    assert optim == {
        "lr_g": 0.0001,
        "lr_d": 0.0004,
        "betas": [0.0, 0.9],
        "d_steps": 1,
        "pool_size": 0,
    }
    # train_options.py niter 50, niter_decay 0: a constant rate for 50 epochs
    assert tree["schedule"] == {"name": "constant", "epochs": 50}


def test_recipe_validates_and_builds_on_meta() -> None:
    r = load_recipe(RECIPE)
    assert r.data.in_channels == 151  # the one-hot map of data.labels
    check_recipe(r)  # G and D built on the meta device at 256x256 with 151 label channels
    assert r.generator.name == "spade" and r.data.image_size == (256, 256)
    assert r.loss.objective.params == {"d_scale": 1.0}
    assert r.discriminator.params["spectral_norm"] == "hidden"


# -- learning ------------------------------------------------------------------------------
COLOURS = np.array([[220, 40, 40], [40, 200, 60], [40, 60, 220], [230, 220, 60]], np.float32)


@register("dataset", "test_spade_label_maps")
class SyntheticLabelMaps(PairSource):
    """Test-only: one-hot maps of 4 classes (random rectangles over a background) -> a photo of
    per-class colours with per-class stripes. A is one-hot x 255 (the pipeline maps it to
    -1 / 1), B the RGB image; 32x32."""

    def __init__(
        self, root: str, split: str, in_channels: int = 4, out_channels: int = 3, n: int = 16
    ) -> None:
        self.in_channels, self.out_channels = in_channels, out_channels
        rng = np.random.default_rng(0 if split == "train" else 1)
        yy, xx = np.mgrid[0:32, 0:32]
        stripes = [np.zeros((32, 32)), (xx // 2) % 2, (yy // 2) % 2, ((xx + yy) // 3) % 2]
        self.items = []
        for _ in range(n):
            labels = np.zeros((32, 32), np.int64)
            for cls in (1, 2, 3):
                y0, x0 = rng.integers(0, 24, 2)
                h, w = rng.integers(6, 16, 2)
                labels[y0 : y0 + h, x0 : x0 + w] = cls
            onehot = (np.arange(4)[:, None, None] == labels[None]).astype(np.uint8) * 255
            texture = np.choose(labels, stripes) * 40.0
            photo = COLOURS[labels].transpose(2, 0, 1) - texture[None]
            self.items.append((torch.from_numpy(onehot), torch.from_numpy(photo.astype(np.uint8))))

    def __len__(self) -> int:
        return len(self.items)

    def path(self, index: int) -> str:
        return f"synthetic/{index}"

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[index]


def test_a_tiny_spade_learns_label_maps_to_photos(tmp_path: Path) -> None:
    from ganzoo.training.trainer import Trainer

    recipe = from_dict(
        {
            "name": "spade_tiny",
            "data": {
                "name": "test_spade_label_maps",
                "root": "unused",
                "in_channels": 4,
                "preprocess": "none",
                "load_size": 32,
                "crop_size": 32,
                "flip": False,
                "batch_size": 4,
                "num_workers": 0,
            },
            "generator": {"name": "spade", "ngf": 4, "nhidden": 16, "norm": "batch"},
            "discriminator": {
                "name": "multiscale",
                "num_d": 2,
                "n_layers": 2,
                "ndf": 8,
                "norm": "instance",
                "spectral_norm": True,
                "reduction": "mean",
            },
            "loss": {
                "objective": {"name": "hinge", "d_scale": 1},
                "l1": 100,
                "feature_matching": 10,
            },
            "optim": {"lr_g": 0.002, "lr_d": 0.004, "betas": [0.0, 0.9]},
            "schedule": {"name": "constant", "epochs": 1000},
            "train": {
                "max_steps": 80,
                "device": "cpu",
                "precision": "fp32",
                "channels_last": False,
                "log_every": 10,
                "sample_every": 1000,
                "checkpoint_every": 1000,
                "val_batches": 4,
            },
        }
    )
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    before = trainer.validate()["val_l1"]
    final = trainer.fit()
    assert final["val_l1"] < 0.5 * before, (before, final["val_l1"])  # ~0.69 -> ~0.18
