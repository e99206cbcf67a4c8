"""The step's terms (ganzoo/losses/terms.py): recipe regularizers and discriminator-declared
terms augment every D input, add D/G losses, keep state across a resume, and can replace the
objective."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_recipe, train_whole_and_resumed

from ganzoo import registry
from ganzoo.artifacts.checkpoint import latest_checkpoint, load_checkpoint
from ganzoo.build import check_recipe
from ganzoo.errors import GanzooError
from ganzoo.losses.terms import DView, GView, Term
from ganzoo.training.trainer import Trainer, train


class Probe(Term):
    """Flips D's inputs left-right, adds ``weight * mean(real logits^2)`` to D and
    ``weight * mean(fake pair)`` to G, counts D updates in its state."""

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight
        self.updates = torch.zeros((), dtype=torch.int64)
        self.seen: list[tuple[int, ...]] = []

    def augment(self, pairs: torch.Tensor, step: int) -> torch.Tensor:
        self.seen.append(tuple(pairs.shape))
        return pairs.flip(-1)

    def d_loss(self, view: DView) -> dict[str, torch.Tensor]:
        return {"probe": self.weight * view.real_out[0][-1].pow(2).mean()}

    def after_d_step(self, view: DView) -> None:
        self.updates += 1

    def g_loss(self, view: GView) -> dict[str, torch.Tensor]:
        return {"probe": self.weight * view.fake_pairs.float().mean()}

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = state["updates"].clone()


class OwnGan(Term):
    """The vanilla objective with d_scale 1, written as a term that replaces the objective."""

    replaces_objective = True

    def d_loss(self, view: DView) -> dict[str, torch.Tensor]:
        real, fake = view.real_out[0][-1], view.fake_out[0][-1]
        return {"real": F.softplus(-real).mean(), "fake": F.softplus(fake).mean()}

    def g_loss(self, view: GView) -> dict[str, torch.Tensor]:
        return {"gan": F.softplus(-view.fake_out[0][-1]).mean()}


class NeedsLabels(Term):
    needs = frozenset({"labels"})


@pytest.fixture
def terms_registered() -> Any:
    names = {"test_terms_probe": Probe, "test_terms_own": OwnGan, "test_terms_labels": NeedsLabels}
    for name, cls in names.items():
        registry.register("regularizer", name)(cls)
    yield
    for name in names:
        registry.default_registry._entries["regularizer"].pop(name, None)


def _probe(trainer: Trainer) -> Probe:
    (found,) = [t for t in trainer.update.terms if isinstance(t, Probe)]
    return found


def test_a_regularizer_sees_every_d_input_and_adds_logged_terms(
    tiny_data: Path, tmp_path: Path, terms_registered: Any
) -> None:
    recipe = tiny_recipe(
        tiny_data, "train.max_steps=4", "loss.regularizers=[{name: test_terms_probe}]"
    )
    trainer, _ = train(recipe, run_dir=tmp_path / "run", progress=False)
    probe = _probe(trainer)
    # per step: D's fake and real inputs, then G's fake pair; condition + image channels
    assert probe.seen == [(2, 6, 32, 32)] * 12
    assert int(probe.updates) == 4
    ckpt = load_checkpoint(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    assert ckpt["terms"] == [{"term": "Probe", "state": {"updates": torch.tensor(4)}}]
    logged = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert "loss_d_probe" in logged and "loss_g_probe" in logged


def test_the_terms_change_the_updates_and_an_idle_term_changes_nothing(
    tiny_data: Path, tmp_path: Path, terms_registered: Any
) -> None:
    def d_weights(*overrides: str, name: str) -> dict[str, torch.Tensor]:
        recipe = tiny_recipe(tiny_data, "train.max_steps=2", *overrides)
        trainer, _ = train(recipe, run_dir=tmp_path / name, progress=False)
        return {k: v.clone() for k, v in trainer.state.d_module.state_dict().items()}

    plain = d_weights(name="plain")
    with_probe = d_weights("loss.regularizers=[{name: test_terms_probe}]", name="probe")
    assert any(not torch.equal(plain[k], with_probe[k]) for k in plain)
    # the terms mechanism itself leaves the reference step as it was (an empty list)
    again = d_weights("loss.regularizers=[]", name="again")
    assert all(torch.equal(plain[k], again[k]) for k in plain)


def test_term_state_survives_a_resume_exactly(
    tiny_data: Path, tmp_path: Path, terms_registered: Any
) -> None:
    reg = "loss.regularizers=[{name: test_terms_probe, weight: 0.5}]"
    whole, resumed = train_whole_and_resumed(tiny_data, tmp_path, reg)
    assert int(_probe(resumed).updates) == int(_probe(whole).updates) == 6
    a, b = whole.state.d_module.state_dict(), resumed.state.d_module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_term_can_replace_the_objective(
    tiny_data: Path, tmp_path: Path, terms_registered: Any
) -> None:
    common = ("train.max_steps=2",)
    vanilla, _ = train(
        tiny_recipe(tiny_data, *common, "loss.objective={name: vanilla, d_scale: 1}"),
        run_dir=tmp_path / "vanilla",
        progress=False,
    )
    own, _ = train(
        tiny_recipe(tiny_data, *common, "loss.regularizers=[{name: test_terms_own}]"),
        run_dir=tmp_path / "own",
        progress=False,
    )
    # Adam moves each weight by about lr * g / (|g| + eps) (lr 2e-4): the two float paths of
    # the same loss leave weights whose gradient is near eps 2e-5 apart, a wrong or missing
    # term moves whole layers by lr the other way
    a, b = vanilla.state.d_module.state_dict(), own.state.d_module.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-4) for k in a)
    ga, gb = vanilla.state.g_module.state_dict(), own.state.g_module.state_dict()
    assert all(torch.allclose(ga[k].float(), gb[k].float(), atol=1e-4) for k in ga)


def test_terms_that_cannot_work_are_refused_in_one_line(
    tiny_data: Path, terms_registered: Any
) -> None:
    recipe = tiny_recipe(tiny_data, "loss.regularizers=[{name: test_terms_labels}]")
    with pytest.raises(GanzooError, match="needs label maps: add data.labels") as err:
        check_recipe(recipe)
    assert "\n" not in str(err.value)
    two = "loss.regularizers=[{name: test_terms_own}, {name: test_terms_own}]"
    with pytest.raises(GanzooError, match="only one term may replace the objective"):
        check_recipe(tiny_recipe(tiny_data, two))
    with pytest.raises(GanzooError, match="unknown|did you mean"):
        tiny_recipe(tiny_data, "loss.regularizers=[{name: test_terms_prob}]")


def test_the_recipe_without_regularizers_reads_as_before(tiny_data: Path) -> None:
    assert "regularizers" not in tiny_recipe(tiny_data).to_dict()["loss"]
