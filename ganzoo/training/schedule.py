"""Learning-rate schedules, stepped once per epoch as in the pix2pix reference."""

from __future__ import annotations

from torch import optim

from ganzoo.recipe import ScheduleSection


def total_epochs(schedule: ScheduleSection) -> int:
    """Epochs a full run lasts: ``total_epochs`` where set, else ``epochs`` plus
    ``decay_epochs`` for the linear schedule."""
    if schedule.total_epochs is not None:
        return schedule.total_epochs
    return schedule.epochs + (schedule.decay_epochs if schedule.name == "linear" else 0)


def build_scheduler(optimizer: optim.Optimizer, schedule: ScheduleSection):  # noqa: ANN201
    """A torch scheduler for ``schedule``; call ``.step()`` after each epoch
    (``.step(val_l1)`` for ``plateau``)."""
    if schedule.name == "linear" and schedule.form == "pix2pixhd":
        epochs, decay = schedule.epochs, schedule.decay_epochs

        # pix2pixHD's update_learning_rate: after each epoch past niter, lr -= lr0 / niter_decay
        def factor_hd(epoch: int) -> float:
            return 1.0 - max(0, epoch - epochs) / float(max(decay, 1))

        return optim.lr_scheduler.LambdaLR(optimizer, factor_hd)
    if schedule.name == "linear":
        epochs, decay = schedule.epochs, schedule.decay_epochs

        # pix2pix: lr_l = 1 - max(0, epoch + epoch_count - n_epochs) / (n_epochs_decay + 1)
        def factor(epoch: int) -> float:
            return 1.0 - max(0, epoch + 1 - epochs) / float(decay + 1)

        return optim.lr_scheduler.LambdaLR(optimizer, factor)
    if schedule.name == "step":
        return optim.lr_scheduler.StepLR(optimizer, schedule.step_size, gamma=schedule.gamma)
    if schedule.name == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, schedule.epochs))
    if schedule.name == "plateau":
        return optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=schedule.gamma, patience=schedule.patience
        )
    return optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
