"""GAN objectives, branch averaging, feature matching and the VGG19 perceptual loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo import registry
from ganzoo.errors import RegistryError, SizeError, TrainingError
from ganzoo.losses import (
    Objective,
    PerceptualLoss,
    WassersteinGP,
    discriminator_loss,
    discriminator_terms,
    feature_matching_loss,
    generator_gan_loss,
    gram_matrix,
    style_loss,
    vgg19_weights_path,
)
from ganzoo.recipe import LossSection

OBJECTIVES = ["hinge", "lsgan", "vanilla", "wgan_gp"]


def full(value: float, shape: tuple[int, ...] = (2, 1, 3, 3)) -> torch.Tensor:
    return torch.full(shape, float(value))


# -- registry ----------------------------------------------------------------------------------
def test_every_objective_is_registered_with_summary_and_paper() -> None:
    assert registry.list("objective") == OBJECTIVES
    for entry in registry.entries("objective"):
        assert entry.summary(), entry.name
        assert entry.paper, entry.name
        assert isinstance(registry.create("objective", entry.name), Objective)


def test_wgan_gp_penalty_param_is_validated_by_the_registry() -> None:
    assert [p.describe() for p in registry.get("objective", "wgan_gp").parameters()] == [
        "penalty: float = 10.0",
        "d_scale: float = 1.0",
    ]
    assert registry.create("objective", "wgan_gp").penalty_weight == 10.0
    assert registry.create("objective", "wgan_gp", penalty=5).penalty_weight == 5.0
    section = LossSection.model_validate({"objective": {"name": "wgan_gp", "penalty": 5}})
    assert section.objective.params == {"penalty": 5.0}
    with pytest.raises(RegistryError) as err:
        LossSection.model_validate({"objective": {"name": "wgan_gp", "penalty": "x"}})
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("loss.objective.penalty: expected a number")
    with pytest.raises(RegistryError, match="takes no parameter 'penalty'"):
        LossSection.model_validate({"objective": {"name": "hinge", "penalty": 5}})
    with pytest.raises(RegistryError, match=r"wgan_gp\.penalty: must be >= 0"):
        registry.create("objective", "wgan_gp", penalty=-1)


def test_only_wgan_gp_needs_a_penalty() -> None:
    needs = {name: registry.create("objective", name).needs_penalty for name in OBJECTIVES}
    assert needs == {"hinge": False, "lsgan": False, "vanilla": False, "wgan_gp": True}
    with pytest.raises(TypeError, match="no penalty"):
        registry.create("objective", "hinge").penalty(nn.Identity(), full(0), full(0))


# -- objective values on hand-made logits ------------------------------------------------------
def test_vanilla_values() -> None:
    obj = registry.create("objective", "vanilla")
    assert obj.d_loss(full(0), full(0)).item() == pytest.approx(2 * math.log(2))
    assert obj.g_loss(full(0)).item() == pytest.approx(math.log(2))
    # BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x); the trainer halves the D loss
    real, fake = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    expected_d = F.softplus(-real).mean() + F.softplus(fake).mean()
    assert obj.d_loss(real, fake).item() == pytest.approx(expected_d.item(), rel=1e-6)
    assert obj.g_loss(fake).item() == pytest.approx(F.softplus(-fake).mean().item(), rel=1e-6)


def test_lsgan_values() -> None:
    obj = registry.create("objective", "lsgan")
    assert obj.d_loss(full(1), full(0)).item() == 0.0
    assert obj.d_loss(full(0), full(1)).item() == pytest.approx(2.0)  # 1 + 1
    assert obj.d_loss(full(3), full(-1)).item() == pytest.approx(4 + 1)
    assert obj.g_loss(full(1)).item() == 0.0
    assert obj.g_loss(full(-1)).item() == pytest.approx(4.0)


def test_hinge_values() -> None:
    obj = registry.create("objective", "hinge")
    assert obj.d_loss(full(2), full(-2)).item() == 0.0  # both margins met
    assert obj.d_loss(full(0), full(0)).item() == pytest.approx(2.0)
    assert obj.d_loss(full(0.5), full(-0.25)).item() == pytest.approx(0.5 + 0.75)
    mixed = torch.tensor([3.0, -1.0]).view(2, 1, 1, 1)  # relu(1 - r) = [0, 2], relu(1 + r) = [4, 0]
    assert obj.d_loss(mixed, mixed).item() == pytest.approx(1.0 + 2.0)
    assert obj.g_loss(full(1.5)).item() == pytest.approx(-1.5)


def test_wgan_gp_values() -> None:
    obj = registry.create("objective", "wgan_gp")
    real, fake = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    assert obj.d_loss(real, fake).item() == pytest.approx((fake.mean() - real.mean()).item())
    assert obj.g_loss(fake).item() == pytest.approx(-fake.mean().item())


@pytest.mark.parametrize("name", OBJECTIVES)
def test_direction(name: str) -> None:
    obj = registry.create("objective", name)
    good_d = obj.d_loss(full(2), full(-2))  # D right: real high, fake low
    bad_d = obj.d_loss(full(-2), full(2))
    assert good_d < bad_d
    assert obj.g_loss(full(2)) < obj.g_loss(full(-2))  # G wants D to score fakes high
    assert obj.d_loss(full(0), full(0)).dtype == torch.float32
    half = obj.d_loss(full(1).bfloat16(), full(-1).bfloat16())
    assert half.dtype == torch.float32 and half.ndim == 0


# -- branch averaging --------------------------------------------------------------------------
def test_losses_combine_branches_by_mean_or_sum_using_only_the_logits() -> None:
    obj = registry.create("objective", "hinge")
    feature = torch.randn(2, 8, 6, 6)  # ignored by the GAN losses
    real_out = [[feature, full(0.5, (2, 1, 6, 6))], [full(3, (2, 1, 3, 3))]]
    fake_out = [[feature, full(0.0, (2, 1, 6, 6))], [full(-0.5, (2, 1, 3, 3))]]
    real, fake = discriminator_terms(obj, real_out, fake_out)
    assert (real.item(), fake.item()) == pytest.approx(((0.5 + 0.0) / 2, (1.0 + 0.5) / 2))
    # pix2pix halves real + fake
    assert discriminator_loss(obj, real_out, fake_out).item() == pytest.approx(0.5 * 1.0)
    assert generator_gan_loss(obj, fake_out).item() == pytest.approx((0.0 + 0.5) / 2)
    # pix2pixHD sums its scales (GANLoss.__call__ adds every scale's loss)
    real, fake = discriminator_terms(obj, real_out, fake_out, "sum")
    assert (real.item(), fake.item()) == pytest.approx((0.5, 1.5))
    assert generator_gan_loss(obj, fake_out, "sum").item() == pytest.approx(0.5)


def test_a_discriminator_output_off_contract_is_a_one_line_error() -> None:
    obj = registry.create("objective", "vanilla")
    with pytest.raises(TrainingError) as err:
        generator_gan_loss(obj, full(0))  # a bare tensor, not a list of branches
    assert "\n" not in str(err.value) and "list of branches" in str(err.value)
    with pytest.raises(TrainingError, match="2 branches for real images but 1"):
        discriminator_loss(obj, [[full(0)], [full(0)]], [[full(0)]])
    with pytest.raises(TrainingError):
        feature_matching_loss([[full(0)]], [])


# -- wgan_gp gradient penalty ------------------------------------------------------------------
class LinearCritic(nn.Module):
    """Branches of 1x1-conv logits ``sum_c w_c x_c`` (no bias): its input gradient is known."""

    def __init__(self, *channel_weights: list[float]) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        for weights in channel_weights:
            conv = nn.Conv2d(len(weights), 1, 1, bias=False)
            conv.weight.data = torch.tensor(weights).view(1, -1, 1, 1)
            self.convs.append(conv)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        self.seen.append(x.detach().clone())
        return [[x, conv(x)] for conv in self.convs]


def pairs(n: int = 3, h: int = 2, w: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and fake (condition, image) pairs (N, 1 + 3, h, w) sharing their condition."""
    condition = torch.randn(n, 1, h, w)
    real, fake = torch.randn(n, 3, h, w), torch.randn(n, 3, h, w)
    return torch.cat([condition, real], 1), torch.cat([condition, fake], 1)


