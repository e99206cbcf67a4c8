"""Data-parallel training through torch.distributed: 2 CPU processes under gloo."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from conftest import tiny_recipe

from ganzoo.artifacts.checkpoint import list_checkpoints, load_checkpoint
from ganzoo.training.trainer import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, data: str, out: str, overrides: list[str]) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    trainer, final = train(
        tiny_recipe(Path(data), *overrides), run_dir=Path(out) / "run", progress=False
    )
    # parameters, not buffers: DDP broadcasts BatchNorm running stats from rank 0 at each
    # forward, so after the last forward each rank holds its own batch's update
    state = {
        "G": {k: v.detach() for k, v in trainer.g_module.named_parameters()},
        "D": {k: v.detach() for k, v in trainer.d_module.named_parameters()},
        "step": final["step"],
    }
    torch.save(state, Path(out) / f"rank{rank}.pt")
    from ganzoo.training.distributed import shutdown_distributed

    shutdown_distributed()


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16-master"])
def test_two_gloo_ranks_stay_identical_and_resume_single_process(
    tiny_data: Path, tmp_path: Path, precision: str
) -> None:
    """bf16-master too (the CPU default where bf16 is fast): gloo reduces the bf16 gradients
    and every rank's fused optimizer pass keeps the masters identical."""
    overrides = [
        "train.max_steps=4",
        "generator.norm=syncbatch",
        "discriminator.norm=batch",
        f"train.precision={precision}",
    ]
    mp.start_processes(
        _worker,
        args=(2, _free_port(), str(tiny_data), str(tmp_path), overrides),
        nprocs=2,
        join=True,
        start_method="spawn",
    )
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["step"] == r1["step"] == 4
    for net in ("G", "D"):
        for k in r0[net]:
            assert torch.equal(r0[net][k], r1[net][k]), f"{net}.{k} differs between ranks"
    # only rank 0 wrote the run directory; its checkpoint resumes in a single process
    run = tmp_path / "run"
    ckpt = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])
    k = next(iter(r0["G"]))  # bf16-master: the checkpoint's fp32 master rounds to the weight
    assert ckpt["step"] == 4 and torch.equal(ckpt["generator"][k].to(r0["G"][k].dtype), r0["G"][k])
    _, final = train(
        None, run_dir=run, resume=True, overrides=["train.max_steps=6"], progress=False
    )
    assert final["step"] == 6


def _stopping_worker(
    rank: int, world: int, port: int, data: str, out: str, event: str, stop_rank: int, at: int
) -> None:
    """A run where ``stop_rank`` alone requests a stop at ``event`` of step ``at``: what a
    Ctrl-C handled there does (the handler runs between any two Python lines)."""
    from ganzoo.training.callbacks import CallbackList

    emit = CallbackList.emit

    def emit_then_stop(self, name: str, trainer, *args) -> None:  # noqa: ANN001
        emit(self, name, trainer, *args)
        if name == event and rank == stop_rank and trainer.step == at:
            trainer.request_stop("SIGINT")

    CallbackList.emit = emit_then_stop
    _worker(rank, world, port, data, out, ["train.max_steps=50"])


@pytest.mark.slow
@pytest.mark.parametrize("event, stop_rank, at", [("on_step_end", 0, 2), ("on_epoch_end", 1, 3)])
def test_a_stop_on_one_rank_ends_every_rank_at_the_same_step_with_a_checkpoint(
    tiny_data: Path, tmp_path: Path, event: str, stop_rank: int, at: int
) -> None:
    """A stop requested on one rank after the ranks exchanged their stop flags for the step
    (a signal handled while the step's callbacks run, or at an epoch's end) used to end that
    rank's loop alone: it saved while the other rank went on, and both waited for each
    other's collectives until torchrun killed them, without a checkpoint."""
    context = mp.start_processes(
        _stopping_worker,
        args=(2, _free_port(), str(tiny_data), str(tmp_path), event, stop_rank, at),
        nprocs=2,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + 120  # a hang's bound, never a measured threshold
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the ranks waited for each other after one rank's stop")
    steps = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True)["step"] for r in (0, 1)]
    assert steps == [at, at]
    assert load_checkpoint(list_checkpoints(tmp_path / "run" / "checkpoints")[-1])["step"] == at
