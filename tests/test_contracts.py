"""Contract tests over every registered component, built-ins and the example plugin alike.

As timm's ``tests/test_models.py``: each case is parametrized over ``registry.list(kind)``, so a
new component is tested by registering it. The contracts (what the trainer relies on):

- generator: built on the meta device at its defaults; ``size_divisor`` / ``min_side`` declared
  as positive ints; at the smallest valid side (>= 32, and one divisor wider) a small
  configuration maps ``(N, in, H, W)`` to ``(N, out, H, W)``, finite and in [-1, 1], in train
  and eval mode; one image in train mode works or is a one-line error.
- discriminator: built on meta at its defaults; returns a non-empty list of branches, each a
  non-empty list of feature maps ``(N, C, h, w)`` ending in its logits ``(N, 1, h, w)``.
- attention: exactly the identity at init (``x`` returned bit for bit, with or without a
  condition image).
- objective: finite scalar losses on random logits (and a finite penalty where it needs one).
- dataset: pairs of ``(in_channels, H, W)`` / ``(out_channels, H, W)`` from a tiny folder made
  here, and the trainer's items ``(C, crop, crop)`` in [-1, 1].

Plus a round trip: a tiny trained checkpoint -> safetensors -> Hub folder (exported from the
safetensors file) give bit-identical outputs when each is loaded.

The example plugin (plugins/ganzoo-example-plugin) is made visible through a dist-info folder
written here that points at its source, so its entry points go through the registry's plugin
path without building a wheel (tests/test_plugins.py installs the real wheel).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_pair, tiny_recipe, train_tiny_run
from PIL import Image
from torch import nn
from torch.nn.utils import parametrize

from ganzoo import registry
from ganzoo.build import build_discriminator, build_generator
from ganzoo.errors import GanzooError

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "plugins" / "ganzoo-example-plugin"


def _plugin_entry_points() -> dict[str, dict[str, str]]:
    """Group -> {name: target} of the entry points in the example plugin's pyproject.toml."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the plugin cases are left out
        return {}
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    return project.get("entry-points", {})


PLUGIN_ENTRY_POINTS = _plugin_entry_points()


def plugin_names(kind: str) -> list[str]:
    return list(PLUGIN_ENTRY_POINTS.get(registry.KINDS[kind][0], {}))


def names(kind: str) -> list[str]:
    """Every component of ``kind``: the registered ones and the example plugin's."""
    return sorted({*registry.list(kind), *plugin_names(kind)})


@pytest.fixture(scope="module")
def example_plugin(tmp_path_factory) -> Iterator[None]:
    """The example plugin's entry points, discoverable by the registry (removed afterwards)."""
    site = tmp_path_factory.mktemp("example_plugin_site")
    info = site / "ganzoo_example_plugin-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ganzoo-example-plugin\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in eps.items())
            for group, eps in PLUGIN_ENTRY_POINTS.items()
        )
    )
    paths = [str(site), str(PLUGIN / "src")]
    sys.path[:0] = paths
    registry.refresh()
    yield
    for path in paths:
        sys.path.remove(path)
    for module in [m for m in sys.modules if m.split(".")[0] == "ganzoo_example_plugin"]:
        del sys.modules[module]
    registry.refresh()


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny tensors: one intra-op thread is faster than two on 2 busy cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def entry(request: pytest.FixtureRequest, kind: str, name: str) -> registry.Entry:
    """The registry entry of ``name``, making the example plugin visible when it is one of its."""
    if name in plugin_names(kind):
        request.getfixturevalue("example_plugin")
        found = registry.get(kind, name)
        assert found.is_plugin and "ganzoo-example-plugin" in found.origin
        return found
    return registry.get(kind, name)


def create(kind: str, name: str, *args, **params) -> object:
    torch.manual_seed(0)
    return registry.create(kind, name, *args, **params)


def declared_sizes(net: nn.Module) -> tuple[int, int]:
    """(size_divisor, min_side), each a positive int (1 where not declared)."""
    divisor, min_side = getattr(net, "size_divisor", 1), getattr(net, "min_side", 1)
    assert isinstance(divisor, int) and divisor >= 1, divisor
    assert isinstance(min_side, int) and min_side >= 1, min_side
    return divisor, min_side


