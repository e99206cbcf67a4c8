"""Upstream options: ``train_opt.txt`` / ``opt.txt`` files or command-line flags -> a recipe.

pix2pix (junyanz/pytorch-CycleGAN-and-pix2pix, ``BaseOptions.print_options``) writes
``checkpoints/NAME/train_opt.txt`` as ``{key:>25}: {value:<30}[\\t[default: x]]`` lines between
``----------------- Options ---------------`` and ``----------------- End -------------------``;
pix2pixHD (NVIDIA/pix2pixHD ``base_options.py``) writes ``checkpoints/NAME/opt.txt`` as
``key: value`` lines between ``------------ Options -------------`` and ``-------------- End
----------------``. Both are read by :func:`read_options`; :func:`parse_flags` reads the
flags a user trained with (``--netG unet_256 --norm batch --no_dropout``) over the upstream
defaults (pix2pix: its ``--model pix2pix`` defaults). :meth:`UpstreamOptions.to_recipe`
gives the equivalent recipe.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ganzoo.errors import RecipeError
from ganzoo.recipe import Recipe, from_dict

Family = Literal["pix2pix", "pix2pixhd"]

#: pytorch-CycleGAN-and-pix2pix defaults under ``--model pix2pix`` (base + train options, with
#: pix2pix_model's modify_commandline_options: norm batch, netG unet_256, aligned data,
#: pool_size 0, gan_mode vanilla, lambda_L1 100).
PIX2PIX_DEFAULTS: dict[str, Any] = {
    "name": "experiment_name",
    "dataroot": "./datasets/facades",
    "model": "pix2pix",
    "input_nc": 3,
    "output_nc": 3,
    "ngf": 64,
    "ndf": 64,
    "netD": "basic",
    "netG": "unet_256",
    "n_layers_D": 3,
    "norm": "batch",
    "init_type": "normal",
    "init_gain": 0.02,
    "no_dropout": False,
    "dataset_mode": "aligned",
    "direction": "AtoB",
    "serial_batches": False,
    "num_threads": 4,
    "batch_size": 1,
    "load_size": 286,
    "crop_size": 256,
    "max_dataset_size": math.inf,
    "preprocess": "resize_and_crop",
    "no_flip": False,
    "n_epochs": 100,
    "n_epochs_decay": 100,
    "beta1": 0.5,
    "lr": 0.0002,
    "gan_mode": "vanilla",
    "pool_size": 0,
    "lr_policy": "linear",
    "lr_decay_iters": 50,
    "lambda_L1": 100.0,
}

#: NVIDIA/pix2pixHD defaults (base_options.py and train_options.py).
PIX2PIXHD_DEFAULTS: dict[str, Any] = {
    "name": "label2city",
    "dataroot": "./datasets/cityscapes/",
    "model": "pix2pixHD",
    "norm": "instance",
    "batchSize": 1,
    "loadSize": 1024,
    "fineSize": 512,
    "label_nc": 35,
    "input_nc": 3,
    "output_nc": 3,
    "resize_or_crop": "scale_width",
    "no_flip": False,
    "nThreads": 2,
    "netG": "global",
    "ngf": 64,
    "n_downsample_global": 4,
    "n_blocks_global": 9,
    "n_blocks_local": 3,
    "n_local_enhancers": 1,
    "niter_fix_global": 0,
    "no_instance": False,
    "instance_feat": False,
    "label_feat": False,
    "feat_num": 3,
    "num_D": 2,
    "n_layers_D": 3,
    "ndf": 64,
    "lambda_feat": 10.0,
    "no_ganFeat_loss": False,
    "no_vgg_loss": False,
    "no_lsgan": False,
    "pool_size": 0,
    "niter": 100,
    "niter_decay": 100,
    "beta1": 0.5,
    "lr": 0.0002,
}

DEFAULTS: dict[Family, dict[str, Any]] = {
    "pix2pix": PIX2PIX_DEFAULTS,
    "pix2pixhd": PIX2PIXHD_DEFAULTS,
}

#: Options that only pix2pixHD has: their presence in a file names the family.
_HD_ONLY = ("n_downsample_global", "label_nc", "niter_fix_global", "num_D", "resize_or_crop")

_PREPROCESS = {
    "resize_and_crop": "resize_and_crop",
    "crop": "crop",
    "scale_width": "scale_width",
    "scale_width_and_crop": "scale_width_and_crop",
    "none": "none",
}


@dataclass
class UpstreamOptions:
    """The options of one upstream run: ``values`` over the family's defaults; ``given`` the
    keys that came from the file or the flags."""

    family: Family
    values: dict[str, Any] = field(default_factory=dict)
    given: set[str] = field(default_factory=set)
    source: str = "flags"

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def describe(self, keys: tuple[str, ...]) -> str:
        """``--netG unet_256 --ngf 64`` for ``keys``, as the upstream flags."""
        parts = []
        for key in keys:
            value = self.values.get(key)
            if isinstance(value, bool):
                if value:
                    parts.append(f"--{key}")
            elif value is not None:
                parts.append(f"--{key} {value}")
        return " ".join(parts)

    def to_recipe(self) -> Recipe:
        """The equivalent ganzoo recipe (one-line RecipeError for options it cannot express)."""
        tree = _pix2pix_tree(self) if self.family == "pix2pix" else _pix2pixhd_tree(self)
        return from_dict(tree, source=f"{self.source} (converted)")


def new_options(family: Family, overrides: dict[str, Any] | None = None) -> UpstreamOptions:
    values = dict(DEFAULTS[family])
    values.update(overrides or {})
    return UpstreamOptions(family, values, set(overrides or {}))


def read_options(path: str | Path, family: Family | None = None) -> UpstreamOptions:
    """An upstream ``train_opt.txt`` / ``opt.txt``; the family is detected from its keys
    unless given. Unknown keys are kept; values are typed by the family's defaults."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        if b"\0" in data:
            raise ValueError
        text = data.decode("utf-8")
    except ValueError:  # a checkpoint, an image, an archive
        raise RecipeError(
            f"{path}: not a text file (a checkpoint or an image?); give the upstream "
            "checkpoints/NAME/train_opt.txt (pix2pix) or opt.txt (pix2pixHD)"
        ) from None
    raw: dict[str, str] = {}
    for line in text.splitlines():
        if line.lstrip().startswith("-") or ": " not in line:
            continue
        key, _, rest = line.partition(": ")
        raw[key.strip()] = rest.split("\t[default:")[0].strip()
    if not raw:
        raise RecipeError(
            f"{path}: no 'key: value' lines; expected an upstream train_opt.txt or opt.txt"
        )
    family = family or ("pix2pixhd" if any(k in raw for k in _HD_ONLY) else "pix2pix")
    options = new_options(family)
    options.source = str(path)
    for key, value in raw.items():
        options.values[key] = _typed(value, DEFAULTS[family].get(key), key, str(path))
        options.given.add(key)
    return options


