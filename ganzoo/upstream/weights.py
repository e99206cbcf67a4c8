"""Upstream state dicts -> ganzoo's networks.

ganzoo's U-Net, ResNet and pix2pixHD generators have the upstream module trees, so their keys
are the upstream's. The discriminators nest their layers in stages, so their keys are matched
by order: each upstream module (the tensors sharing a prefix) pairs with the ganzoo module at
the same position, and names and shapes must agree. pix2pixHD's multi-scale D is renamed first
(``scale{i}_layer{j}`` -> ``scales.{num_D - 1 - i}.{j}``: its forward pass feeds the full
resolution to the *last* scale). Checkpoints saved from ``DataParallel`` (``module.`` prefixes)
and pre-0.4 InstanceNorm buffers are cleaned as the upstream ``load_networks`` cleans them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ganzoo.errors import GanzooError
from ganzoo.upstream.options import UpstreamOptions

_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


class ImportMismatch(GanzooError):
    """An upstream file whose tensors do not fit the network its options describe."""


def _module(key: str) -> str:
    return key.rsplit(".", 1)[0] if "." in key else ""


def clean(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop ``module.`` prefixes and the running statistics of parameter-free (instance) norm
    layers that pre-0.4 PyTorch saved; non-tensor entries are an error."""
    out = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ImportMismatch(f"entry {key!r} is not a tensor; not a network state dict")
        out[key[len("module.") :] if key.startswith("module.") else key] = value
    modules_with_weight = {_module(k) for k in out if k.endswith(".weight")}
    return {
        k: v
        for k, v in out.items()
        if not (k.rsplit(".", 1)[-1] in _BUFFERS and _module(k) not in modules_with_weight)
    }


