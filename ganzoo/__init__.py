"""ganzoo: paired image-to-image translation GANs (the pix2pix family).

The public surface is small: :func:`load` (a trained or pretrained model, ready to translate
images), :func:`train`, :func:`evaluate` and :func:`ablate` (what the commands of the same
names do, returning the typed records of :mod:`ganzoo.results`), :func:`create` and
:func:`list_components` from the registry, :func:`load_recipe`, and the ``ganzoo`` command
line. Everything heavy is imported on first use.
"""

from ganzoo.errors import GanzooError
from ganzoo.registry import create, register
from ganzoo.registry import list as list_components
from ganzoo.version import __version__


def load(source, **options):  # noqa: ANN001, ANN003, ANN201 - re-exported, documented there
    """See :func:`ganzoo.api.load`."""
    from ganzoo.api import load as _load

    return _load(source, **options)


def train(recipe=None, **options):  # noqa: ANN001, ANN003, ANN201 - re-exported, documented there
    """See :func:`ganzoo.workflows.train` (returns a :class:`ganzoo.results.TrainResult`)."""
    from ganzoo.workflows import train as _train

    return _train(recipe, **options)


def evaluate(model, split="val", **options):  # noqa: ANN001, ANN003, ANN201 - re-exported
    """See :func:`ganzoo.workflows.evaluate` (returns a :class:`ganzoo.results.EvalRecord`)."""
    from ganzoo.workflows import evaluate as _evaluate

    return _evaluate(model, split, **options)


def ablate(source, **options):  # noqa: ANN001, ANN003, ANN201 - re-exported, documented there
    """See :func:`ganzoo.workflows.ablate` (returns a :class:`ganzoo.results.AblationResult`)."""
    from ganzoo.workflows import ablate as _ablate

    return _ablate(source, **options)


def load_recipe(path, overrides=None):  # noqa: ANN001 - re-exported, documented there
    """See :func:`ganzoo.recipe.load_recipe`."""
    from ganzoo.recipe import load_recipe as _load

    return _load(path, overrides)


__all__ = [
    "GanzooError",
    "__version__",
    "ablate",
    "create",
    "evaluate",
    "list_components",
    "load",
    "load_recipe",
    "register",
    "train",
]
