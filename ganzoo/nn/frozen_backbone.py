"""A frozen pretrained feature network from timm, for the projected / vision-aided
discriminators.

timm (``pip install 'ganzoo[projected]'``) is the one library that holds every backbone these
designs use under one ``create_model`` call: Projected GAN's ``tf_efficientnet_lite0`` and
Vision-aided GAN's CLIP ViT-B/32 (``vit_base_patch32_clip_224.openai``), DINO ViT-B/16
(``vit_base_patch16_224.dino``) and Swin-T; each comes with its own input normalisation in its
``pretrained_cfg``. Weights load through timm's normal path, the Hugging Face hub cache
(``~/.cache/huggingface/hub``); a local copy can be named instead.

A frozen network is kept out of ``parameters()`` and out of ``state_dict()``: its tensors become
non-persistent buffers (:func:`freeze_into_buffers`), so no optimizer, no ``requires_grad_``
call, no gradient clipping, no EMA and no checkpoint ever sees it, ``.to()`` still moves it, and
a loaded checkpoint rebuilds it from the same source (a random-init backbone from its ``seed``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from ganzoo.errors import GanzooError, RegistryError, did_you_mean, first_line

#: The pip command that installs the optional backbone library.
INSTALL = "pip install 'ganzoo[projected]'  (or: pip install 'timm>=1.0')"


class BackboneError(GanzooError):
    """Pretrained backbone weights that are not here and cannot be fetched."""


def require_timm(who: str) -> ModuleType:
    """The ``timm`` module, or a one-line error with the pip command."""
    try:
        import timm
    except ImportError:
        raise RegistryError(f"{who} needs timm for its frozen backbone: {INSTALL}") from None
    return timm


def on_meta() -> bool:
    """Whether tensors are being created on the meta device (a size probe: no weights load)."""
    return torch.empty(0).device.type == "meta"


def _cached_weights(hub_id: str) -> str | None:
    """The cached file of ``hub_id`` in the Hugging Face cache, if any (no network)."""
    from huggingface_hub import constants, try_to_load_from_cache

    for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
        found = try_to_load_from_cache(hub_id, filename, cache_dir=constants.HF_HUB_CACHE)
        if isinstance(found, str):
            return found
    return None


def _missing(who: str, model: str, hub_id: str, reason: str) -> BackboneError:
    from huggingface_hub import constants

    return BackboneError(
        f"{who}: the pretrained weights of timm model '{model}' (model.safetensors of "
        f"https://huggingface.co/{hub_id}) are not in the Hugging Face cache "
        f"{constants.HF_HUB_CACHE} and {reason}; on a connected machine run "
        f"`hf download {hub_id}` and copy its models--{hub_id.replace('/', '--')} folder into "
        "that cache, or set the discriminator's weights: PATH to the file, or pretrained: "
        "false for a randomly initialised backbone (HF_HUB_OFFLINE=1 skips the download tries)"
    )


def create_backbone(
    model: str,
    *,
    who: str,
    pretrained: bool,
    weights: str | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> nn.Module:
    """timm ``model`` in eval mode: its pretrained weights (from ``weights``, a local file, or
    timm's Hugging Face cache, downloading when online), or with ``pretrained`` False its own
    random initialisation drawn from ``seed`` (the global RNG is left untouched, so a resume
    rebuilds the same backbone). On the meta device nothing is loaded. A one-line
    :class:`BackboneError` when the weights are neither cached nor downloadable."""
    timm = require_timm(who)
    if not timm.is_model(model):
        hint = did_you_mean(model, timm.list_models(), n=2)
        raise RegistryError(f"{who}: timm has no model '{model}'" + (f"; {hint}" if hint else ""))
    load = pretrained and not on_meta()
    overlay = None
    if load:
        if weights is not None:
            if not Path(weights).is_file():
                raise BackboneError(f"{who}: weights file {weights} does not exist")
            overlay = {"file": str(weights)}
        else:
            from huggingface_hub import constants

            hub_id = timm.models.get_pretrained_cfg(model).hf_hub_id
            cached = _cached_weights(hub_id)
            if cached is not None:
                overlay = {"file": cached}  # straight from the cache: no network round trip
            elif constants.HF_HUB_OFFLINE:
                raise _missing(who, model, hub_id, "HF_HUB_OFFLINE is set")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            net = timm.create_model(
                model, pretrained=load, pretrained_cfg_overlay=overlay, **kwargs
            )
        except Exception as exc:
            if not load:
                raise
            if overlay is not None:
                raise BackboneError(
                    f"{who}: cannot load {overlay['file']} into timm model '{model}' "
                    f"({first_line(exc)})"
                ) from None
            hub_id = timm.models.get_pretrained_cfg(model).hf_hub_id
            raise _missing(who, model, hub_id, "could not be downloaded") from None
    return net.eval()


def freeze_into_buffers(module: nn.Module, *, persistent: bool) -> list[str]:
    """Turn every parameter of ``module`` into a buffer (``requires_grad`` False), in place,
    and make all its buffers ``persistent`` (saved in ``state_dict``) or not. Returns the
    names, relative to ``module``, of the tensors that were parameters."""
    names = []
    for prefix, sub in module.named_modules():
        for name, param in list(sub._parameters.items()):
            del sub._parameters[name]
            sub.register_buffer(name, None if param is None else param.detach(), persistent)
            if param is not None:
                names.append(f"{prefix}.{name}" if prefix else name)
        for name in sub._buffers:
            if persistent:
                sub._non_persistent_buffers_set.discard(name)
            else:
                sub._non_persistent_buffers_set.add(name)
    return names


def normalisation(net: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, std)`` of timm ``net``'s own input normalisation, each ``(1, 3, 1, 1)``."""
    cfg = net.pretrained_cfg
    mean = torch.tensor(cfg["mean"], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"], dtype=torch.float32).view(1, 3, 1, 1)
    return mean, std


def backbone_grad(x: torch.Tensor) -> contextlib.AbstractContextManager:
    """``no_grad`` when ``x`` needs no gradient (real pairs, and the detached fakes of D's
    update): the frozen network then keeps no graph. A fake pair in G's update (or a real one
    under a gradient penalty) requires grad, and the gradient flows through the frozen network
    back to the input."""
    return contextlib.nullcontext() if x.requires_grad else torch.no_grad()
