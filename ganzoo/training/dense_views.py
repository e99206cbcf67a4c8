"""The optimizer steps channels_last weights through contiguous views of the same memory.

PyTorch's fused Adam kernel works on contiguous tensors: given a channels_last (NHWC) weight it
copies the weight, its gradient and both moments to contiguous memory and the results back,
every step, which takes longer than the update itself (3x the optimizer time of a U-Net
measured on a CPU). A channels_last tensor is dense, so a permutation of its dimensions
(``(O, I, kH, kW) -> (O, kH, kW, I)``) is a contiguous view of the same memory; the optimizer
gets that view (a leaf sharing the weight's storage), its gradient the same permutation of the
weight's gradient, and updates the weight in place with no copy. The arithmetic is elementwise,
so the results are bit for bit those of stepping the weights themselves.

The optimizer's ``state_dict()`` holds the moments in the weights' own shapes (checkpoints do
not depend on the memory layout) and ``load_state_dict`` permutes them back.
"""

from __future__ import annotations

from typing import Any

import torch


def dense_order(t: torch.Tensor) -> list[int] | None:
    """The permutation that makes ``t`` contiguous; None when it already is or none does."""
    if t.is_contiguous() or t.ndim < 2:
        return None
    order = sorted(range(t.ndim), key=lambda d: (-t.stride(d), d))
    return order if t.permute(order).is_contiguous() else None


def _permuted(value: Any, order: list[int], to_weight_shape: bool) -> Any:
    """A moment tensor permuted by ``order`` (contiguous when going to the view's shape)."""
    if not isinstance(value, torch.Tensor) or value.ndim != len(order):
        return value  # the step count
    value = value.permute(order)
    return value if to_weight_shape else value.contiguous()


class DenseViews:
    """``parameters()``: for each of ``params``, itself or its contiguous view (module doc)."""

    def __init__(self, params: list[torch.Tensor]) -> None:
        self.params = params
        self.orders: dict[int, list[int]] = {}  # index -> permutation for the permuted ones
        self.views: list[torch.Tensor] = []
        for i, p in enumerate(params):
            order = dense_order(p)
            if order is None:
                self.views.append(p)
            else:
                self.orders[i] = order
                self.views.append(p.detach().permute(order))

    def parameters(self) -> list[torch.Tensor]:
        return self.views

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Hand the gradients to the views before each step; keep the optimizer's state dict
        in the weights' shapes."""
        if not self.orders:
            return
        optimizer.register_step_pre_hook(lambda *_: self.grads_to_views())
        optimizer.register_state_dict_post_hook(self._state_to_weight_shapes)
        optimizer.register_load_state_dict_pre_hook(self._state_to_view_shapes)

    def grads_to_views(self) -> None:
        """Each permuted weight's gradient, permuted, becomes its view's; the weight's own is
        dropped (the next backward starts a fresh one, as ``zero_grad(set_to_none=True)``)."""
        for i, order in self.orders.items():
            p, view = self.params[i], self.views[i]
            view.grad = None if p.grad is None else p.grad.detach().permute(order)
            p.grad = None

    def _permute_state(self, state: dict[str, Any], inverse: bool) -> dict[str, Any]:
        """``state`` with a new per-parameter dict for each permuted weight (the live ones
        the optimizer keeps are not touched), its moments permuted."""
        moments = state.get("state")
        if not isinstance(moments, dict):
            return state
        moments = dict(moments)
        for i, order in self.orders.items():
            if not isinstance(moments.get(i), dict):
                continue
            if inverse:
                order = sorted(range(len(order)), key=order.__getitem__)
            moments[i] = {key: _permuted(v, order, inverse) for key, v in moments[i].items()}
        return {**state, "state": moments}

    def _state_to_weight_shapes(self, _opt: Any, state: dict[str, Any]) -> dict[str, Any]:
        return self._permute_state(state, inverse=True)

    def _state_to_view_shapes(self, _opt: Any, state: dict[str, Any]) -> dict[str, Any]:
        return self._permute_state(state, inverse=False)
