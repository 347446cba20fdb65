"""The face morpher: rest image + (left_eye, right_eye, mouth) → expression image."""

from __future__ import annotations

import torch
from torch import nn

from training.configs import NetworkConfig
from training.networks.blocks import EncoderDecoder, head, with_pose


class Morpher(nn.Module):
    """GANimation generator: output = alpha·input + (1 − alpha)·change (4-channel alpha)."""

    def __init__(self, config: NetworkConfig, pose_size: int = 3) -> None:
        super().__init__()
        self.config, self.pose_size = config, pose_size
        self.body = EncoderDecoder(4 + pose_size, config)
        self.change = head(self.body.out_channels, 4, nn.Tanh())
        self.alpha = head(self.body.out_channels, 4, nn.Sigmoid(), config.alpha_bias)

    def forward(self, image: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        return self.by_change(image, self.body(with_pose([image], pose)))

    def by_change(self, image: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The change-image algorithm: alpha·input + (1 − alpha)·change."""
        alpha = self.alpha(features)
        return alpha * image + (1 - alpha) * self.change(features)
