"""The image buffer of Shrivastava et al. 2017, as the pix2pix reference uses it."""

from __future__ import annotations

import random

import torch


class ImagePool:
    """Holds up to ``size`` past fakes; each query returns, per image, with probability 1/2 the
    new image and otherwise a stored one that the new image replaces. ``size`` 0 is a no-op."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W), detached."""
        if self.size == 0:
            return images.detach()
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                i = random.randint(0, self.size - 1)
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, object]:
        return {"size": self.size, "images": [t.cpu() for t in self.images]}

    def load_state_dict(self, state: dict[str, object], device: torch.device) -> None:
        self.images = [t.to(device) for t in state["images"]]  # type: ignore[union-attr]
