"""`ganzoo ablate`: specs, the fairness rules, resumable runs and a report whose numbers add up."""

from __future__ import annotations

import csv
import json
import math
import re
import statistics
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from ganzoo.ablation import build_plan, load_plan, run_ablation, write_results
from ganzoo.ablation.spec import parse_vary, spec_from_dict, value_label
from ganzoo.cli import main
from ganzoo.errors import GanzooError, RecipeError, SizeError

QUICKSTART = ROOT / "recipes" / "quickstart.yaml"
TINY = [  # the quickstart recipe at 32x32, tiny widths, quick cadence
    "data.direction=AtoB",
    "data.load_size=36",
    "data.crop_size=32",
    "data.batch_size=2",
    "data.num_workers=0",
    "generator={name: unet, num_downs: 5, ngf: 4, norm: batch}",
    "train.precision=fp32",
    "train.deterministic=true",
    "train.log_every=1",
    "train.sample_every=1000",
    "train.checkpoint_every=1",
    "train.val_batches=1",
]
DISCRIMINATORS = {
    "patchgan": {"name": "patchgan", "n_layers": 2, "ndf": 4, "norm": "batch"},
    "multiscale": {"name": "multiscale", "num_d": 2, "n_layers": 2, "ndf": 4, "norm": "batch"},
    "multidepth": {"name": "multidepth", "branches": 2, "ndf": 4, "norm": "batch"},
}
BUDGET = 3
SEEDS = [0, 1]


def tiny_sets(data: Path) -> list[str]:
    return [f"data.root={data}", *TINY]