def test_penalty_matches_the_hand_computed_value_for_a_linear_critic() -> None:
    # critic = mean_hw(sum_c w_c x_c): d critic / d x_hat = w / (h w) at every pixel, so
    # ||grad|| = ||w|| / sqrt(h w) = 3 / 2 on 2x2 images; penalty = 10 * (1.5 - 1)^2
    critic = LinearCritic([0.0, 1.0, 2.0, 2.0])
    penalty = registry.create("objective", "wgan_gp").penalty(critic, *pairs())
    assert penalty.item() == pytest.approx(2.5, rel=1e-5)
    five = registry.create("objective", "wgan_gp", penalty=5).penalty(critic, *pairs())
    assert five.item() == pytest.approx(1.25, rel=1e-5)
    penalty.backward()  # create_graph: the penalty trains the critic
    assert critic.convs[0].weight.grad is not None
    assert critic.convs[0].weight.grad.abs().sum() > 0


def test_penalty_norm_covers_the_condition_channels_as_upstream() -> None:
    # pix2pix's cal_gradient_penalty differentiates w.r.t. the whole interpolated pair:
    # ||(2, 1, 2, 0)|| / sqrt(4) = 1.5 counts the condition channel's weight 2
    critic = LinearCritic([2.0, 1.0, 2.0, 0.0])
    assert WassersteinGP().penalty(critic, *pairs()).item() == pytest.approx(2.5, rel=1e-5)


