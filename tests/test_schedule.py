"""Learning-rate schedules: the reference's linear decay exactly, and the others by shape."""

from __future__ import annotations

import pytest
import torch

from ganzoo.recipe import ScheduleSection
from ganzoo.training.schedule import build_scheduler, total_epochs


def lrs(schedule: ScheduleSection, epochs: int, metrics: list[float] | None = None) -> list[float]:
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=2e-4)
    sched = build_scheduler(opt, schedule)
    out = []
    for e in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()  # an epoch of training, as the trainer does before stepping the schedule
        if metrics:
            sched.step(metrics[e])
        else:
            sched.step()
    return out


def test_linear_is_the_pix2pix_rule() -> None:
    # pix2pix: lr * (1 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1)), epoch from 0
    s = ScheduleSection(name="linear", epochs=100, decay_epochs=100)
    got = lrs(s, 200)
    for epoch, lr in enumerate(got):
        expected = 2e-4 * (1.0 - max(0, epoch + 1 - 100) / 101.0)
        assert lr == pytest.approx(expected, rel=1e-9)
    assert got[99] == pytest.approx(2e-4) and got[199] == pytest.approx(2e-4 / 101)
    assert total_epochs(s) == 200


def test_step_cosine_plateau_constant() -> None:
    step = lrs(ScheduleSection(name="step", step_size=2, gamma=0.5), 5)
    assert step == pytest.approx([2e-4, 2e-4, 1e-4, 1e-4, 5e-5])
    cosine = lrs(ScheduleSection(name="cosine", epochs=4), 5)
    assert cosine[0] == pytest.approx(2e-4) and cosine[2] == pytest.approx(1e-4)
    assert cosine[4] == pytest.approx(0.0, abs=1e-12)
    assert total_epochs(ScheduleSection(name="cosine", epochs=4, decay_epochs=9)) == 4
    # plateau: no improvement for more than `patience` epochs multiplies the lr by gamma
    plateau = lrs(ScheduleSection(name="plateau", patience=1, gamma=0.1), 5, [1, 1, 1, 1, 1])
    assert plateau[:3] == pytest.approx([2e-4] * 3) and plateau[3] == pytest.approx(2e-5)
    assert lrs(ScheduleSection(name="constant"), 3) == pytest.approx([2e-4] * 3)


def test_linear_in_pix2pixhd_form() -> None:
    # pix2pixHD's update_learning_rate: after every epoch past niter, lr -= lr0 / niter_decay,
    # so epoch niter + k (from 1) trains with lr0 * (1 - (k - 1) / niter_decay)
    s = ScheduleSection(name="linear", form="pix2pixhd", epochs=3, decay_epochs=4)
    got = lrs(s, 7)
    assert got == pytest.approx([2e-4] * 4 + [1.5e-4, 1e-4, 0.5e-4])
    assert total_epochs(s) == 7
