"""Self-attention blocks: identity at init, gradients, shapes, and the attention itself checked
against a per-pixel loop (which catches a softmax over the wrong axis)."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils import parametrize

from ganzoo import registry
from ganzoo.attention import ConditionalSelfAttention, SelfAttention
from ganzoo.errors import RecipeError, RegistryError
from ganzoo.nn import apply_spectral_norm, init_weights

SAGAN = {}
BIGGAN = {"value_reduction": 2, "pool": True, "bias": False}


def naive_attention(query, key, value):
    """o[:, :, i] = sum_j softmax_j(q_i . k_j) v_j, one query pixel at a time."""
    n, _, h, w = query.shape
    q, k, v = query.flatten(2), key.flatten(2), value.flatten(2)
    out = torch.zeros(n, v.shape[1], h * w, dtype=query.dtype)
    for b in range(n):
        for i in range(h * w):
            scores = torch.stack([q[b, :, i] @ k[b, :, j] for j in range(k.shape[2])])
            weights = torch.exp(scores - scores.max())
            weights = weights / weights.sum()
            out[b, :, i] = sum(weights[j] * v[b, :, j] for j in range(k.shape[2]))
    return out.view(n, -1, h, w)


def naive_self_attention(block: SelfAttention, x: torch.Tensor) -> torch.Tensor:
    key, value = block.key(x), block.value(x)
    if block.pool:
        key = torch.nn.functional.max_pool2d(key, 2, ceil_mode=True)
        value = torch.nn.functional.max_pool2d(value, 2, ceil_mode=True)
    o = naive_attention(block.query(x), key, value)
    if block.out is not None:
        o = block.out(o)
    return x + block.gamma * o


def randomised(block: torch.nn.Module, gamma: float = 1.0) -> torch.nn.Module:
    """Weights large enough that the softmax is far from uniform, gamma set."""
    torch.manual_seed(0)
    init_weights(block, "normal", 0.5)
    with torch.no_grad():
        block.gamma.fill_(gamma)
    return block.double()


@pytest.mark.parametrize("params", [SAGAN, BIGGAN, {"pool": True}, {"value_reduction": 4}])
def test_self_attention_is_identity_at_init_and_keeps_shape(params):
    block = SelfAttention(16, **params)
    for shape in [(2, 16, 8, 8), (1, 16, 5, 7), (1, 16, 1, 1)]:
        x = torch.randn(*shape)
        y = block(x)
        assert y.shape == x.shape
        assert torch.equal(y, x)
    assert block.gamma.item() == 0.0


def test_conditional_self_attention_is_identity_at_init():
    block = ConditionalSelfAttention(32, condition_channels=3)
    x = torch.randn(2, 32, 8, 8)
    assert torch.equal(block(x), x)
    assert torch.equal(block(x, torch.randn(2, 3, 32, 32)), x)


@pytest.mark.parametrize(
    "block",
    [
        SelfAttention(16),
        SelfAttention(16, **BIGGAN),
        ConditionalSelfAttention(16, condition_channels=1, reduction=4),
    ],
)
def test_gamma_gets_a_nonzero_gradient_at_init(block):
    torch.manual_seed(0)
    x = torch.randn(2, 16, 6, 6)
    loss = (block(x, None) * torch.randn(2, 16, 6, 6)).sum()
    loss.backward()
    assert block.gamma.grad is not None and block.gamma.grad.abs().item() > 0


@pytest.mark.parametrize(
    "params", [SAGAN, BIGGAN, {"pool": True}, {"key_reduction": 2, "value_reduction": 2}]
)
@pytest.mark.parametrize("size", [(4, 4), (3, 5)])
def test_self_attention_matches_a_per_pixel_loop(params, size):
    block = randomised(SelfAttention(8, **params))
    x = torch.randn(2, 8, *size, dtype=torch.float64)
    torch.testing.assert_close(block(x), naive_self_attention(block, x))


def test_softmax_runs_over_keys_not_queries():
    """Each query's weights sum to 1: with a constant value map every query receives it."""
    block = randomised(SelfAttention(8))
    with torch.no_grad():
        block.value.weight.zero_()
        block.value.bias.fill_(3.0)
    x = torch.randn(1, 8, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(block(x), x + 3.0)


def test_conditional_self_attention_follows_the_paper_by_default():
    # LinesToFacePhoto's CSAM: f, g and h all from [features (+) resized condition]
    block = randomised(ConditionalSelfAttention(8, condition_channels=2, reduction=2))
    assert block.value.in_channels == 10 and block.query.in_channels == 10
    x = torch.randn(2, 8, 4, 4, dtype=torch.float64)
    condition = torch.randn(2, 2, 4, 4, dtype=torch.float64)
    joint = torch.cat([x, condition], 1)
    expected = x + naive_attention(block.query(joint), block.key(joint), block.value(joint))
    torch.testing.assert_close(block(x, condition), expected)
    # the published CSAM at 128 channels: f, g 131 -> 8, h 131 -> 128, gamma
    assert sum(p.numel() for p in ConditionalSelfAttention(128).parameters()) == 19_009


def test_conditional_value_from_the_features_alone_is_an_option():
    block = randomised(
        ConditionalSelfAttention(8, condition_channels=2, reduction=2, value_from_condition=False)
    )
    assert block.value.in_channels == 8
    x = torch.randn(1, 8, 3, 3, dtype=torch.float64)
    condition = torch.randn(1, 2, 3, 3, dtype=torch.float64)
    joint = torch.cat([x, condition], 1)
    expected = x + naive_attention(block.query(joint), block.key(joint), block.value(x))
    torch.testing.assert_close(block(x, condition), expected)


def test_conditional_attention_uses_the_condition_and_resizes_it():
    block = randomised(ConditionalSelfAttention(8, condition_channels=3, reduction=2))
    x = torch.randn(1, 8, 4, 4, dtype=torch.float64)
    big = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    small = torch.nn.functional.interpolate(big, size=(4, 4), mode="bilinear", align_corners=False)
    torch.testing.assert_close(block(x, big), block(x, small))
    assert not torch.allclose(block(x, small), block(x, None))


def test_conditional_attention_without_condition_is_a_zero_condition():
    block = randomised(ConditionalSelfAttention(8, condition_channels=3, reduction=2))
    x = torch.randn(2, 8, 5, 3, dtype=torch.float64)
    torch.testing.assert_close(block(x), block(x, torch.zeros(2, 3, 5, 3, dtype=torch.float64)))


def test_conditional_attention_rejects_a_condition_of_the_wrong_width():
    block = ConditionalSelfAttention(8, condition_channels=3)
    with pytest.raises(RecipeError, match="condition_channels: 1"):
        block(torch.randn(1, 8, 4, 4), torch.randn(1, 1, 4, 4))


def test_widths_follow_the_papers():
    sagan = SelfAttention(64)
    assert (sagan.query.out_channels, sagan.key.out_channels, sagan.value.out_channels) == (
        8,
        8,
        64,
    )
    assert sagan.out is None and sagan.query.bias is not None
    biggan = SelfAttention(64, **BIGGAN)
    assert (biggan.query.out_channels, biggan.value.out_channels) == (8, 32)
    assert biggan.out.in_channels == 32 and biggan.out.out_channels == 64
    assert biggan.query.bias is None
    csam = ConditionalSelfAttention(64)
    assert csam.query.in_channels == 67 and csam.query.out_channels == 4
    assert (
        csam.value.in_channels == 67 and csam.value.out_channels == 64
    )  # the paper: h sees it too


@pytest.mark.parametrize(
    "block", [SelfAttention(16, **BIGGAN), ConditionalSelfAttention(16, reduction=4)]
)
def test_spectral_norm_pass_reaches_attention_convs(block):
    init_weights(block, "normal", 0.02)
    apply_spectral_norm(block)
    convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(parametrize.is_parametrized(m, "weight") for m in convs)
    x = torch.randn(2, 16, 4, 4)
    assert torch.equal(block(x), x)
    block(x).sum().backward()
    assert block.gamma.grad is not None


def test_registered_and_validated():
    assert {"self_attention", "conditional_self_attention"} <= set(registry.list("attention"))
    block = registry.create("attention", "self_attention", 32, value_reduction=2, pool=True)
    assert isinstance(block, SelfAttention) and block.pool
    with pytest.raises(RegistryError, match="did you mean 'pool'"):
        registry.create("attention", "self_attention", 32, pooling=True)
    with pytest.raises(RegistryError, match="key_reduction"):
        SelfAttention(32, key_reduction=0)


def test_nn_takes_ready_blocks_and_never_looks_one_up() -> None:
    """ganzoo/nn/ hands out the blocks the builder's maker builds; it never calls the registry."""
    from pathlib import Path

    import ganzoo.nn
    from ganzoo.nn import AttentionSlots, AttentionSpec

    folder = Path(ganzoo.nn.__file__).parent
    assert not [p.name for p in folder.glob("*.py") if "registry" in p.read_text()]
    made: list[tuple[str, int]] = []

    def make(spec: AttentionSpec, channels: int) -> torch.nn.Module:
        made.append((spec.block, channels))
        return torch.nn.Identity()

    slots = AttentionSlots([AttentionSpec(block="anything", resolution=8)], 32, make)
    assert slots.at(2, 16) is None and isinstance(slots.at(4, 8), torch.nn.Identity)
    slots.finish("a test network")
    assert made == [("anything", 8)]
    with pytest.raises(RegistryError, match="fits no layer of a test network at image height 32"):
        AttentionSlots([AttentionSpec(block="x", resolution=3)], 32, make).finish("a test network")
