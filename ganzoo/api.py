"""Inference in three lines::

    >>> import ganzoo
    >>> model = ganzoo.load("runs/facades")   # run dir, checkpoint, .safetensors, hf://, pretrained
    >>> photo = model(label_image)            # PIL / numpy / tensor in, the same kind out
    >>> model.translate("labels/", "out/")    # folders, with the CLI's size handling

:func:`load` returns a :class:`Translator`, a plain ``nn.Module`` whose ``generator`` is the
network itself. Defaults: the CUDA device when there is one, mode ``auto`` (per-sample
BatchNorm statistics for a G whose BatchNorm was trained at batch size 1, eval mode otherwise;
``model.inference.describe()`` says which), float32, the EMA weights when the run kept them.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganzoo.artifacts.loading import GeneratorInfo, load_generator
from ganzoo.device import resolve_device
from ganzoo.errors import GanzooError
from ganzoo.evaluation.inference import (
    MAX_GENERATOR_PIXELS,
    check_generator_pixels,
    translate_batch,
)
from ganzoo.evaluation.translate import Translation, input_files, translate_files
from ganzoo.inference_mode import generator_in_mode, resolve_mode
from ganzoo.nn.inference_weights import weights_in
from ganzoo.recipe import Recipe

_PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Translator(nn.Module):
    """A trained generator that translates images of any size (padded to the sizes it takes,
    cropped back). Call it on a PIL image, a numpy array (``H x W`` or ``H x W x C``: uint8,
    uint16 or float, mapped by the recipe's ``data.range`` or by dtype: uint8 [0, 255], uint16
    [0, 65535], float [0, 1]; a label-map model takes integer class ids) or a tensor
    (``(C, H, W)`` or ``(N, C, H, W)`` float in [-1, 1], or uint8); the output is of the same
    kind, layout and dtype, in ``data.range.B`` (else the dtype's range)."""

    def __init__(
        self,
        generator: nn.Module,
        recipe: Recipe,
        info: GeneratorInfo,
        *,
        mode: str = "auto",
        precision: str = "fp32",
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.inference = resolve_mode(generator, recipe, mode)
        if precision not in _PRECISIONS:
            raise GanzooError(f"precision '{precision}' is unknown; use fp32, bf16 or fp16")
        self.generator = generator
        self.recipe = recipe
        self.info = info
        self.mode = mode
        self.precision = precision
        self.seed = seed
        #: Pixels of one image G may run on (see ganzoo.evaluation.inference).
        self.max_pixels = MAX_GENERATOR_PIXELS

    def extra_repr(self) -> str:
        return f"mode: {self.inference.describe()}"

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = _PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) or (C_in, H, W) float in [-1, 1] -> the same shape with C_out
        channels, float32 in [-1, 1], on this model's device."""
        single = x.dim() == 3
        batch = (x[None] if single else x).to(self.device, torch.float32)
        expected = self.recipe.data.in_channels
        if batch.dim() != 4 or batch.shape[1] != expected:
            raise GanzooError(
                f"the generator takes {expected}-channel images, got a tensor of shape "
                f"{tuple(x.shape)}"
            )
        h, w = int(batch.shape[-2]), int(batch.shape[-1])
        advice = "resize it first, or raise the model's max_pixels on a larger machine"
        check_generator_pixels(self.generator, h, w, "the image", self.max_pixels, advice)
        with generator_in_mode(self.generator, self.inference, self.seed) as g, self._autocast():
            y = translate_batch(g, batch, pad=True).float()
        return y[0] if single else y

    def __call__(self, image: Any) -> Any:
        """Translate a PIL image, numpy array or tensor (see the class docstring)."""
        from PIL import Image

        if isinstance(image, torch.Tensor):
            if image.dtype == torch.uint8:
                y = self.forward(image.float() / 127.5 - 1)
                return ((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
            return self.forward(image)
        if isinstance(image, Image.Image):
            if self.recipe.data.labels is not None:  # class ids (palette indices), as they are
                array = np.asarray(image)
            else:
                mode = "L" if self.recipe.data.in_channels == 1 else "RGB"
                array = np.asarray(image.convert(mode))
            out = self._numpy(array, preview=True)
            return Image.fromarray(out[..., 0] if out.ndim == 3 and out.shape[2] == 1 else out)
        if isinstance(image, np.ndarray):
            return self._numpy(image)
        raise GanzooError(
            f"cannot translate a {type(image).__name__}: give a PIL image, a numpy array or a "
            "tensor"
        )

    def _numpy(self, array: np.ndarray, preview: bool = False) -> np.ndarray:
        """H x W (x C) array -> the output array (see the class docstring); ``preview``: an
        8-bit image of data.range.B stretched to 0 .. 255 (for PIL)."""
        from ganzoo.data.dataset import pair_values
        from ganzoo.data.formats import canonical
        from ganzoo.data.ranges import SideRange, output_dtype_for_labels

        flat = array.ndim == 2
        hwc = array[..., None] if flat else array
        if hwc.ndim != 3:
            raise GanzooError(f"a numpy image is H x W or H x W x C, got shape {array.shape}")
        if array.dtype.kind not in "uif":
            raise GanzooError(f"numpy images are integers or floats, got {array.dtype}")
        chw = canonical(np.ascontiguousarray(hwc.transpose(2, 0, 1)))
        values = pair_values(self.recipe.data)
        if values.labels is not None:
            if chw.shape[0] != values.labels.file_channels:
                raise GanzooError(
                    f"this model takes label maps as H x W class ids"
                    f"{' x 2 (ids, instance ids)' if values.labels.instance else ''}, got an "
                    f"array of shape {array.shape}"
                )
            values.labels.check(chw, "the array")
            x = torch.from_numpy(values.labels.encode(chw))
        else:
            if chw.shape[0] == 1 and self.recipe.data.in_channels == 3:
                chw = np.repeat(chw, 3, axis=0)  # greyscale into an RGB model, as PIL's "RGB"
            a = values.a
            if a.spec is None and chw.dtype.kind == "f":
                a = SideRange("A", (0.0, 1.0), a.clip)
            a.check(chw, "the array")
            x = torch.from_numpy(a.to_unit(chw, "the array"))
        y = self.forward(x).clamp(-1, 1).cpu().numpy()
        dtype = array.dtype if values.labels is None else output_dtype_for_labels(values.b.spec)
        b = SideRange("B") if preview else values.b
        out = b.from_unit(y, np.uint8 if preview else dtype, "the output").transpose(1, 2, 0)
        return out[..., 0] if flat and out.shape[2] == 1 else out

    def translate(self, inputs: str | Path, output: str | Path, **options: Any) -> Translation:
        """Translate an image or a folder of images into ``output/<stem>.<ending>``, as
        ``ganzoo translate`` does (``options``: direction, size, fit, batch_size, layout,
        out_format), in this model's precision."""
        with self._autocast():
            result = translate_files(
                self.generator,
                self.recipe,
                input_files(inputs),
                output,
                mode=self.mode,
                seed=self.seed,
                **{"max_pixels": self.max_pixels, **options},
            )
        result.info = self.info
        return result


def load(
    source: str | Path,
    *,
    device: str = "auto",
    mode: str = "auto",
    precision: str = "fp32",
    use_ema: bool = True,
    seed: int = 0,
    checkpoint: str = "last",
) -> Translator:
    """A :class:`Translator` from a run directory, a checkpoint, an exported ``.safetensors``,
    a Hub folder, ``hf://namespace/name[@revision]`` (or ``namespace/name``), or the name of an
    official pretrained model (downloaded once; ``ganzoo pretrained list``).

    ``device``: ``auto`` (CUDA when present), ``cpu`` or ``cuda``; ``mode``: ``auto`` (the
    default: see :func:`ganzoo.inference_mode.resolve_mode`), ``eval`` (running
    statistics, no dropout) or ``train`` (the reference test.py's batch statistics and dropout,
    drawn from ``seed``); ``precision``: ``fp32``, ``bf16`` or ``fp16`` (autocast; with bf16 or
    fp16 the generator's convolution and linear weights are stored in that dtype and its
    layout is channels_last, which gives the same outputs as casting them at every call).
    """
    from ganzoo.pretrained import resolve  # a pretrained model's name -> its run directory

    source = resolve(source)
    net, recipe, info = load_generator(
        source,
        use_ema=use_ema,
        device=resolve_device(device),
        checkpoint=checkpoint,
        small_convs_as_matmuls=True,
    )
    model = Translator(net, recipe, info, mode=mode, precision=precision, seed=seed)
    dtype = _PRECISIONS[precision]
    if dtype is not None:  # cast once, not at every call: bit-identical under autocast
        net.to(memory_format=torch.channels_last)
        weights_in(net, dtype)
    return model
