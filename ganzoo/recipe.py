"""Recipes: YAML files validated by pydantic models.

A recipe names its components by registry name with their parameters::

    name: pix2pix_unet256
    data: {name: aligned, root: datasets/facades, direction: BtoA}
    generator: {name: unet_256, norm: batch, dropout: true}
    discriminator: {name: patchgan, n_layers: 3}

``extends: base.yaml`` (a path relative to the file) deep-merges the file over its base;
``--set a.b=c`` overrides any key (the value is parsed as YAML). Every error is one line that
names the dotted path, e.g. ``discriminator.n_layers: expected an integer, got 'three'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ganzoo import registry
from ganzoo.errors import RecipeError, RegistryError
from ganzoo.params import format_validation_error
from ganzoo.recipe_tree import apply_overrides, load_tree

#: Bounds on what a recipe may ask for, checked before anything is built (see
#: docs/reliability.md): image sides, channel counts, batch and step counts.
MAX_SIDE = 16384
MAX_CHANNELS = 1024
MAX_BATCH = 65536
MAX_STEPS = 10**10
#: Pixels (height x width) of one image file, read from its header before decoding: 2^27
#: (134 M, e.g. 11585 x 11585). One such image decodes to at most 2 GiB (4 channels of
#: float32), so eight decoding threads stay within a 24 GiB machine; ``data.max_pixels``.
MAX_PIXELS = 2**27
#: What ``name`` may be: it names the run directory ``runs/<name>``.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$"


#: Data keys left out of :meth:`Recipe.to_dict` when unset (None or False).
OPTIONAL_DATA_KEYS = ("range", "clip", "labels")


class Section(BaseModel):
    """A recipe section: unknown keys are rejected, floats must be finite."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ComponentSection(BaseModel):
    """``{name: <registered name>, <params>}``, the params validated against the builder."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    kind: ClassVar[str]
    section: ClassVar[str]

    name: str

    @property
    def params(self) -> dict[str, Any]:
        """The component's parameters (everything but ``name``)."""
        return dict(self.model_extra or {})

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_params(self) -> ComponentSection:
        checked = registry.validate_params(self.kind, self.name, self.params, where=self.section)
        self.__pydantic_extra__ = checked
        return self


class GeneratorSection(ComponentSection):
    kind = "generator"
    section = "generator"


class DiscriminatorSection(ComponentSection):
    kind = "discriminator"
    section = "discriminator"


class LoggerSection(ComponentSection):
    kind = "logger"
    section = "train.loggers"


class CallbackSection(ComponentSection):
    kind = "callback"
    section = "train.callbacks"


#: ``train.callbacks`` when a recipe does not set it: the built-ins, in this order.
DEFAULT_CALLBACKS = ("progress", "losses", "monitor", "validation", "checkpoint", "schedule")


class ObjectiveSection(ComponentSection):
    kind = "objective"
    section = "loss.objective"


class RegularizerSection(ComponentSection):
    kind = "regularizer"
    section = "loss.regularizers"


Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]
#: [lo, hi]: the file values that map to -1 and 1.
Bounds = tuple[float, float]


def _check_bounds(value: Any) -> Any:
    pairs = [value] if value and isinstance(value[0], (int, float)) else value or []
    for lo, hi in pairs:
        if not hi > lo:
            raise ValueError(f"a range [lo, hi] needs hi > lo, got [{lo:g}, {hi:g}]")
    return value


class RangeSection(Section):
    """Value ranges per side (A: the network input, B: the target): one [lo, hi] for every
    channel, or a list of one [lo, hi] per channel; unset: by dtype (uint8 [0, 255], uint16
    [0, 65535])."""

    A: Bounds | list[Bounds] | None = None
    B: Bounds | list[Bounds] | None = None

    _bounds = field_validator("A", "B")(_check_bounds)


class LabelsSection(Section):
    """The input is a map of class ids (pix2pixHD / SPADE): G sees its one-hot encoding."""

    num_classes: int = Field(ge=1, le=MAX_CHANNELS, description="class ids 0 .. num_classes-1")
    ignore_index: int | None = Field(255, description="an id that becomes all-zero channels")
    instance: bool = Field(False, description="add pix2pixHD's instance-edge channel")
    dontcare_channel: bool = Field(
        False,
        description="give ignore_index a channel of its own after the classes (SPADE's "
        "contain_dontcare_label) instead of all-zero channels",
    )

    @model_validator(mode="after")
    def _dontcare_needs_an_id(self) -> LabelsSection:
        if self.dontcare_channel and self.ignore_index is None:
            raise ValueError("dontcare_channel needs an ignore_index (SPADE's 255)")
        return self

    @property
    def channels(self) -> int:
        """The network's input channels: num_classes, +1 with the don't-care channel, +1 with
        instance edges."""
        return self.num_classes + int(self.dontcare_channel) + int(self.instance)


