"""Receptive-field tooling: the analytic chain arithmetic, and the probe's robustness to the
things that make gradients vanish or spread (zero weights, ReLU, norms, attention, max pooling)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganzoo.attention import SelfAttention
from ganzoo.nn import apply_spectral_norm
from ganzoo.nn.receptive_field import (
    ConvGeometry,
    conv_chain,
    output_side,
    probe_boxes,
    receptive_field,
    receptive_field_by_probe,
    smallest_input_side,
)

PATCHGAN_70 = [ConvGeometry(4, 2, 1)] * 3 + [ConvGeometry(4, 1, 1)] * 2


class Branches(nn.Module):
    """A two-branch toy discriminator in the ``[[features..., logits], ...]`` contract."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return [[b(x)] for b in self.branches]


def test_output_side():
    assert output_side(256, PATCHGAN_70) == 30
    assert ConvGeometry(4, 2, 2).output_side(256) == 129  # pix2pixHD's padding
    assert ConvGeometry(3, 1, 0, dilation=2).output_side(10) == 6
    assert output_side(23, PATCHGAN_70) == 0
    assert ConvGeometry(5).output_side(3) == 0


def test_receptive_field_arithmetic():
    assert receptive_field(PATCHGAN_70) == 70
    assert receptive_field([ConvGeometry(3)] * 2) == 5
    assert receptive_field([ConvGeometry(3, dilation=2)]) == 5
    assert receptive_field([ConvGeometry(2, 2), ConvGeometry(3)]) == 6
    assert receptive_field([]) == 1


def test_smallest_input_side():
    assert smallest_input_side(PATCHGAN_70) == 24
    assert smallest_input_side([ConvGeometry(4, 1, 1)]) == 2
    assert smallest_input_side([ConvGeometry(1)]) == 1
    for layers in (PATCHGAN_70, [ConvGeometry(7, 3, 0), ConvGeometry(5, 2, 1)]):
        side = smallest_input_side(layers)
        assert output_side(side, layers) >= 1 and output_side(side - 1, layers) == 0


def test_conv_chain_reads_modules_in_order():
    stack = nn.Sequential(
        nn.Conv2d(3, 4, (3, 5), stride=(1, 2), padding=(1, 2)),
        nn.ReLU(),
        nn.Sequential(nn.AvgPool2d(2), nn.BatchNorm2d(4)),
        nn.Conv2d(4, 4, 3, padding="same", dilation=2),
        nn.MaxPool2d(3, stride=1, padding=1),
    )
    assert conv_chain([stack], axis=0) == [
        ConvGeometry(3, 1, 1),
        ConvGeometry(2, 2, 0),
        ConvGeometry(3, 1, 2, 2),
        ConvGeometry(3, 1, 1),
    ]
    assert conv_chain([stack], axis=1)[0] == ConvGeometry(5, 2, 2)
    assert output_side(20, conv_chain([stack])) == stack(torch.zeros(1, 3, 20, 20)).shape[2]
    with pytest.raises(ValueError, match="ceil_mode"):
        conv_chain([nn.MaxPool2d(2, ceil_mode=True)])


def hostile_stack() -> nn.Sequential:
    """Convs that would stop or spread gradients in a naive probe."""
    torch.manual_seed(0)
    stack = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.InstanceNorm2d(4, affine=True),  # global statistics: every pixel depends on all
        nn.Conv2d(4, 4, 4, stride=2, padding=1),
        nn.BatchNorm2d(4),
        nn.LeakyReLU(0.0),  # a slope of 0 is a ReLU
        SelfAttention(4, key_reduction=2),
        nn.MaxPool2d(3, stride=1, padding=1),
        nn.Conv2d(4, 1, 3, dilation=2, padding=2),
    )
    with torch.no_grad():
        stack[0].weight.zero_()  # no gradient at all through the original weights
        stack[3].weight.mul_(-1).abs_().neg_()  # all negative: ReLU-dead activations
        stack[6].gamma.fill_(1.0)  # trained attention: global field
    apply_spectral_norm(stack)
    return stack


def test_probe_is_robust_and_matches_the_analytic_field():
    stack = hostile_stack()
    field = receptive_field(conv_chain([stack]))
    assert field == 1 + 2 + 3 * 1 + 2 * 2 + 4 * 2  # 3x3, 4x4 s2, 3x3 pool, 3x3 dilated 2
    assert receptive_field_by_probe(stack, 2, 48, 48) == [(field, field)]


def test_probe_leaves_the_network_untouched():
    stack = hostile_stack().train()
    before = {k: v.clone() for k, v in stack.state_dict().items()}
    receptive_field_by_probe(stack, 2, 24, 24)
    after = stack.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert stack.training and isinstance(stack[2], nn.InstanceNorm2d)


def test_probe_per_branch_and_non_square():
    net = Branches(
        nn.Conv2d(1, 1, (3, 7), padding=(1, 3)),
        nn.Sequential(nn.Conv2d(1, 1, 5, stride=2), nn.Conv2d(1, 1, 1)),
    )
    assert receptive_field_by_probe(net, 1, 20, 30) == [(3, 7), (5, 5)]
    top, left, bottom, right = probe_boxes(net, 1, 20, 30)[0]
    assert (top + bottom) / 2 == 10 and (left + right) / 2 == 15  # the centre output pixel


def test_probe_accepts_a_plain_tensor_output():
    assert receptive_field_by_probe(nn.Conv2d(3, 1, 5, padding=2), 3, 16, 16) == [(5, 5)]


def test_a_field_larger_than_the_input_is_clipped_or_grown():
    net = Branches(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 15, padding=7))
    assert receptive_field_by_probe(net, 1, 9, 9) == [(3, 3), (9, 9)]
    assert receptive_field_by_probe(net, 1, 9, 9, max_side=64) == [(3, 3), (15, 15)]
    assert receptive_field_by_probe(net, 1, 9, 9, max_side=16) == [(3, 3), (9, 9)]  # 18 > 16


def test_an_output_that_ignores_the_input_is_reported():
    class Constant(nn.Module):
        def forward(self, x):
            return torch.zeros(1, 1, 4, 4, dtype=x.dtype) + 0 * x.sum()

    with pytest.raises(ValueError, match="does not depend on the input"):
        probe_boxes(Constant(), 1, 8, 8)


def test_probing_twice_leaves_a_spectral_norm_network_whole():
    """The probe copy used to remove spectral norm with torch's remove_parametrizations, which
    deletes the property from the class the copy shares with the original: the second probe
    (or any later use of D) failed with 'ParametrizedConv2d' has no attribute 'weight'."""
    d = apply_spectral_norm(nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1), nn.Conv2d(4, 1, 4, 1, 1)))
    first = receptive_field_by_probe(d, 3, 16, 16, max_side=64)
    assert receptive_field_by_probe(d, 3, 16, 16, max_side=64) == first
    assert d[0].weight.shape == (4, 3, 4, 4)
    assert d(torch.zeros(1, 3, 16, 16)).shape == (1, 1, 7, 7)
