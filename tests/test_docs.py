"""Every fenced shell command of README.md and docs/*.md, run as written (so the docs cannot
drift from the code).

The commands are read from the files themselves: ```bash / ```sh / ```console blocks, and
untagged blocks of ``$ command`` lines followed by the output the docs show. Each one is either
run here, in document order (README.md first), in one scratch folder holding what the docs
assume (``recipes/``, a tiny facades archive to ``data fetch``, ``labels/``, an upstream
checkpoint folder), with only the extra arguments of :data:`EXTRA` (tiny sizes, a few steps, a
local archive for a download); or it is listed in :data:`SKIP` with why it cannot run offline
in seconds. A command in neither list fails the test, and so does a SKIP entry the docs no
longer hold: a new or changed command must be classified here.

Synopses (lines with ``[optional]`` parts or UPPER_CASE placeholders such as ``RUN_DIR``) are
not commands and are left out.
"""

from __future__ import annotations

import re
import shlex
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, make_pair

from ganzoo.cli import main

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = {"bash", "sh", "shell", "console"}

#: The fetched data, 32x32 crops, widths 8, two steps, no loader processes, fp32.
TINY_TRAIN = [
    "data.root=datasets/facades",
    "data.load_size=36",
    "data.crop_size=32",
    "data.num_workers=0",
    "generator={name: unet, num_downs: 5, ngf: 8, norm: batch}",
    "discriminator={name: patchgan, n_layers: 2, ndf: 8, norm: batch}",
    "train.max_steps=2",
    "train.precision=fp32",
    "train.val_batches=1",
]


def sets(*items: str) -> list[str]:
    return [a for item in items for a in ("--set", item)]


#: Extra arguments appended to a command (by its exact text): tiny sizes and step counts, a
#: local archive instead of a download. Nothing else about the command changes.
EXTRA: dict[str, list[str]] = {
    "ganzoo train recipes/quickstart.yaml --set train.loggers=[tensorboard]": sets(
        *TINY_TRAIN[1:]  # its own data: the embedded sample
    ),
    "ganzoo train recipes/pix2pix_unet256.yaml": sets(*TINY_TRAIN),
    "ganzoo train --resume runs/pix2pix_unet256": sets("train.max_steps=4"),
    "ganzoo show recipes/pix2pix_unet256.yaml": sets("generator.ngf=4", "discriminator.ndf=4"),
    "ganzoo data fetch facades": ["--from", "facades.tar.gz"],
    "ganzoo eval runs/pix2pix_unet256 --split val": ["--device", "cpu"],
    "ganzoo translate runs/pix2pix_unet256 --input labels/ --output out/": ["--device", "cpu"],
    "ganzoo translate runs/facades --input labels/ --output photos/": ["--device", "cpu"],
    "ganzoo train --resume runs/facades --set data.root=datasets/facades": sets(
        "train.max_steps=1", "data.num_workers=0"
    ),
}

