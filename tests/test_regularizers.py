"""The built-in regularisers (ganzoo/regularizers/): DiffAugment, ADA, R1/R2 and LeCam, each
checked against its paper's formula or its authors' code, and exact across a resume."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_recipe, train_whole_and_resumed
from torch import nn

from ganzoo import records
from ganzoo.artifacts.checkpoint import latest_checkpoint, load_checkpoint
from ganzoo.build import check_recipe
from ganzoo.errors import GanzooError
from ganzoo.losses.objectives import Vanilla
from ganzoo.losses.terms import DView
from ganzoo.registry import create
from ganzoo.regularizers.ada import translate_reflect
from ganzoo.regularizers.diffaugment import cutout_mask, shift
from ganzoo.training.trainer import train

BOUND = SimpleNamespace(data=SimpleNamespace(in_channels=3))  # what bind reads of a recipe


def term(name: str, **params: Any) -> Any:
    made = create("regularizer", name, **params)
    made.bind(BOUND)
    return made


def pairs_with_twin_condition(n: int = 4, size: int = 16) -> torch.Tensor:
    """``(N, 6, S, S)`` pairs whose image channels equal their condition channels."""
    a = torch.rand(n, 3, size, size) * 2 - 1
    return torch.cat([a, a], 1)


# -- DiffAugment ---------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["translation", "cutout", "translation,cutout"])
def test_diffaugment_moves_condition_and_image_of_a_pair_together(policy: str) -> None:
    torch.manual_seed(0)
    pairs = pairs_with_twin_condition()
    out = term("diffaugment", policy=policy).augment(pairs, 0)
    assert out.shape == pairs.shape
    assert torch.equal(out[:, :3], out[:, 3:])  # the same geometric transform on both halves
    assert not torch.equal(out, pairs)


def test_diffaugment_colour_changes_the_image_only() -> None:
    torch.manual_seed(0)
    pairs = pairs_with_twin_condition()
    out = term("diffaugment", policy="color").augment(pairs, 0)
    assert torch.equal(out[:, :3], pairs[:, :3])
    assert not torch.allclose(out[:, 3:], pairs[:, 3:])


def test_diffaugment_is_differentiable_and_every_draw_is_per_sample() -> None:
    torch.manual_seed(0)
    pairs = pairs_with_twin_condition(n=8).requires_grad_(True)
    out = term("diffaugment").augment(pairs, 0)
    out.square().sum().backward()
    assert pairs.grad is not None and pairs.grad[:, 3:].abs().sum() > 0
    # the image of every sample gets its own transform
    assert len({tuple(o[3:].flatten()[:64].tolist()) for o in out}) == 8


def test_diffaugment_operations_match_the_authors_ranges() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # translation reads x[i + dy, j + dx], zero outside (DiffAugment_pytorch.rand_translation)
    moved = shift(x, torch.tensor([1]), torch.tensor([-1]))
    assert moved[0, 0].tolist() == [[0, 4, 5, 6], [0, 8, 9, 10], [0, 12, 13, 14], [0, 0, 0, 0]]
    torch.manual_seed(0)
    masks = cutout_mask(200, 16, 16, torch.device("cpu"))
    zeros = (masks == 0).flatten(1).sum(1)
    # a half-side square, clipped at the borders: at most 8 x 8 zeros, at least 4 x 4
    assert zeros.max() == 64 and zeros.min() >= 16
    torch.manual_seed(0)
    image = torch.zeros(500, 3, 2, 2)
    bright = term("diffaugment", policy="color").augment(torch.cat([image, image], 1), 0)
    shift_b = bright[:, 3:].mean((1, 2, 3))  # brightness U(-0.5, 0.5), contrast keeps the mean
    assert shift_b.min() >= -0.5 and shift_b.max() <= 0.5 and shift_b.std() > 0.25
    with pytest.raises(GanzooError, match="diffaugment.policy"):
        create("regularizer", "diffaugment", policy="colour")


# -- ADA -----------------------------------------------------------------------------------
def d_view(real_logits: torch.Tensor, batch: int, step: int = 0) -> DView:
    real_pairs = torch.zeros(batch, 6, 4, 4)
    return DView(
        step, None, None, Vanilla(), real_pairs, real_pairs, [[real_logits]], [[real_logits]]
    )  # type: ignore[arg-type]


def test_ada_p_follows_the_papers_update_rule() -> None:
    ada = term("ada", target=0.6, interval=4, kimg=500)
    batch = 4
    # 3 of 4 logits positive: r_t = 0.5 < 0.6 -> p would go down, but it is floored at 0
    below = torch.tensor([1.0, 2.0, 3.0, -1.0]).reshape(1, 1, 2, 2)
    for _ in range(4):
        ada.after_d_step(d_view(below, batch))
    assert float(ada.p) == 0.0
    # all positive: r_t = 1 > 0.6 -> p += batch * interval / (kimg * 1000) per interval
    above = torch.ones(1, 1, 2, 2)
    expected = 0.0
    for update in range(12):
        ada.after_d_step(d_view(above, batch))
        if (update + 1) % 4 == 0:
            expected += 1 * (batch * 4) / (500 * 1000)
        assert float(ada.p) == pytest.approx(expected, abs=1e-9)
    # r_t exactly the mix of the interval's updates: (4 * 1 + 4 * -1 ...)/n, here below target
    mixed = [above, -above, above, -above]
    for logits in mixed:
        ada.after_d_step(d_view(logits, batch))
    assert float(ada.p) == pytest.approx(expected - (batch * 4) / (500 * 1000), abs=1e-9)
    assert ada.diagnostics() == {records.ADA_P: ada.p}


def test_ada_augments_with_probability_p_and_keeps_pairs_aligned() -> None:
    torch.manual_seed(0)
    pairs = pairs_with_twin_condition(n=16)
    ada = term("ada", ops="xflip,xint,cutout")
    assert torch.equal(ada.augment(pairs, 0), pairs)  # p = 0: the identity
    ada.p = torch.tensor(1.0)
    out = ada.augment(pairs, 0)
    assert torch.equal(out[:, :3], out[:, 3:]) and not torch.equal(out, pairs)
    colour = term("ada", ops="brightness,contrast,saturation", p=1.0)
    grad_in = pairs.clone().requires_grad_(True)
    out = colour.augment(grad_in, 0)
    assert torch.equal(out[:, :3], pairs[:, :3]) and not torch.allclose(out[:, 3:], pairs[:, 3:])
    out.sum().backward()
    assert grad_in.grad[:, 3:].abs().sum() > 0
    x = torch.arange(5.0).reshape(1, 1, 1, 5)
    # integer translation reads x[j - dx] reflected at the border (upstream pads 'reflect')
    assert translate_reflect(x, torch.tensor([0]), torch.tensor([2]))[0, 0, 0].tolist() == [
        2, 1, 0, 1, 2,
    ]  # fmt: skip


# -- R1 / R2 -------------------------------------------------------------------------------
class LinearD(nn.Module):
    """A 1x1 convolution: patch logits ``sum_c w_c x_c + b``; one branch."""

    def __init__(self, channels: int = 6) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 1)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        return [[self.conv(x)]]


@pytest.mark.parametrize("wrt", ["image", "pair"])
def test_r1_equals_the_hand_computed_penalty_of_a_linear_d(wrt: str) -> None:
    torch.manual_seed(0)
    d = LinearD()
    h = w = 5
    real = torch.randn(3, 6, h, w)
    r1 = term("r1", gamma=4.0, every=1, wrt=wrt)
    view = DView(0, d, None, Vanilla(), real, real * 0, [[d(real)[0][0]]], [[d(real)[0][0]]])  # type: ignore[arg-type]
    got = r1.d_loss(view)["r1"]
    # the critic is the mean of the h*w patch logits: d critic / d x[c, i, j] = w_c / (h*w)
    weights = d.conv.weight.detach().flatten()
    used = weights[3:] if wrt == "image" else weights
    expected = 4.0 / 2 * used.square().sum() * (h * w) / (h * w) ** 2
    assert float(got.detach()) == pytest.approx(float(expected), rel=1e-6)
    got.backward()  # it trains D
    assert d.conv.weight.grad is not None and d.conv.weight.grad.abs().sum() > 0


def test_r1_lazy_form_runs_every_k_steps_scaled_by_k_and_r2_uses_the_fake_pairs() -> None:
    torch.manual_seed(0)
    d = LinearD()
    real, fake = torch.randn(2, 6, 4, 4), torch.randn(2, 6, 4, 4)
    out = [[d(real)[0][0]]]

    def view(step: int) -> DView:
        return DView(step, d, None, Vanilla(), real, fake, out, out)  # type: ignore[arg-type]

    every = float(term("r1", gamma=1.0, every=1).d_loss(view(0))["r1"].detach())
    lazy = term("r1", gamma=1.0, every=4)
    assert lazy.d_loss(view(1)) == {} and lazy.d_loss(view(3)) == {}
    assert float(lazy.d_loss(view(4))["r1"].detach()) == pytest.approx(4 * every)
    # a linear D has the same input gradient everywhere: R2 on fakes equals R1 on reals
    r2 = term("r2", gamma=1.0, every=1).d_loss(view(0))
    assert set(r2) == {"r2"} and float(r2["r2"].detach()) == pytest.approx(every)


# -- LeCam ---------------------------------------------------------------------------------
def test_lecam_term_and_anchors_follow_the_formula() -> None:
    torch.manual_seed(0)
    lecam = term("lecam", weight=0.5, decay=0.9)
    biased_r = biased_f = 0.0
    for t in range(1, 4):
        real, fake = torch.randn(2, 1, 3, 3) + 1, torch.randn(2, 1, 3, 3) - 1
        v = DView(t, None, None, Vanilla(), real, fake, [[real]], [[fake]])  # type: ignore[arg-type]
        got = lecam.d_loss(v)["lecam"]
        # EMA with the current batch first, zero-debiased (TF assign_moving_average)
        biased_r = 0.9 * biased_r + 0.1 * float(real.mean())
        biased_f = 0.9 * biased_f + 0.1 * float(fake.mean())
        a_r, a_f = biased_r / (1 - 0.9**t), biased_f / (1 - 0.9**t)
        expected = 0.5 * (F.relu(real - a_f).square().mean() + F.relu(a_r - fake).square().mean())
        assert float(got) == pytest.approx(float(expected), rel=1e-5)
        assert float(lecam.anchors()[0][0]) == pytest.approx(a_r, rel=1e-5)
    # the first anchor is the first batch's mean (the debiasing)
    first = term("lecam")
    real = torch.full((1, 1, 2, 2), 2.0)
    first.d_loss(DView(0, None, None, Vanilla(), real, real, [[real]], [[-real]]))  # type: ignore[arg-type]
    assert [float(a[0]) for a in first.anchors()] == pytest.approx([2.0, -2.0])


# -- through the trainer -------------------------------------------------------------------
REGULARIZERS = {
    "diffaugment": "{name: diffaugment}",
    "ada": "{name: ada, p: 0.5, kimg: 0.01, interval: 2}",
    "r1": "{name: r1, gamma: 1, every: 2}",
    "r2": "{name: r2, gamma: 1, every: 2}",
    "lecam": "{name: lecam}",
}


@pytest.mark.parametrize("name", list(REGULARIZERS))
def test_each_regularizer_is_exact_across_a_resume(
    tiny_data: Path, tmp_path: Path, name: str
) -> None:
    whole, resumed = train_whole_and_resumed(
        tiny_data, tmp_path, f"loss.regularizers=[{REGULARIZERS[name]}]"
    )
    for a, b in (
        (whole.state.d_module.state_dict(), resumed.state.d_module.state_dict()),
        (whole.state.g_module.state_dict(), resumed.state.g_module.state_dict()),
    ):
        assert all(torch.equal(a[k], b[k]) for k in a), name
    (t_whole,), (t_resumed,) = list(whole.update.terms), list(resumed.update.terms)
    sw, sr = t_whole.state_dict(), t_resumed.state_dict()
    assert sw.keys() == sr.keys()
    for k in sw:
        same = torch.equal(sw[k], sr[k]) if isinstance(sw[k], torch.Tensor) else sw[k] == sr[k]
        assert same, (name, k)
    saved = load_checkpoint(latest_checkpoint(tmp_path / "split" / "checkpoints"))["terms"]
    assert saved[0]["term"] == type(t_whole).__name__


def test_the_logged_records_carry_each_terms_loss_and_adas_p(
    tiny_data: Path, tmp_path: Path
) -> None:
    regs = ", ".join(REGULARIZERS[n] for n in ("ada", "r1", "lecam"))
    recipe = tiny_recipe(tiny_data, "train.max_steps=4", f"loss.regularizers=[{regs}]")
    train(recipe, run_dir=tmp_path / "run", progress=False)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    logged = [json.loads(line) for line in lines]
    keys = set().union(*(r.keys() for r in logged))
    assert {"ada_p", "loss_d_r1", "loss_d_lecam"} <= keys
    assert "loss_ada_p" not in keys
    assert all(r["ada_p"] >= 0 for r in logged if "ada_p" in r)


def test_check_and_show_list_the_active_terms(tiny_data: Path, capsys: Any) -> None:
    from ganzoo.cli import main

    recipe = tiny_recipe(tiny_data, "loss.regularizers=[{name: diffaugment}, {name: r1, gamma: 2}]")
    lines = check_recipe(recipe).describe()
    assert lines[0].startswith("diffaugment: color,translation,cutout")
    assert lines[1].startswith("r1: ") and "gamma 2" in lines[1]
    quickstart = str(Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml")
    regs = "loss.regularizers=[{name: lecam}, {name: ada}]"
    assert main(["show", quickstart, "--set", regs, "--no-receptive-fields"]) == 0
    out = capsys.readouterr().out
    assert "step terms, in order:\n  lecam: weight 0.3" in out and "\n  ada: xflip" in out
    assert main(["check", quickstart, "--set", regs]) == 0
    assert "\n  lecam: weight 0.3" in capsys.readouterr().err
    assert main(["check", quickstart]) == 0
    assert "step terms: none" in capsys.readouterr().err


@pytest.mark.parametrize(
    "discriminator",
    [
        "{name: multiscale, num_d: 2, n_layers: 2, ndf: 4, norm: batch}",
        "{name: multidepth, branches: 2, ndf: 2}",
        "{name: pixel, ndf: 4}",
    ],
    ids=["multiscale", "multidepth", "pixel"],
)
def test_all_regularizers_compose_with_every_discriminator_family(
    tiny_data: Path, tmp_path: Path, discriminator: str
) -> None:
    regs = ", ".join(REGULARIZERS.values())
    recipe = tiny_recipe(
        tiny_data,
        "train.max_steps=2",
        f"discriminator={discriminator}",
        "loss.objective={name: hinge}",
        f"loss.regularizers=[{regs}]",
    )
    trainer, _ = train(recipe, run_dir=tmp_path / "run", progress=False)
    terms = list(trainer.update.terms)
    assert [type(t).__name__ for t in terms] == ["DiffAugment", "ADA", "R1", "R2", "LeCam"]
    branches = len(trainer.state.d_module(torch.zeros(1, 6, 32, 32)))
    assert terms[-1].ema.shape == (2, branches)  # LeCam: one pair of anchors per branch
    d = trainer.state.d_module.state_dict()
    assert all(torch.isfinite(v.float()).all() for v in d.values())
