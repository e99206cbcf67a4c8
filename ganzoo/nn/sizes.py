"""Input sizes a network can take, checked before any forward pass.

A network declares ``size_divisor`` (each side must be a multiple of it) and ``min_side``
(the smallest side it takes) as attributes; modules without them take any size.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from torch import nn

from ganzoo.errors import SizeError

#: A layer width a recipe may ask for (ngf, ndf, channels): bounded so that a recipe, or the
#: recipe inside a downloaded file, cannot ask for a network of terabytes.
Width = Annotated[int, Field(ge=1, le=4096)]
#: A count of levels, layers or blocks a recipe may ask for.
Count = Annotated[int, Field(ge=0, le=64)]


def valid_side(side: int, divisor: int, min_side: int) -> bool:
    return side >= min_side and side % divisor == 0


def nearest_sides(side: int, divisor: int, min_side: int) -> list[int]:
    """The closest valid sides below and above ``side`` (one of them if ``side`` is valid)."""
    first = -(-max(min_side, 1) // divisor) * divisor  # smallest valid side
    if side <= first:
        return [first]
    below = side // divisor * divisor
    above = below if below == side else below + divisor
    return sorted({below, above})


def check_image_size(net: nn.Module, name: str, height: int, width: int) -> None:
    """Raise a one-line :class:`SizeError` naming the nearest valid sizes if ``net`` cannot
    take ``height x width`` inputs."""
    divisor = int(getattr(net, "size_divisor", 1))
    min_side = int(getattr(net, "min_side", 1))
    if valid_side(height, divisor, min_side) and valid_side(width, divisor, min_side):
        return
    hs, ws = nearest_sides(height, divisor, min_side), nearest_sides(width, divisor, min_side)
    options = sorted(
        {(h, w) for h in hs for w in ws}, key=lambda s: (abs(s[0] - height) + abs(s[1] - width), s)
    )
    rule = f"each side must be a multiple of {divisor}" if divisor > 1 else "sides are too small"
    raise SizeError(
        f"{name} cannot take {height}x{width} images: {rule} and at least {min_side}; "
        f"nearest valid sizes: {', '.join(f'{h}x{w}' for h, w in options[:3])} "
        "(set data.crop_size accordingly)"
    )