def write_spec(folder: Path, **changes) -> Path:
    spec = {
        "name": "tiny",
        "base": str(QUICKSTART),
        "budget": {"max_steps": BUDGET},
        "seeds": SEEDS,
        "eval": {"split": "val", "mode": "eval", "samples": 3},
        "axes": {"discriminator": DISCRIMINATORS},
        **changes,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def ablation(tiny_data: Path, tmp_path_factory) -> Path:
    """A finished tiny ablation (3 discriminators x 2 seeds x 3 steps), run through the CLI."""
    folder = tmp_path_factory.mktemp("ablation")
    spec = write_spec(folder)
    out = folder / "out"
    args = ["ablate", str(spec), "--out", str(out)]
    for s in tiny_sets(tiny_data):
        args += ["--set", s]
    assert main(args) == 0
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_md_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """The first table of a markdown file (the summary; the statistics follow)."""
    text = path.read_text()
    first = text[text.index("\n|") + 1 :].split("\n\n")[0]
    lines = [x for x in first.splitlines() if x.startswith("|")]
    split = [[c.strip() for c in x.strip("|").split("|")] for x in lines]
    return split[0], split[2:]


def parse_cell(cell: str) -> tuple[float, float | None, bool]:
    """'**0.1234 ± 0.0100**' -> (0.1234, 0.01, True); '± –' -> std None."""
    bold = cell.startswith("**") and cell.endswith("**")
    mean, std = cell.strip("*").split(" ± ")
    return float(mean), None if std == "–" else float(std), bold


def test_every_artifact_is_written(ablation: Path) -> None:
    for name in ("results.csv", "results.md", "metrics.png", "samples.png", "ablation.json"):
        assert (ablation / name).is_file() and (ablation / name).stat().st_size > 0, name
    for variant in DISCRIMINATORS:
        for seed in SEEDS:
            run = ablation / "runs" / f"{variant}__seed{seed}"
            assert (run / "checkpoints" / f"step_{BUDGET:08d}.pt").is_file()
            record = json.loads((run / "eval" / "val.json").read_text())
            assert record["step"] == BUDGET and record["n"] == 4 and record["mode"] == "eval"
    from PIL import Image

    w, h = Image.open(ablation / "samples.png").size
    assert w > h  # 3 rows, 2 + 3 columns


def test_results_csv_has_one_row_per_run_with_every_number(ablation: Path) -> None:
    rows = read_csv(ablation / "results.csv")
    assert [(r["variant"], int(r["seed"])) for r in rows] == [
        (v, s) for s in SEEDS for v in DISCRIMINATORS
    ]
    for r in rows:
        assert r["discriminator"] == r["variant"] and int(r["step"]) == BUDGET
        for key in ("ms_per_iter", "loss_d", "loss_g_gan", "loss_g_l1", "l1", "psnr", "ssim"):
            assert math.isfinite(float(r[key])), (key, r)
        assert 0 < float(r["l1"]) < 2 and -1 <= float(r["ssim"]) <= 1
    # same G for every variant, D as built from each block
    assert len({r["params_g"] for r in rows}) == 1
    assert len({r["params_d"] for r in rows}) == 3
    # the seed changes the run (data order, augmentation, initialisation)
    by = {(r["variant"], r["seed"]): float(r["l1"]) for r in rows}
    assert by[("patchgan", "0")] != by[("patchgan", "1")]


def test_results_md_is_mean_and_sample_std_of_the_csv(ablation: Path) -> None:
    rows = read_csv(ablation / "results.csv")
    header, table = read_md_table(ablation / "results.md")
    columns = {
        "L1 ↓": ("l1", 4, min),
        "PSNR (dB) ↑": ("psnr", 2, max),
        "SSIM ↑": ("ssim", 4, max),
        "ms/iter ↓": ("ms_per_iter", 1, min),
    }
    assert set(columns) <= set(header)
    assert [r[0] for r in table] == list(DISCRIMINATORS)
    for title, (key, decimals, pick) in columns.items():
        col = header.index(title)
        means = {}
        for line in table:
            values = [float(r[key]) for r in rows if r["variant"] == line[0]]
            mean, std, _ = parse_cell(line[col])
            means[line[0]] = statistics.fmean(values)
            assert mean == pytest.approx(means[line[0]], abs=0.51 * 10**-decimals), title
            assert std == pytest.approx(statistics.stdev(values), abs=0.51 * 10**-decimals)
        best = pick(means, key=means.get)
        bold = {line[0] for line in table if parse_cell(line[header.index(title)])[2]}
        assert best in bold and len(bold) == 1, (title, bold, means)
    g_params = {r["params_g"] for r in rows}.pop()
    assert all(line[header.index("G params")] == f"{int(g_params):,}" for line in table)


def test_rerun_trains_nothing_and_only_an_unfinished_run_retrains(
    ablation: Path, tiny_data: Path
) -> None:
    plan = load_plan(ablation.parent / "spec.yaml", tiny_sets(tiny_data))
    before = read_csv(ablation / "results.csv")
    outcomes = run_ablation(plan, ablation, progress=False)
    assert {o.action for o in outcomes} == {"skipped"} and len(outcomes) == 6

    resumed = ablation / "runs" / "multiscale__seed1"
    (resumed / "checkpoints" / f"step_{BUDGET:08d}.pt").unlink()  # step 2 is left
    restarted = ablation / "runs" / "patchgan__seed0"
    for ckpt in (restarted / "checkpoints").iterdir():
        ckpt.unlink()
    untouched = ablation / "runs" / "multidepth__seed0" / "checkpoints" / f"step_{BUDGET:08d}.pt"
    mtime = untouched.stat().st_mtime_ns
    outcomes = {(o.variant, o.seed): o.action for o in run_ablation(plan, ablation, progress=False)}
    assert outcomes.pop(("multiscale", 1)) == "resumed"
    assert outcomes.pop(("patchgan", 0)) == "trained"
    assert set(outcomes.values()) == {"skipped"}
    assert untouched.stat().st_mtime_ns == mtime
    # resuming and restarting reproduce the runs exactly (the trainer's resume is exact)
    write_results(ablation)
    after = read_csv(ablation / "results.csv")
    for a, b in zip(before, after):
        assert (a["variant"], a["l1"], a["psnr"], a["ssim"]) == (
            b["variant"],
            b["l1"],
            b["psnr"],
            b["ssim"],
        )
    steps = [
        json.loads(x)["step"]
        for x in (resumed / "metrics.jsonl").read_text().splitlines()
        if "loss_d" in x
    ]
    assert steps == list(range(1, BUDGET + 1))  # no duplicated records after the resume


def test_a_run_trained_with_another_recipe_is_refused(ablation: Path, tiny_data: Path) -> None:
    plan = load_plan(ablation.parent / "spec.yaml", [*tiny_sets(tiny_data), "optim.lr_g=0.001"])
    with pytest.raises(RecipeError, match=r"trained with another recipe \(optim.lr_g: 0.0002"):
        run_ablation(plan, ablation, progress=False)
    assert "optim.lr_g" not in (ablation / "ablation.json").read_text()  # nothing was changed


def test_report_rebuilds_from_finished_runs(ablation: Path, capsys) -> None:
    before = (ablation / "results.csv").read_text()
    for name in ("results.csv", "results.md", "metrics.png", "samples.png"):
        (ablation / name).unlink()
    assert main(["ablate", "--report", str(ablation)]) == 0
    out = capsys.readouterr().out
    assert "multidepth" in out and "L1" in out
    assert (ablation / "results.csv").read_text() == before
    assert all((ablation / n).is_file() for n in ("results.md", "metrics.png", "samples.png"))


def test_report_of_a_folder_that_is_no_ablation_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["ablate", "--report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no ablation.json" in err and len(err.strip().splitlines()) == 1


def test_one_seed_writes_no_spread(tmp_path: Path, tiny_data: Path) -> None:
    spec = write_spec(
        tmp_path,
        seeds=[3],
        budget={"max_steps": 1},
        axes={"discriminator": {"patchgan": DISCRIMINATORS["patchgan"]}},
    )
    plan = load_plan(spec, tiny_sets(tiny_data))
    run_ablation(plan, tmp_path / "out", progress=False)
    report = write_results(tmp_path / "out")
    header, table = read_md_table(report.markdown)
    mean, std, bold = parse_cell(table[0][header.index("L1 ↓")])
    assert std is None and bold and "± –" in table[0][header.index("L1 ↓")]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"seed": 1}, "seed: unknown key"),
        ({"budget": None}, "budget: expected"),
        ({"budget": {"max_steps": 0}}, "budget.max_steps: must be greater than or equal to 1"),
        ({"budget": {"max_steps": 5, "steps": 5}}, "budget.steps: unknown key"),
        ({"seeds": [0, 0]}, "seeds: seeds must be distinct"),
        ({"eval": {"mode": "test"}}, "eval.mode: expected one of"),
        ({"axes": {}}, "axes: expected"),
        ({"axes": {"seed": [1, 2]}}, "axes.seed: seeds are listed under `seeds:`"),
        ({"axes": {"train.max_steps": [1, 2]}}, "axes.train.max_steps: every variant gets"),
        ({"axes": {"data.root": ["a", "b"]}}, "axes.data.root: data.root must be the same"),
        ({"axes": {"discriminatr.name": ["patchgan"]}}, "did you mean 'discriminator'"),
        (
            {"axes": {"discriminator": [{"name": "patchgan"}]}},
            "axes.discriminator[0]: a list holds plain values",
        ),
        (
            {"axes": {"discriminator": {"patch gan": {"name": "patchgan"}}}},
            "axes.discriminator.patch gan: a variant label",
        ),
        ({"axes": {"optim.lr_d": []}}, "axes.optim.lr_d: give at least one value"),
        ({"axes": {"optim.lr_d": [0.1, "0.1"]}}, "two values share the label '0.1'"),
    ],
)
def test_spec_errors_are_one_line_with_the_dotted_path(
    tmp_path: Path, tiny_data: Path, changes: dict, message: str
) -> None:
    spec = write_spec(tmp_path, **changes)
    with pytest.raises(RecipeError) as info:
        load_plan(spec, tiny_sets(tiny_data))
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(spec) in str(info.value)


