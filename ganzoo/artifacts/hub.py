"""Sharing trained generators on the Hugging Face Hub.

``export_hub_folder(RUN_DIR, OUT)`` writes a folder ready to upload::

    OUT/model.safetensors   the generator (EMA weights when the run kept them), the recipe in
                            its metadata: ganzoo.load / translate / eval rebuild G from it alone
    OUT/recipe.yaml         the resolved recipe
    OUT/config.json         what the model is: format, generator, channels, size, direction
    OUT/README.md           the model card: YAML front matter (library, tags, dataset, eval
                            results with their split and mode) and the components' papers
    OUT/samples.png         a sample sheet (the latest eval or training grid), when there is one
                            that is a real PNG inside the run (a link is skipped, with a warning)

``push(RUN_DIR, REPO_ID)`` uploads that folder with ``huggingface_hub`` (the token comes from
the environment or ``huggingface-cli login``, as the library finds it).
``save_pretrained(G, RECIPE, INFO, OUT)`` writes that folder for a generator in hand (the
folder *is* the saved model: :func:`ganzoo.artifacts.load` reads it back, from disk or from
the Hub alike). Loading ``hf://user/repo`` is :mod:`ganzoo.artifacts.sources`' job.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from ganzoo import registry
from ganzoo.artifacts.loading import load_generator
from ganzoo.artifacts.safetensors import save_safetensors
from ganzoo.artifacts.schema import HUB_FORMAT, MODEL_FILE, GeneratorInfo
from ganzoo.artifacts.sources import REPO_ID, find_checkpoint, output_base, require_hub
from ganzoo.errors import GanzooError, first_line
from ganzoo.recipe import Recipe
from ganzoo.run_dir import RunDir
from ganzoo.safe_io import UnsafePathError, read_inside, write_bytes_atomic, write_text_atomic
from ganzoo.version import __version__


def papers(recipe: Recipe) -> list[str]:
    """The paper of every component the recipe names (generator, discriminator, objective,
    attention blocks), once each."""
    seen: list[str] = []
    entries = [
        ("generator", recipe.generator.name),
        ("discriminator", recipe.discriminator.name),
        ("objective", recipe.loss.objective.name),
    ]
    for section in (recipe.generator, recipe.discriminator):
        for spec in section.params.get("attention") or []:
            entries.append(("attention", spec.block))
    for kind, name in entries:
        paper = registry.get(kind, name).paper
        if paper and paper not in seen:
            seen.append(paper)
    return seen


def _sample_sheet(run_dir: Path) -> bytes | None:
    """The PNG bytes of the latest eval sheet, else the latest training grid: only a real PNG
    that is a regular file inside the run, reached through no link; each one skipped is a
    one-line warning (what the Hub folder holds may be pushed to the world)."""
    if not run_dir.is_dir():
        return None
    candidates = [
        *reversed(sorted(RunDir(run_dir).eval_dir.glob("*.png"))),
        *reversed(sorted(RunDir(run_dir).samples.glob("step_*.png"))),
    ]
    for path in candidates:
        try:
            return read_inside(path, run_dir, png=True)
        except UnsafePathError as exc:
            warnings.warn(f"export: skipped {path} for samples.png: {exc}", stacklevel=2)
        except OSError as exc:
            warnings.warn(f"export: skipped {path}: {exc.strerror or exc}", stacklevel=2)
    return None


def _dataset_name(recipe: Recipe) -> str:
    root = str(recipe.data.root)
    return root.split(":", 1)[1] if root.startswith("embedded:") else Path(root).name or root


_METRICS = (
    ("l1", "L1"),
    ("psnr", "PSNR"),
    ("ssim", "SSIM"),
    ("lpips_alex", "LPIPS (AlexNet)"),
    ("lpips_vgg", "LPIPS (VGG16)"),
    ("dists", "DISTS"),
    ("fid", "FID"),
)


def _result(record: dict[str, Any], dataset: str) -> dict[str, Any]:
    """One model-index result: the split, and each metric named with the mode that ran."""
    mode = record.get("mode_used", record.get("mode", "eval"))
    return {
        "task": {"type": "image-to-image", "name": "Image-to-Image Translation"},
        "dataset": {"name": dataset, "type": dataset, "split": record["split"]},
        "metrics": [
            {"type": key, "value": round(float(record[key]), 4), "name": f"{label} ({mode} mode)"}
            for key, label in _METRICS
            if key in record
        ],
    }


def model_card(
    recipe: Recipe,
    records: list[dict[str, Any]],
    step: int | None,
    ema: bool,
    repo_id: str = "NAMESPACE/NAME",
) -> str:
    """The README.md of a Hub folder: YAML front matter, then what the model is and does."""
    dataset = _dataset_name(recipe)
    tags = ["ganzoo", "pix2pix", "image-to-image", "gan", recipe.generator.name]
    tags.append(recipe.discriminator.name)
    metadata: dict[str, Any] = {
        "library_name": "ganzoo",
        "pipeline_tag": "image-to-image",
        "tags": tags,
        "datasets": [dataset],
    }
    if records:
        metadata["model-index"] = [
            {"name": recipe.name, "results": [_result(r, dataset) for r in records]}
        ]
    d = recipe.data
    lines = [
        "---",
        yaml.safe_dump(metadata, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {recipe.name}",
        "",
        f"A {recipe.generator.name} generator trained with ganzoo "
        f"({recipe.discriminator.name} discriminator, {recipe.loss.objective.name} GAN loss"
        + (f", L1 x {recipe.loss.l1:g}" if recipe.loss.l1 else "")
        + f") on `{dataset}`: {d.in_channels}-channel inputs to {d.out_channels}-channel outputs "
        f"at {d.image_size[0]}x{d.image_size[1]}"
        + (f", step {step}" if step is not None else "")
        + (", EMA weights." if ema else "."),
        "",
        "```python",
        "import ganzoo",
        f'model = ganzoo.load("hf://{repo_id}")',
        "output = model(input_image)                 # a PIL image, array or tensor",
        "```",
        "",
        "The full training recipe is `recipe.yaml`; `model.safetensors` carries it in its "
        "metadata.",
        "",
    ]
    if records:
        lines += ["## Evaluation", "", "| split | images | mode | L1 | PSNR (dB) | SSIM |"]
        lines += ["|---|---:|---|---:|---:|---:|"]
        for r in records:
            mode = r.get("mode_used", r.get("mode", "eval"))
            lines.append(
                f"| {r['split']} | {r.get('n', '')} | {mode} | {r['l1']:.4f} | "
                f"{r['psnr']:.2f} | {r['ssim']:.4f} |"
            )
        lines.append("")
    lines += ["## Papers", ""] + [f"- {p}" for p in papers(recipe)] + [""]
    return "\n".join(lines)


def _check_empty(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GanzooError(f"--out {out}: exists and is not an empty folder; choose a new folder")


def save_pretrained(
    net: nn.Module,
    recipe: Recipe,
    info: GeneratorInfo,
    out: str | Path,
    *,
    run_dir: Path | None = None,
    repo_id: str | None = None,
) -> Path:
    """Write G (with ``recipe`` and where its weights came from, ``info``) as a Hub folder
    ``out`` (see the module docstring): the folder :func:`ganzoo.artifacts.load` reads back,
    from disk or from the Hub alike. ``run_dir`` (the run G came from) gives the model card
    its eval results and the sample sheet; ``repo_id`` goes into the card's usage example."""
    out = Path(out)
    _check_empty(out)
    out.mkdir(parents=True, exist_ok=True)
    save_safetensors(net, recipe, info, out / MODEL_FILE)
    sheet = _sample_sheet(run_dir) if run_dir is not None else None
    write_text_atomic(out / "recipe.yaml", recipe.to_yaml())
    config = {
        "format": HUB_FORMAT,
        "library": "ganzoo",
        "ganzoo_version": __version__,
        "generator": {"name": recipe.generator.name, **recipe.to_dict()["generator"]},
        "in_channels": recipe.data.in_channels,
        "out_channels": recipe.data.out_channels,
        "image_size": list(recipe.data.image_size),
        "direction": recipe.data.params.get("direction"),
        "step": info.step,
        "ema": info.ema,
    }
    write_text_atomic(out / "config.json", json.dumps(config, indent=2) + "\n")
    records = RunDir(run_dir).eval_records() if run_dir is not None else []
    card = model_card(recipe, records, info.step, info.ema, repo_id or "NAMESPACE/NAME")
    if sheet is not None:
        write_bytes_atomic(out / "samples.png", sheet)
        card += "## Samples\n\n![input | output | target](samples.png)\n"
    write_text_atomic(out / "README.md", card)
    return out


