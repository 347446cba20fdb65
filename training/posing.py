"""Posing a user's drawing: morpher → rotator → combiner, for one pose or a pose sequence.

Checkpoints are given as run or checkpoint folders, or as one folder holding several runs; their
``state.json`` says which network each is. The morpher is required; without a rotator only the
expression changes; without a combiner the rotator's appearance-flow output is used (it keeps the
drawing's texture). Sequences (docs/contracts.md, "Pose sequences") become GIF or MP4 frames
composited over white; a single pose is written as an RGBA PNG at the network's resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training import checkpoint as ckpt
from training.images import composite, load_user_image, save_png, tensor_to_array


class PoseError(ValueError):
    """A bad ``--pose`` string or checkpoint set."""


def find_runs(paths: list[Path]) -> list[Path]:
    """Checkpoint folders from paths that are checkpoints, runs, or folders of runs."""
    found = []
    for path in map(Path, paths):
        try:
            found.append(ckpt.find_checkpoint(path))
            continue
        except ckpt.CheckpointError:
            pass
        children = [c for c in sorted(path.iterdir()) if c.is_dir()] if path.is_dir() else []
        inner = []
        for child in children:
            try:
                inner.append(ckpt.find_checkpoint(child))
            except ckpt.CheckpointError:
                continue
        if not inner:
            raise PoseError(f"{path}: no checkpoints (expected a run folder or a folder of runs)")
        found += inner
    return found


@dataclass
class Poser:
    morpher: nn.Module
    morph_names: list[str]
    rotator: nn.Module | None = None
    rotation_names: list[str] | None = None
    combiner: nn.Module | None = None
    size: int = 256
    device: str | torch.device = "cpu"

    @classmethod
    def load(cls, paths: list[Path], device: str | torch.device = "cpu") -> Poser:
        nets: dict[str, tuple[nn.Module, dict]] = {}
        for where in find_runs(paths):
            model, state = ckpt.load_network(where, device)
            kind = state["network"]
            if kind in nets:
                raise PoseError(f"two {kind} checkpoints: {nets[kind][1]['checkpoint']}, {where}")
            nets[kind] = (model, state)
        if "morpher" not in nets:
            raise PoseError(f"no morpher checkpoint among {', '.join(map(str, paths))}")
        morpher, mstate = nets["morpher"]
        size = mstate["config"]["network"]["image_size"]
        for kind, (_, state) in nets.items():
            if state["config"]["network"]["image_size"] != size:
                raise PoseError(f"{state['checkpoint']}: {kind} image size differs from morpher's")
        rotator, rstate = nets.get("rotator", (None, {}))
        combiner = nets["combiner"][0] if "combiner" in nets else None
        return cls(
            morpher,
            mstate["pose_names"],
            rotator,
            rstate.get("pose_names"),
            combiner,
            size,
            torch.device(device),
        )

    @property
    def names(self) -> list[str]:
        return self.morph_names + (self.rotation_names or [])

    def parse(self, text: str) -> dict[str, float]:
        """``"left_eye=1,head_y=0.5"`` → values; unnamed parameters are 0."""
        values = dict.fromkeys(self.names, 0.0)
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or name not in values:
                raise PoseError(f"pose item {item!r}: expected NAME=VALUE, NAME in {self.names}")
            try:
                values[name] = float(value)
            except ValueError:
                raise PoseError(f"pose item {item!r}: {value.strip()!r} is not a number") from None
        return values

    @torch.no_grad()
    def pose(self, image: torch.Tensor, values: dict[str, float]) -> torch.Tensor:
        """(4, H, W) in [-1, 1] → the posed (4, H, W) image."""
        x = image.unsqueeze(0).to(self.device)

        def vector(names: list[str]) -> torch.Tensor:
            return torch.tensor([[float(values.get(n, 0.0)) for n in names]], device=self.device)

        x = self.morpher(x, vector(self.morph_names))
        if self.rotator is not None:
            rot = vector(self.rotation_names)
            first, second = self.rotator(x, rot)
            x = self.combiner(first, second, rot) if self.combiner is not None else second
        return x[0].cpu()


def pose_image(poser: Poser, image_path: Path, pose: str, out: Path) -> Path:
    image = load_user_image(image_path, poser.size)
    return save_png(tensor_to_array(poser.pose(image, poser.parse(pose))), out)


def animate(poser: Poser, image_path: Path, sequence_path: Path, out: Path) -> Path:
    """Render every frame of a pose CSV and write a GIF or MP4 (by ``out``'s suffix)."""
    import imageio.v3 as iio

    from pipeline.sequence import read_sequence  # numpy-only reader of the shared CSV format

    suffix = Path(out).suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise PoseError(f"{out}: animations are .gif or .mp4")
    image = load_user_image(image_path, poser.size)
    sequence = read_sequence(sequence_path)
    white = np.full((poser.size, poser.size, 3), 255, np.uint8)
    frames = np.stack(
        [
            composite(tensor_to_array(poser.pose(image, sequence.pose(i))), white)
            for i in range(len(sequence))
        ]
    )
    fps = sequence.fps or 25.0
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        iio.imwrite(out, frames, duration=1000.0 / fps, loop=0)
    else:
        import imageio.v2 as iio2  # the ffmpeg plugin (imageio-ffmpeg)

        iio2.mimwrite(out, list(frames), fps=fps, macro_block_size=1)
    return Path(out)
