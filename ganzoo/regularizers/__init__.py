"""The ``regularizer`` registry kind: recipe-selectable step terms (``loss.regularizers``).

Each entry is a :class:`ganzoo.losses.terms.Term`: it may augment every input of the
discriminator and add weighted terms to D's or G's loss; see :mod:`ganzoo.losses.terms`.

- :mod:`ganzoo.regularizers.diffaugment`: ``diffaugment`` (Zhao et al. 2020).
- :mod:`ganzoo.regularizers.ada`: ``ada``, adaptive augmentation (Karras et al. 2020).
- :mod:`ganzoo.regularizers.gradient_penalty`: ``r1`` / ``r2`` (Mescheder et al. 2018), lazy.
- :mod:`ganzoo.regularizers.lecam`: ``lecam`` (Tseng et al. 2021).
- :mod:`ganzoo.regularizers.pairs`: the (condition, image) channel split they share.
"""

from __future__ import annotations

from ganzoo.regularizers.ada import ADA
from ganzoo.regularizers.diffaugment import DiffAugment
from ganzoo.regularizers.gradient_penalty import R1, R2
from ganzoo.regularizers.lecam import LeCam

__all__ = ["ADA", "R1", "R2", "DiffAugment", "LeCam"]
