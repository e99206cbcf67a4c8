"""The generator zoo: published parameter counts, shapes, norms, init, sizes, attention, MRU."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from ganzoo import registry
from ganzoo.errors import RegistryError, SizeError
from ganzoo.generators.common import Attend
from ganzoo.generators.mru import MaskedResidualUnit
from ganzoo.nn import check_image_size
from ganzoo.registry import register

GENERATORS = [
    "mru",
    "pix2pixhd_global",
    "resnet",
    "resnet_6blocks",
    "resnet_9blocks",
    "unet",
    "unet_128",
    "unet_256",
]
FAMILIES = ["unet", "resnet", "pix2pixhd_global", "mru"]  # one name per class, depth free
NORMS = ["batch", "instance", "syncbatch", "none"]

#: name -> (small params, smallest valid side) for quick forward/backward passes with ngf 8.
SMALL = {
    "mru": ({"depth": 3}, 8),
    "pix2pixhd_global": ({"n_blocks": 2}, 32),  # n_downsample 4 and residual blocks: >= 32
    "resnet": ({"n_blocks": 2}, 8),
    "resnet_6blocks": ({}, 8),
    "resnet_9blocks": ({}, 8),
    "unet": ({"num_downs": 5}, 32),
    "unet_128": ({}, 128),
    "unet_256": ({}, 256),
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread beats two spinning threads on 2 busy cores (~3x)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build(name: str, *, device: str | None = None, **params) -> nn.Module:
    if device is None:
        return registry.create("generator", name, 3, 3, **params)
    with torch.device(device):
        return registry.create("generator", name, 3, 3, **params)


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# -- published numbers ----------------------------------------------------------------------
# pix2pixhd_global, ngf 64, 3 -> 3, n_downsample 4, 9 blocks, instance norm (no affine, so
# only convs count; every conv has a bias in pix2pixHD):
#   stem 7x7 3->64          3*64*49 + 64          =       9,472
#   down 64->128 3x3        64*128*9 + 128        =      73,856
#   down 128->256           128*256*9 + 256       =     295,168
#   down 256->512           256*512*9 + 512       =   1,180,160
#   down 512->1024          512*1024*9 + 1024     =   4,719,616
#   9 blocks x 2 x (1024*1024*9 + 1024) = 9 * 18,876,416 = 169,887,744
#   up 1024->512            1024*512*9 + 512      =   4,719,104
#   up 512->256             512*256*9 + 256       =   1,179,904
#   up 256->128             256*128*9 + 128       =     295,040
#   up 128->64              128*64*9 + 64         =      73,792
#   out 7x7 64->3           64*3*49 + 3           =       9,411
#   total                                         = 182,443,267
# (No published count was found to cite; pix2pixHD's print_network would print this number for
# input_nc 3. Its Cityscapes setting, 36 input channels, adds 33*64*49 = 103,488.)
PARITY = [
    ("unet_256", {"norm": "batch"}, 54_413_955),
    ("unet_256", {"norm": "instance"}, 54_409_603),
    ("unet_128", {"norm": "batch"}, 41_828_995),
    ("unet", {"num_downs": 8, "norm": "batch"}, 54_413_955),
    ("resnet_9blocks", {"norm": "instance"}, 11_378_179),
    ("resnet_9blocks", {"norm": "batch"}, 11_383_427),
    ("resnet_6blocks", {"norm": "batch"}, 7_841_411),
    ("resnet", {"n_blocks": 9, "norm": "batch"}, 11_383_427),
    ("pix2pixhd_global", {}, 182_443_267),
    ("pix2pixhd_global", {"norm": "instance", "n_downsample": 4, "n_blocks": 9}, 182_443_267),
]


@pytest.mark.parametrize(("name", "params", "expected"), PARITY)
def test_parameter_count_matches_reference(name: str, params: dict, expected: int) -> None:
    assert count(build(name, device="meta", **params)) == expected


def test_mru_parameter_count_by_hand() -> None:
    # depth 1, ngf 4, 3 -> 3, instance norm; widths 4, 8
    #   stem 7x7 3->4: 3*4*49 + 4                                             =  592
    #   encoder MRU (x 4, I 3 -> 8): mask 7*4*9+4, gate 7*8*9+8, conv 7*8*9+8,
    #     1x1 projection 4*8+8                     = 256 + 512 + 512 + 40      = 1320
    #   decoder MRU (x 8, I 3+4 skip -> 4): mask 15*8*9+8, gate 15*4*9+4,
    #     conv 15*4*9+4, projection 8*4+4          = 1088 + 544 + 544 + 36     = 2212
    #   out 7x7 4->3: 4*3*49 + 3                                              =  591
    net = build("mru", depth=1, ngf=4, norm="instance")
    assert count(net) == 592 + 1320 + 2212 + 591


def test_mru_widths_double_and_cap() -> None:
    net = build("mru", device="meta", depth=5, ngf=64, max_channels=512)
    assert [u.gate.out_channels for u in net.encoder] == [128, 256, 512, 512, 512]
    assert [u.gate.out_channels for u in net.decoder] == [512, 512, 256, 128, 64]


def test_defaults_are_the_papers() -> None:
    unet = build("unet_256", device="meta")
    assert isinstance(unet.model.model[3], nn.ConvTranspose2d)  # outermost up conv
    assert sum(isinstance(m, nn.BatchNorm2d) for m in unet.modules()) > 0  # norm batch
    assert sum(isinstance(m, nn.Dropout) for m in unet.modules()) == 3  # dropout on
    resnet = build("resnet_9blocks", device="meta")
    assert sum(isinstance(m, nn.BatchNorm2d) for m in resnet.modules()) > 0
    assert not any(isinstance(m, nn.Dropout) for m in resnet.modules())
    hd = build("pix2pixhd_global", device="meta")
    assert any(isinstance(m, nn.InstanceNorm2d) for m in hd.modules())
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in hd.modules()) == 4  # n_downsample 4


def test_state_dict_keys_are_the_reference_layout() -> None:
    unet = build("unet_256", device="meta").state_dict()
    for key in (
        "model.model.0.weight",  # outermost down conv, no bias under batch norm
        "model.model.1.model.1.weight",
        "model.model.1.model.2.running_mean",
        "model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model.1.weight",
        "model.model.3.weight",
        "model.model.3.bias",  # outermost up conv always has a bias
    ):
        assert key in unet
    assert "model.model.0.bias" not in unet
    resnet = build("resnet_9blocks", device="meta").state_dict()
    for key in ("model.1.weight", "model.10.conv_block.1.weight", "model.26.bias"):
        assert key in resnet


# -- every generator, every norm, spectral norm on/off ----------------------------------------
def _forward_backward(name: str, **params) -> nn.Module:
    """One training step's worth of work at the smallest side the generator declares."""
    small, side = SMALL[name]
    torch.manual_seed(0)
    net = build(name, ngf=8, image_size=side, **small, **params)
    check_image_size(net, name, side, side)  # the smallest side it declares is valid
    x = torch.rand(2, 3, side, side) * 2 - 1
    y = net(x)
    assert y.shape == (2, 3, side, side)
    assert y.min() >= -1 and y.max() <= 1
    y.square().mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    return net


