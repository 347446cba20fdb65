"""Building blocks shared by the three networks (THA1 appendix A).

Conv7: 7×7, stride 1, pad 3. ConvDown: 4×4, stride 2, pad 1. ConvTransposeUp: 4×4 transposed,
stride 2, pad 1. Each is followed by InstanceNorm + ReLU inside the bodies. ResBlock(X) =
X + IN(Conv3(ReLU(IN(Conv3(X))))). Pose values enter as constant planes concatenated to the image.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from training.configs import NetworkConfig


def conv7(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=7, stride=1, padding=3)


def norm_relu(channels: int) -> list[nn.Module]:
    return [nn.InstanceNorm2d(channels, affine=True), nn.ReLU(inplace=True)]


def conv_down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, stride=2, padding=1), *norm_relu(cout))


def conv_up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), *norm_relu(cout))


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            *norm_relu(channels),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def with_pose(images: list[torch.Tensor], pose: torch.Tensor) -> torch.Tensor:
    """Concatenate images (B×C×H×W each) and the pose as constant planes (B×P → B×P×H×W)."""
    b, _, h, w = images[0].shape
    planes = pose[:, :, None, None].expand(b, pose.shape[1], h, w)
    return torch.cat([*images, planes.to(images[0].dtype)], dim=1)


def channels(config: NetworkConfig) -> list[int]:
    """Channel counts from full resolution down to the bottleneck: base·2^i, capped."""
    return [
        min(config.base_channels * 2**i, config.max_channels)
        for i in range(config.downsamplings + 1)
    ]


class EncoderDecoder(nn.Module):
    """GANimation generator body: Conv7 → ConvDown×d → ResBlock×r → ConvTransposeUp×d.

    Output: base_channels × H × W features for the heads. Input sides must divide by 2^d.
    """

    def __init__(self, in_channels: int, config: NetworkConfig) -> None:
        super().__init__()
        ch = channels(config)
        layers: list[nn.Module] = [conv7(in_channels, ch[0]), *norm_relu(ch[0])]
        layers += [conv_down(a, b) for a, b in itertools.pairwise(ch)]
        layers += [ResBlock(ch[-1]) for _ in range(config.res_blocks)]
        layers += [conv_up(a, b) for a, b in itertools.pairwise(ch[::-1])]
        self.layers = nn.Sequential(*layers)
        self.out_channels = ch[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class UNet(nn.Module):
    """The same encoder and bottleneck, with a decoder fed skip connections from the encoder.

    Each up step takes the previous features concatenated with the encoder's features at that
    resolution; a final Conv7 (IN, ReLU) merges the full-resolution skip into base_channels.
    """

    def __init__(self, in_channels: int, config: NetworkConfig) -> None:
        super().__init__()
        ch = channels(config)
        self.stem = nn.Sequential(conv7(in_channels, ch[0]), *norm_relu(ch[0]))
        self.downs = nn.ModuleList(conv_down(a, b) for a, b in itertools.pairwise(ch))
        self.bottleneck = nn.Sequential(*(ResBlock(ch[-1]) for _ in range(config.res_blocks)))
        ups = []
        for i in range(config.downsamplings, 0, -1):  # from the bottleneck up
            cin = ch[i] if i == config.downsamplings else 2 * ch[i]
            ups.append(conv_up(cin, ch[i - 1]))
        self.ups = nn.ModuleList(ups)
        self.merge = nn.Sequential(conv7(2 * ch[0], ch[0]), *norm_relu(ch[0]))
        self.out_channels = ch[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = self.bottleneck(skips.pop())
        for up in self.ups:
            y = torch.cat([up(y), skips.pop()], dim=1)
        return self.merge(y)


def head(cin: int, cout: int, activation: nn.Module, bias: float = 0.0) -> nn.Sequential:
    """A Conv7 output head; ``bias`` initialises the pre-activation bias (see configs)."""
    conv = conv7(cin, cout)
    nn.init.constant_(conv.bias, bias)
    return nn.Sequential(conv, activation)