def smallest_side(net: nn.Module, at_least: int) -> int:
    """The smallest side >= ``at_least`` that ``net`` declares it takes."""
    divisor, min_side = declared_sizes(net)
    return math.ceil(max(min_side, at_least) / divisor) * divisor


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# -- generators --------------------------------------------------------------------------------
#: The smallest configuration of each built-in that still has every kind of layer (one block
#: per stage, width 2-4); a plugin not listed here is tested at its defaults.
SMALL_GENERATORS: dict[str, dict] = {
    "lines2face": {"ngf": 2, "n_blocks": 1, "dilation": 1},
    "mru": {"depth": 2, "ngf": 4, "max_channels": 8},
    "pix2pixhd_global": {"ngf": 4, "n_downsample": 2, "n_blocks": 1},
    "pix2pixhd_local": {
        "ngf": 2,
        "n_downsample_global": 2,
        "n_blocks_global": 1,
        "n_blocks_local": 1,
    },
    "resnet": {"ngf": 4, "n_blocks": 1},
    "resnet_6blocks": {"ngf": 2},
    "resnet_9blocks": {"ngf": 2},
    "spade": {"ngf": 1, "nhidden": 4, "num_upsampling_layers": "normal"},
    "unet": {"ngf": 4, "num_downs": 5},
    "unet_128": {"ngf": 1},  # fixed depth: 128 x 128 is its smallest input
    "unet_256": {"ngf": 1},  # fixed depth: 256 x 256 is its smallest input
    "example_resnet_small": {"ngf": 4, "n_blocks": 1},
}
IN, OUT = 2, 3  # different channel counts, so a swapped pair of arguments shows


def with_image_size(entry: registry.Entry, params: dict, side: int) -> dict:
    accepted = {p.name for p in entry.parameters()}
    return {**params, "image_size": side} if "image_size" in accepted else params


@pytest.mark.parametrize("name", names("generator"))
def test_generator_builds_on_meta_at_its_defaults(request, name: str) -> None:
    e = entry(request, "generator", name)
    with torch.device("meta"):
        net = create("generator", name, IN, OUT)
        side = smallest_side(net, 256)
        net = create("generator", name, IN, OUT, **with_image_size(e, {}, side))
        assert isinstance(net, nn.Module) and n_params(net) > 0
        out = net(torch.zeros(1, IN, side, side, device="meta"))
    assert out.shape == (1, OUT, side, side)


@pytest.mark.parametrize("name", names("generator"))
def test_generator_output_shape_and_range_at_its_declared_size(request, name: str) -> None:
    e = entry(request, "generator", name)
    params = SMALL_GENERATORS.get(name, {})
    with torch.device("meta"):
        side = smallest_side(create("generator", name, IN, OUT, **params), 32)
    net = create("generator", name, IN, OUT, **with_image_size(e, params, side))
    divisor = declared_sizes(net)[0]
    torch.manual_seed(1)
    x = torch.rand(2, IN, side, side + divisor) * 2 - 1  # each side checked on its own
    x[1] *= 50  # far outside [-1, 1]: the output must still be bounded
    for mode, batch in ((True, x), (False, x), (False, x[:1, :, :, :side])):
        with torch.no_grad():
            y = net.train(mode)(batch)
        assert y.shape == (len(batch), OUT, *batch.shape[-2:])
        assert torch.isfinite(y).all() and y.min() >= -1 and y.max() <= 1, (y.min(), y.max())
    try:  # one image in train mode (batch_size 1) works, or is a one-line error that says why
        with torch.no_grad():
            assert net.train()(x[:1, :, :, :side]).shape == (1, OUT, side, side)
    except GanzooError as exc:
        assert "\n" not in str(exc)


# -- discriminators ----------------------------------------------------------------------------
SMALL_DISCRIMINATORS: dict[str, dict] = {
    "multidepth": {"ndf": 1, "branches": 2, "image_size": 64},
    "multiscale": {"num_d": 2, "n_layers": 2, "ndf": 2, "image_size": 32},
    "patchgan": {"n_layers": 2, "ndf": 2, "image_size": 32},
    "pixel": {"ndf": 2, "image_size": 32},
    "unet": {"ndf": 2, "depth": 3},
    "example_dilated": {"ndf": 4},
}
PAIR = 6  # a discriminator sees (condition, image) concatenated


def check_branches(out: object, batch: int) -> None:
    assert isinstance(out, list | tuple) and len(out) > 0, type(out)
    for branch in out:
        assert isinstance(branch, list | tuple) and len(branch) > 0, type(branch)
        for feature in branch:
            assert isinstance(feature, torch.Tensor) and feature.dim() == 4, feature
            assert feature.shape[0] == batch
        assert branch[-1].shape[1] == 1, branch[-1].shape  # the logits end the branch


@pytest.mark.parametrize("name", names("discriminator"))
def test_discriminator_builds_on_meta_at_its_defaults(request, name: str) -> None:
    entry(request, "discriminator", name)
    with torch.device("meta"):
        net = create("discriminator", name, PAIR)
        side = smallest_side(net, 256)
        assert n_params(net) > 0
        out = net(torch.zeros(1, PAIR, side, side, device="meta"))
    check_branches(out, 1)
    assert getattr(net, "branch_reduction", "mean") in ("mean", "sum")