def parse_flags(
    flags: str, family: Family = "pix2pix", base: UpstreamOptions | None = None
) -> UpstreamOptions:
    """Upstream command-line flags (``--netG unet_128 --no_dropout``) over ``base`` or the
    family's defaults. A flag with no value is a boolean switch."""
    options = base or new_options(family)
    try:
        words = shlex.split(flags)
    except ValueError as exc:
        raise RecipeError(f"--flags {flags!r}: {exc}") from None
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--") or len(word) < 3:
            raise RecipeError(f"--flags: expected --option [value], got {word!r}")
        key = word[2:]
        if i + 1 < len(words) and not words[i + 1].startswith("--"):
            value: Any = _typed(words[i + 1], DEFAULTS[options.family].get(key), key, "--flags")
            i += 2
        else:
            value = True
            i += 1
        options.values[key] = value
        options.given.add(key)
    return options


#: Digits an integer option may have (upstream options are sizes, counts and epochs).
MAX_DIGITS = 12


def _typed(text: str, default: Any, key: str = "", source: str = "") -> Any:
    """``text`` as the type of ``default`` (bool, int, float, str); a one-line RecipeError,
    naming ``source`` and ``key``, for a number that is not one or is out of range."""
    if isinstance(default, bool) or text in ("True", "False"):
        return text == "True" or text.lower() == "true"
    if not isinstance(default, (int, float)):
        return text
    kind = "an integer" if isinstance(default, int) else "a number"
    number: Any = None
    if len(text) <= 40:  # int("1" * 5000) raises; float() of it is inf
        try:
            number = int(text) if isinstance(default, int) else float(text)
        except ValueError:
            pass
    if isinstance(number, int) and len(str(abs(number))) > MAX_DIGITS:
        number = None
        kind += f" of at most {MAX_DIGITS} digits"
    if isinstance(number, float) and not math.isfinite(number) and math.isfinite(default):
        number = None
        kind = "a finite number"
    if number is None:
        shown = text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"
        raise RecipeError(
            f"{source}: --{key} {shown!r} is not {kind} (upstream default {default}); fix the "
            "value or leave the option out"
        )
    return number