@pytest.mark.parametrize("spectral_norm", [False, True])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", GENERATORS)
def test_forward_backward(name: str, norm: str, spectral_norm: bool) -> None:
    net = _forward_backward(name, norm=norm, spectral_norm=spectral_norm)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert all(parametrize.is_parametrized(c, "weight") == spectral_norm for c in convs)


@pytest.mark.parametrize("name", FAMILIES)
def test_output_is_tanh_bounded_on_extreme_input(name: str) -> None:
    params, side = SMALL[name]
    net = build(name, ngf=8, image_size=side, init_gain=1.0, **params).eval()
    y = net(torch.full((1, 3, side, side), 50.0))
    assert torch.isfinite(y).all() and y.abs().max() <= 1
    assert y.shape == (1, 3, side, side)


@pytest.mark.parametrize("norm", ["batch", "syncbatch"])
def test_batch_norms_are_batchnorm2d(norm: str) -> None:
    net = build("resnet", ngf=8, n_blocks=1, norm=norm)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 2 + 2 + 2 + 1
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())


def test_norm_none_has_no_norm_layers() -> None:
    for name in ("unet", "resnet", "pix2pixhd_global", "mru"):
        net = build(name, device="meta", ngf=8, norm="none", **SMALL[name][0])
        assert not any(isinstance(m, nn.BatchNorm2d | nn.InstanceNorm2d) for m in net.modules())


