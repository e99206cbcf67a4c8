"""Recipes: validation with dotted paths, extends, overrides, malformed input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganzoo.build import check_recipe
from ganzoo.errors import GanzooError, RecipeError, SizeError
from ganzoo.recipe import Recipe, load_recipe
from ganzoo.recipe_tree import apply_overrides, deep_merge

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
MAIN = RECIPES / "pix2pix_unet256.yaml"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_reference_recipe_has_the_pix2pix_defaults() -> None:
    r = load_recipe(MAIN)
    assert r.data.name == "aligned" and r.data.params == {"direction": "BtoA"}
    assert (r.data.load_size, r.data.crop_size, r.data.flip, r.data.batch_size) == (
        286,
        256,
        True,
        1,
    )
    assert r.generator.name == "unet_256"
    assert r.generator.params == {"ngf": 64, "norm": "batch", "dropout": True}
    assert r.discriminator.name == "patchgan"
    assert r.discriminator.params == {"n_layers": 3, "ndf": 64, "norm": "batch"}
    assert r.loss.objective.name == "vanilla" and r.loss.l1 == 100
    assert (r.optim.lr_g, r.optim.lr_d, r.optim.betas) == (2e-4, 2e-4, (0.5, 0.999))
    assert (r.schedule.name, r.schedule.epochs, r.schedule.decay_epochs) == ("linear", 100, 100)


def test_precision_reference_is_the_upstream_arithmetic_in_one_word() -> None:
    # every recipe defaults to precision auto (bf16 autocast on bf16 hardware); the upstreams
    # train in fp32, and channels_last and the fused Adam kernel round differently too
    assert load_recipe(MAIN).train.precision == "auto"
    r = load_recipe(MAIN, ["train.precision=reference"])
    assert (r.train.precision, r.train.channels_last, r.optim.fused) == ("fp32", False, False)
    assert Recipe.model_validate(r.to_dict()).train.precision == "fp32"  # stored expanded


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_bundled_recipe_validates_and_builds_on_meta(path: Path) -> None:
    check_recipe(load_recipe(path))


def test_wrong_type_names_the_dotted_path() -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe(MAIN, ["discriminator.n_layers=three"])
    assert str(info.value).endswith("discriminator.n_layers: expected an integer, got 'three'")


def test_unknown_component_suggests_closest() -> None:
    with pytest.raises(RecipeError, match="did you mean 'unet_256'"):
        load_recipe(MAIN, ["generator.name=unet_265"])


def test_unknown_keys_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"optim\.lr: unknown key"):
        load_recipe(MAIN, ["optim.lr=0.1"])
    with pytest.raises(RecipeError, match="trian: unknown key"):
        load_recipe(MAIN, ["trian.max_steps=3"])
    with pytest.raises(RecipeError, match="generator.ngff: generator 'unet_256' takes no"):
        load_recipe(MAIN, ["generator.ngff=3"])


def test_missing_section(tmp_path: Path) -> None:
    p = write(tmp_path / "r.yaml", "name: x\ndata: {root: d}\ngenerator: unet_256\n")
    with pytest.raises(RecipeError, match="discriminator: required, but missing"):
        load_recipe(p)


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    p = write(tmp_path / "bad.yaml", "name: x\ndata: {root: d\n")
    with pytest.raises(RecipeError, match=r"bad.yaml: malformed YAML at line \d+"):
        load_recipe(p)
    p = write(tmp_path / "list.yaml", "- a\n- b\n")
    with pytest.raises(RecipeError, match="must be a mapping"):
        load_recipe(p)


def test_extends_deep_merges_relative_to_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "base.yaml", MAIN.read_text())
    child = write(
        tmp_path / "sub" / "child.yaml",
        "extends: ../base.yaml\nname: child\ndata: {batch_size: 4}\ngenerator: {ngf: 32}\n",
    )
    r = load_recipe(child)
    assert r.name == "child" and r.data.batch_size == 4 and r.data.load_size == 286
    assert r.generator.params == {"ngf": 32, "norm": "batch", "dropout": True}


def test_extends_with_a_new_component_drops_the_old_params(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", MAIN.read_text())
    child = write(
        tmp_path / "c.yaml", "extends: base.yaml\ndiscriminator: {name: multiscale, num_d: 2}\n"
    )
    r = load_recipe(child)
    assert r.discriminator.name == "multiscale"
    assert r.discriminator.params == {"num_d": 2}


def test_extends_cycle_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "extends: b.yaml\nname: a\n")
    write(tmp_path / "b.yaml", "extends: a.yaml\nname: b\n")
    with pytest.raises(RecipeError, match="cycle"):
        load_recipe(tmp_path / "a.yaml")


def test_extends_missing_file(tmp_path: Path) -> None:
    p = write(tmp_path / "a.yaml", "extends: nowhere.yaml\nname: a\n")
    with pytest.raises(RecipeError, match="nowhere.yaml` not found"):
        load_recipe(p)


def test_overrides_parse_yaml_values() -> None:
    r = load_recipe(
        MAIN, ["optim.betas=[0.0, 0.9]", "train.max_steps=5", "data.crop_size=[128, 256]"]
    )
    assert r.optim.betas == (0.0, 0.9) and r.train.max_steps == 5
    assert r.data.image_size == (128, 256)


def test_override_renaming_a_component_keeps_the_params_it_also_takes() -> None:
    """`--set generator.name=X` used to drop every base parameter (quickstart's ngf 32,
    instance norm, dropout became 64, batch, none) while `ablate --vary` kept the shared ones;
    both keep them now."""
    from ganzoo.ablation.plan import swap_component

    tree = {"generator": {"name": "unet_256", "ngf": 32, "norm": "instance", "num_downs": 8}}
    swapped = {"generator": {"name": "resnet_9blocks", "ngf": 32, "norm": "instance"}}
    assert apply_overrides(tree, ["generator.name=resnet_9blocks"]) == swapped
    assert swap_component(tree, "generator.name", "resnet_9blocks") == swapped
    r = load_recipe(RECIPES / "quickstart.yaml", ["generator.name=resnet_9blocks"])
    assert r.generator.params == {"ngf": 32, "norm": "instance", "dropout": True}
    whole = load_recipe(RECIPES / "quickstart.yaml", ["generator={name: resnet_9blocks}"])
    assert whole.generator.params == {}
    with pytest.raises(RecipeError, match="expected dotted.key=value"):
        apply_overrides(tree, ["generator"])


def test_check_prints_every_component_default() -> None:
    """`ganzoo check` says it prints every default; the components' parameters were left out."""
    import yaml

    r = load_recipe(RECIPES / "quickstart.yaml", [])
    tree = yaml.safe_load(r.to_yaml(defaults=True))
    assert tree["generator"]["init_gain"] == 0.02 and tree["generator"]["ngf"] == 32
    assert tree["discriminator"]["spectral_norm"] is False
    assert "image_size" not in tree["generator"]  # filled from the crop size at build time
    again = load_recipe_tree(tree)  # the printed recipe loads, and means the same
    assert again.to_yaml(defaults=True) == r.to_yaml(defaults=True)
    assert "init_gain" not in r.to_yaml()


