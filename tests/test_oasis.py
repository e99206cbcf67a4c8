"""The OASIS discriminator and loss (Sushko, Schönfeld et al., ICLR 2021) as boschresearch/OASIS
builds them (commit 307c852: models/discriminator.py, models/losses.py, models/models.py,
config.py): layers and counts, the N + 1 class-balanced cross-entropy, LabelMix, the recipe,
resume, and a D that learns to segment."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, tiny_recipe
from PIL import Image
from torch import nn
from torch.nn.utils import parametrize

from ganzoo import registry
from ganzoo.build import build_terms, check_recipe
from ganzoo.discriminators.oasis import OASISDiscriminator
from ganzoo.errors import GanzooError
from ganzoo.losses.oasis import (
    OasisLoss,
    class_weights,
    labelmix_loss,
    labelmix_mask,
    n1_loss,
    n1_targets,
)
from ganzoo.losses.terms import DView, GView
from ganzoo.recipe import load_recipe
from ganzoo.training.trainer import Trainer, train

RECIPE = ROOT / "recipes" / "oasis_labels.yaml"


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def block(fin: int, fout: int) -> int:
    """residual_block_D: conv1 3x3 fin->fout, conv2 3x3 fout->fout, 1x1 shortcut where the
    width changes; every conv biased."""
    shortcut = fin * fout + fout if fin != fout else 0
    return 9 * fin * fout + fout + 9 * fout * fout + fout + shortcut


# -- published structure ------------------------------------------------------------------------
def test_the_default_discriminator_has_the_authors_layers_and_count() -> None:
    # OASIS_Discriminator: channels [3, 128, 128, 256, 256, 512, 512], num_res_blocks 6;
    # decoder body_up[0] 512 -> 512, then 2 * channels[-1-i] -> channels[-2-i], last 256 -> 64;
    # layer_up_last 1x1 64 -> semantic_nc + 1 (ADE20K: 151 + 1)
    down = [(3, 128), (128, 128), (128, 256), (256, 256), (256, 512), (512, 512)]
    up = [(512, 512), (1024, 256), (512, 256), (512, 128), (256, 128), (256, 64)]
    assert [block(*b) for b in down] == [151_680, 295_168, 918_272, 1_180_160, 3_671_552, 4_719_616]
    assert [block(*b) for b in up] == [4_719_616, 3_212_032, 1_901_312, 803_200, 475_520, 200_896]
    assert sum(block(*b) for b in down + up) + 64 * 152 + 152 == 22_258_904
    with torch.device("meta"):
        d = registry.create("discriminator", "oasis", 151 + 3)  # the ADE20K pair
        out = d(torch.zeros(1, 154, 256, 256, device="meta"))
    assert count(d) == 22_258_904
    assert d.logit_channels == 152 and d.size_divisor == d.min_side == 64
    for blk, (fin, fout) in zip([*d.body_down, *d.body_up], down + up):
        assert blk.conv1[-1].in_channels == fin and blk.conv2[-1].out_channels == fout
        assert (blk.conv_s is None) == (fin == fout)
    assert [type(m).__name__.removeprefix("Parametrized") for m in d.body_down[0].conv1] == [
        "Conv2d"
    ]  # first: no act.
    assert [type(m).__name__.removeprefix("Parametrized") for m in d.body_down[1].conv1] == [
        "LeakyReLU",
        "Conv2d",
    ]
    assert [type(m).__name__.removeprefix("Parametrized") for m in d.body_up[0].conv1] == [
        "LeakyReLU",
        "Upsample",
        "Conv2d",
    ]
    (branch,) = out
    sides = [f.shape[-1] for f in branch]
    assert sides == [128, 64, 32, 16, 8, 4, 8, 16, 32, 64, 128, 256, 256]
    assert [f.shape[1] for f in branch] == [128, 128, 256, 256, 512, 512] + [
        512, 256, 256, 128, 128, 64, 152,
    ]  # fmt: skip


def test_spectral_norm_everywhere_but_the_logits_and_xavier_init() -> None:
    torch.manual_seed(0)
    d = registry.create("discriminator", "oasis", 4 + 3, ndf=8, n_blocks=3)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert all(parametrize.is_parametrized(c, "weight") for c in convs[:-1])
    assert convs[-1] is d.layer_up_last and not parametrize.is_parametrized(convs[-1])
    assert all(not c.bias.any() for c in convs)  # init_networks: biases 0
    w = d.body_up[0].conv2[1].parametrizations.weight.original  # xavier_normal gain 0.02
    expected = 0.02 * math.sqrt(2.0 / (2 * 9 * w.shape[0]))
    assert 0.8 * expected < float(w.detach().std()) < 1.2 * expected
    keys = set(d.state_dict())  # the source's module names
    assert {"body_down.0.conv1.0.bias", "body_up.0.conv1.2.bias", "layer_up_last.weight"} <= keys


def test_d_reads_the_image_only() -> None:
    torch.manual_seed(0)
    d = OASISDiscriminator(5 + 3, ndf=4, n_blocks=2).eval()
    x = torch.rand(2, 8, 16, 16) * 2 - 1
    y = x.clone()
    y[:, :5] = torch.rand(2, 5, 16, 16)  # another condition, the same image
    with torch.no_grad():
        assert torch.equal(d(x)[0][-1], d(y)[0][-1])
    assert d(x)[0][-1].shape == (2, 6, 16, 16)


# -- the loss against hand computations -----------------------------------------------------------
def onehot(ids: torch.Tensor, k: int) -> torch.Tensor:
    """(N, H, W) ids -> (N, k, H, W) one-hot; ids >= k give an all-zero column."""
    return (torch.arange(k)[None, :, None, None] == ids[:, None]).float()


def test_class_balanced_weights_by_hand() -> None:
    ids = torch.tensor([[[0, 0, 0], [1, 1, 2]]])  # 1x2x3: counts 3, 2, 1 of classes 0, 1, 2
    labels = onehot(ids, 4)  # class 3 absent
    # get_class_balancing: w_c = numel(label) / (n_present * K) / count_c = (N H W) / (3 count_c)
    w = class_weights(labels)
    expected = torch.tensor([[[6 / 9, 6 / 9, 6 / 9], [6 / 6, 6 / 6, 6 / 3]]])
    torch.testing.assert_close(w, expected)
    # contain_dontcare_label: the don't-care class weighs 0 and is not counted present (2 left)
    w = class_weights(labels, dontcare=[0])
    torch.testing.assert_close(w, torch.tensor([[[0.0, 0, 0], [6 / 4, 6 / 4, 6 / 2]]]))
    # a pixel of no class (ignore id without its channel) weighs 0; it still counts in N H W
    ids[0, 0, 0] = 9
    w = class_weights(onehot(ids, 4))
    torch.testing.assert_close(w, torch.tensor([[[0, 6 / 6, 6 / 6], [6 / 6, 6 / 6, 6 / 3]]]))
    # --no_balancing_inloss: ones (classless pixels still 0)
    assert class_weights(onehot(ids, 4), balance=False).tolist() == [[[0, 1, 1], [1, 1, 1]]]


def test_n1_targets_and_cross_entropy_by_hand() -> None:
    ids = torch.tensor([[[0, 2], [1, 1]]])
    labels = onehot(ids, 3)
    assert n1_targets(labels, True).tolist() == [[[1, 3], [2, 2]]]  # class + 1
    assert n1_targets(labels, False).tolist() == [[[0, 0], [0, 0]]]  # "fake"
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 2, 2)
    logp = logits.log_softmax(1)
    w = class_weights(labels)  # counts 1, 2, 1 -> 4 / (3 * count)
    real = -(logp[0, 1, 0, 0] * 4 / 3 + logp[0, 3, 0, 1] * 4 / 3 + 2 * logp[0, 2, 1].sum() / 3) / 4
    torch.testing.assert_close(n1_loss(logits, labels, True, w), real)
    torch.testing.assert_close(n1_loss(logits, labels, False), -logp[0, 0].mean())


def test_labelmix_mask_draws_one_coin_per_class() -> None:
    ids = torch.tensor([[[0, 0, 1, 1], [2, 2, 3, 9]], [[3, 3, 2, 2], [1, 0, 0, 9]]])
    labels = onehot(ids, 4)
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        mask = labelmix_mask(labels)
        assert mask.shape == (2, 1, 2, 4) and set(mask.unique().tolist()) <= {0.0, 1.0}
        for c in (0, 1, 2, 3, 9):  # every pixel of a class (in every image) draws alike
            assert len(mask[:, 0][ids == c].unique()) == 1
        seen.add(tuple(float(mask[:, 0][ids == c][0]) for c in range(4)))
    assert len(seen) > 4  # the classes draw independently
    torch.manual_seed(7)  # by hand: coins for classes 0..3 and the classless pixels, in order
    coins = torch.randint(0, 2, (5,)).float()
    torch.manual_seed(7)
    expected = coins[torch.where(ids < 4, ids, 4)].unsqueeze(1)
    assert torch.equal(labelmix_mask(labels), expected)


def test_labelmix_loss_and_mixed_input_by_hand() -> None:
    torch.manual_seed(0)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    real, fake, mixed = (torch.randn(1, 3, 2, 2) for _ in range(3))
    target = torch.where(mask.bool(), real, fake)
    torch.testing.assert_close(
        labelmix_loss(mask, mixed, real, fake), (mixed - target).pow(2).mean()
    )

    # the D term: D is called once more, on M * real + (1 - M) * fake, under autocast
    labels = onehot(torch.tensor([[[0, 1], [1, 0]]]), 2)
    real_pairs, fake_pairs = torch.rand(1, 5, 2, 2), torch.rand(1, 5, 2, 2)
    seen = []

    def discriminator(x: torch.Tensor) -> list[list[torch.Tensor]]:
        seen.append(x)
        return [[x[:, :3] * 2]]

    out = [[torch.randn(1, 3, 2, 2)]], [[torch.randn(1, 3, 2, 2)]]
    view = DView(0, discriminator, _null, None,
                 real_pairs, fake_pairs, *out, labels)  # fmt: skip
    torch.manual_seed(3)
    expected_mask = labelmix_mask(labels)
    torch.manual_seed(3)
    losses = OasisLoss(labelmix=10).d_loss(view)
    mixed_in = expected_mask * real_pairs + (1 - expected_mask) * fake_pairs
    torch.testing.assert_close(seen[0], mixed_in)
    want = 10 * labelmix_loss(expected_mask, mixed_in[:, :3] * 2, out[0][0][-1], out[1][0][-1])
    torch.testing.assert_close(losses["labelmix"], want)
    assert set(losses) == {"real", "fake", "labelmix"}
    assert set(OasisLoss(labelmix=0).d_loss(view)) == {"real", "fake"}


def _null():  # noqa: ANN202 - a context manager factory
    import contextlib

    return contextlib.nullcontext()


def test_the_generator_gets_the_gradient_of_the_balanced_loss() -> None:
    torch.manual_seed(0)
    g = nn.Conv2d(4, 3, 3, padding=1)
    d = OASISDiscriminator(4 + 3, ndf=4, n_blocks=2)
    d.requires_grad_(False)
    labels = onehot(torch.randint(0, 4, (2, 16, 16)), 4)
    fake = torch.tanh(g(labels))
    pairs = torch.cat([labels, fake], 1)
    out = d(pairs)
    view = GView(0, d, _null, None, pairs, pairs, out, fake, labels)
    losses = OasisLoss().g_loss(view)
    assert set(losses) == {"gan"}
    losses["gan"].backward()
    assert g.weight.grad is not None and g.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in d.parameters())


# -- the recipe and the trainer --------------------------------------------------------------------
def test_the_recipe_has_the_authors_options() -> None:
    r = load_recipe(RECIPE)
    check_recipe(r)  # G and D on the meta device at 256x256, the terms built
    d = r.discriminator.params
    assert r.discriminator.name == "oasis" and r.generator.name == "spade"
    assert (d["ndf"], d["n_blocks"], d["labelmix"], d["dontcare_class"]) == (64, 6, 10.0, 0)
    assert d["spectral_norm"] is True and (d["init"], d["init_gain"]) == ("xavier", 0.02)
    # config.py: lr_g 1e-4, lr_d 4e-4, beta1 0, beta2 0.999; EMA 0.9999 (ade20k); 200 epochs;
    # train_ade20k.sh: batch 32; no VGG (add_vgg_loss off), no feature matching
    o = r.optim
    assert (o.lr_g, o.lr_d, tuple(o.betas), o.ema_decay) == (1e-4, 4e-4, (0.0, 0.999), 0.9999)
    assert (r.data.batch_size, r.schedule.epochs, r.optim.pool_size) == (32, 200, 0)
    assert (r.loss.l1, r.loss.feature_matching, r.loss.perceptual) == (0, 0, 0)
    with torch.device("meta"):
        (term,) = build_terms(r, _meta_d(r))
    assert isinstance(term, OasisLoss) and term.dontcare == (0,) and term.labelmix == 10


def _meta_d(recipe):  # noqa: ANN001, ANN202
    return registry.create(
        "discriminator",
        "oasis",
        recipe.data.in_channels + recipe.data.out_channels,
        **{**recipe.discriminator.params, "spectral_norm": False},
    )


def test_a_label_recipe_switches_to_the_oasis_d_with_one_setting() -> None:
    # --set / ablation --vary keep the parameters the new D takes: spectral_norm 'hidden' too
    recipe = load_recipe(ROOT / "recipes" / "spade_labels.yaml", ["discriminator.name=oasis"])
    check_recipe(recipe)
    assert recipe.discriminator.params["spectral_norm"] == "hidden"


def write_label_set(root: Path, n: int = 8, side: int = 32) -> Path:
    """split/A/*.png: 4 classes in 8x8 blocks (ids 0-3); split/B/*.png: each class's colour,
    with a little noise."""
    palette = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [230, 230, 40]], np.float32)
    rng = np.random.default_rng(0)
    for split, count_ in (("train", n), ("val", 4)):
        for sub in ("A", "B"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        for i in range(count_):
            ids = rng.integers(0, 4, (side // 8, side // 8)).repeat(8, 0).repeat(8, 1)
            photo = palette[ids] + rng.normal(0, 10, (side, side, 3))
            Image.fromarray(ids.astype(np.uint8), "L").save(root / split / "A" / f"{i}.png")
            Image.fromarray(photo.clip(0, 255).astype(np.uint8)).save(
                root / split / "B" / f"{i}.png"
            )
    return root


@pytest.fixture(scope="module")
def label_set(tmp_path_factory) -> Path:
    return write_label_set(tmp_path_factory.mktemp("oasis_labels"))


def oasis_recipe(root: Path, *overrides: str):  # noqa: ANN201
    return tiny_recipe(
        root,
        "data.name=paired_folders",
        "data.labels={num_classes: 4, ignore_index: 255}",
        "data.load_size=32",
        "discriminator={name: oasis, ndf: 4, n_blocks: 3}",
        "loss.l1=0",
        "optim.betas=[0.0, 0.999]",
        *overrides,
    )


def test_a_recipe_without_labels_is_refused_in_one_line(tiny_data: Path) -> None:
    recipe = tiny_recipe(tiny_data, "discriminator={name: oasis, ndf: 2, n_blocks: 2}")
    with pytest.raises(GanzooError, match="discriminator oasis needs label maps: add data.labels"):
        check_recipe(recipe)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.pool_size=4"], "set optim.pool_size: 0 or discriminator.labelmix: 0"),
        (["discriminator.label_channels=5"], "set discriminator.label_channels: 4"),
        (["discriminator.dontcare_class=4"], "dontcare_class 4 is not a class"),
        (  # the instance-edge channel is no class: D must be told the label map's channels
            ["data.labels={num_classes: 4, instance: true}"],
            "reads 5 label .* has 4 .* set discriminator.label_channels: 4",
        ),
    ],
)
def test_recipes_the_loss_cannot_serve_are_refused(
    label_set: Path, overrides: list[str], message: str
) -> None:
    with pytest.raises(GanzooError, match=message) as err:
        check_recipe(oasis_recipe(label_set, *overrides))
    assert "\n" not in str(err.value)


def test_what_the_loss_can_serve_builds(label_set: Path) -> None:
    check_recipe(oasis_recipe(label_set, "optim.pool_size=4", "discriminator.labelmix=0"))
    # SPADE's don't-care channel (after the classes) weighs 0 like dontcare_class
    with_channel = oasis_recipe(
        label_set,
        "data.labels={num_classes: 4, dontcare_channel: true}",
        "discriminator.dontcare_class=0",
    )
    (term,) = build_terms(with_channel, _meta_d(with_channel))
    assert term.dontcare == (0, 4)
    edges = oasis_recipe(
        label_set, "data.labels={num_classes: 4, instance: true}", "discriminator.label_channels=4"
    )
    check_recipe(edges)


def test_the_step_logs_the_oasis_terms_and_resumes_exactly(label_set: Path, tmp_path: Path) -> None:
    common = ("train.checkpoint_every=2", "train.log_every=1")
    whole, _ = train(
        oasis_recipe(label_set, "train.max_steps=4", *common),
        run_dir=tmp_path / "w",
        progress=False,
    )
    train(
        oasis_recipe(label_set, "train.max_steps=2", *common),
        run_dir=tmp_path / "s",
        progress=False,
    )
    resumed, _ = train(
        run_dir=tmp_path / "s", resume=True, overrides=["train.max_steps=4"], progress=False
    )
    for a, b in (
        (whole.state.d_module, resumed.state.d_module),
        (whole.state.g_module, resumed.state.g_module),
    ):
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    logged = (tmp_path / "w" / "metrics.jsonl").read_text()
    for key in ("loss_d_real", "loss_d_fake", "loss_d_labelmix", "loss_g_gan"):
        assert key in logged


# LabelMix starts at ~0 (an untrained D is consistent by being uniform) and grows as D learns:
# the divergence warning is expected in the first steps
@pytest.mark.filterwarnings("ignore:loss_d_labelmix is diverging")
def test_a_tiny_oasis_d_learns_to_segment_real_images(label_set: Path, tmp_path: Path) -> None:
    recipe = oasis_recipe(
        label_set, "train.max_steps=160", "optim.lr_d=0.0004", "data.batch_size=4",
        "data.flip=false", "train.val_batches=1", "optim.train_only.generator=[]",
    )  # fmt: skip
    # G held fixed (its losses still computed): D's own learning, not a race with G. 160 steps,
    # not 80: at 80 the CE ended anywhere in 0.12-0.85 over seeds 0-3, thread counts and the
    # rounding order of the small convolutions' matrix multiplies; at 160, 0.11-0.70
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    d = trainer.state.d_module

    def accuracy_and_loss() -> tuple[float, float]:
        d.eval()
        accs, losses = [], []
        with torch.no_grad():
            for batch in trainer.val_batches.epoch(0, 0):
                a, b = batch["A"].float(), batch["B"].float()
                logits = d(torch.cat([a, b], 1))[0][-1]
                labels = a[:, :4]
                losses.append(float(n1_loss(logits, labels, True, class_weights(labels))))
                accs.append(float((logits.argmax(1) == n1_targets(labels, True)).float().mean()))
        d.train()
        return float(np.mean(accs)), float(np.mean(losses))

    acc0, loss0 = accuracy_and_loss()
    trainer.fit()
    acc1, loss1 = accuracy_and_loss()
    assert loss1 < 0.5 * loss0, (loss0, loss1)  # the real-image CE: 1.61 -> 0.11-0.20 (2 threads)
    assert acc1 > 0.8 > acc0, (acc0, acc1)  # pixel accuracy 0.24 -> 0.96-1.0
