"""The keys of ``RUN_DIR/metrics.jsonl`` records, defined once.

Every record holds ``step`` and ``epoch``. Each built-in callback
(:mod:`ganzoo.training.callbacks`) owns the keys it writes:

* ``losses`` (every ``train.log_every`` steps): ``loss_<name>`` for each loss of the step
  (:data:`LOSS_PREFIX`), the diagnostics :data:`DIAGNOSTICS`, the learning rates :data:`LR`
  and the speed :data:`SPEED`;
* ``validation`` (every ``train.sample_every`` steps): ``val_<metric>`` for each metric it
  scores (:data:`VAL_PREFIX`; :data:`VAL_L1` and :data:`VAL_PSNR` by default, any of
  :data:`LOWER_IS_BETTER`).

A plugin callback writes keys of its own; readers go through
:func:`ganzoo.run_records.read_records` (:meth:`ganzoo.run_dir.RunDir.metrics`).
"""

from __future__ import annotations

STEP = "step"
EPOCH = "epoch"
#: ``loss_<name>``: a loss averaged over the log interval (``loss_d``, ``loss_g_gan``, ...).
LOSS_PREFIX = "loss_"
#: D's outputs, its accuracy, the gradient norms and the step terms' diagnostics (ADA's
#: augmentation probability ``ada_p``): averaged over the interval, unprefixed.
ADA_P = "ada_p"
DIAGNOSTICS = ("d_out_real", "d_out_fake", "d_acc", "grad_norm_g", "grad_norm_d", ADA_P)
#: The learning rates of G and D at the logged step.
LR_G, LR_D = "lr_g", "lr_d"
LR = (LR_G, LR_D)
#: Wall time per step (ms) and throughput over the log interval.
MS_PER_STEP, IMAGES_PER_S = "ms_per_step", "images_per_s"
SPEED = (MS_PER_STEP, IMAGES_PER_S)
#: ``val_<metric>``: the eval generator scored on ``train.val_batches`` val batches.
VAL_PREFIX = "val_"
VAL_L1, VAL_PSNR = "val_l1", "val_psnr"
#: The image metrics validation and ``ganzoo eval`` know, and whether lower is better
#: (``kid`` also writes ``kid_std``).
LOWER_IS_BETTER = {
    "l1": True,
    "psnr": False,
    "ssim": False,
    "lpips_alex": True,
    "lpips_vgg": True,
    "dists": True,
    "fid": True,
    "kid": True,
}
#: The prefixes of the curves a run is judged by (plots, reports, the final record).
CURVES = (LOSS_PREFIX, VAL_PREFIX)


def metric_names(names: list[str] | tuple[str, ...], where: str) -> tuple[str, ...]:
    """``names`` without ``val_`` prefixes or repeats, each one of :data:`LOWER_IS_BETTER`; a
    one-line RecipeError naming the first unknown one (``where``: the setting)."""
    from ganzoo.errors import RecipeError, did_you_mean

    out: list[str] = []
    for name in names:
        bare = name.removeprefix(VAL_PREFIX)
        if bare not in LOWER_IS_BETTER:
            hint = did_you_mean(bare, list(LOWER_IS_BETTER))
            raise RecipeError(
                f"{where}: unknown metric {name!r}{'; ' + hint if hint else ''} "
                f"(known: {', '.join(LOWER_IS_BETTER)})"
            )
        if bare not in out:
            out.append(bare)
    return tuple(out)


def loss_key(name: str) -> str:
    """``g_gan`` -> ``loss_g_gan``."""
    return LOSS_PREFIX + name


def is_loss(key: str) -> bool:
    return key.startswith(LOSS_PREFIX)
