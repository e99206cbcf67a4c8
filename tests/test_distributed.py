"""Data-parallel training through torch.distributed: 2 CPU processes under gloo."""

from __future__ import annotations

import os
import socket
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
