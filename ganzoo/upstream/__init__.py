"""Arriving from the upstream code: its options files and its checkpoints.

* :mod:`ganzoo.upstream.options`: read a ``train_opt.txt`` (junyanz/pytorch-CycleGAN-and-pix2pix)
  or ``opt.txt`` (NVIDIA/pix2pixHD), or the command-line flags of either, and turn them into an
  equivalent ganzoo recipe.
* :mod:`ganzoo.upstream.weights`: map an upstream state dict onto ganzoo's networks, with a
  one-line error naming the key or shape that differs and the flag that probably caused it.
* :mod:`ganzoo.upstream.importer`: ``ganzoo import``: both together, into a run directory that
  ``translate``, ``eval``, ``export`` and ``train --resume`` accept.
"""

from ganzoo.upstream.importer import Imported, import_checkpoint
from ganzoo.upstream.options import UpstreamOptions, parse_flags, read_options

__all__ = ["Imported", "UpstreamOptions", "import_checkpoint", "parse_flags", "read_options"]