def export_hub_folder(
    source: str | Path,
    out: str | Path | None = None,
    *,
    use_ema: bool = True,
    repo_id: str | None = None,
) -> Path:
    """Write the Hub folder of a run (see the module docstring) into ``out`` (default
    ``RUN_DIR/export/hub``); returns it. ``repo_id`` (when known) goes into the model card's
    usage example."""
    if out is None:
        out = RunDir(output_base(source, find_checkpoint(source))).export_dir / "hub"
    out = Path(out)
    _check_empty(out)
    net, recipe, info = load_generator(source, use_ema=use_ema, device="cpu")
    run_dir = output_base(source, info.path)
    return save_pretrained(net, recipe, info, out, run_dir=run_dir, repo_id=repo_id)


def push(
    source: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    use_ema: bool = True,
    endpoint: str | None = None,
) -> str:
    """Export ``source``'s Hub folder and upload it to ``repo_id`` (created if missing);
    returns the commit URL."""
    check_repo_id(repo_id)
    with tempfile.TemporaryDirectory(prefix="ganzoo-hub-") as tmp:
        folder = export_hub_folder(source, Path(tmp) / "hub", use_ema=use_ema, repo_id=repo_id)
        return upload_folder(folder, repo_id, private=private, endpoint=endpoint)


def check_repo_id(repo_id: str) -> None:
    if not REPO_ID.match(repo_id):
        raise GanzooError(f"{repo_id!r}: a Hub repository id is NAMESPACE/NAME")


def upload_folder(
    folder: Path,
    repo_id: str,
    *,
    private: bool = False,
    endpoint: str | None = None,
    space_sdk: str | None = None,
) -> str:
    """Upload ``folder`` to the model repository ``repo_id`` (created if missing), or to a
    Space running ``space_sdk`` when given; returns the commit URL."""
    check_repo_id(repo_id)
    hub = require_hub()
    api = hub.HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT"))
    repo_type = "space" if space_sdk else "model"
    try:
        api.create_repo(
            repo_id, private=private, exist_ok=True, repo_type=repo_type, space_sdk=space_sdk
        )
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type=repo_type,
            commit_message="Upload from ganzoo",
        )
    except Exception as exc:  # the library's HTTP and auth errors: one line
        raise GanzooError(f"pushing to {repo_id} failed: {first_line(exc)}") from None
    return str(getattr(commit, "commit_url", commit))