@pytest.mark.parametrize(
    "axes, error, message",
    [
        (
            {"discriminator.name": ["pixel", "patchgun"]},
            GanzooError,
            "axes.discriminator.name.patchgun: unknown discriminator",
        ),
        (
            {"discriminator": {"big": {"name": "multidepth", "branches": 4}}},
            SizeError,
            "variant big: multidepth with branches=4 needs image_size of at least 96x96",
        ),
        (
            {"train": {"chatty": {"log_every": 7}}},
            RecipeError,
            "variant chatty changes train.log_every (1 -> 7)",
        ),
        (
            {"discriminator": {"p": {"name": "patchgan", "ndf": "wide"}}},
            RecipeError,
            "discriminator.ndf: expected an integer",
        ),
    ],
)
def test_a_bad_variant_fails_before_anything_trains(
    tmp_path: Path, tiny_data: Path, axes: dict, error: type, message: str
) -> None:
    spec = write_spec(tmp_path, axes=axes)
    with pytest.raises(error) as info:
        load_plan(spec, tiny_sets(tiny_data))
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "runs").exists()


def test_missing_data_root_fails_up_front(tmp_path: Path, tiny_data: Path) -> None:
    spec = write_spec(tmp_path)
    with pytest.raises(GanzooError, match="--set data.root=PATH"):
        load_plan(spec, [*tiny_sets(tiny_data), f"data.root={tmp_path / 'nowhere'}"])


