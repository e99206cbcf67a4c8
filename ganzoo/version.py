"""The installed version of ganzoo (recorded in checkpoints' environments and model cards)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ganzoo")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+local"
