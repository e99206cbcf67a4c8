"""The model behind the demo page: its generator (with and without EMA weights, in each
inference mode), the input kind its recipe asks for, example inputs and a model card."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ganzoo.api import Translator, load
from ganzoo.artifacts.checkpoint import latest_checkpoint
from ganzoo.artifacts.sources import output_base
from ganzoo.data.embedded import PREFIX, resolve_root
from ganzoo.data.images import list_images
from ganzoo.errors import GanzooError
from ganzoo.evaluation.translate import is_pair
from ganzoo.recipe import Recipe
from ganzoo.run_dir import RunDir

#: What the page's input side is: black strokes on white, a label painter, or a picture.
INPUT_KINDS = ("sketch", "labels", "image")
#: The folder of example inputs an exported demo carries (``DIR/examples/*.png``).
EXAMPLES = "examples"
#: Example inputs taken from a recipe's embedded dataset.
MAX_EXAMPLES = 4


def input_kind(recipe: Recipe) -> str:
    """``labels`` for a label-map model (``data.labels``), ``sketch`` for a 1-channel input
    (edges, lines), else ``image``."""
    if recipe.data.labels is not None:
        return "labels"
    return "sketch" if recipe.data.in_channels == 1 else "image"


def newest_quickstart(root: str | Path = "runs") -> Path:
    """The newest ``ROOT/quickstart-<YYYYmmdd-HHMMSS>`` run with a checkpoint (the folders
    ``make quickstart`` creates: their names sort by time)."""
    runs = [
        p
        for p in sorted(Path(root).glob("quickstart-*"), reverse=True)
        if p.is_dir() and latest_checkpoint(RunDir(p).checkpoints) is not None
    ]
    if not runs:
        raise GanzooError(
            f"no SOURCE given and no trained {Path(root) / 'quickstart-*'} run here; run "
            "`make quickstart` first, or give a run directory, checkpoint or model name"
        )
    return runs[0]


def condition_half(image: Image.Image, recipe: Recipe) -> Image.Image:
    """The input half of an A|B training file (as ``translate`` reads one), else the image."""
    w, h = image.size
    if not is_pair(recipe, h, w):
        return image
    right = recipe.data.params.get("direction", "AtoB") == "BtoA"
    return image.crop((w // 2, 0, w, h) if right else (0, 0, w // 2, h))


class DemoModel:
    """A loaded model as the page uses it. ``translator(ema, mode)`` is the generator with or
    without its EMA weights (each loaded once) in an inference mode of ``ganzoo translate``."""

    def __init__(self, source: str | Path, *, kind: str | None = None, device: str = "cpu"):
        self.source = str(source)
        self.device = device
        first = load(self.source, device=device)
        self.recipe: Recipe = first.recipe
        self.has_ema = first.info.ema
        self._translators: dict[tuple[bool, str], Translator] = {(first.info.ema, "auto"): first}
        self.kind = kind or input_kind(self.recipe)
        if self.kind not in INPUT_KINDS:
            raise GanzooError(f"input kind '{self.kind}' is unknown; use {', '.join(INPUT_KINDS)}")
        if self.kind == "labels" and self.recipe.data.labels is None:
            raise GanzooError("--input labels needs a label-map model (data.labels in its recipe)")
        self._tmp: tempfile.TemporaryDirectory | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) the model was trained at."""
        return self.recipe.data.image_size

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.translator(self.has_ema, "auto").generator.parameters())

    def translator(self, ema: bool, mode: str) -> Translator:
        """The generator (EMA weights when ``ema`` and the run kept them) in ``mode``."""
        use_ema = ema and self.has_ema
        key = (use_ema, mode)
        if key not in self._translators:
            base = self._translators.get((use_ema, "auto"))
            if base is None:
                base = load(self.source, device=self.device, use_ema=use_ema)
                self._translators[(use_ema, "auto")] = base
            self._translators[key] = Translator(base.generator, base.recipe, base.info, mode=mode)
        return self._translators[key]

    def examples(self) -> list[Path]:
        """Example input files: ``SOURCE/examples/*`` (an exported demo), else the input halves
        of the first validation pairs of an embedded dataset (the quickstart's facades)."""
        folder = Path(self.source) / EXAMPLES
        if folder.is_dir():
            return list_images(folder)[:MAX_EXAMPLES]
        root = str(self.recipe.data.root)
        if not root.startswith(PREFIX) or self.kind == "labels":
            return []
        try:
            split = resolve_root(root) / self.recipe.data.val_split
        except GanzooError:
            return []
        files = sorted(list_images(split), key=lambda p: (len(p.stem), p.stem))[:MAX_EXAMPLES]
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ganzoo-demo-")
        out = []
        for path in files:
            with Image.open(path) as image:
                half = condition_half(image.convert("RGB"), self.recipe)
            target = Path(self._tmp.name) / f"{path.stem}.png"
            half.save(target)
            out.append(target)
        return out

    def card(self) -> str:
        """Markdown: what the model is (recipe summary, parameters, weights, mode) and its
        ``ganzoo eval`` results when the run has them."""
        r, t = self.recipe, self.translator(self.has_ema, "auto")
        d = r.data
        loss = f"{r.loss.objective.name} GAN loss" + (f", L1 x {r.loss.l1:g}" if r.loss.l1 else "")
        inputs = f"{d.labels.num_classes}-class label maps" if d.labels else f"{d.in_channels}-ch"
        lines = [
            f"**{r.name}**: {r.generator.name} generator ({self.parameters / 1e6:.2f} M "
            f"parameters), {r.discriminator.name} discriminator, {loss}",
            "",
            f"data: `{d.root}`, {inputs} -> {d.out_channels}-ch at {d.image_size[0]}x"
            f"{d.image_size[1]}, direction {d.params.get('direction', 'AtoB')}",
            "",
            f"weights: {t.info.describe()}",
            "",
            f"mode: {t.inference.describe()}",
        ]
        records = RunDir(output_base(self.source, t.info.path)).eval_records()
        if records:
            lines += [
                "",
                "| split | images | mode | L1 | PSNR (dB) | SSIM |",
                "|---|---:|---|---:|---:|---:|",
            ]
            for rec in records:
                mode = rec.get("mode_used", rec.get("mode", "eval"))
                lines.append(
                    f"| {rec['split']} | {rec.get('n', '')} | {mode} | {rec['l1']:.4f} | "
                    f"{rec['psnr']:.2f} | {rec['ssim']:.4f} |"
                )
        return "\n".join(lines)

    def example_colours(self, count: int = 8) -> list[tuple[int, int, int]]:
        """The ``count`` most frequent colours of the example inputs (coarsely binned), for the
        brush of an ``image`` model: painting a facades label map needs its colours."""
        counts: dict[tuple[int, int, int], int] = {}
        for path in self.examples():
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(np.int64)
            binned = (rgb + 16) // 32 * 32
            values, n = np.unique(np.minimum(binned, 255), axis=0, return_counts=True)
            for v, k in zip(values, n):
                key = (int(v[0]), int(v[1]), int(v[2]))
                counts[key] = counts.get(key, 0) + int(k)
        return sorted(counts, key=counts.__getitem__, reverse=True)[:count]
