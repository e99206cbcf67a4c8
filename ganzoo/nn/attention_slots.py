"""Where attention blocks go inside a generator or discriminator.

A network takes ``attention: list[AttentionSpec]`` and ``image_size`` (filled in by the recipe
builder from the crop size). While it builds its layers it asks :class:`AttentionSlots` for the
blocks that belong after a layer producing a feature map of a given height, and calls
:meth:`AttentionSlots.finish` at the end so that a resolution no layer produces is an error.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
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

    @model_validator(mode="after")
    def _check_block(self) -> AttentionSpec:
        from ganzoo import registry

        registry.validate_params("attention", self.block, self.params, where=self.block)
        return self


def _side(image_size: int | tuple[int, int] | list[int]) -> int:
    return image_size if isinstance(image_size, int) else int(image_size[0])


class AttentionSlots:
    """Hands out attention blocks by feature-map height while a network is built."""

    def __init__(
        self,
        specs: list[AttentionSpec] | list[dict[str, Any]] | None,
        image_size: int | tuple[int, int] | list[int],
        network: str,
    ) -> None:
        self.specs = [
            s if isinstance(s, AttentionSpec) else AttentionSpec(**s) for s in specs or []
        ]
        self.height = _side(image_size)
        self.network = network
        self.offered: list[int] = []
        self.used: set[int] = set()

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
                from ganzoo import registry

                self.used.add(i)
                blocks.append(registry.create("attention", spec.block, channels, **spec.params))
        if not blocks:
            return None
        return blocks[0] if len(blocks) == 1 else ConditionedSequential(*blocks)

    def finish(self) -> None:
        """Raise if a spec asked for a resolution no layer produced."""
        missing = [s for i, s in enumerate(self.specs) if i not in self.used]
        if missing:
            sides = ", ".join(str(s) for s in sorted(set(self.offered), reverse=True))
            raise RegistryError(
                f"attention at resolution {missing[0].resolution} fits no layer of "
                f"{self.network} at image height {self.height}; layer resolutions: {sides}"
            )


class ConditionedSequential(nn.Sequential):
    """Several attention blocks at one resolution, each given the same condition."""

    def forward(self, x, condition=None):  # type: ignore[override]
        for block in self:
            x = block(x, condition)
        return x