@pytest.mark.parametrize("name", names("discriminator"))
def test_discriminator_returns_branches_of_features_ending_in_logits(request, name: str) -> None:
    entry(request, "discriminator", name)
    params = SMALL_DISCRIMINATORS.get(name, {})
    net = create("discriminator", name, PAIR, **params)
    side = smallest_side(net, params.get("image_size", 32))
    x = torch.rand(2, PAIR, side, side + declared_sizes(net)[0]) * 2 - 1
    out = net(x)
    check_branches(out, 2)
    for branch in out:
        assert all(torch.isfinite(f).all() for f in branch)
    sum(branch[-1].mean() for branch in out).backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


# -- attention ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", names("attention"))
def test_attention_is_exactly_the_identity_at_init(request, name: str) -> None:
    entry(request, "attention", name)
    block = create("attention", name, 16)
    torch.manual_seed(1)
    x = torch.randn(2, 16, 8, 6)
    condition = torch.rand(2, 3, 32, 24) * 2 - 1
    with torch.no_grad():
        assert torch.equal(block(x), x)
        assert torch.equal(block(x, condition), x)
        assert torch.equal(block(x, condition[..., :8, :6]), x)


# -- objectives --------------------------------------------------------------------------------
def _logits(*sides: int) -> list[list[torch.Tensor]]:
    """Two-branch discriminator output: one feature map and the logits per branch."""
    return [[torch.randn(2, 4, s, s), torch.randn(2, 1, s, s) * 3] for s in sides]


@pytest.mark.parametrize("name", names("objective"))
def test_objective_losses_are_finite_on_random_logits(request, name: str) -> None:
    from ganzoo.losses import discriminator_terms, generator_gan_loss

    entry(request, "objective", name)
    objective = create("objective", name)
    torch.manual_seed(1)
    real, fake = _logits(8, 3), _logits(8, 3)
    fake[0][-1].requires_grad_(True)
    for reduction in ("mean", "sum"):
        terms = discriminator_terms(objective, real, fake, reduction)
        g = generator_gan_loss(objective, fake, reduction)
        for loss in (*terms, g):
            assert loss.dim() == 0 and loss.dtype == torch.float32 and torch.isfinite(loss)
    for logits in (real[0][-1], fake[1][-1].half()):
        for loss in (
            objective.real_loss(logits),
            objective.fake_loss(logits),
            objective.g_loss(logits),
        ):
            assert loss.dim() == 0 and torch.isfinite(loss)
    assert objective.d_scale > 0 and math.isfinite(objective.threshold)
    if objective.needs_penalty:
        critic = nn.Conv2d(PAIR, 1, 3, padding=1)
        pairs = torch.rand(2, PAIR, 8, 8) * 2 - 1

        def discriminator(x: torch.Tensor) -> list[list[torch.Tensor]]:
            return [[critic(x)]]

        penalty = objective.penalty(discriminator, pairs, -pairs)
        assert penalty.dim() == 0 and torch.isfinite(penalty) and penalty.requires_grad


# -- datasets ----------------------------------------------------------------------------------
def _aligned(root: Path, pairs: list[Image.Image]) -> None:
    (root / "train").mkdir(parents=True)
    for i, pair in enumerate(pairs):
        pair.save(root / "train" / f"{i}.png")


