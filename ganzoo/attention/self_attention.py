"""Self-attention over feature-map positions: SAGAN's block (with BigGAN's cheaper form as
options) and the conditional self-attention module (CSAM) of LinesToFacePhoto.

Both compute, for every query position ``i`` of an ``N x C x H x W`` map,
``o_i = sum_j softmax_j(q_i . k_j) v_j`` (softmax over the key positions ``j``, no scaling)
and return ``x + gamma * o`` with the learnable scalar ``gamma`` starting at 0, so a new block
is exactly the identity. Spectral norm, when a network asks for it, reaches the 1x1 convs here
through the host's :func:`ganzoo.nn.apply_spectral_norm` pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import RecipeError, RegistryError
from ganzoo.nn import Width
from ganzoo.registry import register


def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Dot-product attention of ``query (N, Cq, H, W)`` over the positions of ``key (N, Cq, h, w)``
    and ``value (N, Cv, h, w)``; returns ``(N, Cv, H, W)``. Softmax over the key positions."""
    n, _, height, width = query.shape
    q = query.flatten(2).transpose(1, 2)  # (N, HW, Cq)
    k = key.flatten(2)  # (N, Cq, hw)
    v = value.flatten(2)  # (N, Cv, hw)
    weights = torch.softmax(torch.bmm(q, k), dim=-1)  # (N, HW, hw): each query row sums to 1
    return torch.bmm(v, weights.transpose(1, 2)).view(n, -1, height, width)


def _width(channels: int, reduction: int, name: str) -> int:
    if reduction < 1:
        raise RegistryError(f"{name} must be at least 1, got {reduction}")
    return max(1, channels // reduction)


@register(
    "attention",
    "self_attention",
    paper="Zhang et al., Self-Attention Generative Adversarial Networks, ICML 2019 "
    "(pool/value_reduction/bias: Brock et al., BigGAN, ICLR 2019)",
)
class SelfAttention(nn.Module):
    """SAGAN self-attention: y = x + gamma * attention(x), identity at init (gamma = 0).

    Query and key are 1x1 convs to ``channels // key_reduction`` (SAGAN: 8), the value a 1x1
    conv to ``channels // value_reduction`` (SAGAN: 1, i.e. ``channels``). BigGAN's form is
    ``value_reduction=2, pool=True, bias=False``: the value goes to C/2 and a 1x1 output conv
    brings it back to C (added whenever ``value_reduction > 1``), and keys and values are 2x2
    max-pooled (4x fewer key positions). Widths are at least 1 for very narrow maps.
    ``forward(x, condition=None)``: ``x`` is ``(N, channels, H, W)``, any range; the condition
    is ignored. The attention matrix holds ``(H*W)^2`` entries per sample (``/4`` pooled).
    """

    def __init__(
        self,
        channels: int,
        key_reduction: Width = 8,
        value_reduction: Width = 1,
        pool: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        inner = _width(channels, key_reduction, "self_attention.key_reduction")
        value = _width(channels, value_reduction, "self_attention.value_reduction")
        self.query = nn.Conv2d(channels, inner, 1, bias=bias)
        self.key = nn.Conv2d(channels, inner, 1, bias=bias)
        self.value = nn.Conv2d(channels, value, 1, bias=bias)
        self.out = nn.Conv2d(value, channels, 1, bias=bias) if value_reduction > 1 else None
        self.pool = pool
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        key, value = self.key(x), self.value(x)
        if self.pool:  # ceil_mode keeps odd and 1-pixel sides working; even sides as BigGAN
            key = F.max_pool2d(key, 2, ceil_mode=True)
            value = F.max_pool2d(value, 2, ceil_mode=True)
        o = attend(self.query(x), key, value)
        if self.out is not None:
            o = self.out(o)
        return x + self.gamma * o


@register(
    "attention",
    "conditional_self_attention",
    paper="Li et al., LinesToFacePhoto: Face Photo Generation from Lines with Conditional "
    "Self-Attention GAN, ACM MM 2019",
)
class ConditionalSelfAttention(nn.Module):
    """CSAM: self-attention whose query, key and value see the condition image; identity at init.

    As the paper's figure: f (query), g (key) and h (value) are 1x1 convs of ``concat(x,
    condition resized to x)``, to ``channels // reduction`` (16 in the authors' code,
    ``channel_fac``) for f and g and ``channels`` for h; ``o = softmax(f^T g) h`` and ``x +
    gamma * o``. ``value_from_condition=False`` computes h from ``x`` alone. The authors'
    ``ops.selfatt`` computes all three from the concatenation when ``flag_condition`` is on, but
    their released generator calls it with ``flag_condition=False``, i.e. as plain
    self-attention (``self_attention`` with ``key_reduction: 16``), after its second-to-last
    deconvolution at 128x128. ``condition`` is ``(N, condition_channels, H', W')``, resized
    bilinearly to ``x``'s size (as the reference's ``tf.image.resize_images``). With
    ``condition=None`` (inside a discriminator) the condition is zero-filled, so one set of
    weights serves both uses.
    """

    def __init__(
        self,
        channels: int,
        condition_channels: Width = 3,
        reduction: Width = 16,
        value_from_condition: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        inner = _width(channels, reduction, "conditional_self_attention.reduction")
        joint = channels + condition_channels
        self.condition_channels = condition_channels
        self.query = nn.Conv2d(joint, inner, 1, bias=bias)
        self.key = nn.Conv2d(joint, inner, 1, bias=bias)
        self.value = nn.Conv2d(joint if value_from_condition else channels, channels, 1, bias=bias)
        self.value_from_condition = value_from_condition
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        n, _, height, width = x.shape
        if condition is None:
            condition = x.new_zeros(n, self.condition_channels, height, width)
        elif condition.shape[1] != self.condition_channels:
            raise RecipeError(
                f"conditional_self_attention got a {condition.shape[1]}-channel condition but "
                f"was built for condition_channels={self.condition_channels}; set "
                f"condition_channels: {condition.shape[1]} in its attention spec"
            )
        elif condition.shape[-2:] != x.shape[-2:]:
            condition = F.interpolate(
                condition.to(x.dtype), size=(height, width), mode="bilinear", align_corners=False
            )
        joint = torch.cat([x, condition.to(x.dtype)], dim=1)
        value = self.value(joint if self.value_from_condition else x)
        return x + self.gamma * attend(self.query(joint), self.key(joint), value)
