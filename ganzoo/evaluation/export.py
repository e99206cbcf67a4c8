"""``ganzoo export``: a trained G (EMA weights when the run kept them) for use outside ganzoo.

Formats, each carrying the resolved recipe so the file documents (and, for safetensors,
rebuilds) its generator:

* ``safetensors``: G's state dict; metadata ``format``, ``recipe`` (JSON), ``step``, ``ema``
  (:mod:`ganzoo.artifacts.safetensors`). ``load_generator(FILE)`` builds G from the recipe
  and loads it.
* ``torchscript``: ``torch.jit.trace`` of G in eval mode on a (1, C, H, W) input; the recipe
  is the extra file ``recipe.json``. (PyTorch deprecates TorchScript in favour of torch.export;
  it is kept because C++ and older runtimes load it.)
* ``onnx``: the torch.export-based exporter (``dynamo=True``, opset 18) in eval mode, with a
  dynamic batch and dynamic height/width (multiples of G's ``size_divisor``) where G exports
  that way, else the fixed size; input ``input``, output ``output``, both (N, C, H, W) in
  [-1, 1]; the recipe is in the model's ``metadata_props`` (key ``ganzoo.recipe``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ganzoo.artifacts.loading import load_generator
from ganzoo.artifacts.safetensors import recipe_json, save_safetensors
from ganzoo.artifacts.schema import GeneratorInfo
from ganzoo.artifacts.sources import output_base
from ganzoo.errors import GanzooError, first_line
from ganzoo.evaluation.inference import check_resize_size, parse_size
from ganzoo.recipe import Recipe
from ganzoo.run_dir import RunDir
from ganzoo.safe_io import check_inside, write_bytes_atomic

Format = Literal["safetensors", "torchscript", "onnx"]
FORMATS = ("safetensors", "torchscript", "onnx")
SUFFIX = {"safetensors": ".safetensors", "torchscript": ".torchscript.pt", "onnx": ".onnx"}
ONNX_OPSET = 18


@dataclass(frozen=True)
class Exported:
    """What :func:`export_generator` wrote."""

    path: Path
    format: str
    size: tuple[int, int]  # (H, W) of the example input used for tracing / export
    dynamic: bool  # ONNX: batch and spatial sizes are dynamic
    info: GeneratorInfo

    @property
    def nbytes(self) -> int:
        return self.path.stat().st_size


def save_torchscript(net: nn.Module, recipe: Recipe, example: torch.Tensor, path: Path) -> Path:
    """``torch.jit.trace`` of G (eval mode) with ``recipe.json`` as an extra file."""
    with warnings.catch_warnings():  # "torch.jit is deprecated": documented above
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        with torch.no_grad():
            traced = torch.jit.trace(net, example)
        data = io.BytesIO()
        torch.jit.save(traced, data, _extra_files={"recipe.json": recipe_json(recipe)})
    write_bytes_atomic(path, data.getvalue())
    return path


def require_onnx() -> None:
    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise GanzooError(
            f"--format onnx needs the {' and '.join(missing)} package(s): "
            "pip install 'ganzoo[export]' (onnx, onnxscript; onnxruntime to run the file)"
        )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's progress lines, warnings and logged guard failures, silenced."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _onnx_export(net: nn.Module, example: torch.Tensor, path: Path, dynamic: bool) -> None:
    shapes = None
    if dynamic:
        from torch.export import Dim

        divisor = int(getattr(net, "size_divisor", 1))
        min_side = int(getattr(net, "min_side", 1))
        lowest = -(-min_side // divisor)
        h = Dim("height_blocks", min=lowest)
        w = Dim("width_blocks", min=lowest)
        shapes = ({0: Dim("batch", min=1), 2: divisor * h, 3: divisor * w},)
        # a side of one block traces a 1-pixel bottleneck, which torch.export specialises on:
        # trace a side of two blocks (the exported graph is the same for every size)
        sides = [max(int(s), 2 * divisor, min_side) for s in example.shape[-2:]]
        example = example.new_zeros(2, example.shape[1], *sides)
    with _quiet():
        torch.onnx.export(
            net,
            (example,),
            str(path),
            dynamo=True,
            verbose=False,
            opset_version=ONNX_OPSET,
            input_names=["input"],
            output_names=["output"],
            dynamic_shapes=shapes,
            external_data=False,
        )


def save_onnx(net: nn.Module, recipe: Recipe, example: torch.Tensor, path: Path) -> bool:
    """ONNX of G (eval mode); returns whether its batch and spatial sizes are dynamic."""
    require_onnx()
    import onnx

    dynamic = True
    with tempfile.TemporaryDirectory(prefix="ganzoo-onnx-") as tmp:  # the exporter's own file
        raw = Path(tmp) / "model.onnx"
        try:
            _onnx_export(net, example, raw, dynamic=True)
        except Exception:  # a generator whose graph depends on its input size: export it fixed
            dynamic = False
            try:
                _onnx_export(net, example, raw, dynamic=False)
            except Exception as exc:
                raise GanzooError(
                    f"ONNX export of generator {recipe.generator.name} failed ({first_line(exc)}); "
                    "export safetensors or torchscript instead"
                ) from None
        model = onnx.load(str(raw))
    entry = model.metadata_props.add()
    entry.key, entry.value = "ganzoo.recipe", recipe_json(recipe)
    write_bytes_atomic(path, model.SerializeToString())
    return dynamic


def export_generator(
    run_dir: str | Path,
    format: str,
    *,
    out: str | Path | None = None,
    size: str | tuple[int, int] | None = None,
    use_ema: bool = True,
) -> Exported:
    """Export G of ``run_dir`` (or a checkpoint file) to ``out`` (default
    ``RUN_DIR/export/generator<suffix>``); ``size`` (N or HxW, default the crop size) is the
    example input size for torchscript / onnx."""
    if format not in FORMATS:
        raise GanzooError(f"export format '{format}' is unknown; use {', '.join(FORMATS)}")
    if format == "onnx":
        require_onnx()
    net, recipe, info = load_generator(run_dir, use_ema=use_ema, device="cpu")
    hw = parse_size(size) or recipe.data.image_size
    check_resize_size(net, hw, "pass --size accordingly")
    base = None
    if out is None:
        base = output_base(run_dir, info.path)
        out = RunDir(base).export_dir / f"generator{SUFFIX[format]}"
    path = Path(out)
    if base is not None:  # RUN/export must be a folder of the run, not a link out of it
        check_inside(path.parent, base)
    if path.is_dir():
        raise GanzooError(
            f"--out {path}: is a folder; give the file to write, e.g. "
            f"{path / ('generator' + SUFFIX[format])}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, recipe.data.in_channels, *hw)
    dynamic = False
    if format == "safetensors":
        save_safetensors(net, recipe, info, path)
    elif format == "torchscript":
        save_torchscript(net, recipe, example, path)
    else:
        dynamic = save_onnx(net, recipe, example, path)
    return Exported(path, format, hw, dynamic, info)
