"""Which autocast dtype a run uses: ``train.precision`` resolved against the hardware."""

from __future__ import annotations

import warnings

import torch


def fast_bf16(device: torch.device) -> bool:
    """True where bf16 matrix work is faster than fp32: CUDA with bf16 support, or a CPU
    with AMX tiles or AVX512-BF16."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        amx = getattr(cpu, "_is_amx_tile_supported", lambda: False)()
        avx = getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
        return bool(amx or avx)
    return False


def resolve_precision(requested: str, device: torch.device) -> str:
    """``auto`` -> where bf16 runs fast, ``bf16-master`` on a CPU (bf16 weights whose fp32
    masters one fused pass updates: no per-step casts, docs/performance.md) and ``bf16``
    autocast on a GPU; ``fp32`` elsewhere. fp16 only on CUDA."""
    if requested == "auto":
        if not fast_bf16(device):
            return "fp32"
        return "bf16-master" if device.type == "cpu" else "bf16"
    if requested == "fp16" and device.type != "cuda":
        warnings.warn(
            f"train.precision fp16 needs CUDA; this {device.type} run uses bf16 autocast "
            "instead (set train.precision to bf16 or fp32 to choose)",
            stacklevel=2,
        )
        return "bf16"
    return requested


def autocast_dtype(precision: str) -> torch.dtype | None:
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
