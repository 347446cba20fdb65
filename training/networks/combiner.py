"""The combiner: both rotator outputs + rotation pose → the final posed image (a U-Net)."""

from __future__ import annotations

import torch
from torch import nn

from training.configs import NetworkConfig
from training.networks.blocks import UNet, head, with_pose


class Combiner(nn.Module):
    """combined = blend·out1 + (1 − blend)·out2; output = retouch·combined + (1 − retouch)·change.

    All three masks and the change image have 4 channels (one per RGBA channel).
    """

    def __init__(self, config: NetworkConfig, pose_size: int = 3) -> None:
        super().__init__()
        self.config, self.pose_size = config, pose_size
        self.body = UNet(8 + pose_size, config)
        c = self.body.out_channels
        self.blend = head(c, 4, nn.Sigmoid())
        self.retouch_alpha = head(c, 4, nn.Sigmoid(), config.alpha_bias)
        self.retouch_change = head(c, 4, nn.Tanh())

    def forward(
        self, first: torch.Tensor, second: torch.Tensor, pose: torch.Tensor
    ) -> torch.Tensor:
        features = self.body(with_pose([first, second], pose))
        blend = self.blend(features)
        combined = blend * first + (1 - blend) * second
        retouch = self.retouch_alpha(features)
        return retouch * combined + (1 - retouch) * self.retouch_change(features)
