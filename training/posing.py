"""Posing a user's drawing: morpher → rotator → combiner, for one pose or a pose sequence.

Checkpoints are given as run or checkpoint folders, or as one folder holding several runs; their
``state.json`` says which network each is. The morpher is required; without a rotator only the
expression changes; without a combiner the rotator's appearance-flow output is used (it keeps the
drawing's texture). A morpher trained on a face crop (tha3, as THA3's face morpher) poses that
crop of the drawing, pasted back before the rotator turns the whole. Sequences
(docs/contracts.md, "Pose sequences") become GIF or MP4 frames composited over white; a single
pose is written as an RGBA PNG at the network's resolution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from poses.schema import Schema, schema_from_json
from poses.sequence import Frame
from poses.text import parse_pose_text
from training import checkpoint as ckpt
from training.data import view_crop
from training.images import load_user_image, save_png, tensor_to_array


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
    schema: dict | None = None  # the training data's schema (Schema.to_json), when recorded

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
            mstate.get("schema"),
        )

    @property
    def names(self) -> list[str]:
        return self.morph_names + (self.rotation_names or [])

    def pose_schema(self) -> Schema:
        """The schema the networks were trained on (names, ranges), from the checkpoint; an old
        checkpoint without one gets its networks' names with unbounded ranges."""
        if self.schema is not None:
            return schema_from_json(self.schema, "checkpoint")
        unbounded = [{"name": n, "kind": "morph", "range": [-1e5, 1e5]} for n in self.names]
        return schema_from_json({"name": "checkpoint", "parameters": unbounded}, "checkpoint")

    @property
    def input_sizes(self) -> tuple[int, ...]:
        """Image sizes a user's drawing may have: THA1's 256² and the training schema's own
        (tha3: 512², framed as THA3's input: the head in the top half's middle 128² box)."""
        framing = (self.schema or {}).get("framing") or {}
        return tuple(sorted({256, int(framing.get("size", 256))}))

    def parse(self, text: str) -> dict[str, float]:
        """``"left_eye=1,head_y=0.5"`` → values (checked against the schema's ranges); unnamed
        parameters are neutral."""
        schema = self.pose_schema()
        ranges = {n: r for n, r in schema.ranges.items() if n in self.names}
        try:
            given = parse_pose_text(text, ranges)
        except ValueError as error:
            raise PoseError(str(error)) from None
        neutral = schema.neutral()
        return {n: given.get(n, neutral.get(n, 0.0)) for n in self.names}

    @torch.no_grad()
    def pose(self, image: torch.Tensor, values: dict[str, float]) -> torch.Tensor:
        """(4, H, W) in [-1, 1] → the posed (4, H, W) image."""
        x = image.unsqueeze(0).to(self.device)

        def vector(names: list[str]) -> torch.Tensor:
            return torch.tensor([[float(values.get(n, 0.0)) for n in names]], device=self.device)

        x = self._morph(x, vector(self.morph_names))
        if self.rotator is not None:
            rot = vector(self.rotation_names)
            first, second = self.rotator(x, rot)
            x = self.combiner(first, second, rot) if self.combiner is not None else second
        return x[0].cpu()

    def _morph(self, x: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """The morpher on the part of the image it was trained on (tha3: the face, see
        `training.data.view_crop`), pasted back into the image, as THA3 does."""
        crop = view_crop(self.schema, "morpher")
        if crop is None:
            return self.morpher(x, pose)
        size = x.shape[-1]
        x0, y0, x1, y1 = (min(max(round(v * size), 0), size) for v in crop)
        face = x[..., y0:y1, x0:x1]
        inner = F.interpolate(face, size=(size, size), mode="bilinear", align_corners=False)
        morphed = F.interpolate(self.morpher(inner, pose), size=face.shape[-2:], mode="area")
        out = x.clone()
        out[..., y0:y1, x0:x1] = morphed
        return out


def pose_image(poser: Poser, image_path: Path, pose: str, out: Path) -> Path:
    image = load_user_image(image_path, poser.size, poser.input_sizes)
    return save_png(tensor_to_array(poser.pose(image, poser.parse(pose))), out)


def animate(poser: Poser, image_path: Path, sequence: Path | Iterable[Frame], out: Path) -> Path:
    """Render every frame of a pose CSV (a path) or of a sequence source (iterable `Frame`s
    with an `fps`, e.g. a motion converted by the `thagen` CLI) and write a GIF or MP4 (by
    ``out``'s suffix)."""
    from media.video import write_video
    from poses.sequence import SequenceReader

    suffix = Path(out).suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise PoseError(f"{out}: animations are .gif or .mp4")
    image = load_user_image(image_path, poser.size, poser.input_sizes)
    if isinstance(sequence, (str, Path)):
        sequence = SequenceReader(sequence, poser.pose_schema())
    frames = (tensor_to_array(poser.pose(image, frame.values)) for frame in sequence)
    return write_video(out, frames, getattr(sequence, "fps", None) or 25.0)