# -- conv bias rule ---------------------------------------------------------------------------
def _convs_feeding_norm(net: nn.Module) -> list[nn.Module]:
    """Convs directly followed by a norm layer (or an Identity norm) in a Sequential."""
    found = []
    for seq in net.modules():
        if isinstance(seq, nn.Sequential):
            layers = list(seq)
            for a, b in zip(layers, layers[1:], strict=False):
                if isinstance(a, nn.Conv2d | nn.ConvTranspose2d) and isinstance(
                    b, nn.BatchNorm2d | nn.InstanceNorm2d | nn.Identity
                ):
                    found.append(a)
    return found


@pytest.mark.parametrize("name", ["unet_256", "resnet_9blocks"])
@pytest.mark.parametrize(
    ("norm", "bias"), [("batch", False), ("syncbatch", False), ("instance", True), ("none", True)]
)
def test_conv_bias_only_without_an_absorbing_norm(name: str, norm: str, bias: bool) -> None:
    net = build(name, device="meta", norm=norm)
    feeding = _convs_feeding_norm(net)
    assert len(feeding) >= 10
    assert all((c.bias is not None) == bias for c in feeding)
    if name == "unet_256":  # outermost down conv: no norm after it, but the same rule
        assert (net.model.model[0].bias is not None) == bias
        assert net.model.model[3].bias is not None  # outermost up conv feeds tanh
    else:
        assert net.model[-2].bias is not None  # last conv feeds tanh


def test_pix2pixhd_has_a_bias_on_every_conv_even_with_batch_norm() -> None:
    net = build("pix2pixhd_global", device="meta", norm="batch")
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert len(convs) == 1 + 4 + 18 + 4 + 1
    assert all(c.bias is not None for c in convs)


def test_mru_conv_bias_rule() -> None:
    for norm, bias in (("batch", False), ("instance", True), ("none", True)):
        net = build("mru", device="meta", norm=norm)
        units = [*net.encoder, *net.decoder]
        assert all((u.conv.bias is not None) == bias for u in units)
        assert all(u.gate.bias is not None and u.mask.bias is not None for u in units)


# -- dropout ----------------------------------------------------------------------------------
def _dropouts(net: nn.Module) -> list[nn.Dropout]:
    return [m for m in net.modules() if isinstance(m, nn.Dropout)]


@pytest.mark.parametrize(("name", "expected"), [("unet_256", 3), ("unet_128", 2)])
def test_unet_dropout_in_the_inner_ngf8_up_blocks(name: str, expected: int) -> None:
    on = build(name, device="meta")
    assert len(_dropouts(on)) == expected and all(d.p == 0.5 for d in _dropouts(on))
    assert _dropouts(build(name, device="meta", dropout=False)) == []
    # they sit at the end of the up path of levels 5 .. num_downs-1, never the innermost
    level, block = 1, on.model
    while True:
        inner = [m for m in block.model if type(m).__name__ == "UnetSkipBlock"]
        has = isinstance(block.model[-1], nn.Dropout)
        assert has == (4 < level and inner != [])
        if not inner:
            break
        level, block = level + 1, inner[0]


def test_resnet_dropout_inside_each_residual_block() -> None:
    net = build("resnet_6blocks", device="meta", dropout=True)
    assert len(_dropouts(net)) == 6
    assert all(isinstance(b.conv_block[4], nn.Dropout) for b in net.model[10:16])
    assert _dropouts(build("resnet_6blocks", device="meta")) == []


def test_dropout_is_active_in_training_only() -> None:
    torch.manual_seed(0)
    net = build("unet", ngf=8, num_downs=6, norm="instance")
    x = torch.rand(1, 3, 64, 64)
    assert not torch.equal(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


# -- init -------------------------------------------------------------------------------------
def _weights(net: nn.Module, kinds: tuple[type, ...]) -> torch.Tensor:
    return torch.cat([m.weight.detach().flatten() for m in net.modules() if isinstance(m, kinds)])


@pytest.mark.parametrize("name", FAMILIES)
def test_normal_init(name: str) -> None:
    torch.manual_seed(0)
    net = build(name, ngf=16, norm="batch", **SMALL[name][0])
    conv = _weights(net, (nn.Conv2d, nn.ConvTranspose2d))
    assert abs(conv.mean()) < 1e-3 and abs(conv.std() - 0.02) < 1e-3
    bn = _weights(net, (nn.BatchNorm2d,))
    assert abs(bn.mean() - 1) < 5e-3 and abs(bn.std() - 0.02) < 5e-3
    biases = [
        m.bias
        for m in net.modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d) and m.bias is not None
    ]
    if name == "pix2pixhd_global":  # pix2pixHD's weights_init leaves PyTorch's default biases
        assert biases and all(torch.count_nonzero(b) > 0 for b in biases)
    else:  # pix2pix's init_weights zeroes them
        assert biases and all(torch.count_nonzero(b) == 0 for b in biases)