def load_recipe_tree(tree: dict) -> Recipe:
    from ganzoo.recipe import from_dict

    return from_dict(tree)


def test_deep_merge_replaces_lists_and_scalars() -> None:
    assert deep_merge({"a": {"b": [1, 2], "c": 1}}, {"a": {"b": [3]}}) == {"a": {"b": [3], "c": 1}}


def test_bad_image_size_is_refused_with_nearest_valid() -> None:
    r = load_recipe(MAIN, ["data.crop_size=200"])
    with pytest.raises(SizeError) as info:
        check_recipe(r)
    msg = str(info.value)
    assert "unet_256" in msg and "200x200" in msg and "256x256" in msg and "\n" not in msg


def test_round_trip_through_yaml(tmp_path: Path) -> None:
    r = load_recipe(RECIPES / "sagan_unet.yaml")
    p = write(tmp_path / "resolved.yaml", r.to_yaml())
    assert load_recipe(p) == r


def test_schema_lists_sections() -> None:
    schema = Recipe.model_json_schema()
    for section in (
        "name",
        "seed",
        "data",
        "generator",
        "discriminator",
        "loss",
        "optim",
        "schedule",
        "train",
    ):
        assert section in schema["properties"]


def test_errors_are_ganzoo_errors() -> None:
    assert issubclass(RecipeError, GanzooError) and issubclass(SizeError, GanzooError)
