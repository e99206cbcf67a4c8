"""Small shared building blocks: norm layers, weight init, spectral norm, attention slots, sizes."""

from ganzoo.nn.attention_slots import AttentionSlots, AttentionSpec
from ganzoo.nn.init import InitName, init_weights
from ganzoo.nn.norm import NormName, conv_bias, norm_layer
from ganzoo.nn.sizes import Count, Width, check_image_size
from ganzoo.nn.spectral import apply_spectral_norm

__all__ = [
    "Count",
    "Width",
    "AttentionSlots",
    "AttentionSpec",
    "InitName",
    "NormName",
    "apply_spectral_norm",
    "check_image_size",
    "conv_bias",
    "init_weights",
    "norm_layer",
]
