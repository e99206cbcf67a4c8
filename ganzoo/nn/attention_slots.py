"""Where attention blocks go inside a generator or discriminator.

A recipe gives a network ``attention: list[AttentionSpec]``; the builder (:mod:`ganzoo.build`)
turns them, with the crop size and a maker of blocks, into ready :class:`AttentionSlots` that
the network takes as its ``attention`` argument. While it builds its layers the network asks
them for the blocks that belong after a layer producing a feature map of a given height, and
calls :meth:`AttentionSlots.finish` at the end so that a resolution no layer produces is an
error. Nothing here looks a block up by name: the maker does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict
from torch import nn

from ganzoo.errors import RegistryError


class AttentionSpec(BaseModel):
    """``{block: self_attention, resolution: 64, ...block params}``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    block: str
    resolution: int

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


#: ``make(spec, channels)``: the attention block a spec asks for, on ``channels`` channels.
BlockMaker = Callable[[AttentionSpec, int], nn.Module]


def _side(image_size: int | tuple[int, int] | list[int]) -> int:
    return image_size if isinstance(image_size, int) else int(image_size[0])


class AttentionSlots:
    """Hands out attention blocks by feature-map height while a network is built.

    ``AttentionSlots()`` has no specs: a network built without the builder gets no attention.
    """

    def __init__(
        self,
        specs: list[AttentionSpec] | None = None,
        image_size: int | tuple[int, int] | list[int] = 256,
        make: BlockMaker | None = None,
    ) -> None:
        self.specs = list(specs or [])
        self.height = _side(image_size)
        self.make = make
        self.offered: list[int] = []
        self.used: set[int] = set()

    def at_size(self, image_size: int | tuple[int, int] | list[int]) -> AttentionSlots:
        """Fresh slots with the same specs and maker for inputs of ``image_size`` (one scale of
        a multi-scale network)."""
        return AttentionSlots(self.specs, image_size, self.make)

    def at(self, scale: int, channels: int) -> nn.Module | None:
        """Blocks for the layer whose output is ``height / scale`` high with ``channels``.

        Returns None when no spec asks for that resolution, one block, or a Sequential of
        several (each block's ``forward(x, condition=None)`` keeps the shape).
        """
        side = self.height // scale
        self.offered.append(side)
        blocks: list[nn.Module] = []
        for i, spec in enumerate(self.specs):
            if spec.resolution == side and i not in self.used:
                if self.make is None:
                    raise RegistryError("attention slots without a maker of blocks")
                self.used.add(i)
                blocks.append(self.make(spec, channels))
        if not blocks:
            return None
        return blocks[0] if len(blocks) == 1 else ConditionedSequential(*blocks)

    def finish(self, network: str) -> None:
        """Raise if a spec asked for a resolution no layer of ``network`` (its name and the
        settings that fix its depth, for the message) produced."""
        missing = [s for i, s in enumerate(self.specs) if i not in self.used]
        if missing:
            sides = ", ".join(str(s) for s in sorted(set(self.offered), reverse=True))
            raise RegistryError(
                f"attention at resolution {missing[0].resolution} fits no layer of "
                f"{network} at image height {self.height}; layer resolutions: {sides}"
            )


class ConditionedSequential(nn.Sequential):
    """Several attention blocks at one resolution, each given the same condition."""

    def forward(self, x, condition=None):  # type: ignore[override]
        for block in self:
            x = block(x, condition)
        return x