ABLATE = (
    "trains every variant x seed in spawned workers (minutes on 2 cores); "
    "tests/test_ablation*.py run it"
)
NETWORK = "needs the network"
#: Commands that are not run, with the reason (by their exact text).
SKIP: dict[str, str] = {
    "make quickstart": "creates a virtual environment and trains 2000 steps (3 minutes)",
    "make test": "runs this very suite",
    "tensorboard --logdir runs": "a server that runs until stopped",
    "ganzoo ablate recipes/ablations/discriminators.yaml --jobs 2": ABLATE,
    "ganzoo ablate recipes/ablations/discriminators_128.yaml --jobs 2 --threads-per-run 1 --set "
    "data.root=../shared/datasets/facades --out runs/ablations/d128-jobs2": ABLATE,
    "ganzoo ablate recipes/ablations/discriminators_128.yaml --threads-per-run 1 --set "
    "data.root=../shared/datasets/facades --out runs/ablations/d128-sequential": ABLATE,
    "ganzoo ablate recipes/ablations/discriminators_modern_128.yaml --jobs 2 --set "
    "data.root=../shared/datasets/facades --set train.precision=bf16 --out "
    "runs/ablations/facades-modern": ABLATE,
    "ganzoo ablate recipes/ablations/discriminators_modern_128.yaml --jobs 2 --set "
    "data.root=../shared/datasets/edges2shoes_2k --set train.precision=bf16 --out "
    "runs/ablations/shoes-modern": ABLATE,
    "ganzoo ablate recipes/ablations/regularizers_128.yaml --jobs 2 --set "
    "data.root=../shared/datasets/facades --set train.precision=bf16 --out "
    "runs/ablations/facades-regularizers": ABLATE,
    "ganzoo ablate recipes/ablations/regularizers_128.yaml --jobs 2 --set "
    "data.root=../shared/datasets/edges2shoes_2k --set train.precision=bf16 --out "
    "runs/ablations/shoes-regularizers": ABLATE,
    "pip install 'ganzoo[slurm]'": NETWORK + " (PyPI)",
    "pip install -e '.[demo]'": NETWORK + " (PyPI)",
    "pip install 'ganzoo[demo]'": NETWORK + " (PyPI)",
    "ganzoo demo": "a server that runs until stopped; tests/test_demo_browser.py drives one",
    "ganzoo demo runs/facades --port 7861": "a server, as `ganzoo demo`",
    "ganzoo demo runs/facades --export demo/": "needs gradio; tests/test_demo.py exports a model",
    "ganzoo push runs/facades yourname/facades-demo --space": NETWORK + " (the Hugging Face Hub)",
    "pip install ./my-gans": "the docs' example package my-gans exists only in the docs",
    "ganzoo check recipes/quickstart.yaml --set generator.name=my_generator": "needs my-gans",
    "ganzoo train recipes/quickstart.yaml --set generator.name=my_generator": "needs my-gans",
    "torchrun --standalone --nproc_per_node 4 -m ganzoo train recipes/pix2pix_unet256.yaml": (
        "4 processes; tests/test_distributed.py runs 2"
    ),
    "ganzoo train recipes/pix2pix_unet256.yaml --nproc 4": "4 processes, as the torchrun line",
    "ganzoo pretrained fetch facades_label2photo": NETWORK + " (the authors' server)",
    "ganzoo translate runs/pretrained/facades_label2photo --input datasets/facades/val "
    "--output out/": "needs the fetched official model",
    "ganzoo push runs/facades yourname/pix2pix-facades": NETWORK + " (the Hugging Face Hub)",
    "ganzoo translate hf://yourname/pix2pix-facades --input labels/ --output out/": NETWORK,
    "ganzoo ablate recipes/ablations/discriminators_256.yaml --set "
    "data.root=/shared/datasets/facades --launcher submitit --launcher-opt partition=gpu "
    "--launcher-opt gpus_per_node=1 --launcher-opt cpus_per_task=8 --launcher-opt time=240 "
    "--launcher-opt mem_gb=32 --out /shared/$USER/ablations/d256": "a SLURM cluster",
    "torchrun --nnodes 2 --nproc_per_node 8 --node_rank $NODE_RANK --rdzv_backend c10d "
    "--rdzv_endpoint first-node.example:29500 -m ganzoo train recipes/pix2pix_unet256.yaml "
    "--out /shared/runs/p2p": "two machines with 8 GPUs each",
    "ganzoo import weights latest_net_G.pth --out runs/mine --flags '--netG unet_256 --norm "
    "batch'": "a full-width upstream G (ngf 64, 218 MB); the same importer runs on "
    "checkpoints/facades_label2photo above",
    "ganzoo train recipes/pix2pix_unet256.yaml $S --set data.root=../shared/datasets/facades "
    "--set train.precision=fp32 --set train.channels_last=false --set optim.fused=false "
    "--out runs/quality-fp32": "600 steps at 256x256 on the real facades (a measurement)",
    "ganzoo train recipes/pix2pix_unet256.yaml $S --set data.root=../shared/datasets/facades "
    "--out runs/quality-fast": "600 steps at 256x256 on the real facades (a measurement)",
    "ganzoo eval runs/quality-fp32 && ganzoo eval runs/quality-fast": "needs the two runs above",
    "for seed in 0 1 2; do for p in auto fp32; do": "a shell loop of six 400-step trainings on "
    "the real facades (a measurement)",
    "done; wait; done": "the end of that loop",
    "ganzoo ablate recipes/pix2pix_unet256.yaml --vary train.precision=bf16,bf16-master "
    "--seeds 0,1,2 --steps 600 --set data.root=../shared/datasets/facades "
    "--set train.val_batches=100 --jobs 2": "six 600-step trainings at 256x256 on the real "
    "facades (a measurement)",
    "ganzoo ablate recipes/pix2pix_unet256.yaml --vary train.precision=bf16-master --seeds 0,1,2 "
    "--steps 600 --set data.root=../shared/datasets/facades --set train.val_batches=100 "
    "--jobs 2": "three 600-step trainings at 256x256 on the real facades (a measurement)",
    "ganzoo ablate recipes/quickstart.yaml --vary train.channels_last=true --seeds 0,1,2 "
    "--steps 600 --set data.root=../shared/datasets/facades --set train.val_batches=25 "
    "--jobs 2": "three 600-step trainings on the real facades (a measurement)",
    'S="--set train.max_steps=600 --set train.sample_every=600 --set train.val_batches=100"': (
        "a shell variable of the measurement above"
    ),
}
BENCHMARK = "a benchmark (minutes; never part of the tests)"


