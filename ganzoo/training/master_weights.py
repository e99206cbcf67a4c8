"""bf16 weights with fp32 master copies (``train.precision: bf16-master``).

The classic mixed-precision scheme: a network's conv / linear weights are stored in bf16, so
the forward and the backward use them as they are (no per-forward cast of fp32 weights, as
autocast does, and no cast of each weight gradient back through the autograd graph); the
optimizer holds an fp32 master copy of each of them and its fp32 Adam state. On the CPU the
trainer's optimizer is :class:`~ganzoo.training.master_adam.MasterAdam`, which reads the bf16
gradients and writes the bf16 weights in the same pass as the update; any other optimizer is
:meth:`MasterWeights.attach`-ed: the bf16 gradients are copied into the masters' ``.grad``
before its step and the updated masters rounded back into the bf16 weights after it. bf16 has
fp32's exponent range, so no loss scaling is needed.

What stays fp32: normalisation layers (their affine parameters and running statistics; CPU and
CUDA batch / instance / group norm take bf16 inputs with fp32 parameters), spectral-normed
layers (the power iteration needs fp32; their inputs are cast to fp32), every buffer, and the
network's outputs (cast to fp32 by a forward hook, so losses, the image pool, samples and
metrics see fp32 as before). The module's ``state_dict()`` holds the fp32 masters and loading
one fills the masters and the bf16 weights, so checkpoints look exactly like an fp32 run's and
a resume is bit-exact. :func:`fp32_view` gives the EMA of G the masters to average.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
_REGISTRY: weakref.WeakKeyDictionary[nn.Module, MasterWeights] = weakref.WeakKeyDictionary()


def _cast(value: Any, dtype: torch.dtype) -> Any:
    """``value`` with every floating tensor in it (nested tuples / lists / dicts) in ``dtype``."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, tuple | list):
        return type(value)(_cast(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _cast(v, dtype) for k, v in value.items()}
    return value


def _keeps_fp32(module: nn.Module) -> bool:
    return isinstance(module, _NORMS) or parametrize.is_parametrized(module)


class MasterWeights:
    """Converts ``module`` in place (see the module docstring); ``parameters()`` are what the
    optimizer steps: the fp32 master of each bf16 weight, the parameter itself otherwise, in
    ``module.parameters()`` order (so optimizer state dicts match an fp32 run's)."""

    def __init__(self, module: nn.Module, dtype: torch.dtype = torch.bfloat16) -> None:
        self.module = module
        self.dtype = dtype
        self.masters: dict[int, torch.Tensor] = {}  # id(bf16 parameter) -> fp32 master
        self.pairs: list[tuple[nn.Parameter, torch.Tensor]] = []
        self.grads: dict[int, torch.Tensor] = {}  # id(master) -> its persistent fp32 gradient
        for sub in module.modules():
            own = list(sub.named_parameters(recurse=False))
            if _keeps_fp32(sub):
                if parametrize.is_parametrized(sub):
                    sub.register_forward_pre_hook(self._inputs_to(torch.float32))
                continue
            if not own or isinstance(sub, parametrize.ParametrizationList):
                continue
            for _, p in own:
                if not p.is_floating_point():
                    continue
                # the module's layout (channels_last): same-layout copies to and from the
                # bf16 weight are 4x faster than transposing ones (the optimizer steps a
                # contiguous view of it, see dense_views)
                master = p.detach().clone()
                p.data = p.data.to(dtype)
                self.masters[id(p)] = master
                self.pairs.append((p, master))
            sub.register_forward_pre_hook(self._inputs_to(dtype))
            # partial: torch marks public hooks with an attribute a bound method cannot take
            sub.register_state_dict_post_hook(functools.partial(self._save_masters))
            sub.register_load_state_dict_pre_hook(functools.partial(self._load_masters))
        module.register_forward_hook(lambda _m, _i, out: _cast(out, torch.float32))
        _REGISTRY[module] = self

    @staticmethod
    def _inputs_to(dtype: torch.dtype) -> Any:
        return lambda _module, args: _cast(args, dtype)

    def parameters(self) -> list[torch.Tensor]:
        """The fp32 tensors the optimizer updates, in ``module.parameters()`` order."""
        return [self.masters.get(id(p), p) for p in self.module.parameters()]

    def _save_masters(self, sub: nn.Module, state: dict, prefix: str, _meta: Any) -> None:
        for name, p in sub.named_parameters(recurse=False):
            master = self.masters.get(id(p))
            if master is not None and prefix + name in state:
                state[prefix + name] = master.detach()

    def _load_masters(self, sub: nn.Module, state: dict, prefix: str, *_: Any) -> None:
        for name, p in sub.named_parameters(recurse=False):
            master, value = self.masters.get(id(p)), state.get(prefix + name)
            if master is None or not isinstance(value, torch.Tensor):
                continue
            if value.shape == master.shape:  # a mismatch is reported by load_state_dict
                with torch.no_grad():
                    master.copy_(value)

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Run the gradient copy before, and the weight rounding after, each ``step()``."""
        optimizer.register_step_pre_hook(lambda *_: self.grads_to_masters())
        optimizer.register_step_post_hook(lambda *_: self.masters_to_weights())

    @torch.no_grad()
    def grads_to_masters(self) -> None:
        """Each bf16 gradient into its master's fp32 ``.grad`` (a buffer kept across steps, so
        ``zero_grad(set_to_none=True)`` costs no reallocation); the bf16 one is dropped."""
        sources, targets = [], []
        for p, master in self.pairs:
            if p.grad is None:
                master.grad = None
                continue
            grad = self.grads.get(id(master))
            if grad is None:
                grad = self.grads[id(master)] = torch.empty_like(master)
            sources.append(p.grad)
            targets.append(grad)
            master.grad = grad
            p.grad = None
        if targets:
            torch._foreach_copy_(targets, sources)

    @torch.no_grad()
    def masters_to_weights(self) -> None:
        """Round every master into its bf16 weight."""
        if self.pairs:
            torch._foreach_copy_([p for p, _ in self.pairs], [m for _, m in self.pairs])


class _Fp32View:
    """What ``AveragedModel.update_parameters`` reads: parameters (masters) and buffers."""

    def __init__(self, weights: MasterWeights) -> None:
        self.weights = weights

    def parameters(self) -> Iterator[torch.Tensor]:
        return iter(self.weights.parameters())

    def buffers(self) -> Iterator[torch.Tensor]:
        return self.weights.module.buffers()


def fp32_view(module: nn.Module) -> Any:
    """``module`` itself, or for a converted one an object whose ``parameters()`` are its fp32
    masters (and ``buffers()`` its buffers), for averaging into an fp32 EMA copy."""
    weights = _REGISTRY.get(module)
    return module if weights is None else _Fp32View(weights)