class DataSection(ComponentSection):
    """Paired data: a registered dataset (``name``), its params, and the shared transforms."""

    kind = "dataset"
    section = "data"

    name: str = "aligned"
    root: str = Field(description="dataset folder; 'embedded:NAME' for data shipped with ganzoo")
    in_channels: int = Field(
        3, ge=1, le=MAX_CHANNELS, description="channels of the input (condition) image A"
    )
    out_channels: int = Field(
        3, ge=1, le=MAX_CHANNELS, description="channels of the target image B"
    )
    preprocess: Preprocess = "resize_and_crop"
    load_size: int = Field(
        286, ge=1, le=MAX_SIDE, description="side images are resized to before cropping"
    )
    crop_size: (
        Annotated[int, Field(ge=1, le=MAX_SIDE)]
        | tuple[Annotated[int, Field(ge=1, le=MAX_SIDE)], Annotated[int, Field(ge=1, le=MAX_SIDE)]]
    ) = Field(256, description="side, or [height, width]")
    flip: bool = True
    batch_size: int = Field(1, ge=1, le=MAX_BATCH)
    num_workers: Annotated[int, Field(ge=0, le=256)] | Literal["auto"] = Field(
        "auto",
        description="loader processes; auto: none for cached data on a CPU (a batch comes "
        "from memory in under a millisecond, workers would take cycles from the step), else 2",
    )
    cache: bool = Field(True, description="decode every image once and keep it in memory")
    skip_corrupt: bool = Field(
        False, description="warn and skip unreadable images (and images above max_pixels)"
    )
    max_pixels: int = Field(
        MAX_PIXELS,
        ge=1,
        le=2**40,
        description="pixels (height x width) one image file may declare; checked before decoding",
    )
    train_split: str = "train"
    val_split: str = "val"
    range: RangeSection | None = Field(
        None, description="value ranges per side, mapped to [-1, 1] (default: by dtype)"
    )
    clip: bool = Field(False, description="clip values outside data.range instead of failing")
    labels: LabelsSection | None = Field(
        None, description="read the input as class ids and feed its one-hot encoding"
    )

    @model_validator(mode="after")
    def _label_channels(self) -> DataSection:
        if self.labels is None:
            return self
        # derived, whatever a base recipe says (recipes extend RGB bases that set 3)
        want = self.labels.channels
        if self.range is not None and self.range.A is not None:
            raise ValueError("range.A does not apply to label maps (data.labels); remove it")
        self.in_channels = want
        return self

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the images the networks see."""
        c = self.crop_size
        return (c, c) if isinstance(c, int) else (int(c[0]), int(c[1]))


class LossSection(Section):
    """Generator loss = GAN + l1*L1 + feature_matching*FM + perceptual*VGG + style*Gram, plus
    the terms of ``regularizers`` (see :mod:`ganzoo.losses.terms`)."""

    objective: ObjectiveSection = Field(default_factory=lambda: ObjectiveSection(name="vanilla"))
    l1: float = Field(100.0, ge=0)
    feature_matching: float = Field(0.0, ge=0)
    feature_matching_form: Literal["pix2pixhd", "lines2face"] = Field(
        "pix2pixhd",
        description="pix2pixhd: every branch's features, weighted 4/n and 1/branches; "
        "lines2face: the first branch's last three outputs, summed",
    )
    perceptual: float = Field(0.0, ge=0)
    perceptual_input: Literal["raw", "imagenet"] = Field(
        "raw",
        description="raw: VGG19 sees [-1, 1] images as in pix2pixHD; imagenet: normalised",
    )
    style: float = Field(
        0.0, ge=0, description="LinesToFacePhoto's Gram-matrix loss on D's features"
    )
    regularizers: list[RegularizerSection] = Field(
        default_factory=list,
        description="augmentations of D's inputs and added D/G terms (DiffAugment, R1, ...), "
        "applied in this order",
    )


class TrainOnlySection(Section):
    """Train only some parameters (staged training), the rest frozen.

    ``generator`` / ``discriminator`` are globs over state-dict names (``None``: all;
    ``[]``: none, i.e. the network is not updated); ``epochs`` bounds the phase (``None``:
    the whole run). pix2pixHD's ``niter_fix_global``: ``{generator: ["model1_*"], epochs: N}``;
    LinesToFacePhoto's stage two: ``{generator: ["attention.*", "out.*"], discriminator: []}``.
    """

    generator: list[str] | None = None
    discriminator: list[str] | None = None
    epochs: int | None = Field(None, ge=1)


class OptimSection(Section):
    """Adam for G and D (the reference: 2e-4, betas (0.5, 0.999))."""

    lr_g: float = Field(2e-4, gt=0, le=1)
    lr_d: float = Field(2e-4, gt=0, le=1)
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (
        0.5,
        0.999,
    )
    weight_decay: float = Field(0.0, ge=0)
    d_steps: int = Field(1, ge=1, le=100, description="discriminator updates per generator update")
    pool_size: int = Field(
        0, ge=0, le=10_000, description="image pool of past (condition, fake) pairs (0: none)"
    )
    ema_decay: float | None = Field(None, description="EMA of G for evaluation (e.g. 0.999)")
    fused: bool = Field(
        True,
        description="fused Adam kernel where the device has one (it steps channels_last "
        "weights through contiguous views of their memory, without copies)",
    )
    train_only: TrainOnlySection | None = Field(
        None, description="staged training: the parameters trained, the rest frozen"
    )

    @field_validator("ema_decay")
    @classmethod
    def _decay(cls, v: float | None) -> float | None:
        if v is not None and not 0.0 < v < 1.0:
            raise ValueError("ema_decay must be between 0 and 1")
        return v


class ScheduleSection(Section):
    """Learning-rate schedule. ``linear`` is the reference: constant for ``epochs``, then
    linearly to 0 over ``decay_epochs``."""

    name: Literal["linear", "step", "cosine", "plateau", "constant"] = "linear"
    form: Literal["pix2pix", "pix2pixhd"] = Field(
        "pix2pix",
        description="linear: pix2pix's 1 - max(0, e + 1 - epochs) / (decay_epochs + 1), or "
        "pix2pixHD's 1 - max(0, e - epochs) / decay_epochs (e counted from 0)",
    )
    epochs: int = Field(100, ge=0)
    decay_epochs: int = Field(100, ge=0)
    step_size: int = Field(50, ge=1, description="step: epochs between decays")
    gamma: float = Field(0.1, gt=0, description="step/plateau: decay factor")
    patience: int = Field(5, ge=0, description="plateau: epochs without improvement")
    total_epochs: int | None = Field(
        None,
        ge=1,
        description="epochs a run lasts (default: epochs, + decay_epochs for linear); pix2pix "
        "runs n_epochs + n_epochs_decay whatever its lr_policy",
    )


class TrainSection(Section):
    """How the shared trainer runs."""

    max_steps: int | None = Field(
        None, ge=1, le=MAX_STEPS, description="stop after this many G steps"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "bf16-master", "fp16", "reference"] = Field(
        "auto",
        description="auto: bf16-master on a CPU with fast bf16, bf16 on such a GPU, else fp32; "
        "bf16: autocast over fp32 weights; bf16-master: bf16 weights with fp32 master copies "
        "in the optimizer; reference: the upstream's arithmetic bit for bit "
        "(becomes fp32 with channels_last false, small_convs_as_matmuls false and optim.fused "
        "false)",
    )
    channels_last: bool = True
    small_convs_as_matmuls: bool = Field(
        True,
        description="on the CPU, convolutions over at most 64 rows (batch x positions: a "
        "U-Net's innermost layers) run as one matrix multiply each, the same function faster; "
        "false runs every convolution through oneDNN",
    )
    compile: bool = False
    deterministic: bool = False
    log_every: int = Field(50, ge=1, description="steps between loss records")
    check_every: int | None = Field(
        None,
        ge=1,
        description="steps between NaN checks of the losses (default: every step on CPU, "
        "train.log_every on GPUs, where a check waits for the device)",
    )
    grad_norm_every: int | None = Field(
        None,
        ge=1,
        description="steps whose gradient norms are measured (default: train.log_every)",
    )
    sample_every: int = Field(500, ge=1)
    checkpoint_every: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(3, ge=1, le=10_000)
    val_batches: int = Field(8, ge=1, description="val batches scored at each sample step")
    calibrate_bn: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="at the end of training, recompute G's BatchNorm running statistics over "
        "this many training images (precise BN, as `ganzoo calibrate`); 0 keeps the moving "
        "averages, as the reference does",
    )
    init_from: str | None = Field(
        None,
        description="a run directory or checkpoint whose G (and D) weights start this run; "
        "parameters with no counterpart there keep their initialisation",
    )
    loggers: list[LoggerSection] = Field(
        default_factory=list,
        description="where metrics also go: tensorboard, wandb, mlflow or a plugin's logger "
        "(metrics.jsonl is always written)",
    )
    callbacks: list[CallbackSection] = Field(
        default_factory=lambda: [CallbackSection(name=n) for n in DEFAULT_CALLBACKS],
        description="what runs around each step, in order: the built-ins progress, losses, "
        "monitor, validation, checkpoint, schedule (all by default) and plugins' callbacks",
    )


class Recipe(Section):
    """A complete, validated recipe."""

    name: str = Field(pattern=NAME_PATTERN, description="names the run directory runs/<name>")
    seed: int = Field(0, ge=0, lt=2**63)
    data: DataSection
    generator: GeneratorSection
    discriminator: DiscriminatorSection
    loss: LossSection = Field(default_factory=LossSection)
    optim: OptimSection = Field(default_factory=OptimSection)
    schedule: ScheduleSection = Field(default_factory=ScheduleSection)
    train: TrainSection = Field(default_factory=TrainSection)

    @model_validator(mode="after")
    def _reference_arithmetic(self) -> Recipe:
        # one word for the three settings the trajectory tests prove bit-identical to the
        # upstream: fp32 without autocast, NCHW tensors, for-loop Adam (channels_last and the
        # fused kernel round differently)
        if self.train.precision == "reference":
            self.train.precision = "fp32"
            self.train.channels_last = False
            self.train.small_convs_as_matmuls = False
            self.optim.fused = False
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data (component params inlined), loadable again with :func:`from_dict`.

        The data keys of value rules (``range``, ``clip``, ``labels``),
        ``schedule.total_epochs`` and ``loss.regularizers`` appear only when set, and
        ``train.check_every``, ``train.grad_norm_every``, ``train.small_convs_as_matmuls`` and
        ``train.callbacks`` only when they differ from their defaults, so a recipe that does not
        use them stays readable by ganzoo versions before them (and its recipe.yaml and
        checkpoints stay as they were)."""
        tree = self.model_dump(mode="json")
        for key in OPTIONAL_DATA_KEYS:
            if not tree["data"].get(key):
                tree["data"].pop(key, None)
        if tree["schedule"].get("total_epochs") is None:
            tree["schedule"].pop("total_epochs", None)
        if not tree["loss"].get("regularizers"):
            tree["loss"].pop("regularizers", None)
        train = tree["train"]
        for key in ("check_every", "grad_norm_every"):
            if train.get(key) is None:
                train.pop(key, None)
        if train.get("small_convs_as_matmuls") is True:
            train.pop("small_convs_as_matmuls")
        if train.get("callbacks") == [{"name": n} for n in DEFAULT_CALLBACKS]:
            train.pop("callbacks")
        return tree

    def to_yaml(self, defaults: bool = False) -> str:
        """The recipe as YAML; with ``defaults``, every component's unset parameters are
        filled with their defaults too (what ``ganzoo check`` prints)."""
        tree = self.to_dict()
        if defaults:
            for section, where in self._components(tree):
                where.update(component_defaults(section, where))
        return yaml.safe_dump(tree, sort_keys=False)

    def _components(self, tree: dict[str, Any]) -> list[tuple[ComponentSection, dict[str, Any]]]:
        """Each component section with its place in ``tree`` (a :meth:`to_dict` result)."""
        pairs = [
            (self.data, tree["data"]),
            (self.generator, tree["generator"]),
            (self.discriminator, tree["discriminator"]),
            (self.loss.objective, tree["loss"]["objective"]),
        ]
        pairs += list(zip(self.loss.regularizers, tree["loss"].get("regularizers", [])))
        pairs += list(zip(self.train.loggers, tree["train"]["loggers"]))
        if "callbacks" in tree["train"]:
            pairs += list(zip(self.train.callbacks, tree["train"]["callbacks"]))
        return [(section, where) for section, where in pairs if isinstance(where, dict)]


