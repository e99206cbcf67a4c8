"""torch.distributed set-up for runs launched by ``torchrun`` (no launcher of our own)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (NCCL on CUDA, gloo on
    CPU); a plain run gets a one-process DistInfo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if device_kind == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank)


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any (a no-op outside distributed runs)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def broadcast_float(value: float, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t.item())


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


#: Texts of the collective errors a rank gets when another process of the run is gone.
_PEER_LOST = (
    "Connection closed by peer",
    "Connection reset by peer",
    "Broken pipe",
    "remote worker crashing",
    "NCCL communicator was aborted",
)


def peer_lost(exc: BaseException) -> str | None:
    """When ``exc`` is the error a collective raises on a rank whose peer died (torchrun,
    gloo or NCCL), the one line to print instead of its traceback; else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    dist_error = getattr(dist, "DistError", ())
    text = str(exc)
    if not (isinstance(exc, dist_error) or any(t in text for t in _PEER_LOST)):
        return None
    match = next((t for t in _PEER_LOST if t in text), type(exc).__name__)
    return (
        f"rank {os.environ.get('RANK', '?')}: another process of this run stopped ({match}); "
        "its own error is above. The run keeps its last checkpoint: continue with "
        "`ganzoo train --resume RUN_DIR --nproc N`"
    )


def leave_after_lost_peer(code: int) -> None:
    """End this rank at once with ``code`` when its process group is live: once a peer died,
    the group cannot be torn down cleanly (gloo's threads can abort the interpreter's exit with
    SIGABRT, "terminate called without an active exception"). Nothing is lost: the checkpoint
    on disk is the last complete one."""
    if dist.is_available() and dist.is_initialized():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