def _groups(keys: list[str]) -> list[tuple[str, list[str]]]:
    """(module prefix, its keys) in order of first appearance."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(_module(key), []).append(key)
    return list(groups.items())


def rename_multiscale(state: dict[str, torch.Tensor], num_d: int) -> dict[str, torch.Tensor]:
    """pix2pixHD ``MultiscaleDiscriminator`` keys -> ganzoo ``scales.{s}.`` prefixes (scale
    ``s`` = the s-th resolution, full first; upstream ``scale{num_d-1-s}`` / ``layer{..}``)."""
    out = {}
    for key, value in state.items():
        m = re.match(r"scale(\d+)_layer(\d+)\.(.*)", key)
        if m:
            s = num_d - 1 - int(m[1])
            out[f"scales.{s}.__{int(m[2]):03d}.{m[3]}"] = value
            continue
        m = re.match(r"layer(\d+)\.(.*)", key)
        if m:
            out[f"scales.{num_d - 1 - int(m[1])}.__{m[2]}"] = value
            continue
        out[key] = value
    # order by scale, then as saved within a scale
    return dict(sorted(out.items(), key=lambda kv: _scale_of(kv[0])))


def _scale_of(key: str) -> int:
    m = re.match(r"scales\.(\d+)\.", key)
    return int(m[1]) if m else -1


def to_ganzoo(
    upstream: dict[str, torch.Tensor],
    net: nn.Module,
    *,
    hint: Callable[[str, str], str],
    file: Path,
) -> dict[str, torch.Tensor]:
    """The ganzoo state dict of ``net`` filled from ``upstream`` (identical keys, or matched by
    module order). ``hint(kind, detail)`` names the flag that probably caused a mismatch
    (``kind``: 'count', 'in', 'out', 'width'). One-line :class:`ImportMismatch` otherwise."""
    own = net.state_dict()
    counter = ".num_batches_tracked"
    # BatchNorm step counters are matched through their layer: old files lack them
    own_keys = [k for k in own if not k.endswith(counter)]
    src = {k: v for k, v in upstream.items() if not k.endswith(counter)}
    if set(src) == set(own_keys):
        pairs = [(k, k) for k in own_keys]
    else:
        pairs = _pair_by_order(src, own_keys, hint, file)
    out = {}
    layer_of = {_module(mine): _module(theirs) for theirs, mine in pairs}
    for theirs, mine in pairs:
        value = src[theirs]
        if tuple(value.shape) != tuple(own[mine].shape):
            advice = _shape_hint(mine, own_keys, value, own[mine], hint)
            raise ImportMismatch(
                f"{file.name}: {theirs} has shape {tuple(value.shape)} in the file but "
                f"{tuple(own[mine].shape)} in ganzoo's {mine}; {advice}"
            )
        out[mine] = value.to(own[mine].dtype)
    for key in own:
        if key.endswith(counter):
            theirs = layer_of.get(_module(key), _module(key)) + counter
            out[key] = upstream.get(theirs, torch.zeros_like(own[key]))
    return {key: out[key] for key in own}


def _pair_by_order(
    src: dict[str, torch.Tensor],
    own_keys: list[str],
    hint: Callable[[str, str], str],
    file: Path,
) -> list[tuple[str, str]]:
    theirs, mine = _groups(list(src)), _groups(own_keys)
    if len(theirs) != len(mine) or len(src) != len(own_keys):
        raise ImportMismatch(
            f"{file.name} holds {len(src)} tensors in {len(theirs)} layers but the network its "
            f"options describe has {len(own_keys)} in {len(mine)}; {hint('count', '')}"
        )
    pairs = []
    for (t_prefix, t_keys), (m_prefix, m_keys) in zip(theirs, mine):
        t_leaves = [k.rsplit(".", 1)[-1] for k in t_keys]
        m_leaves = [k.rsplit(".", 1)[-1] for k in m_keys]
        if t_leaves != m_leaves:
            raise ImportMismatch(
                f"{file.name}: layer {t_prefix or '(top)'} holds {', '.join(t_leaves)} but "
                f"ganzoo's {m_prefix} holds {', '.join(m_leaves)}; {hint('count', '')}"
            )
        pairs += list(zip(t_keys, m_keys))
    return pairs


def _shape_hint(
    key: str,
    keys: list[str],
    theirs: torch.Tensor,
    mine: torch.Tensor,
    hint: Callable[[str, str], str],
) -> str:
    weights = [k for k in keys if k.endswith(".weight")]
    if theirs.ndim == 4 and weights and key == weights[0] and theirs.shape[1] != mine.shape[1]:
        return hint("in", f"{theirs.shape[1]} input channels")
    if theirs.ndim == 4 and weights and key == weights[-1] and theirs.shape[0] != mine.shape[0]:
        return hint("out", f"{theirs.shape[0]} output channels")
    return hint("width", f"{theirs.shape[0]} channels where ganzoo has {mine.shape[0]}")


def generator_hint(options: UpstreamOptions) -> Callable[[str, str], str]:
    """Which upstream flag probably caused a generator mismatch."""
    o = options

    def hint(kind: str, detail: str) -> str:
        if kind == "in":
            return f"check --input_nc (now {o.get('input_nc')}; the file has {detail})"
        if kind == "out":
            return f"check --output_nc (now {o.get('output_nc')}; the file has {detail})"
        if kind == "width":
            return f"check --ngf (now {o.get('ngf')}; the file has {detail})"
        keys = (
            ("netG", "norm", "ngf")
            if o.family == "pix2pix"
            else ("netG", "n_downsample_global", "n_blocks_global", "n_local_enhancers", "norm")
        )
        return f"check {o.describe(keys)}: the file was trained with other ones"

    return hint


def discriminator_hint(options: UpstreamOptions) -> Callable[[str, str], str]:
    """Which upstream flag probably caused a discriminator mismatch."""
    o = options

    def hint(kind: str, detail: str) -> str:
        if kind == "in":
            return f"check --input_nc and --output_nc (the file's D takes {detail})"
        if kind == "width":
            return f"check --ndf (now {o.get('ndf')}; the file has {detail})"
        keys = (
            ("netD", "n_layers_D", "norm", "ndf")
            if o.family == "pix2pix"
            else ("num_D", "n_layers_D", "norm", "ndf", "no_ganFeat_loss")
        )
        return f"check {o.describe(keys)}: the file was trained with other ones"

    return hint