def _plain(value: Any) -> Any:
    """``value`` as YAML-safe data, or ``...`` when it has no plain form."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        items = [_plain(v) for v in value]
        return ... if any(v is ... for v in items) else items
    return ...


def component_defaults(section: ComponentSection, given: dict[str, Any]) -> dict[str, Any]:
    """The parameters of ``section``'s component that ``given`` leaves unset, with their
    defaults (``image_size``, filled from the crop size at build time, left out)."""
    filled = {}
    for p in registry.get(section.kind, section.name).parameters():
        if p.name in given or p.required or p.name == "image_size":
            continue
        value = _plain(p.default)
        if value is not ...:
            filled[p.name] = value
    return filled


def from_dict(tree: dict[str, Any], source: str = "recipe") -> Recipe:
    """Validate a recipe tree; one-line :class:`RecipeError` naming the dotted path."""
    try:
        return Recipe.model_validate(tree)
    except pydantic.ValidationError as exc:
        raise RecipeError(f"{source}: {format_validation_error(exc, '')}") from None
    except RegistryError as exc:
        raise RecipeError(f"{source}: {exc}") from None


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read, merge (``extends``), override (``--set``) and validate a recipe file."""
    path = Path(path)
    tree = apply_overrides(load_tree(path), list(overrides or []))
    return from_dict(tree, source=str(path))