def test_quick_form_parsing(tiny_data: Path) -> None:
    assert parse_vary(["discriminator.name=patchgan,multiscale", "optim.lr_d=2e-4,0.001"]) == {
        "discriminator.name": ["patchgan", "multiscale"],
        "optim.lr_d": ["2e-4", 0.001],  # YAML 1.1: '2e-4' (no dot) stays a string
    }
    plan = load_plan(
        QUICKSTART,
        tiny_sets(tiny_data),
        seeds="0,1",
        steps=4,
        vary=["discriminator.name=patchgan,multiscale", "optim.lr_d=0.0002,0.001"],
    )
    assert plan.seeds == [0, 1] and plan.max_steps == 4
    assert plan.axes == ["discriminator.name", "optim.lr_d"]
    assert [v.name for v in plan.variants] == [
        "patchgan+0.0002",
        "patchgan+0.001",
        "multiscale+0.0002",
        "multiscale+0.001",
    ]
    assert plan.variants[1].values == {"discriminator.name": "patchgan", "optim.lr_d": "0.001"}
    assert plan.name == "quickstart-discriminator.name-optim.lr_d"
    multiscale = plan.variants[2].recipe(seed=1)
    assert multiscale.seed == 1 and multiscale.train.max_steps == 4
    assert multiscale.optim.lr_d == 0.0002
    # the base (quickstart) PatchGAN's n_layers, ndf and norm carry over to multiscale
    assert multiscale.discriminator.params == {"n_layers": 3, "ndf": 32, "norm": "instance"}
    assert plan.variants[0].recipe(0).discriminator.params["ndf"] == 32
    # the same fairness-relevant settings for every variant
    recipes = [v.recipe(0) for v in plan.variants]
    assert {(r.data.root, r.train.log_every, r.train.max_steps) for r in recipes} == {
        (str(tiny_data), 1, 4)
    }


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "say what to vary with --vary"),
        ({"vary": ["discriminator.name"]}, "expected dotted.key=v1,v2"),
        ({"vary": ["discriminator.name=a,,b"]}, "an empty value between commas"),
        ({"vary": ["optim.lr_d=0.1"], "seeds": "0,x"}, "--seeds '0,x': expected integers"),
        ({"vary": ["optim.lr_d=0.1"], "steps": None}, "give the step budget"),
    ],
)
def test_quick_form_errors(tiny_data: Path, kwargs: dict, message: str) -> None:
    kwargs = {"steps": 2, **kwargs}
    with pytest.raises(RecipeError, match=re.escape(message)):
        load_plan(QUICKSTART, tiny_sets(tiny_data), **kwargs)


