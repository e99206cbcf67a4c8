"""ganzoo's own trainer replays the upstream pix2pix training trajectories.

The fixtures (../shared/fixtures/reference_pix2pix, skipped when absent) hold the initial
weights of two upstream runs in the upstream checkpoint format, the exact tensors of their 9
steps, every step's learning rate and losses, and the final weights. The tests import the
initial weights with ``ganzoo import``'s code, resume that run directory with ganzoo's
``Trainer`` (its step, schedule and optimizers; fp32, NCHW, unfused Adam) on those tensors
through the public ``train_batches`` seam, and compare:

1. with an independent transcription of the upstream update (``pix2pix_model.
   optimize_parameters``, ``GANLoss``, the linear ``lr_lambda``) run in the same process:
   every loss and every final tensor must be *bit-identical*;
2. with the recorded trajectory: the first step's losses within 1e-6 (only forward rounding
   differs), and every step's losses and the final weights within twice the distance between
   two ganzoo runs that differ only in their thread count. CPU convolution kernels round
   differently on other hardware and thread counts (a 1-2 ulp difference in the very first
   forward pass here), and Adam turns such noise in near-zero gradients into differences of
   up to one learning rate, so the recorded trajectory can only be matched to that noise floor
   on a machine other than the one that recorded it (docs/faithfulness.md gives the numbers).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from conftest import ROOT

from ganzoo.run_dir import RunDir
from ganzoo.training.batches import GivenBatches
from ganzoo.training.trainer import Trainer
from ganzoo.upstream import import_checkpoint
from ganzoo.upstream.importer import load_upstream
from ganzoo.upstream.weights import to_ganzoo

FIXTURES = ROOT.parent / "shared" / "fixtures" / "reference_pix2pix"
CASES = ["unet128_basic_batch_vanilla", "resnet6_nlayers2_instance_lsgan"]
LOSSES = (("g_gan", "G_GAN"), ("g_l1", "G_L1"), ("d_real", "D_real"), ("d_fake", "D_fake"))
REPLAY = [
    "train.precision=reference",  # the documented switch: fp32, NCHW, for-loop Adam
    "train.log_every=1",
    "train.max_steps=9",
]

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/fixtures is absent"),
]


def fixture(case: str) -> tuple[Path, dict, list[dict[str, torch.Tensor]]]:
    folder = FIXTURES / case
    trajectory = json.loads((folder / "trajectory.json").read_text())
    tensors = torch.load(folder / "batches.pt", weights_only=True)
    batches = [{"A": tensors[f"real_A_{k}"], "B": tensors[f"real_B_{k}"]} for k in range(9)]
    return folder, trajectory, batches


def flags(options: dict) -> str:
    """The upstream command line of a fixture's recorded options."""
    words = []
    for key, value in options.items():
        if key == "max_dataset_size":
            continue
        if isinstance(value, bool):
            words += [f"--{key}"] if value else []
        else:
            words += [f"--{key}", str(value)]
    return " ".join(words)


def replay(case: str, tmp_path: Path, threads: int) -> tuple[list[dict], dict, Trainer]:
    """Import the fixture's initial weights and train 9 steps with ganzoo's Trainer."""
    folder, trajectory, batches = fixture(case)
    run = tmp_path / f"{case}-{threads}"
    import_checkpoint(
        folder / "init_net_G.pth",
        run,
        flags=flags(trajectory["options"]),
        discriminator=folder / "init_net_D.pth",
    )
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        recipe = RunDir(run).resume_recipe(REPLAY)
        epochs = GivenBatches([batches[0:3], batches[3:6], batches[6:9]])
        with Trainer(
            recipe,
            run,
            resume=True,
            progress=False,
            train_batches=epochs,
            val_batches=GivenBatches([batches[:1]]),
        ) as trainer:
            final = trainer.fit()
    finally:
        torch.set_num_threads(before)
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss_d_real" in r]
    state = torch.load(final["checkpoint"], weights_only=True)
    return steps, state, trainer


def upstream_losses(records: list[dict], l1_weight: float) -> list[dict[str, float]]:
    """ganzoo's logged losses in the upstream's terms (G_L1 already times lambda_L1, in fp32)."""
    out = []
    for r in records:
        l1 = torch.tensor(r["loss_g_l1"], dtype=torch.float32) * l1_weight
        out.append(
            {
                "G_GAN": r["loss_g_gan"],
                "G_L1": l1.item(),
                "D_real": r["loss_d_real"],
                "D_fake": r["loss_d_fake"],
                "lr": r["lr_g"],
            }
        )
    return out


