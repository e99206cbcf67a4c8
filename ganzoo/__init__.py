"""ganzoo: paired image-to-image translation GANs (the pix2pix family).

The public surface is small: :func:`load` (a trained or pretrained model, ready to translate
images), :func:`create` and :func:`list_components` from the registry, :func:`load_recipe`,
and the ``ganzoo`` command line.
"""

from importlib.metadata import PackageNotFoundError, version

from ganzoo.errors import GanzooError
from ganzoo.registry import create, register
from ganzoo.registry import list as list_components

try:
    __version__ = version("ganzoo")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+local"


def load(source, **options):  # noqa: ANN001, ANN003, ANN201 - re-exported, documented there
    """See :func:`ganzoo.api.load`."""
    from ganzoo.api import load as _load

    return _load(source, **options)


def load_recipe(path, overrides=None):  # noqa: ANN001 - re-exported, documented there
    """See :func:`ganzoo.recipe.load_recipe`."""
    from ganzoo.recipe import load_recipe as _load

    return _load(path, overrides)


__all__ = [
    "GanzooError",
    "__version__",
    "create",
    "list_components",
    "load",
    "load_recipe",
    "register",
]