def test_penalty_is_zero_when_the_gradient_norm_is_one() -> None:
    critic = LinearCritic([0.0, 0.0, 4.0, 0.0])  # ||(0, 0, 4, 0)|| / sqrt(4 * 4) = 1 on 4x4
    penalty = WassersteinGP().penalty(critic, *pairs(h=4, w=4))
    assert penalty.item() == pytest.approx(0.0, abs=1e-10)


def test_penalty_uses_the_critic_averaged_over_branches() -> None:
    # branch weights average to (0, 2, 2, 1): ||(2, 2, 1)|| / sqrt(2 * 2) = 1.5
    critic = LinearCritic([1.0, 3.0, 1.0, 0.0], [-1.0, 1.0, 3.0, 2.0])
    penalty = WassersteinGP(penalty=1.0).penalty(critic, *pairs())
    assert penalty.item() == pytest.approx(0.25, rel=1e-5)


def test_penalty_interpolates_whole_pairs_per_sample() -> None:
    torch.manual_seed(0)
    critic = LinearCritic([1.0, 1.0, 1.0, 1.0])
    real, fake = pairs(n=8, h=3, w=3)
    fake[:, :1] = torch.randn(8, 1, 3, 3)  # a pooled pair carries its own condition
    WassersteinGP().penalty(critic, real, fake)
    (seen,) = critic.seen
    a = (seen - fake) / (real - fake)  # one mixing weight per sample, in [0, 1]
    per_sample = a.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), atol=1e-3)
    assert (per_sample >= -1e-3).all() and (per_sample <= 1 + 1e-3).all()
    assert per_sample[:, 0].std() > 0.05  # drawn independently


def test_penalty_runs_in_float32_under_autocast() -> None:
    critic = LinearCritic([0.0, 1.0, 2.0, 2.0])
    real, fake = pairs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        penalty = WassersteinGP().penalty(critic, real.bfloat16(), fake.bfloat16())
    assert penalty.dtype == torch.float32
    assert penalty.item() == pytest.approx(2.5, rel=1e-2)


# -- feature matching --------------------------------------------------------------------------
def test_feature_matching_is_zero_for_identical_outputs() -> None:
    out = [[torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4), torch.randn(2, 1, 4, 4)]]
    assert feature_matching_loss(out, out).item() == 0.0


def test_feature_matching_weights_follow_pix2pixhd() -> None:
    def branch(values: list[float]) -> list[torch.Tensor]:
        return [full(v, (2, 4, 5, 5)) for v in values] + [full(9.0)]  # logits are never matched

    real = [branch([0, 0, 0]), branch([0])]
    fake = [branch([1, 2, 3]), branch([-5])]
    # branch 0: 3 features, weight 4/3; branch 1: 1 feature, weight 4/1; both times 1/2
    expected = 0.5 * (4 / 3) * (1 + 2 + 3) + 0.5 * 4 * 5
    assert feature_matching_loss(real, fake).item() == pytest.approx(expected)
    assert feature_matching_loss([[full(0)]], [[full(1)]]).item() == 0.0  # logits only


def test_feature_matching_in_the_lines2face_form() -> None:
    # Lines2Face main.py: sum over the first branch's last three outputs (logits included),
    # unweighted; the other branches take no part
    def branch(values: list[float]) -> list[torch.Tensor]:
        return [full(v, (2, 4, 5, 5)) for v in values]

    real = [branch([0, 0, 0, 0, 0]), branch([0, 0])]
    fake = [branch([100, 1, 2, 3, 4]), branch([50, 50])]
    assert feature_matching_loss(real, fake, "lines2face").item() == pytest.approx(2 + 3 + 4)


def test_style_loss_compares_gram_matrices_of_the_first_branch() -> None:
    torch.manual_seed(0)
    feats = [torch.randn(2, 3, 4, 5) for _ in range(4)]
    other = [f + torch.randn_like(f) for f in feats]
    real, fake = [feats, [full(0)]], [other, [full(1)]]
    gram = gram_matrix(feats[-1])
    flat = feats[-1].reshape(2, 3, 20)
    assert torch.allclose(gram, flat @ flat.transpose(1, 2) / (2 * 4 * 5 * 3))
    expected = sum(
        (gram_matrix(other[-i]) - gram_matrix(feats[-i])).abs().mean() for i in (1, 2, 3)
    )
    assert style_loss(real, fake).item() == pytest.approx(expected.item(), rel=1e-5)
    assert style_loss(real, real).item() == 0.0


