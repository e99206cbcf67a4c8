"""The U-Net discriminator (ganzoo/discriminators/unet.py) and its CutMix term
(ganzoo/discriminators/cutmix.py), checked against the authors' code (boschresearch/unetgan,
BigGAN.py ``Unet_Discriminator``, layers.py ``DBlock`` / ``GBlock2``, train_fns.py)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_recipe, train_whole_and_resumed
from torch import nn

from ganzoo import registry
from ganzoo.build import build_discriminator, build_terms, check_recipe
from ganzoo.discriminators.cutmix import (
    CutMixTerm,
    consistency_loss,
    cutmix_masks,
    mixed_pixel_loss,
)
from ganzoo.discriminators.unet import encoder_widths
from ganzoo.errors import GanzooError
from ganzoo.losses.objectives import Hinge, Vanilla, discriminator_loss
from ganzoo.losses.terms import DView
from ganzoo.training.trainer import train

UNET = "discriminator={name: unet, ndf: 4, depth: 3}"


def unet(in_channels: int = 6, **params) -> nn.Module:
    return registry.create("discriminator", "unet", in_channels, **params)


def block_params(c_in: int, c_out: int) -> int:
    """A DBlock (wide) or GBlock2: 3x3 c_in->c_out, 3x3 c_out->c_out, 1x1 c_in->c_out shortcut,
    each with a bias."""
    return 10 * c_in * c_out + 9 * c_out * c_out + 3 * c_out


# -- published structure -------------------------------------------------------------------
def test_the_authors_128_and_256_configurations_have_their_widths_and_parameter_counts() -> None:
    # D_unet_arch(ch=64)[128]: in [3, 1, 2, 4, 8, 16, 16, 8, 4, 2] x 64, out [1, 2, 4, 8, 16,
    # 8, 4, 2, 1, 1] x 64; plus the final 1x1 conv (64 -> 1), linear_middle (1024 -> 1) and
    # an unused linear (64 -> 1, 65 parameters) that ganzoo leaves out. Unconditional, RGB.
    assert encoder_widths(64, 5) == [64, 128, 256, 512, 1024]
    assert encoder_widths(64, 6) == [64, 128, 256, 512, 512, 1024]
    assert [block_params(3, 64), block_params(512, 1024), block_params(1024, 256)] == [
        38_976,
        14_683_136,
        3_212_032,
    ]
    authors_128, authors_256 = 31_481_667, 44_067_651  # their count, unused linear included
    with torch.device("meta"):
        d128 = unet(3, ndf=64, depth=5, spectral_norm=False)
        d256 = unet(3, ndf=64, depth=6, spectral_norm=False)
    assert sum(p.numel() for p in d128.parameters()) == authors_128 - 65 == 31_481_602
    assert sum(p.numel() for p in d256.parameters()) == authors_256 - 65 == 44_067_586
    ins = [b[0].conv1.in_channels for b in d128.blocks[:-1]]
    outs = [b[0].conv1.out_channels for b in d128.blocks[:-1]]
    assert ins == [3, 64, 128, 256, 512, 1024, 1024, 512, 256, 128]
    assert outs == [64, 128, 256, 512, 1024, 512, 256, 128, 64, 64]
    ins256 = [b[0].conv1.in_channels for b in d256.blocks[:-1]]
    assert ins256 == [3, 64, 128, 256, 512, 512, 1024, 1024, 1024, 512, 256, 128]


def test_output_shapes_and_the_first_block_has_no_preactivation() -> None:
    d = unet(6, ndf=4, depth=5)
    out = d(torch.randn(2, 6, 64, 96))
    assert [tuple(f.shape) for f in out[0]] == [
        (2, 4, 32, 48), (2, 8, 16, 24), (2, 16, 8, 12), (2, 32, 4, 6), (2, 64, 2, 3),
        (2, 1, 1, 1),
    ]  # fmt: skip
    assert [tuple(f.shape) for f in out[1]] == [
        (2, 32, 4, 6), (2, 16, 8, 12), (2, 8, 16, 24), (2, 4, 32, 48), (2, 4, 64, 96),
        (2, 1, 64, 96),
    ]  # fmt: skip
    flags = [b[0].preactivation for b in d.blocks[:5]]
    assert flags == [False, True, True, True, True]
    assert d.size_divisor == d.min_side == 32 and d.branch_reduction == "sum"


def test_finish_spectral_norm_everywhere_but_the_last_conv_orthogonal_init() -> None:
    from torch.nn.utils import parametrize

    d = unet(6, ndf=4, depth=3)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    normed = [parametrize.is_parametrized(m, "weight") for m in convs]
    assert normed.count(False) == 1 and not parametrize.is_parametrized(d.blocks[-1], "weight")
    w = d.blocks[0][0].conv1.parametrizations.weight.original.flatten(1)  # (4, 54): rows
    assert torch.allclose(w @ w.T, torch.eye(4), atol=1e-5)  # orthonormal
    assert d.blocks[0][0].conv1.bias.abs().sum() > 0  # PyTorch's default bias kept


def test_the_encoder_logit_is_a_linear_map_of_the_summed_relu_features() -> None:
    d = unet(6, ndf=2, depth=3, spectral_norm=False)
    x = torch.randn(2, 6, 16, 16)
    out = d(x)
    bottleneck = out[0][-2]
    expected = d.linear_middle(F.relu(bottleneck).sum((2, 3)))
    assert torch.allclose(out[0][-1].flatten(), expected.flatten(), atol=1e-6)


def test_skip_connections_carry_the_encoder_features_to_the_decoder() -> None:
    d = unet(6, ndf=2, depth=3, spectral_norm=False)
    x = torch.randn(1, 6, 16, 16)
    # the decoder's last block sees the first encoder block's output through the skip
    out = d(x)
    (grad,) = torch.autograd.grad(out[1][-1].sum(), out[0][0])
    assert grad.abs().sum() > 0


def test_attention_goes_in_the_encoder_only() -> None:
    d = unet(
        6, ndf=2, depth=3, attention=[{"resolution": 8, "block": "self_attention"}], image_size=32
    )
    assert len(d.blocks[1]) == 2  # down block at 16 -> 8, then the attention block
    assert all(len(b) == 1 for b in list(d.blocks)[3:-1])
    with pytest.raises(GanzooError, match="fits no layer of unet"):
        unet(
            6,
            ndf=2,
            depth=3,
            attention=[{"resolution": 32, "block": "self_attention"}],
            image_size=32,
        )


def test_gradients_reach_every_parameter_and_the_input() -> None:
    d = unet(6, ndf=2, depth=3)
    x = torch.randn(2, 6, 16, 16, requires_grad=True)
    out = d(x)
    (out[0][-1].sum() + out[1][-1].mean()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())
    assert x.grad.abs().sum() > 0


def test_sizes_are_checked_in_one_line(tiny_data: Path) -> None:
    recipe = tiny_recipe(tiny_data, "discriminator={name: unet, ndf: 4, depth: 6}")
    with pytest.raises(GanzooError, match="multiple of 64") as err:
        check_recipe(recipe)
    assert "\n" not in str(err.value)


def test_the_losses_are_the_sum_of_the_encoder_and_decoder_terms() -> None:
    d = unet(6, ndf=2, depth=3)
    real, fake = d(torch.randn(2, 6, 16, 16)), d(torch.randn(2, 6, 16, 16))
    obj = Vanilla()
    loss = discriminator_loss(obj, real, fake, d.branch_reduction)
    bce = F.binary_cross_entropy_with_logits
    by_hand = 0.5 * sum(
        bce(r[-1], torch.ones_like(r[-1])) + bce(f[-1], torch.zeros_like(f[-1]))
        for r, f in zip(real, fake)
    )
    assert torch.allclose(loss, by_hand)  # train_fns.py: 0.5 * (real_2d + real_mid + fake...)


# -- CutMix ------------------------------------------------------------------------------------
def test_cutmix_masks_are_boxes_of_the_authors_sizes() -> None:
    g = torch.Generator().manual_seed(0)
    masks = cutmix_masks(400, 32, 24, g)
    assert masks.shape == (400, 1, 32, 24)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}

    def is_box(m: torch.Tensor, value: float) -> bool:
        where = m == value
        rows, cols = where.any(1).nonzero().flatten(), where.any(0).nonzero().flatten()
        if not len(rows):
            return True
        return bool(where[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].all())

    # the zeros (or, flipped, the ones) form one axis-aligned box
    assert all(is_box(m[0], 0.0) or is_box(m[0], 1.0) for m in masks)
    # lambda ~ U(0, 1) and the coin flip make the real share average about 0.5
    assert 0.4 < masks.mean() < 0.6


def _view(d: nn.Module, step: int, real: torch.Tensor, fake: torch.Tensor, obj=None) -> DView:
    return DView(
        step, d, contextlib.nullcontext, obj or Vanilla(), real, fake, d(real), d(fake)
    )  # fmt: skip


def test_the_cutmix_pair_shares_one_mask_between_condition_and_image() -> None:
    seen = []

    class Recorder(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):
            seen.append(x.detach().clone())
            return self.inner(x)

    d = Recorder(unet(6, ndf=2, depth=3))
    real, fake = torch.ones(3, 6, 16, 16), -torch.ones(3, 6, 16, 16)
    term = CutMixTerm(prob=1.0, seed=3)
    state = term.state_dict()
    term.d_loss(_view(d, 0, real, fake))
    mixed = seen[-1]
    # the same draws again give the mask; every channel of the pair follows it
    twin = CutMixTerm(prob=1.0)
    twin.load_state_dict(state)
    torch.rand((), generator=twin.generator)  # the round's coin
    mask = cutmix_masks(3, 16, 16, twin.generator)
    assert torch.equal(mixed, (2 * mask - 1).expand(3, 6, 16, 16))


def test_the_cutmix_losses_against_a_hand_computation() -> None:
    torch.manual_seed(0)
    d = unet(6, ndf=2, depth=3)
    real, fake = torch.randn(2, 6, 16, 16), torch.randn(2, 6, 16, 16)
    term = CutMixTerm(prob=1.0, consistency=2.0, seed=1)
    twin = CutMixTerm(prob=1.0, seed=1)
    view = _view(d, 0, real, fake)
    losses = term.d_loss(view)
    # replace mode, a CutMix round: the objective's terms are zero
    assert float(losses["real"]) == float(losses["fake"]) == 0.0
    torch.rand((), generator=twin.generator)
    mask = cutmix_masks(2, 16, 16, twin.generator)
    mixed = d(mask * real + (1 - mask) * fake)
    dec_real, dec_fake = view.real_out[1][-1], view.fake_out[1][-1]
    bce = F.binary_cross_entropy_with_logits
    by_hand = bce(mixed[1][-1], mask) + bce(mixed[0][-1], torch.zeros(2, 1, 1, 1))
    assert torch.allclose(losses["cutmix"], by_hand, atol=1e-6)
    target = mask * dec_real + (1 - mask) * dec_fake
    cons = ((mixed[1][-1] - target) ** 2).mean()
    assert torch.allclose(losses["consistency"], 2.0 * cons, atol=1e-6)
    # the per-pixel loss follows the objective: hinge on real and fake pixels
    logits = torch.randn(2, 1, 4, 4)
    m = (torch.rand(2, 1, 4, 4) > 0.5).float()
    hinge = (m * F.relu(1 - logits) + (1 - m) * F.relu(1 + logits)).mean()
    assert torch.allclose(mixed_pixel_loss(Hinge(), logits, m), hinge)
    assert torch.allclose(
        mixed_pixel_loss(Hinge(), logits, torch.ones_like(m)), F.relu(1 - logits).mean()
    )
    assert float(consistency_loss(dec_real, dec_real, dec_real, mask).detach()) == 0.0


def test_the_warm_up_probability_and_weight_at_given_steps() -> None:
    term = CutMixTerm(mode="replace", prob=0.5, warmup=1000)
    probs = [term.probability(s) for s in (0, 250, 500, 1000, 5000)]
    assert probs == [0.0, 0.125, 0.25, 0.5, 0.5]
    assert CutMixTerm(prob=0.5).probability(0) == 0.5  # no warm-up: at once
    add = CutMixTerm(mode="add", warmup=100)
    assert [add.probability(s) for s in (0, 50)] == [1.0, 1.0]
    assert [add.ramp(s) for s in (0, 50, 100, 200)] == [0.0, 0.5, 1.0, 1.0]
    # step 0 of a warm-up: never a CutMix round, the objective's terms as without the term
    torch.manual_seed(0)
    d = unet(6, ndf=2, depth=3)
    view = _view(d, 0, torch.randn(2, 6, 16, 16), torch.randn(2, 6, 16, 16))
    out = term.d_loss(view)
    plain = discriminator_loss(Vanilla(), view.real_out, view.fake_out, "sum")
    assert torch.allclose(out["real"] + out["fake"], plain)
    assert float(out["cutmix"]) == float(out["consistency"]) == 0.0
    # add mode at step 0 of its warm-up: the encoder term and the consistency weigh 0
    out = add.d_loss(view)
    assert (
        "real" not in out
        and float(out["consistency"].detach()) == 0.0
        and float(out["cutmix"].detach()) > 0
    )


def test_the_unet_declares_the_term_only_when_asked(tiny_data: Path) -> None:
    plain = tiny_recipe(tiny_data, UNET)
    assert not build_terms(plain, build_discriminator(plain))
    recipe = tiny_recipe(
        tiny_data, UNET, "discriminator.cutmix=true", "discriminator.cutmix_warmup=10"
    )
    (term,) = build_terms(recipe, build_discriminator(recipe))
    assert isinstance(term, CutMixTerm) and term.replaces_objective and term.warmup == 10
    with pytest.raises(GanzooError, match="cutmix_mode"):
        tiny_recipe(tiny_data, UNET, "discriminator.cutmix_mode=always")


# -- training ----------------------------------------------------------------------------------
def test_training_with_cutmix_logs_its_terms_and_resumes_exactly(
    tiny_data: Path, tmp_path: Path
) -> None:
    common = (UNET, "discriminator.cutmix=true", "discriminator.cutmix_warmup=2")
    whole, resumed = train_whole_and_resumed(tiny_data, tmp_path, *common, steps=4)
    for a, b in (
        (whole.state.d_module.state_dict(), resumed.state.d_module.state_dict()),
        (whole.state.g_module.state_dict(), resumed.state.g_module.state_dict()),
    ):
        assert all(torch.equal(a[k], b[k]) for k in a)
    (term_a,), (term_b,) = list(whole.update.terms), list(resumed.update.terms)
    assert torch.equal(term_a.generator.get_state(), term_b.generator.get_state())
    logged = (tmp_path / "whole" / "metrics.jsonl").read_text()
    assert "loss_d_cutmix" in logged and "loss_d_consistency" in logged


def test_cutmix_never_drawn_trains_as_the_plain_unet(tiny_data: Path, tmp_path: Path) -> None:
    # replace mode with probability 0: the term supplies the objective's terms itself and draws
    # its masks from its own generator, so the updates are the plain U-Net D's exactly
    def weights(*extra: str, name: str) -> list[dict[str, torch.Tensor]]:
        recipe = tiny_recipe(tiny_data, UNET, "train.max_steps=2", *extra)
        trainer, _ = train(recipe, run_dir=tmp_path / name, progress=False)
        return [trainer.state.d_module.state_dict(), trainer.state.g_module.state_dict()]

    plain = weights(name="plain")
    never = weights("discriminator.cutmix=true", "discriminator.cutmix_prob=0", name="never")
    for a, b in zip(plain, never):
        assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "extra",
    [
        ("loss.feature_matching=1.0",),
        ("discriminator.cutmix=true", "discriminator.cutmix_mode=add", "loss.objective=hinge"),
    ],
    ids=["feature-matching", "cutmix-add-hinge"],
)
def test_the_unet_d_trains_a_few_steps(tiny_data: Path, tmp_path: Path, extra: tuple) -> None:
    recipe = tiny_recipe(tiny_data, UNET, "train.max_steps=2", *extra)
    trainer, _ = train(recipe, run_dir=tmp_path / "run", progress=False)
    assert trainer.state.step == 2
    logged = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert ("loss_d_cutmix" in logged) == ("discriminator.cutmix=true" in extra)


def test_a_tiny_unet_d_learns_to_tell_real_from_fake_pairs() -> None:
    # toy pairs: real images copy the condition, fake ones are its negation; a few Adam steps
    # with the sum of both branches' vanilla losses plus CutMix must lower the D loss
    torch.manual_seed(0)
    d = unet(2, ndf=4, depth=3)
    opt = torch.optim.Adam(d.parameters(), lr=1e-2, betas=(0.0, 0.999))
    term = CutMixTerm(mode="add", seed=0)
    obj = Vanilla()

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.rand(8, 1, 16, 16) * 2 - 1
        return torch.cat([a, a], 1), torch.cat([a, -a], 1)

    def loss_at() -> tuple[torch.Tensor, dict]:
        real, fake = batch()
        view = _view(d, 100, real, fake, obj)
        extra = term.d_loss(view)
        return discriminator_loss(obj, view.real_out, view.fake_out, "sum"), extra

    with torch.no_grad():
        first = loss_at()[0]
    for _ in range(40):
        loss, extra = loss_at()
        opt.zero_grad()
        (loss + sum(extra.values())).backward()
        opt.step()
    with torch.no_grad():
        last, extra = loss_at()
    assert last < 0.6 * first  # from 1.41 (both branches at chance) to about 0.5
    assert extra["cutmix"] < 0.75  # the per-pixel mask is learnt too (1.32 at the start)