def _unsupported(options: UpstreamOptions, key: str, supported: str) -> RecipeError:
    return RecipeError(
        f"{options.source}: --{key} {options.get(key)} has no ganzoo equivalent; supported: "
        f"{supported}"
    )


def _name(options: UpstreamOptions) -> str:
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", str(options.get("name", "imported"))).strip("._-")
    return name[:128] or "imported"


#: pix2pix's GANLoss modes as ganzoo objectives. ``wgangp`` is the critic pix2pix trains:
#: GANLoss gives -mean / +mean and ``backward_D`` halves their sum, but never calls
#: ``cal_gradient_penalty`` (pix2pix_model.py), so no penalty and D loss halved.
_PIX2PIX_OBJECTIVES: dict[str, Any] = {
    "vanilla": "vanilla",
    "lsgan": "lsgan",
    "wgangp": {"name": "wgan_gp", "penalty": 0.0, "d_scale": 0.5},
}


def _pix2pix_tree(o: UpstreamOptions) -> dict[str, Any]:
    net_g = o["netG"]
    if net_g not in ("unet_256", "unet_128", "resnet_9blocks", "resnet_6blocks"):
        raise _unsupported(o, "netG", "unet_256, unet_128, resnet_9blocks, resnet_6blocks")
    norm = o["norm"]
    if norm not in ("batch", "instance", "none", "syncbatch"):
        raise _unsupported(o, "norm", "batch, instance, none, syncbatch")
    init = {"init": o["init_type"], "init_gain": float(o["init_gain"])}
    if o["init_type"] not in ("normal", "xavier", "kaiming", "orthogonal"):
        raise _unsupported(o, "init_type", "normal, xavier, kaiming, orthogonal")
    generator = {"name": net_g, "ngf": o["ngf"], "norm": norm, **init}
    generator["dropout"] = not o["no_dropout"]
    net_d = o["netD"]
    if net_d == "basic":
        discriminator = {"name": "patchgan", "n_layers": 3}
    elif net_d == "n_layers":
        discriminator = {"name": "patchgan", "n_layers": o["n_layers_D"]}
    elif net_d == "pixel":
        discriminator = {"name": "pixel"}
    else:
        raise _unsupported(o, "netD", "basic, n_layers, pixel")
    discriminator |= {"ndf": o["ndf"], "norm": norm, **init}
    objective = _PIX2PIX_OBJECTIVES.get(o["gan_mode"])
    if objective is None:
        raise _unsupported(o, "gan_mode", "vanilla, lsgan, wgangp")
    preprocess, load, crop = o["preprocess"], int(o["load_size"]), int(o["crop_size"])
    if preprocess == "resize":  # resize to load_size, no crop: the networks see load_size
        preprocess, crop = "resize_and_crop", load
    if preprocess not in _PREPROCESS:
        raise _unsupported(o, "preprocess", "resize_and_crop, crop, scale_width, ..., resize, none")
    policy = o["lr_policy"]
    # train.py runs n_epochs + n_epochs_decay epochs whatever the policy (networks.py
    # get_scheduler; cosine anneals over n_epochs only)
    n_epochs, decay = o["n_epochs"], o["n_epochs_decay"]
    for key, value in (("n_epochs", n_epochs), ("n_epochs_decay", decay)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{o.source}: --{key} {value!r} is not a whole number of epochs")
    if policy == "linear":
        schedule = {"name": "linear", "epochs": o["n_epochs"], "decay_epochs": o["n_epochs_decay"]}
    elif policy == "step":
        schedule = {"name": "step", "step_size": o["lr_decay_iters"], "gamma": 0.1}
    elif policy == "plateau":
        schedule = {"name": "plateau", "gamma": 0.2, "patience": 5}
    elif policy == "cosine":
        schedule = {"name": "cosine", "epochs": o["n_epochs"]}
    else:
        raise _unsupported(o, "lr_policy", "linear, step, plateau, cosine")
    if policy != "linear":
        schedule["total_epochs"] = n_epochs + decay
    return {
        "name": _name(o),
        "seed": 0,
        "data": {
            "name": "aligned",
            "root": str(o["dataroot"]),
            "direction": o["direction"],
            "in_channels": o["input_nc"],
            "out_channels": o["output_nc"],
            "preprocess": _PREPROCESS[preprocess],
            "load_size": load,
            "crop_size": crop,
            "flip": not o["no_flip"],
            "batch_size": o["batch_size"],
            "num_workers": min(int(o["num_threads"]), 256),
        },
        "generator": generator,
        "discriminator": discriminator,
        "loss": {"objective": objective, "l1": float(o["lambda_L1"])},
        "optim": {
            "lr_g": float(o["lr"]),
            "lr_d": float(o["lr"]),
            "betas": [float(o["beta1"]), 0.999],
            "pool_size": o["pool_size"],
        },
        "schedule": schedule,
    }


def _pix2pixhd_tree(o: UpstreamOptions) -> dict[str, Any]:
    norm = o["norm"]
    if norm not in ("batch", "instance"):
        raise _unsupported(o, "norm", "batch, instance")
    net_g = o["netG"]
    if net_g == "global":
        generator = {
            "name": "pix2pixhd_global",
            "ngf": o["ngf"],
            "n_downsample": o["n_downsample_global"],
            "n_blocks": o["n_blocks_global"],
        }
    elif net_g == "local":
        generator = {
            "name": "pix2pixhd_local",
            "ngf": o["ngf"],
            "n_downsample_global": o["n_downsample_global"],
            "n_blocks_global": o["n_blocks_global"],
            "n_local_enhancers": o["n_local_enhancers"],
            "n_blocks_local": o["n_blocks_local"],
        }
    else:
        raise _unsupported(o, "netG", "global, local")
    generator["norm"] = norm
    data = _pix2pixhd_input(o)
    crop = int(o["fineSize"])
    preprocess = o["resize_or_crop"]
    if preprocess not in _PREPROCESS:
        raise _unsupported(o, "resize_or_crop", ", ".join(_PREPROCESS))
    optim: dict[str, Any] = {
        "lr_g": float(o["lr"]),
        "lr_d": float(o["lr"]),
        "betas": [float(o["beta1"]), 0.999],
        "pool_size": o["pool_size"],
    }
    if net_g == "local" and int(o["niter_fix_global"]) > 0:
        optim["train_only"] = {
            "generator": [f"model{o['n_local_enhancers']}_*"],
            "epochs": int(o["niter_fix_global"]),
        }
    return {
        "name": _name(o),
        "seed": 0,
        "data": {
            "name": "paired_folders",
            "root": str(o["dataroot"]),
            **data,
            "out_channels": o["output_nc"],
            "preprocess": _PREPROCESS[preprocess],
            "load_size": int(o["loadSize"]),
            "crop_size": crop,
            "flip": not o["no_flip"],
            "batch_size": o["batchSize"],
        },
        "generator": generator,
        "discriminator": {
            "name": "multiscale",
            "num_d": o["num_D"],
            "n_layers": o["n_layers_D"],
            "ndf": o["ndf"],
            "norm": norm,
        },
        "loss": {
            "objective": "vanilla" if o["no_lsgan"] else "lsgan",
            "l1": 0.0,
            "feature_matching": 0.0 if o["no_ganFeat_loss"] else float(o["lambda_feat"]),
            "perceptual": 0.0 if o["no_vgg_loss"] else float(o["lambda_feat"]),
            "perceptual_input": "raw",
        },
        "optim": optim,
        "schedule": {
            "name": "linear",
            "form": "pix2pixhd",
            "epochs": o["niter"],
            "decay_epochs": o["niter_decay"],
        },
    }


def _pix2pixhd_input(o: UpstreamOptions) -> dict[str, Any]:
    """The input side of a pix2pixHD run (pix2pixHD_model.py ``initialize``, ``encode_input``):
    ``label_nc`` > 0 one-hot label maps plus, unless ``no_instance``, the instance-edge
    channel (``data.labels``); ``label_nc`` 0 an ``input_nc``-channel image."""
    features = [key for key in ("instance_feat", "label_feat") if o[key]]
    if features:
        flags = " ".join(f"--{key}" for key in features)
        raise RecipeError(
            f"{o.source}: {flags} adds pix2pixHD's feature encoder (netE, feat_num "
            f"{o['feat_num']} extra G input channels), which ganzoo does not have; import a "
            "model trained without it"
        )
    label_nc = int(o["label_nc"])
    if label_nc:
        return {"labels": {"num_classes": label_nc, "instance": not o["no_instance"]}}
    if not o["no_instance"]:
        raise RecipeError(
            f"{o.source}: --label_nc 0 without --no_instance feeds G an image plus instance "
            "edges, which ganzoo reads only with label maps; add --no_instance if the run used "
            "it, or give --label_nc"
        )
    return {"in_channels": o["input_nc"]}