def _placeholder(word: str) -> bool:
    """``RUN_DIR``, ``SPEC``, ``data.root=DATA``: an UPPER_CASE stand-in (not ``$VAR``)."""
    return any(re.fullmatch(r"[A-Z][A-Z0-9_]{2,}", part) for part in word.split("="))


def _words(line: str) -> list[str]:
    """The words of a command line, its trailing ``# comment`` dropped."""
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split()


def _key(command: str) -> str:
    """A command's identity: its words, joined by single spaces (quotes and comments gone)."""
    return " ".join(_words(command))


def doc_commands() -> list[tuple[str, str, str | None]]:
    """(file, command, expected output or None) for every command of the docs, in order;
    synopses (a ``[--option]`` word or an UPPER_CASE placeholder) left out."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
            lang, body = m.group(1), re.sub(r"\\\n\s*", " ", m.group(2))
            lines = body.splitlines()
            if lang in SHELLS:
                commands = [(line, None) for line in lines]
            elif lang == "" and lines and lines[0].startswith("$ "):
                commands = [
                    (line[2:], lines[i + 1] if i + 1 < len(lines) else "")
                    for i, line in enumerate(lines)
                    if line.startswith("$ ")
                ]
            else:
                continue
            for line, shown in commands:
                words = _words(line)
                if words and not any(w.startswith("[") or _placeholder(w) for w in words):
                    found.append((path.name, line.split(" #")[0].strip(), shown))
    return found


def test_every_command_is_run_or_skipped_with_a_reason() -> None:
    commands = {_key(c) for _, c, _ in doc_commands()}
    skipped = {_key(c) for c in SKIP}
    assert skipped <= commands, f"SKIP lists commands the docs no longer hold: {skipped - commands}"
    assert {_key(c) for c in EXTRA} <= commands, "EXTRA lists commands the docs no longer hold"


def _workspace(root: Path) -> None:
    """What the docs assume: recipes/, a facades archive, labels/, an upstream checkpoint."""
    (root / "recipes").symlink_to(ROOT / "recipes")
    rng = np.random.default_rng(0)
    src = root / "archive" / "facades"
    for split, n in (("train", 6), ("val", 2), ("test", 2)):
        (src / split).mkdir(parents=True)
        for i in range(n):
            make_pair(rng, 32).save(src / split / f"{i + 1}.jpg", quality=95)
    with tarfile.open(root / "facades.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="facades")
    (root / "labels").mkdir()
    for i in range(2):
        make_pair(rng, 32).crop((0, 0, 32, 32)).save(root / "labels" / f"l{i}.png")
    _upstream_checkpoint(root / "checkpoints" / "facades_label2photo")


def _upstream_checkpoint(folder: Path) -> None:
    """An upstream pix2pix checkpoint folder (train_opt.txt, latest_net_G/D.pth) of widths 8."""
    from ganzoo.build import build_discriminator, build_generator
    from ganzoo.upstream.importer import resolve_options

    folder.mkdir(parents=True)
    options = {
        "model": "pix2pix",
        "name": "facades_label2photo",
        "dataroot": "./datasets/facades",
        "direction": "BtoA",
        "netG": "unet_256",
        "netD": "basic",
        "ngf": 8,
        "ndf": 8,
        "norm": "batch",
        "num_threads": 0,
        "batch_size": 1,
    }
    (folder / "train_opt.txt").write_text(
        "----------------- Options ---------------\n"
        + "".join(f"{k:>25}: {v!s:<30}\n" for k, v in options.items())
        + "----------------- End -------------------\n"
    )
    recipe = resolve_options(folder / "train_opt.txt", None, None).to_recipe()
    torch.save(build_generator(recipe).state_dict(), folder / "latest_net_G.pth")
    torch.save(build_discriminator(recipe).state_dict(), folder / "latest_net_D.pth")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("docs")
    _workspace(root)
    return root


def _expected_error(shown: str) -> str:
    """The part of a shown error line to compare: up to a ``...`` the docs cut it at."""
    return shown.split(" ...")[0].rstrip()


def test_every_runnable_command_runs_as_written(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    ran, failures, done = 0, [], set()
    for name, command, shown in doc_commands():
        key = _key(command)
        if key in {_key(c) for c in SKIP} or key in done:
            continue  # skipped, or shown again by a later file (run once)
        done.add(key)
        words = _words(command)
        if words[0] == "python" and words[1].startswith("benchmarks/"):
            continue  # BENCHMARK
        assert words[0] == "ganzoo", f"{name}: `{command}` is neither run nor in SKIP"
        extra = next((v for k, v in EXTRA.items() if _key(k) == key), [])
        code = main([*words[1:], *extra])
        out, err = capsys.readouterr()
        ran += 1
        if shown is not None:  # an error the docs show
            got = err.strip().splitlines()[0] if err.strip() else ""
            if code != 2 or not got.startswith(_expected_error(shown)):
                failures.append(f"{name}: `{command}` printed {got!r}, the docs show {shown!r}")
        elif code != 0:
            failures.append(f"{name}: `{command}` exited {code}: {(err or out).strip()[-300:]}")
    assert not failures, "\n".join(failures)
    assert ran >= 20


def test_data_md_shows_the_out_of_range_message_as_it_is(tmp_path: Path) -> None:
    """docs/data.md quotes the out-of-range error; the loader must print exactly that."""
    from ganzoo.data.ranges import SideRange
    from ganzoo.errors import DataError

    text = (ROOT / "docs" / "data.md").read_text(encoding="utf-8")
    (shown,) = re.findall(r"^error: (\S+): (value .*outside data\.range.*)$", text, re.M)
    path, message = shown
    value = float(re.search(r"value (\S+)", message).group(1))
    lo, hi = (float(x) for x in re.search(r"\[(\S+), (\S+)\]", message).groups())
    channel = int(re.search(r"channel (\d+)", message).group(1))
    array = np.full((channel + 2, 2, 2), lo, np.float32)
    array[channel, 0, 0] = value
    with pytest.raises(DataError) as info:
        SideRange("B", (lo, hi)).check(array, path)
    assert str(info.value) == f"{path}: {message}"
