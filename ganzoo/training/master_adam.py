"""Adam over fp32 masters of bf16 weights, one pass per tensor (``bf16-master`` on the CPU).

The master-weights scheme of :mod:`ganzoo.training.master_weights` with its two copies fused
into the update: for each weight one elementwise kernel reads the bf16 gradient, the fp32
master and both fp32 moments, and writes the master, the moments and the bf16 weight the next
forward uses. That moves 28 bytes per parameter; the separate passes (gradient copy to fp32 6,
Adam 28, rounding back 6) and bf16 autocast's casts (the weight to bf16 at every forward, its
gradient back) move 40 (docs/performance.md, "Master weights in one pass").

The kernel is one function of PyTorch elementwise operations in a fixed order, no fused
multiply-add and no reassociation: ``torch.compile`` turns it into one loop on the CPU
(Inductor compiles with floating-point contraction off), and where compiling is impossible
(no C++ compiler) it runs as written, slower, with the same results bit for bit. The update is
PyTorch's Adam (L2 weight decay added to the gradient, bias-corrected moments, ``eps`` outside
the square root); it matches ``torch.optim.Adam`` to rounding. The optimizer *is* a
``torch.optim.Adam`` with its ``step`` replaced, so its state dict is Adam's and checkpoints
move between precisions.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch

from ganzoo.training.dense_views import dense_order
from ganzoo.training.master_weights import MasterWeights


def _sqrt(v: torch.Tensor) -> torch.Tensor:
    """The correctly rounded square root: Inductor's vectorised one is; eager PyTorch's on
    the CPU is not (it differs in the last bit for ~20 % of fp32 inputs), so uncompiled it is
    taken in float64 and rounded once (exact for a square root)."""
    if torch.compiler.is_compiling():
        return v.sqrt()
    return v.double().sqrt().float()


def adam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    scalars: torch.Tensor,
    weight: torch.Tensor | None = None,
) -> None:
    """One Adam update of ``param`` (fp32) in place, with ``grad`` (any float dtype) and the
    fp32 moments; ``weight`` (bf16), when given, receives the updated ``param`` rounded.
    ``scalars`` (fp32): ``[1 - beta1, beta2, 1 - beta2, 1 / sqrt(1 - beta2^t), eps,
    -lr / (1 - beta1^t), weight_decay]`` (a reciprocal, not a division by a scalar, which
    eager PyTorch and Inductor round differently). All tensors share one shape and layout."""
    g = grad.float() + param * scalars[6]
    m = exp_avg + (g - exp_avg) * scalars[0]
    v = exp_avg_sq * scalars[1] + g * g * scalars[2]
    p = param + m / (_sqrt(v) * scalars[3] + scalars[4]) * scalars[5]
    exp_avg.copy_(m)
    exp_avg_sq.copy_(v)
    param.copy_(p)
    if weight is not None:
        weight.copy_(p)


_compiled: dict[str, Callable[..., None]] = {}


def _kernel(compiled: bool) -> Callable[..., None]:
    """:func:`adam_update`, compiled once per process where asked and possible."""
    if not compiled or "failed" in _compiled:
        return adam_update
    if "kernel" not in _compiled:
        _compiled["kernel"] = torch.compile(adam_update, dynamic=True)
    return _compiled["kernel"]


def _flat(t: torch.Tensor) -> torch.Tensor:
    """The 1-D view of a dense tensor's memory (any layout)."""
    return torch.as_strided(t.detach(), (t.numel(),), (1,), t.storage_offset())


class MasterAdam(torch.optim.Adam):
    """``torch.optim.Adam`` over ``masters.parameters()`` whose ``step`` takes each master's
    gradient from its bf16 weight and writes the bf16 weight back, in one pass (module doc).
    Parameters left in fp32 (norms, spectral-normed layers) step the same way, without the
    rounding. ``compiled=False`` runs the kernel uncompiled (same results, slower)."""

    def __init__(
        self,
        masters: MasterWeights,
        lr: float,
        betas: tuple[float, float],
        weight_decay: float = 0.0,
        eps: float = 1e-8,
        compiled: bool = True,
    ) -> None:
        super().__init__(
            masters.parameters(), lr=lr, betas=betas, eps=eps, weight_decay=weight_decay
        )
        self.weights = {id(master): weight for weight, master in masters.pairs}
        self.compiled = compiled

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)
        for weight in self.weights.values():
            weight.grad = None

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Adam's, then each moment laid out as its parameter (a checkpoint of another
        precision or layout may hold them contiguous)."""
        super().load_state_dict(state_dict)
        for param, state in self.state.items():
            for key in ("exp_avg", "exp_avg_sq"):
                value = state.get(key)
                if isinstance(value, torch.Tensor) and value.stride() != param.stride():
                    state[key] = torch.empty_like(param).copy_(value)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> None:
        if closure is not None:
            raise ValueError("MasterAdam.step takes no closure")
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                weight = self.weights.get(id(param))
                grad = (weight if weight is not None else param).grad
                if grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                t = state["step"].item()
                scalars = torch.tensor(
                    [
                        1 - beta1,
                        beta2,
                        1 - beta2,
                        1 / math.sqrt(1 - beta2**t),
                        group["eps"],
                        -group["lr"] / (1 - beta1**t),
                        group["weight_decay"],
                    ]
                )
                self._update(param, grad, state["exp_avg"], state["exp_avg_sq"], scalars, weight)
                if weight is not None:
                    weight.grad = None

    def _update(self, param, grad, exp_avg, exp_avg_sq, scalars, weight) -> None:  # noqa: ANN001
        tensors = [param, grad, exp_avg, exp_avg_sq] + ([weight] if weight is not None else [])
        dense = (param.is_contiguous() or dense_order(param) is not None) and all(
            t.stride() == param.stride() for t in tensors
        )
        if not dense:  # a layout the flat kernel cannot take: elementwise in place, as written
            adam_update(param, grad, exp_avg, exp_avg_sq, scalars, weight)
            return
        flat = [_flat(t) for t in tensors]
        try:
            _kernel(self.compiled)(*flat[:4], scalars, *flat[4:])
        except Exception as e:  # noqa: BLE001 - no C++ compiler, or any Inductor failure
            if "kernel" not in _compiled or "failed" in _compiled:
                raise
            _compiled["failed"] = adam_update
            warnings.warn(
                f"train.precision bf16-master: the fused optimizer kernel could not be "
                f"compiled ({type(e).__name__}: {str(e).splitlines()[0][:160]}); it runs "
                "uncompiled, with the same results, slower (install a C++ compiler, e.g. g++)",
                stacklevel=2,
            )
            adam_update(*flat[:4], scalars, *flat[4:])