def test_a_spec_is_told_from_a_recipe_by_its_axes(tmp_path: Path, tiny_data: Path) -> None:
    spec = write_spec(tmp_path)
    with pytest.raises(RecipeError, match="add the axis under `axes:`"):
        load_plan(spec, tiny_sets(tiny_data), vary=["optim.lr_d=0.1,0.2"])
    plan = load_plan(spec, tiny_sets(tiny_data), seeds="5", steps=7)  # override seeds, budget
    assert plan.seeds == [5] and plan.max_steps == 7 and plan.name == "tiny"


def test_named_blocks_replace_or_merge_like_extends(tiny_data: Path) -> None:
    spec = spec_from_dict(
        {
            "base": str(QUICKSTART),
            "budget": {"max_steps": 1},
            "axes": {
                "discriminator": {
                    "same": {"name": "patchgan", "n_layers": 2},
                    "other": {"name": "pixel"},
                },
                "loss.l1": {"l1_0": 0.0, "l1_100": 100},
            },
        }
    )
    plan = build_plan(spec, tiny_sets(tiny_data))
    same, other = plan.variants[0].recipe(0), plan.variants[2].recipe(0)
    assert [v.name for v in plan.variants] == [
        "same+l1_0",
        "same+l1_100",
        "other+l1_0",
        "other+l1_100",
    ]
    # same component: merged over the base's params (quickstart: ndf 32, instance)
    assert same.discriminator.params == {"n_layers": 2, "ndf": 32, "norm": "instance"}
    assert same.loss.l1 == 0.0
    # another component: replaced whole, its own defaults
    assert other.discriminator.name == "pixel" and "n_layers" not in other.discriminator.params


def test_value_labels_are_file_name_safe() -> None:
    assert value_label("patchgan") == "patchgan"
    assert value_label(0.0002) == "0.0002"
    assert value_label(True) == "true" and value_label(None) == "null"
    assert value_label("a/b c") == "a-b-c"


@pytest.mark.parametrize(
    "path", sorted((ROOT / "recipes" / "ablations").glob("*.yaml")), ids=lambda p: p.stem
)
def test_shipped_specs_are_valid(path: Path, tiny_data: Path) -> None:
    plan = load_plan(path, [f"data.root={tiny_data}"])  # every variant built on meta
    assert len(plan.variants) >= 2 and plan.max_steps >= 1
    params = [v.recipe(0).discriminator.params for v in plan.variants]
    names = {v.recipe(0).discriminator.name for v in plan.variants}
    if names <= {"patchgan", "multiscale", "multidepth", "pixel"}:
        # fair: the same width and norm for every classic discriminator
        assert len({(p["ndf"], p["norm"]) for p in params}) == 1
    else:  # families of other shapes: each width is stated (and the header says why)
        assert all("ndf" in p for p in params)


def test_a_name_axis_keeps_the_params_the_new_component_takes(tiny_data: Path) -> None:
    """Swapping the discriminator keeps the base's width and norm wherever the new one takes
    them, so the variants differ in the discriminator alone."""
    plan = load_plan(
        QUICKSTART,
        [
            *tiny_sets(tiny_data),
            "discriminator.ndf=8",
            "discriminator.norm=instance",
            "data.load_size=100",
            "data.crop_size=96",
        ],
        steps=2,
        vary=["discriminator.name=patchgan,multiscale,multidepth"],
    )
    params = {v.name: v.recipe(seed=0).discriminator.params for v in plan.variants}
    for name in ("patchgan", "multiscale", "multidepth"):
        assert params[name]["ndf"] == 8 and params[name]["norm"] == "instance", params[name]
    assert params["multiscale"]["n_layers"] == params["patchgan"]["n_layers"]
    assert "n_layers" not in params["multidepth"]  # multidepth takes no n_layers
