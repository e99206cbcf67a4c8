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

import logging
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


#: "kernel": the compiled update, or :func:`adam_update` itself once compiling failed
_compiled: dict[str, Callable[..., None]] = {}


class _NoCudaHomeNote(logging.Filter):
    """Drops the C++ toolchain's "No CUDA runtime is found, using CUDA_HOME=..." warning,
    which Inductor's first CPU compile prints on machines without CUDA (a training console
    would show it as if something were wrong)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No CUDA runtime is found" not in record.getMessage()


def _kernel(compiled: bool) -> Callable[..., None]:
    """:func:`adam_update`, compiled once per process where asked and possible."""
    if not compiled:
        return adam_update
    if "kernel" not in _compiled:
        toolchain = logging.getLogger("torch.utils.cpp_extension")
        if not any(isinstance(f, _NoCudaHomeNote) for f in toolchain.filters):
            toolchain.addFilter(_NoCudaHomeNote())
        _compiled["kernel"] = torch.compile(adam_update, dynamic=True)
    return _compiled["kernel"]


def _flat(t: torch.Tensor) -> torch.Tensor:
    """A 1-D tensor over a dense tensor's memory (any layout); not a view, so the compiled
    kernel's guards do not depend on the shape it came from."""
    return t.new_empty(0).set_(t.untyped_storage(), t.storage_offset(), (t.numel(),), (1,))


class MasterAdam(torch.optim.Adam):
    """``torch.optim.Adam`` over ``masters.parameters()`` whose ``step`` takes each master's
    gradient from its bf16 weight and writes the bf16 weight back, in one pass (module doc).
    Parameters left in fp32 (norms, spectral-normed layers) step by the same arithmetic,
    gathered into one pass. ``compiled=False`` (``optim.fused: false``) runs the kernel
    uncompiled: the same results, slower."""

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
        """One update of every parameter with a gradient: each bf16 weight's master in its own
        pass, the parameters kept in fp32 (tiny: norms' affine terms) gathered into one."""
        if closure is not None:
            raise ValueError("MasterAdam.step takes no closure")
        for group in self.param_groups:
            scalars: dict[float, torch.Tensor] = {}  # by step count
            rest: dict[float, list[torch.Tensor]] = {}  # fp32 parameters by step count
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
                if t not in scalars:
                    scalars[t] = _scalars(group, t)
                if weight is None:
                    rest.setdefault(t, []).append(param)
                    continue
                self._update(param, grad, state, scalars[t], weight)
                weight.grad = None
            for t, params in rest.items():
                self._update_gathered(params, scalars[t])

    def _update(
        self,
        param: torch.Tensor,
        grad: torch.Tensor,
        state: dict[str, torch.Tensor],
        scalars: torch.Tensor,
        weight: torch.Tensor | None,
    ) -> None:
        tensors = [param, grad, state["exp_avg"], state["exp_avg_sq"]]
        tensors += [weight] if weight is not None else []
        dense = (param.is_contiguous() or dense_order(param) is not None) and all(
            t.stride() == param.stride() for t in tensors
        )
        if dense:  # the kernel over flat memory (one compiled variant for every shape)
            tensors = [_flat(t) for t in tensors]
        self._run(tensors, scalars)  # else over the tensors as they are (elementwise too)

    def _update_gathered(self, params: list[torch.Tensor], scalars: torch.Tensor) -> None:
        """Parameters without a bf16 weight: gathered into flat copies, updated in one
        kernel call (the same arithmetic per element), scattered back."""
        states = [self.state[p] for p in params]
        columns = [params, [p.grad for p in params]]
        columns += [[s[k] for s in states] for k in ("exp_avg", "exp_avg_sq")]
        flat = [torch.cat([t.reshape(-1) for t in column]) for column in columns]
        self._run(flat, scalars)
        sizes = [p.numel() for p in params]
        for column, updated in zip(columns[:1] + columns[2:], flat[:1] + flat[2:]):
            parts = [u.view_as(t) for u, t in zip(updated.split(sizes), column)]
            torch._foreach_copy_(column, parts)

    def _run(self, tensors: list[torch.Tensor], scalars: torch.Tensor) -> None:
        kernel = _kernel(self.compiled)
        try:
            kernel(*tensors[:4], scalars, *tensors[4:])
        except Exception as e:  # noqa: BLE001 - no C++ compiler, or any Inductor failure
            if kernel is adam_update:  # not a compile failure
                raise
            _compiled["kernel"] = adam_update
            warnings.warn(
                f"train.precision bf16-master: the fused optimizer kernel could not be "
                f"compiled ({type(e).__name__}: {str(e).splitlines()[0][:160]}); it runs "
                "uncompiled, with the same results, slower (install a C++ compiler, e.g. g++)",
                stacklevel=2,
            )
            adam_update(*tensors[:4], scalars, *tensors[4:])


def _scalars(group: dict[str, Any], t: float) -> torch.Tensor:
    """:func:`adam_update`'s scalars for step ``t`` of ``group`` (computed in float64)."""
    beta1, beta2 = group["betas"]
    return torch.tensor(
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