def test_init_options_reach_the_weights() -> None:
    torch.manual_seed(0)
    wide = build("resnet", ngf=16, n_blocks=2, init_gain=0.05)
    assert abs(_weights(wide, (nn.Conv2d,)).std() - 0.05) < 2e-3
    kaiming = build("resnet", ngf=16, n_blocks=2, init="kaiming")
    trunk_conv = kaiming.model[10].conv_block[1]  # 64 -> 64, 3x3: fan_in 576
    assert abs(trunk_conv.weight.std() - (2 / 576) ** 0.5) < 5e-3
    orthogonal = build("resnet", ngf=16, n_blocks=2, init="orthogonal", init_gain=1.0)
    w = orthogonal.model[10].conv_block[1].weight.flatten(1)  # 64 x 576: orthonormal rows
    assert torch.allclose(w @ w.T, torch.eye(64), atol=1e-4)
    xavier = build("resnet", ngf=16, n_blocks=2, init="xavier", init_gain=1.0)
    assert abs(xavier.model[10].conv_block[1].weight.std() - (2 / (576 + 576)) ** 0.5) < 5e-3


# -- sizes ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "params", "divisor", "min_side"),
    [
        ("unet_256", {}, 256, 256),
        ("unet_128", {}, 128, 128),
        ("unet", {"num_downs": 5}, 32, 32),
        ("resnet_9blocks", {}, 4, 8),
        ("resnet", {"n_blocks": 0}, 4, 4),
        ("pix2pixhd_global", {}, 16, 32),
        ("pix2pixhd_global", {"n_downsample": 3}, 8, 16),
        ("mru", {}, 16, 16),
        ("mru", {"depth": 2}, 4, 4),
    ],
)
def test_size_divisor_and_min_side(name: str, params: dict, divisor: int, min_side: int) -> None:
    net = build(name, device="meta", **params)
    assert (net.size_divisor, net.min_side) == (divisor, min_side)


def test_unet_256_rejects_200_and_names_256() -> None:
    net = build("unet_256", device="meta")
    check_image_size(net, "unet_256", 256, 256)
    check_image_size(net, "unet_256", 256, 512)
    with pytest.raises(SizeError, match="256x256") as err:
        check_image_size(net, "unet_256", 200, 200)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "params", "bad"),
    [
        ("resnet", {"n_blocks": 1}, 4),
        ("pix2pixhd_global", {"n_blocks": 1}, 16),
        ("mru", {"depth": 3}, 4),
    ],
)
def test_sides_below_min_side_are_rejected_and_would_fail(
    name: str, params: dict, bad: int
) -> None:
    net = build(name, ngf=8, norm="none", **params)
    with pytest.raises(SizeError):
        check_image_size(net, name, bad, bad)
    with pytest.raises(RuntimeError):  # the check is honest: the network really cannot run it
        net(torch.zeros(1, 3, bad, bad))


def test_unet_num_downs_below_two_is_an_error() -> None:
    with pytest.raises(RegistryError, match="num_downs"):
        build("unet", num_downs=1)


def test_variants_fix_their_depth() -> None:
    params = {p.name for p in registry.get("generator", "unet_256").parameters()}
    assert "num_downs" not in params and {"ngf", "norm", "dropout", "attention"} <= params
    with pytest.raises(RegistryError, match="num_downs"):
        build("unet_256", num_downs=7)
    assert "n_blocks" not in {
        p.name for p in registry.get("generator", "resnet_6blocks").parameters()
    }


@pytest.mark.parametrize("name", GENERATORS)
def test_registered_with_summary_paper_and_common_params(name: str) -> None:
    entry = registry.get("generator", name)
    assert entry.summary() and entry.paper
    params = {p.name: p for p in entry.parameters()}
    for common in ("norm", "spectral_norm", "init", "init_gain", "attention", "image_size"):
        assert common in params
    assert params["spectral_norm"].default is False and params["init_gain"].default == 0.02


