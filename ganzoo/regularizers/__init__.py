"""The ``regularizer`` registry kind: recipe-selectable step terms (``loss.regularizers``).

Each entry is a :class:`ganzoo.losses.terms.Term`: it may augment every input of the
discriminator and add weighted terms to D's or G's loss; see :mod:`ganzoo.losses.terms`.
"""
