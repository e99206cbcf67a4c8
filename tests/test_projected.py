"""The discriminators on a frozen pretrained network: projected (Projected GAN) and
vision_aided (Vision-aided GAN).

Parameter counts computed from the authors' code (autonomousvision/projected-gan
pg_modules/{projector,discriminator,blocks}.py at 4924c66 / 3eda338 / 4304b87; nupurkmr9/
vision-aided-gan vision_aided_loss/cv_discriminator.py at f200140), unconditional:

projected, fastgan config (cout 64, expand, proj_type 2, num_discs 4, separable False):
  CCM 1x1 convs 24->64, 40->128, 112->256, 320->512 (+bias)      200,128  } frozen random
  CSM out_convs 512->256, 256->128, 128->64, 64->64 (+bias)      176,640  } projection
  head 0 (64 ch at nominal 128): DownBlocks 64->64->128->256->512 + 4x4 conv 512->1
      = 65,728 + 131,456 + 525,056 + 2,098,688 + 8,192          2,829,120
  head 1 (64 ch at 64): 131,456 + 525,056 + 2,098,688 + 8,192    2,763,392
  head 2 (128 ch at 32): 525,056 + 2,098,688 + 8,192             2,631,936
  head 3 (256 ch at 16): 2,098,688 + 8,192                       2,106,880
  trainable heads                                               10,331,328
  frozen tf_efficientnet_lite0 conv_stem .. blocks[6] (timm 1.0)  2,958,848
vision_aided (MultiLevelDViT / SimpleD):
  clip: 2 x (3x3 768->256 + 1x1 256->1) + 512->256 + 256->1       3,671,555
  dino: 2 x (3x3 768->128 + 1x1 128->1) + 768->128 + 128->1       1,868,547
  swin: 3x3 768->256 + linear 2304->256 + 256->1                  2,360,065
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_pair, tiny_recipe

from ganzoo import registry
from ganzoo.errors import GanzooError, RegistryError

timm = pytest.importorskip("timm")

from ganzoo.nn.frozen_backbone import BackboneError  # noqa: E402

#: The smallest projected D: every kind of layer, widths 4, the backbone at 128 x 128.
SMALL = {"pretrained": False, "cout": 4, "ndf": 4, "backbone_size": 128, "head_resolution": 128}
#: The smallest vision-aided D: DINO's reading of timm's ViT-Tiny.
SMALL_VA = {"pretrained": False, "backbone": "dino", "model": "vit_tiny_patch16_224"}


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def count(tensors) -> int:
    return sum(t.numel() for t in tensors)


def create(name: str, in_channels: int = 6, **params):
    torch.manual_seed(0)
    if torch.empty(0).device.type == "meta":  # spectral norm's power iterations crawl on meta
        params.setdefault("spectral_norm", False)
    return registry.create("discriminator", name, in_channels, **params)


# -- structure ---------------------------------------------------------------------------------
def test_projected_structure_and_parameter_counts_match_the_authors_code() -> None:
    with torch.device("meta"):
        d = create("projected", condition="none")
        assert count(d.parameters()) == 10_331_328
        heads = [count(h.parameters()) for h in d.heads]
        assert heads == [2_829_120, 2_763_392, 2_631_936, 2_106_880]
        assert count(d.projection.buffers()) == 376_768 == count(d.frozen_parameters()) - 2_958_848
        # DownBlocks per head and the widths they reach: upstream's channel_dict
        assert [len(h) - 1 for h in d.heads] == [4, 3, 2, 1]
        assert [h[0][0].in_channels for h in d.heads] == [64, 64, 128, 256]
        assert [h[-1].in_channels for h in d.heads] == [512] * 4
        crop256 = d(torch.zeros(1, 6, 256, 256))
        small = create("projected", condition="none", image_size=128)  # resized to 224
        crop128 = small(torch.zeros(1, 6, 128, 128))
    assert [b[-1].shape[-2:] for b in crop256] == [(5, 5)] * 4  # upstream: 5x5 at 256
    assert [b[-1].shape[-2:] for b in crop128] == [(4, 4)] * 4  # interp224: 4x4
    assert d.branch_reduction == "mean" and d.size_divisor == 32 and small.size_divisor == 1


@pytest.mark.parametrize(
    ("backbone", "trainable", "frozen", "logits"),
    [
        ("clip", 3_671_555, 87_849_728, [(3, 3), (3, 3), (1, 1)]),
        ("dino", 1_868_547, 85_798_656, [(3, 3), (3, 3), (1, 1)]),
        ("swin", 2_360_065, 27_519_354, [(1, 1)]),
    ],
)
def test_vision_aided_structure_and_parameter_counts_match_the_authors_code(
    backbone: str, trainable: int, frozen: int, logits: list
) -> None:
    with torch.device("meta"):
        d = create("vision_aided", backbone=backbone, condition="none")
        out = d(torch.zeros(1, 6, 256, 256))
    assert count(d.parameters()) == trainable
    assert count(d.frozen_parameters()) == frozen
    assert [b[-1].shape[-2:] for b in out] == logits
    assert d.branch_reduction == "sum"  # upstream's multilevel losses add the levels


def test_the_condition_enters_the_heads() -> None:
    with torch.device("meta"):
        plain = create("projected", condition="none")
        conditional = create("projected")  # 3 condition channels into each head's first conv
        gray = create("projected", 4, image_channels=1)
    extra = count(conditional.parameters()) - count(plain.parameters())
    assert extra == 3 * 16 * (64 + 128 + 256 + 512)
    assert count(gray.parameters()) == count(conditional.parameters())
    with pytest.raises(GanzooError, match="image_channels must be 1 or 3"):
        create("projected", 6, image_channels=2, pretrained=False)


def test_input_normalisation_is_the_backbones_own() -> None:
    d = create("vision_aided", **SMALL_VA)
    cfg = d.backbone.pretrained_cfg
    assert d.mean.flatten().tolist() == pytest.approx(list(cfg["mean"]))
    assert d.std.flatten().tolist() == pytest.approx(list(cfg["std"]))
    white = torch.ones(1, 3, 224, 224)  # 1 in [-1, 1] is 1.0 in [0, 1]
    expected = (1 - torch.tensor(cfg["mean"])) / torch.tensor(cfg["std"])
    assert torch.allclose(d.normalise(white, (224, 224), "area")[0, :, 0, 0], expected)
    p = create("projected", **SMALL)  # EfficientNet-lite: mean = std = 0.5, so [-1, 1] as is
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    assert torch.allclose(p.normalise(x, None, "bilinear"), x)


# -- frozen, never saved, the gradient path ----------------------------------------------------
@pytest.mark.parametrize(("name", "params"), [("projected", SMALL), ("vision_aided", SMALL_VA)])
def test_the_backbone_is_no_parameter_and_is_never_saved(name: str, params: dict) -> None:
    d = create(name, **params)
    frozen = set(d.frozen_names)
    assert frozen and not frozen & {n for n, _ in d.named_parameters()}
    assert all(not t.requires_grad for t in d.frozen_parameters())
    state = d.state_dict()
    assert not [k for k in state if k.startswith("backbone.")]
    # a rebuilt D (the backbone from the same seed) takes the state strictly and is the same
    again = create(name, **params)
    again.load_state_dict(state)
    x = torch.rand(2, 6, 32, 32) * 2 - 1
    with torch.no_grad():
        a, b = d.eval()(x), again.eval()(x)
    assert all(torch.equal(u[-1], v[-1]) for u, v in zip(a, b))
    d.train()
    assert not d.backbone.training and all(h.training for h in d.heads)


def test_real_pairs_skip_the_graph_and_fakes_keep_the_gradient_path_to_g() -> None:
    d = create("projected", **SMALL)
    real = torch.rand(2, 3, 32, 32) * 2 - 1
    assert not any(f.requires_grad for f in d.features(real))  # run under no_grad
    g = torch.nn.Conv2d(3, 3, 3, padding=1)
    fake = torch.tanh(g(real))
    out = d(torch.cat([real, fake], 1))
    (-sum(b[-1].mean() for b in out)).backward()
    assert g.weight.grad is not None and g.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in d.parameters())


# -- training through the trainer --------------------------------------------------------------
def _flat(params: dict) -> str:
    return "{" + ", ".join(f"{k}: {str(v).lower()}" for k, v in params.items()) + "}"


def test_training_keeps_the_backbone_and_resumes_exactly(tiny_data: Path, tmp_path: Path) -> None:
    from ganzoo.artifacts.checkpoint import list_checkpoints, load_checkpoint
    from ganzoo.training.trainer import Trainer, train

    d = _flat({"name": "projected", **SMALL})
    common = (f"discriminator={d}", "train.deterministic=true")
    train(
        tiny_recipe(tiny_data, "train.max_steps=4", *common), run_dir=tmp_path / "a", progress=False
    )
    train(
        tiny_recipe(tiny_data, "train.max_steps=2", *common), run_dir=tmp_path / "b", progress=False
    )
    train(
        None, run_dir=tmp_path / "b", progress=False, resume=True, overrides=["train.max_steps=4"]
    )
    a, b = (load_checkpoint(list_checkpoints(tmp_path / r / "checkpoints")[-1]) for r in "ab")
    for part in ("generator", "discriminator"):
        assert a[part].keys() == b[part].keys()
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    assert not [k for k in a["discriminator"] if k.startswith("backbone.")]
    assert any(k.startswith("projection.") for k in a["discriminator"])  # its random draw
    # the frozen weights after training are those of a freshly built backbone
    trainer = Trainer(
        tiny_recipe(tiny_data, "train.max_steps=4", *common), tmp_path / "c", progress=False
    )
    fresh = {
        n: t.clone()
        for n, t in trainer.d_module.named_buffers()
        if n in trainer.d_module.frozen_names
    }
    trainer.fit()
    after = dict(trainer.d_module.named_buffers())
    assert all(torch.equal(after[n], t) for n, t in fresh.items())
    # the optimizer may step a channels_last weight through a dense view of its memory
    trained = {
        p.untyped_storage().data_ptr()
        for group in trainer.state.opt_d.param_groups
        for p in group["params"]
    }
    assert trained == {p.untyped_storage().data_ptr() for p in trainer.d_module.heads.parameters()}
    trainer.close()


def test_vision_aided_trains_a_few_steps(tiny_data: Path, tmp_path: Path) -> None:
    from ganzoo.training.trainer import train

    d = _flat({"name": "vision_aided", **SMALL_VA})
    recipe = tiny_recipe(tiny_data, f"discriminator={d}", "train.max_steps=2", "train.log_every=1")
    train(recipe, run_dir=tmp_path / "run", progress=False)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss_d"] for r in records if "loss_d" in r]
    assert losses and all(np.isfinite(losses))


def test_the_vision_aided_warm_up_holds_d_and_g_gan_terms_at_zero(
    tiny_data: Path, tmp_path: Path
) -> None:
    """Upstream multiplies the vision-aided losses by 0 before the warm-up ends: D does not move
    (Adam from fresh moments on zero gradients) and G's GAN term is 0; from the warm-up's last
    step on, both count."""
    from ganzoo.training.trainer import Trainer, train

    d = _flat({"name": "vision_aided", **SMALL_VA, "warmup_steps": 2})
    recipe = tiny_recipe(tiny_data, f"discriminator={d}", "train.max_steps=2", "train.log_every=1")
    with Trainer(recipe, tmp_path / "init", progress=False) as fresh:
        init = {k: v.detach().clone() for k, v in fresh.state.d_module.named_parameters()}
    trainer, _ = train(recipe, run_dir=tmp_path / "run", progress=False)
    before = {k: v.detach().clone() for k, v in trainer.state.d_module.named_parameters()}
    # the warm-up left D's weights as drawn (spectral norm's power-iteration buffers move)
    assert all(torch.equal(init[k], before[k]) for k in init)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    gan = [r["loss_g_gan"] for r in records if "loss_g_gan" in r]
    assert gan == [0.0, 0.0]
    resumed, _ = train(
        run_dir=tmp_path / "run", resume=True, overrides=["train.max_steps=3"], progress=False
    )
    after = dict(resumed.state.d_module.named_parameters())
    assert any(not torch.equal(before[k], after[k]) for k in before)  # step 2 counts
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss_g_gan"] for r in records if "loss_g_gan" in r][-1] > 0


def test_a_tiny_projected_discriminator_learns_real_from_fake_pairs() -> None:
    """On toy pairs (B a fixed colour map of A's blocks), D learns to tell real pairs from
    pairs whose image has the colour map broken (channels rolled): the hinge loss falls and
    real pairs end up scored above fake ones."""
    rng = np.random.default_rng(0)
    pairs = [np.asarray(make_pair(rng, 32), np.float32) / 127.5 - 1 for _ in range(4)]
    both = torch.tensor(np.stack(pairs)).permute(0, 3, 1, 2)
    real = torch.cat([both[..., :32], both[..., 32:]], 1)
    fake = torch.cat([real[:, :3], real[:, 3:].roll(1, dims=1)], 1)
    d = create("projected", **SMALL)
    opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(20):
        opt.zero_grad()
        r = torch.stack([F.relu(1 - b[-1]).mean() for b in d(real)]).mean()
        f = torch.stack([F.relu(1 + b[-1]).mean() for b in d(fake)]).mean()
        (r + f).backward()
        opt.step()
        losses.append(float((r + f).detach()))
    assert np.mean(losses[-5:]) < np.mean(losses[:3]) - 0.2, losses
    with torch.no_grad():
        score = [sum(b[-1].mean() for b in d.eval()(pair)) for pair in (real, fake)]
    assert score[0] > score[1]


def test_vision_aided_warmup_says_when_it_counts() -> None:
    d = create("vision_aided", **SMALL_VA, warmup_steps=3)
    assert [d.active(s) for s in range(5)] == [False, False, False, True, True]
    assert create("vision_aided", **SMALL_VA).active(0)


# -- weights: the library's cache, a local file, a one-line error ------------------------------
def _save_backbone(path: Path, seed: int) -> dict[str, torch.Tensor]:
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    state = timm.create_model("tf_efficientnet_lite0").state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return state


def test_pretrained_weights_load_from_a_file_and_from_the_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    state = _save_backbone(tmp_path / "w.safetensors", seed=7)
    d = create("projected", weights=str(tmp_path / "w.safetensors"), condition="none")
    assert torch.equal(d.backbone[0][0].weight, state["conv_stem.weight"])
    # the same file in the Hugging Face cache layout, offline: found without the network
    repo = tmp_path / "hub" / "models--timm--tf_efficientnet_lite0.in1k"
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (tmp_path / "w.safetensors").rename(repo / "snapshots" / "abc123" / "model.safetensors")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    cached = create("projected", condition="none")
    assert torch.equal(cached.backbone[0][0].weight, state["conv_stem.weight"])


def test_uncached_weights_offline_are_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(BackboneError) as info:
        create("projected")
    message = str(info.value)
    assert "\n" not in message and "timm/tf_efficientnet_lite0.in1k" in message
    assert str(tmp_path / "empty") in message and "pretrained: false" in message
    with pytest.raises(BackboneError, match="does not exist"):
        create("vision_aided", weights=str(tmp_path / "missing.safetensors"))
    with pytest.raises(RegistryError, match="timm has no model 'vit_tiny_patch16_225'; did you"):
        create("vision_aided", model="vit_tiny_patch16_225", pretrained=False)


def test_without_timm_the_error_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(RegistryError, match=r"pip install 'ganzoo\[projected\]'") as info:
        create("projected", pretrained=False)
    assert "\n" not in str(info.value)


def test_show_reports_the_frozen_split(tiny_data: Path) -> None:
    from ganzoo.summary import summarize

    recipe = tiny_recipe(tiny_data, f"discriminator={_flat({'name': 'projected', **SMALL})}")
    g, d = summarize(recipe)
    built = create("projected", **SMALL)
    assert g.frozen == 0 and d.frozen == 2_958_848 + 13_228  # backbone + the cout-4 projection
    assert d.params == count(built.parameters()) and d.frozen == count(built.frozen_parameters())
    assert d.receptive_fields == [] and d.gflops > 0
