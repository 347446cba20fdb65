"""The two-algorithm rotator: expression image + (head_x, head_y, neck_z) → two posed images.

Output 1 is the morpher's change-image algorithm; output 2 is an appearance flow: a Conv7 head
predicts 2 offsets per pixel, added to the identity sampling grid, and the input is resampled
bilinearly with ``grid_sample``. Grids use ``align_corners=False`` (coordinates ±1 are the outer
edges of the corner pixels, the convention that is independent of resolution); offsets are in
those normalised units. Sampling happens in [0, 1] space with zero padding, so anything fetched
from outside the image is transparent black — the background of the contract's images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.configs import NetworkConfig
from training.networks.blocks import conv7, with_pose
from training.networks.morpher import Morpher


def identity_grid(batch: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """B×H×W×2 sampling grid (x, y) that reproduces the input (align_corners=False)."""
    theta = torch.eye(2, 3, dtype=like.dtype, device=like.device).expand(batch, 2, 3)
    return F.affine_grid(theta, [batch, 1, height, width], align_corners=False)


def warp(image: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Resample a [-1, 1] image at identity grid + offsets (B×2×H×W, normalised units)."""
    b, _, h, w = image.shape
    grid = identity_grid(b, h, w, image) + offsets.permute(0, 2, 3, 1)
    sampled = F.grid_sample(
        (image + 1) / 2, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return sampled * 2 - 1


class Rotator(Morpher):
    """The morpher's body and change-image heads plus an appearance-flow head.

    Returns (change-path output, appearance-flow output), both B×4×H×W in [-1, 1]."""

    def __init__(self, config: NetworkConfig, pose_size: int = 3) -> None:
        super().__init__(config, pose_size)
        self.flow = conv7(self.body.out_channels, 2)
        nn.init.zeros_(self.flow.weight)  # start as the identity warp
        nn.init.zeros_(self.flow.bias)

    def forward(self, image: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(with_pose([image], pose))
        return self.by_change(image, features), warp(image, self.flow(features))