def test_feature_matching_does_not_reach_the_real_features() -> None:
    real_feat = torch.randn(2, 4, 6, 6, requires_grad=True)
    fake_feat = torch.randn(2, 4, 6, 6, requires_grad=True)
    loss = feature_matching_loss([[real_feat, full(0)]], [[fake_feat, full(0)]])
    loss.backward()
    assert real_feat.grad is None
    assert fake_feat.grad is not None and fake_feat.grad.abs().sum() > 0
    assert loss.item() == pytest.approx(4 * F.l1_loss(fake_feat, real_feat).item())


# -- perceptual loss ---------------------------------------------------------------------------
@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """A fresh TORCH_HOME; never a download."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def no_download(*args, **kwargs):
        raise AssertionError("ganzoo must never download weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    return tmp_path


@pytest.fixture(scope="module")
def random_vgg19_state() -> dict[str, torch.Tensor]:
    """A randomly initialised torchvision vgg19's features (and one classifier entry)."""
    import torchvision

    torch.manual_seed(0)
    vgg = torchvision.models.vgg19(weights=None)
    state = {f"features.{k}": v for k, v in vgg.features.state_dict().items()}
    state["classifier.6.bias"] = vgg.classifier[6].bias.detach().clone()
    return state


@pytest.fixture
def vgg_weights(torch_home, random_vgg19_state):
    path = vgg19_weights_path()
    path.parent.mkdir(parents=True)
    torch.save(random_vgg19_state, path)
    return path


def test_weights_path_is_torchvisions_cache_file(torch_home) -> None:
    assert vgg19_weights_path() == torch_home / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"


def test_missing_weights_are_a_one_line_error_naming_the_path(torch_home) -> None:
    with pytest.raises(TrainingError) as err:
        PerceptualLoss()
    message = str(err.value)
    assert "\n" not in message
    assert str(vgg19_weights_path()) in message
    assert "vgg19-dcbb9e9d.pth" in message and "never downloads" in message


def test_unusable_weights_are_a_one_line_error(torch_home) -> None:
    path = vgg19_weights_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError) as err:
        PerceptualLoss()
    assert "\n" not in str(err.value) and "not a readable VGG19 weights" in str(err.value)
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(TrainingError, match="not torchvision's VGG19 weights"):
        PerceptualLoss()
    state = {f"features.{i}.weight": torch.zeros(1) for i in (0, 2, 5, 7, 10, 12, 14, 16, 19)}
    state |= {f"features.{i}.weight": torch.zeros(1) for i in (21, 23, 25, 28)}
    state |= {k.replace("weight", "bias"): v for k, v in state.items()}
    torch.save(state, path)  # the right names, the wrong shapes
    with pytest.raises(TrainingError) as err:
        PerceptualLoss()
    assert "\n" not in str(err.value) and "not torchvision's VGG19 weights" in str(err.value)


def test_perceptual_loss_forward_backward(vgg_weights) -> None:
    loss_fn = PerceptualLoss()
    assert [len(s) for s in loss_fn.slices] == [2, 5, 5, 9, 9]  # relu1_1 ... relu5_1
    assert loss_fn.weights == (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
    assert not any(p.requires_grad for p in loss_fn.parameters())
    assert not loss_fn.train().training  # the VGG stays in eval
    torch.manual_seed(1)
    real = torch.rand(2, 3, 16, 16) * 2 - 1
    assert loss_fn(real, real).item() == 0.0
    fake = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_(True)
    loss = loss_fn(fake, real)
    assert loss.ndim == 0 and loss.item() > 0
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss_fn.parameters())


def test_perceptual_loss_feeds_raw_images_as_pix2pixhd(vgg_weights) -> None:
    # pix2pixHD's VGGLoss passes the [-1, 1] images to VGG19 as they are
    loss_fn = PerceptualLoss()
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    first = loss_fn.slices[0][0]
    assert torch.allclose(loss_fn._features(x)[0], F.relu(first(x)), atol=1e-5)


def test_perceptual_loss_can_map_to_imagenet_normalisation(vgg_weights) -> None:
    loss_fn = PerceptualLoss("imagenet")
    grey = torch.rand(1, 1, 16, 16) * 2 - 1
    first = loss_fn.slices[0][0]  # conv1_1 sees ((x + 1) / 2 - mean) / std
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = F.relu(first(((grey.repeat(1, 3, 1, 1) + 1) / 2 - mean) / std))
    assert torch.allclose(loss_fn._features(grey)[0], expected, atol=1e-5)
    other = torch.rand(1, 1, 16, 16) * 2 - 1
    rgb = loss_fn(other.repeat(1, 3, 1, 1), grey.repeat(1, 3, 1, 1))
    assert loss_fn(other, grey).item() == pytest.approx(rgb.item(), rel=1e-5)
    with pytest.raises(SizeError, match="1- or 3-channel"):
        loss_fn(torch.zeros(1, 2, 16, 16), torch.zeros(1, 2, 16, 16))