# -- attention --------------------------------------------------------------------------------
@register("attention", "test_generators_probe")
class ProbeAttention(nn.Module):
    """Test-only attention: x + gamma * conv1x1(x); remembers the shapes it was called with."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.calls: list[tuple[tuple[int, ...], torch.Tensor | None]] = []

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        self.calls.append((tuple(x.shape), condition))
        return x + self.gamma * self.proj(x)


def probe(resolution: int) -> list[dict]:
    return [{"block": "test_generators_probe", "resolution": resolution}]


def _probes(net: nn.Module) -> list[ProbeAttention]:
    return [m for m in net.modules() if isinstance(m, ProbeAttention)]


def _parent_sequence(net: nn.Module, attend: Attend) -> list[nn.Module]:
    return next(list(m) for m in net.modules() if isinstance(m, nn.Sequential) and attend in m)


@pytest.mark.parametrize(
    ("name", "params", "side", "resolution", "path", "channels"),
    [
        ("unet", {"num_downs": 5}, 32, 8, "decoder", 16),
        ("unet", {"num_downs": 5}, 32, 8, "encoder", 16),
        ("unet", {"num_downs": 5}, 32, 1, "decoder", 64),  # bottleneck: only the encoder has it
        ("resnet", {"n_blocks": 2}, 16, 4, "decoder", 32),
        ("resnet", {"n_blocks": 2}, 16, 16, "encoder", 8),
        ("pix2pixhd_global", {"n_downsample": 2, "n_blocks": 1}, 16, 8, "decoder", 16),
        ("mru", {"depth": 3}, 16, 4, "decoder", 32),
        ("mru", {"depth": 3}, 16, 16, "encoder", 8),
    ],
)
def test_attention_goes_where_asked(
    name: str, params: dict, side: int, resolution: int, path: str, channels: int
) -> None:
    plain = build(name, ngf=8, image_size=side, **params)
    net = build(
        name, ngf=8, image_size=side, attention=probe(resolution), attention_path=path, **params
    )
    assert count(net) == count(plain) + channels * channels + channels + 1
    (block,) = _probes(net)
    x = torch.rand(2, 3, side, side) * 2 - 1
    y = net(x)
    assert y.shape == x.shape
    ((shape, condition),) = block.calls
    assert shape == (2, channels, resolution, resolution)
    assert condition is x  # the generator's input image, for the block to resize


def test_unet_attention_sits_on_the_chosen_path() -> None:
    for path in ("decoder", "encoder"):
        net = build(
            "unet", ngf=8, num_downs=5, image_size=32, attention=probe(8), attention_path=path
        )
        (attend,) = [m for m in net.modules() if isinstance(m, Attend)]
        layers = _parent_sequence(net, attend)
        before = layers[: layers.index(attend)]
        # decoder: after the level's up conv; encoder: after its down conv, before the level below
        assert any(isinstance(m, nn.ConvTranspose2d) for m in before) == (path == "decoder")
        assert isinstance(before[-2], nn.ConvTranspose2d if path == "decoder" else nn.Conv2d)
        assert isinstance(before[-1], nn.BatchNorm2d)


def test_mru_attention_keys_name_the_path() -> None:
    dec = build("mru", ngf=8, depth=3, image_size=16, attention=probe(4))
    enc = build("mru", ngf=8, depth=3, image_size=16, attention=probe(4), attention_path="encoder")
    bottleneck = build("mru", ngf=8, depth=3, image_size=16, attention=probe(2))
    assert list(dec.attention) == ["decoder2"]
    assert list(enc.attention) == ["encoder2"]
    assert list(bottleneck.attention) == ["encoder3"]


def test_attention_at_init_leaves_the_output_unchanged() -> None:
    torch.manual_seed(0)
    plain = build("mru", ngf=8, depth=3, image_size=16)
    net = build("mru", ngf=8, depth=3, image_size=16, attention=probe(4) + probe(16))
    missing, unexpected = net.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and all(k.startswith("attention.") for k in missing)
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(net(x), plain(x))


@pytest.mark.parametrize(
    ("name", "params", "side", "resolution"),
    [
        ("unet", {"num_downs": 5}, 32, 32),  # the output layer takes no attention
        ("resnet", {"n_blocks": 1}, 16, 2),
        ("pix2pixhd_global", {"n_downsample": 2, "n_blocks": 1}, 16, 3),
        ("mru", {"depth": 2}, 16, 64),
    ],
)
def test_attention_at_a_resolution_no_layer_makes_is_one_line_error(
    name: str, params: dict, side: int, resolution: int
) -> None:
    with pytest.raises(RegistryError, match=f"attention at resolution {resolution}") as err:
        build(name, ngf=8, image_size=side, attention=probe(resolution), **params)
    assert "\n" not in str(err.value)


def test_unknown_attention_block_is_a_registry_error() -> None:
    with pytest.raises(RegistryError, match="test_generators_probe"):
        build("unet", num_downs=5, attention=[{"block": "test_generators_prob", "resolution": 8}])


# -- the masked residual unit -----------------------------------------------------------------
def _unit(c_x: int, d: int, norm: str = "none") -> MaskedResidualUnit:
    torch.manual_seed(0)
    unit = MaskedResidualUnit(c_x, 2, d, norm)
    for m in unit.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0, 0.3)
            if m.bias is not None:
                nn.init.normal_(m.bias, 0, 0.3)
    return unit


def _force(conv: nn.Conv2d, logit: float) -> None:
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(logit)


def _z(unit: MaskedResidualUnit, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """z = ReLU(norm(conv([m * x, I]))), m = sigmoid(conv([x, I])), written out."""
    m = torch.sigmoid(
        nn.functional.conv2d(torch.cat([x, image], 1), unit.mask.weight, unit.mask.bias, padding=1)
    )
    pre = nn.functional.conv2d(
        torch.cat([m * x, image], 1), unit.conv.weight, unit.conv.bias, padding=1
    )
    return torch.relu(unit.norm(pre))


def test_mru_gate_and_mask_have_the_papers_widths() -> None:
    unit = MaskedResidualUnit(4, 3, 6, "batch")
    assert (unit.mask.in_channels, unit.mask.out_channels) == (7, 4)  # m: C_x channels
    assert (unit.gate.in_channels, unit.gate.out_channels) == (7, 6)  # n: d channels
    assert (unit.conv.in_channels, unit.conv.out_channels) == (7, 6)
    assert isinstance(unit.project, nn.Conv2d) and unit.project.kernel_size == (1, 1)
    assert isinstance(MaskedResidualUnit(6, 3, 6, "batch").project, nn.Identity)


def test_mru_closed_gate_outputs_x() -> None:
    unit = _unit(5, 5)
    _force(unit.gate, -40.0)  # n = 0
    x, image = torch.randn(2, 5, 6, 6), torch.randn(2, 2, 6, 6)
    assert torch.allclose(unit(x, image), x, atol=1e-6)


def test_mru_closed_gate_outputs_projected_x_when_widths_differ() -> None:
    unit = _unit(3, 5)
    _force(unit.gate, -40.0)
    x, image = torch.randn(2, 3, 6, 6), torch.randn(2, 2, 6, 6)
    projected = nn.functional.conv2d(x, unit.project.weight, unit.project.bias)
    assert torch.allclose(unit(x, image), projected, atol=1e-6)


def test_mru_open_gate_outputs_z() -> None:
    unit = _unit(3, 5)
    _force(unit.gate, 40.0)  # n = 1
    x, image = torch.randn(2, 3, 6, 6), torch.randn(2, 2, 6, 6)
    z = _z(unit, x, image)
    assert z.abs().sum() > 0
    assert torch.allclose(unit(x, image), z, atol=1e-6)


def test_mru_half_open_gate_mixes_x_and_z_equally() -> None:
    unit = _unit(4, 4, norm="instance")
    _force(unit.gate, 0.0)  # n = 1/2
    x, image = torch.randn(2, 4, 6, 6), torch.randn(2, 2, 6, 6)
    assert torch.allclose(unit(x, image), 0.5 * x + 0.5 * _z(unit, x, image), atol=1e-6)


def test_mru_closed_mask_hides_x_from_the_new_features() -> None:
    unit = _unit(3, 5)
    _force(unit.gate, 40.0)  # output = z
    _force(unit.mask, -40.0)  # m = 0: z = f(conv([0, I])) whatever x is
    image = torch.randn(2, 2, 6, 6)
    a, b = unit(torch.randn(2, 3, 6, 6), image), unit(torch.randn(2, 3, 6, 6), image)
    assert torch.allclose(a, b, atol=1e-6)
    _force(unit.mask, 40.0)  # m = 1: x reaches z
    assert not torch.allclose(unit(torch.randn(2, 3, 6, 6), image), a, atol=1e-3)


def test_mru_generator_feeds_each_level_the_image_at_its_resolution() -> None:
    net = build("mru", ngf=8, depth=2, image_size=16)
    seen: list[tuple[int, ...]] = []
    for unit in [*net.encoder, *net.decoder]:
        unit.register_forward_hook(lambda _m, args, _out: seen.append(tuple(args[1].shape)))
    net(torch.rand(1, 3, 16, 16))
    # encoder: image at 16, 8; decoder: image (3) + skip at 8 (16 ch), at 16 (8 ch)
    assert seen == [(1, 3, 16, 16), (1, 3, 8, 8), (1, 3 + 16, 8, 8), (1, 3 + 8, 16, 16)]


# -- the real attention blocks (ganzoo.attention) -------------------------------------------
@pytest.mark.parametrize(
    ("name", "params", "side"),
    [
        ("unet", {"num_downs": 5, "attention_path": "encoder"}, 32),
        ("unet", {"num_downs": 5}, 32),
        ("resnet", {"n_blocks": 1}, 16),
        ("pix2pixhd_global", {"n_downsample": 2, "n_blocks": 1}, 16),
        ("mru", {"depth": 3}, 16),
    ],
)
def test_with_sagan_and_conditional_self_attention(name: str, params: dict, side: int) -> None:
    attention = [
        {"block": "self_attention", "resolution": side // 4},
        {"block": "conditional_self_attention", "resolution": side // 2},
    ]
    torch.manual_seed(0)
    net = build(name, ngf=8, image_size=side, attention=attention, spectral_norm=True, **params)
    kinds = {type(m.block).__name__ for m in net.modules() if isinstance(m, Attend)}
    assert kinds == {"SelfAttention", "ConditionalSelfAttention"}
    x = torch.rand(2, 3, side, side) * 2 - 1
    y = net(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    y.mean().backward()  # gamma gets a gradient even at 0: attention can switch itself on
    gammas = [m.block.gamma for m in net.modules() if isinstance(m, Attend)]
    assert all(g.grad is not None and torch.isfinite(g.grad).all() for g in gammas)


def test_real_attention_is_the_identity_at_init_inside_a_generator() -> None:
    torch.manual_seed(0)
    plain = build("mru", ngf=8, depth=3, image_size=16)
    attention = [
        {"block": "self_attention", "resolution": 4},
        {"block": "conditional_self_attention", "resolution": 8},
    ]
    net = build("mru", ngf=8, depth=3, image_size=16, attention=attention)
    net.load_state_dict(plain.state_dict(), strict=False)
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(net(x), plain(x))


# -- networks declare architecture; the builder finishes them ----------------------------------
FINISHING = {"init", "init_gain", "spectral_norm", "spectral", "zero_bias"}


@pytest.mark.parametrize("kind", ["generator", "discriminator"])
def test_networks_declare_architecture_only_and_the_builder_finishes_them(kind: str) -> None:
    import inspect

    from ganzoo.nn import AttentionSlots

    for name in registry.list(kind):
        entry = registry.get(kind, name)
        if entry.is_plugin:
            continue
        own = inspect.signature(entry.load()).parameters
        assert not FINISHING & set(own), (name, FINISHING & set(own))
        if "attention" in own:  # ready slots, built by the builder
            assert "AttentionSlots" in str(own["attention"].annotation), name
        assert entry.finish is not None, name  # its finishing defaults: registry metadata
    defaults = {
        name: registry.get("generator", name).finishing
        for name in ("lines2face", "pix2pixhd_global", "spade", "unet")
    }
    assert defaults["lines2face"].spectral_norm is True
    assert defaults["pix2pixhd_global"].zero_bias is False
    assert (defaults["spade"].init, defaults["spade"].init_gain) == ("xavier", 0.02)
    assert defaults["unet"].spectral_norm is False and defaults["unet"].zero_bias
    assert AttentionSlots().at(1, 4) is None  # built without the builder: no attention
