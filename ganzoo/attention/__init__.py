"""Attention blocks; importing this package registers them."""

from ganzoo.attention.self_attention import ConditionalSelfAttention, SelfAttention, attend

__all__ = ["ConditionalSelfAttention", "SelfAttention", "attend"]