def _paired_folders(root: Path, pairs: list[Image.Image]) -> None:
    for side in ("A", "B"):
        (root / "train" / side).mkdir(parents=True)
    for i, pair in enumerate(pairs):
        w, h = pair.size
        pair.crop((0, 0, w // 2, h)).save(root / "train" / "A" / f"{i}.png")
        pair.crop((w // 2, 0, w, h)).save(root / "train" / "B" / f"{i}.png")


#: dataset name -> writes its layout of the given A|B pairs under a root.
LAYOUTS = {"aligned": _aligned, "paired_folders": _paired_folders}


@pytest.mark.parametrize(("in_channels", "out_channels"), [(3, 3), (1, 3)])
@pytest.mark.parametrize("name", names("dataset"))
def test_dataset_items_have_the_declared_shapes(
    request, tmp_path: Path, name: str, in_channels: int, out_channels: int
) -> None:
    from ganzoo.data import build_dataset

    entry(request, "dataset", name)
    if name not in LAYOUTS:
        pytest.skip(f"no folder layout known for dataset '{name}'; add one to LAYOUTS")
    rng = np.random.default_rng(0)
    LAYOUTS[name](tmp_path, [make_pair(rng, 32) for _ in range(3)])
    source = create("dataset", name, tmp_path, "train", in_channels, out_channels)
    assert len(source) == 3
    for i in range(len(source)):
        a, b = source.load(i)
        assert a.shape == (in_channels, 32, 32) and b.shape == (out_channels, 32, 32)
        assert a.dtype == b.dtype == torch.uint8
        assert source.size(i) == (32, 32) and isinstance(source.path(i), str)
    sets = [f"data.name={name}", f"data.in_channels={in_channels}"]
    data = tiny_recipe(tmp_path, *sets, f"data.out_channels={out_channels}").data
    items = build_dataset(data, "train", train=True, seed=0)
    item = items[0]
    assert item["A"].shape == (in_channels, 32, 32) and item["B"].shape == (out_channels, 32, 32)
    for side in ("A", "B"):
        assert item[side].dtype == torch.float32
        assert item[side].min() >= -1 and item[side].max() <= 1


# -- a saved model, three ways -----------------------------------------------------------------
def test_checkpoint_safetensors_and_hub_folder_give_identical_outputs(
    tiny_data: Path, tmp_path: Path
) -> None:
    """Checkpoint -> safetensors (exported from the checkpoint file) -> Hub folder (exported
    from the safetensors file): each, loaded, gives bit-identical outputs and weights."""
    from ganzoo.artifacts.hub import export_hub_folder
    from ganzoo.artifacts.loading import load_generator
    from ganzoo.evaluation.export import export_generator

    run = train_tiny_run(tiny_data, tmp_path)
    checkpoint = sorted((run / "checkpoints").glob("step_*.pt"))[-1]
    safetensors = export_generator(checkpoint, "safetensors", out=tmp_path / "g.safetensors").path
    hub = export_hub_folder(safetensors, tmp_path / "hub")
    loaded = [load_generator(source) for source in (checkpoint, safetensors, hub)]
    assert [info.kind for _, _, info in loaded][1:] == ["safetensors", "safetensors"]
    assert all(info.ema and info.step == 3 for _, _, info in loaded)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        outputs = [net(x) for net, _, _ in loaded]
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])
    states = [net.state_dict() for net, _, _ in loaded]
    for state in states[1:]:
        assert state.keys() == states[0].keys()
        assert all(torch.equal(state[k], states[0][k]) for k in state)
    recipes = [recipe.to_dict() for _, recipe, _ in loaded]
    assert recipes[1] == recipes[0] and recipes[2] == recipes[0]


# -- the builder finishes every network, plugins included ---------------------------------------
def test_a_plugin_network_without_init_code_gets_init_spectral_norm_and_attention(
    request, tmp_path: Path
) -> None:
    """The example plugin's networks hold no init code and no finishing parameters: the
    builder gives them the recipe's init, spectral norm and attention (ganzoo.build)."""
    g = entry(request, "generator", "example_resnet_small")
    d = entry(request, "discriminator", "example_dilated")
    defaults = {p.name: p.default for p in g.parameters()}
    assert defaults["init"] == "normal" and defaults["init_gain"] == 0.02
    assert defaults["spectral_norm"] is False and defaults["attention"] is None
    assert "attention" not in {p.name for p in d.parameters()}  # it has no attention slots

    attention = [{"block": "self_attention", "resolution": 8}]
    recipe = tiny_recipe(
        tmp_path,
        "generator={name: example_resnet_small, ngf: 4, n_blocks: 1, init_gain: 0.5, "
        f"spectral_norm: true, attention: {attention}}}",
        "discriminator={name: example_dilated, ndf: 4, spectral_norm: true}",
    )
    torch.manual_seed(0)
    net = build_generator(recipe)  # the recipe's keys, taken out before the class is called
    critic = build_discriminator(recipe)
    for built in (net, critic):
        convs = [m for m in built.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
        assert convs and all(parametrize.is_parametrized(c, "weight") for c in convs)
        assert all(c.bias is None or not c.bias.any() for c in convs)  # pix2pix: biases 0
    weights = torch.cat(
        [
            m.parametrizations.weight.original.flatten()
            for m in net.modules()
            if hasattr(m, "parametrizations")
        ]
    )
    assert 0.4 < float(weights.detach().std()) < 0.6  # N(0, 0.5), not PyTorch's default uniform
    blocks = [m for m in net.modules() if type(m).__name__ == "SelfAttention"]
    assert len(blocks) == 1 and blocks[0].query.in_channels == 16  # the trunk: H/4, 4 ngf
    out = net(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert out.shape == (2, 3, 32, 32)
    with pytest.raises(GanzooError, match="attention at resolution 4 fits no layer"):
        registry.create(
            "generator",
            "example_resnet_small",
            3,
            3,
            ngf=4,
            n_blocks=1,
            image_size=32,
            attention=[{"block": "self_attention", "resolution": 4}],
        )