# -- 1. bit for bit against a transcription of the upstream update ----------------------------
def upstream_update(G: nn.Module, D: nn.Module, options: dict, batches: list[dict]) -> list:
    """pytorch-CycleGAN-and-pix2pix's training of ``G`` and ``D`` on ``batches``, as its code
    reads (models/pix2pix_model.py optimize_parameters, models/networks.py GANLoss and the
    linear lr_lambda of get_scheduler, train.py's epoch loop); the networks are ganzoo's."""
    lr, beta1 = options["lr"], options["beta1"]
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(beta1, 0.999))

    def lambda_rule(epoch: int) -> float:  # epoch_count 1
        return 1.0 - max(0, epoch + 1 - options["n_epochs"]) / float(options["n_epochs_decay"] + 1)

    scheds = [torch.optim.lr_scheduler.LambdaLR(o, lr_lambda=lambda_rule) for o in (opt_g, opt_d)]
    criterion = nn.BCEWithLogitsLoss() if options["gan_mode"] == "vanilla" else nn.MSELoss()

    def gan_loss(prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = torch.tensor(1.0 if target_is_real else 0.0).expand_as(prediction)
        return criterion(prediction, target)

    def net_d(x: torch.Tensor) -> torch.Tensor:
        return D(x)[0][-1]  # ganzoo's D returns [[features..., logits]]

    losses, epochs = [], options["n_epochs"] + options["n_epochs_decay"]
    per_epoch = len(batches) // epochs
    for epoch in range(epochs):
        for data in batches[epoch * per_epoch : (epoch + 1) * per_epoch]:
            real_a, real_b = data["A"], data["B"]
            fake_b = G(real_a)  # forward()
            D.requires_grad_(True)  # backward_D, the fake pair first
            opt_d.zero_grad()
            fake_ab = torch.cat((real_a, fake_b), 1)
            loss_d_fake = gan_loss(net_d(fake_ab.detach()), False)
            loss_d_real = gan_loss(net_d(torch.cat((real_a, real_b), 1)), True)
            ((loss_d_fake + loss_d_real) * 0.5).backward()
            opt_d.step()
            D.requires_grad_(False)  # backward_G
            opt_g.zero_grad()
            loss_g_gan = gan_loss(net_d(fake_ab), True)
            loss_g_l1 = nn.L1Loss()(fake_b, real_b) * options["lambda_L1"]
            (loss_g_gan + loss_g_l1).backward()
            opt_g.step()
            losses.append(
                {
                    "G_GAN": loss_g_gan.item(),
                    "G_L1": loss_g_l1.item(),
                    "D_real": loss_d_real.item(),
                    "D_fake": loss_d_fake.item(),
                    "lr": opt_g.param_groups[0]["lr"],
                }
            )
        for s in scheds:
            s.step()
    return losses


@pytest.mark.parametrize("case", CASES)
def test_the_trainer_is_the_upstream_update_bit_for_bit(case: str, tmp_path: Path) -> None:
    folder, trajectory, batches = fixture(case)
    records, state, trainer = replay(case, tmp_path, threads=torch.get_num_threads())
    G, D = trainer.g_module, trainer.d_module
    hint = lambda kind, detail: ""  # noqa: E731 - the import above already checked the fit
    G.load_state_dict(
        to_ganzoo(load_upstream(folder / "init_net_G.pth", "G"), G, hint=hint, file=folder)
    )
    D.load_state_dict(
        to_ganzoo(load_upstream(folder / "init_net_D.pth", "D"), D, hint=hint, file=folder)
    )
    G.train(), D.train()
    expected = upstream_update(G, D, trajectory["options"], batches)
    got = upstream_losses(records, trajectory["options"]["lambda_L1"])
    assert got == expected  # every loss and learning rate, exactly
    for name, tensors in (("generator", G.state_dict()), ("discriminator", D.state_dict())):
        different = [k for k, v in tensors.items() if not torch.equal(v, state[name][k])]
        assert not different, (name, different[:3])


# -- 2. against the recorded upstream trajectory ----------------------------------------------
def _worst_loss_difference(a: list[dict], b: list[dict]) -> float:
    return max(abs(x[k] - y[k]) / abs(y[k]) for x, y in zip(a, b, strict=True) for _, k in LOSSES)


def _worst_weight_difference(a: dict, b: dict) -> float:
    return max((a[k].double() - b[k].double()).abs().max().item() for k in b)


@pytest.mark.parametrize("case", CASES)
def test_the_trainer_tracks_the_recorded_upstream_trajectory(case: str, tmp_path: Path) -> None:
    folder, trajectory, _ = fixture(case)
    l1_weight = trajectory["options"]["lambda_L1"]
    one, state_one, trainer = replay(case, tmp_path, threads=1)
    two, state_two, _ = replay(case, tmp_path, threads=2)
    recorded = trajectory["steps"]
    ours = upstream_losses(one, l1_weight)
    # the learning rates of the linear schedule, step by step
    assert [s["lr"] for s in ours] == pytest.approx([s["lr"] for s in recorded], rel=1e-12)
    # step 1: no update yet, only the rounding of the forward pass can differ
    for _, key in LOSSES:
        assert ours[0][key] == pytest.approx(recorded[0][key], rel=1e-6), key
    # every step and the final weights: as close as two ganzoo runs on 1 and 2 threads are
    noise_losses = _worst_loss_difference(upstream_losses(two, l1_weight), ours)
    noise_weights = _worst_weight_difference(state_two["generator"], state_one["generator"])
    final_g = to_ganzoo(
        load_upstream(folder / "final_net_G.pth", "G"),
        trainer.g_module,
        hint=lambda kind, detail: "",
        file=folder,
    )
    worst_losses = _worst_loss_difference(ours, recorded)
    worst_weights = _worst_weight_difference(state_one["generator"], final_g)
    assert worst_losses <= max(1e-5, 2 * noise_losses), (worst_losses, noise_losses)
    assert worst_weights <= max(1e-6, 2 * noise_weights), (worst_weights, noise_weights)
