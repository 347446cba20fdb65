"""Losses: L1 (the default), an optional L1 on the pixels that change, and THA1's perceptual loss.

The morpher's input and target differ only at the eyes and mouth (about 1.5 % of a 128² image), so
plain L1 is already tiny for the identity and its gradient says little about *where* to change.
``changed_l1`` is the mean L1 over the pixels where input and target differ (any channel by more
than ``CHANGE_THRESHOLD``, dilated by ``CHANGE_DILATION`` pixels so edges count); the objective adds
``change_weight`` × that term.

The perceptual loss compares VGG16 features (relu1_2, relu2_2, relu3_3) of the RGB channels and of
the alpha channel repeated to 3 channels. Its weights come from a file the user gives:
torchvision's ``vgg16`` state dict saved as ``.safetensors`` (preferred) or ``.pth`` (read with
``torch.load(weights_only=True)``, which refuses arbitrary pickled objects). Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# torchvision's vgg16 "features" up to relu3_3: conv sizes, "M" = max-pool.
VGG16_LAYERS = [64, 64, "M", 128, 128, "M", 256, 256, 256]
TAPS = (3, 8, 15)  # indices of relu1_2, relu2_2, relu3_3 in that Sequential
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHANGE_THRESHOLD = 2 / 255  # in [-1, 1] units: one 8-bit level is 2/255
CHANGE_DILATION = 2


class WeightsFileError(FileNotFoundError):
    """A missing or unusable VGG16 weights file."""


def l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (output - target).abs().mean()


def change_mask(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """B×1×H×W: 1 where ``source`` and ``target`` differ (dilated), else 0."""
    changed = ((source - target).abs().amax(1, keepdim=True) > CHANGE_THRESHOLD).float()
    size = 2 * CHANGE_DILATION + 1
    return F.max_pool2d(changed, size, stride=1, padding=CHANGE_DILATION)


def changed_l1(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean L1 over the masked pixels (all channels); 0 when nothing changes."""
    total = (mask * (output - target).abs()).sum()
    return total / (mask.sum() * output.shape[1]).clamp_min(1.0)


class VGG16Features(nn.Module):
    """VGG16's first three blocks, with torchvision's parameter names (``features.N.weight``)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for item in VGG16_LAYERS:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                cin = int(item)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, rgb01: torch.Tensor) -> list[torch.Tensor]:
        x = (rgb01 - self.mean) / self.std
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                taps.append(x)
        return taps


def load_vgg16(path: Path | str | None) -> VGG16Features:
    """VGG16 features with weights from ``path``; a clear ``WeightsFileError`` when unusable."""
    if path is None:
        raise WeightsFileError(
            "the perceptual loss needs a VGG16 weights file (--vgg16-weights PATH); thagen never "
            "downloads weights"
        )
    path = Path(path)
    if not path.is_file():
        raise WeightsFileError(
            f"{path}: VGG16 weights file not found; thagen never downloads weights — save "
            "torchvision's vgg16 state dict there (.safetensors or .pth)"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file is the user's to fix
        raise WeightsFileError(f"{path}: cannot read VGG16 weights ({error})") from None
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if not any(k.startswith("features.") for k in state):
        state = {f"features.{k}": v for k, v in state.items()}
    model = VGG16Features()
    wanted = {k for k in model.state_dict() if k.startswith("features.")}
    missing = sorted(wanted - state.keys())
    if missing:
        raise WeightsFileError(f"{path}: not VGG16 weights (missing {', '.join(missing[:4])})")
    try:
        model.load_state_dict({k: state[k] for k in wanted}, strict=False)
    except RuntimeError as error:
        raise WeightsFileError(f"{path}: VGG16 weights of the wrong shape ({error})") from None
    return model.eval().requires_grad_(False)


class PerceptualLoss(nn.Module):
    """Mean L1 between VGG16 features of output and target, on RGB and on alpha as grey."""

    def __init__(self, features: VGG16Features) -> None:
        super().__init__()
        self.features = features

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = output.new_zeros(())
        for pick in (lambda x: x[:, :3], lambda x: x[:, 3:4].expand(-1, 3, -1, -1)):
            a, b = self.features((pick(output) + 1) / 2), self.features((pick(target) + 1) / 2)
            loss = loss + sum(F.l1_loss(x, y) for x, y in zip(a, b, strict=True))
        return loss


class Objective(nn.Module):
    """L1, plus ``change_weight`` × L1 on the changed pixels (needs the ``source`` image), plus
    ``weight`` × perceptual when a VGG16 model is given. Returns (total, parts)."""

    def __init__(
        self,
        perceptual: PerceptualLoss | None = None,
        weight: float = 1.0,
        change_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.perceptual, self.weight, self.change_weight = perceptual, weight, change_weight

    def forward(
        self, outputs: list[torch.Tensor], target: torch.Tensor, source: torch.Tensor | None = None
    ):
        parts = {"l1": sum(l1(o, target) for o in outputs)}
        total = parts["l1"]
        if self.change_weight > 0 and source is not None:
            mask = change_mask(source, target)
            parts["changed"] = sum(changed_l1(o, target, mask) for o in outputs)
            total = total + self.change_weight * parts["changed"]
        if self.perceptual is not None:
            parts["perceptual"] = sum(self.perceptual(o, target) for o in outputs)
            total = total + self.weight * parts["perceptual"]
        return total, parts
