"""Saved models, in one home: the checkpoint schema and files, safetensors, the Hub folder and
where a model comes from (a run directory, a file, a Hub folder or repository).

:func:`save` writes a generator as a Hub folder and :func:`load` reads one back, from any
source, as diffusers' ``save_pretrained`` / ``from_pretrained``: the Hub folder *is* the saved
folder. Training writes checkpoints through :mod:`ganzoo.artifacts.checkpoint`.
"""

from ganzoo.artifacts.hub import export_hub_folder, push
from ganzoo.artifacts.hub import save_pretrained as save
from ganzoo.artifacts.loading import load_generator as load
from ganzoo.artifacts.schema import FORMAT, MODEL_FILE, SAFETENSORS_FORMAT, GeneratorInfo
from ganzoo.artifacts.sources import find_checkpoint, output_base

__all__ = [
    "FORMAT",
    "MODEL_FILE",
    "SAFETENSORS_FORMAT",
    "GeneratorInfo",
    "export_hub_folder",
    "find_checkpoint",
    "load",
    "output_base",
    "push",
    "save",
]
