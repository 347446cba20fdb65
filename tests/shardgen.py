"""Synthetic THA1 shards in the exact contract format (docs/contracts.md, "Dataset shards").

Each "character" is a procedural 2D face: a skin disc under a hair cap, two eyes whose lids close
with ``left_eye``/``right_eye`` (the character's left eye is on the image's right), a mouth that
opens with ``mouth``, features that slide with ``head_x`` (nod) and ``head_y`` (turn), and the whole
head tilting about the neck with ``neck_z``. Characters differ in colours and proportions, and the
split is by character, so validation measures generalisation to unseen faces. Pure PIL + numpy: no
torch, so the tests can build datasets cheaply.

    write_dataset(Path("data/synth"), train_characters=6, val_characters=2)
"""

from __future__ import annotations

import io
import json
import math
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

PARAMETERS = [
    {"name": "left_eye", "kind": "morph", "range": [0.0, 1.0]},
    {"name": "right_eye", "kind": "morph", "range": [0.0, 1.0]},
    {"name": "mouth", "kind": "morph", "range": [0.0, 1.0]},
    {"name": "head_x", "kind": "rotation", "range": [-1.0, 1.0]},
    {"name": "head_y", "kind": "rotation", "range": [-1.0, 1.0]},
    {"name": "neck_z", "kind": "rotation", "range": [-1.0, 1.0]},
]
NAMES = [p["name"] for p in PARAMETERS]
SPLITS = ("train", "val", "test")
SUPERSAMPLE = 2


@dataclass(frozen=True)
class Character:
    name: str
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    iris: tuple[int, int, int]
    radius: float  # face radius, fraction of the image size
    eye_gap: float  # half distance between eye centres, fraction of the radius
    eye_size: float  # eye half-width, fraction of the radius
    mouth_width: float  # fraction of the radius
    has_mouth: bool  # a character without a mouth morph gets `mouth: null`


def make_character(index: int, seed: int = 0) -> Character:
    """A deterministic character from (seed, index)."""
    rng = np.random.default_rng([seed, index, 7])

    def colour(lo: int, hi: int) -> tuple[int, int, int]:
        return tuple(int(v) for v in rng.integers(lo, hi, size=3))

    return Character(
        name=f"synth{index:03d}",
        skin=colour(170, 255),
        hair=colour(20, 200),
        iris=colour(0, 180),
        radius=float(rng.uniform(0.2, 0.27)),
        eye_gap=float(rng.uniform(0.32, 0.45)),
        eye_size=float(rng.uniform(0.16, 0.24)),
        mouth_width=float(rng.uniform(0.22, 0.4)),
        has_mouth=bool(index % 5 != 4),
    )


def draw(character: Character, pose: dict[str, float | None], size: int = 256) -> np.ndarray:
    """The character in ``pose`` as (size, size, 4) uint8 straight-alpha RGBA, background 0."""
    p = {name: float(pose.get(name) or 0.0) for name in NAMES}
    s = size * SUPERSAMPLE
    r = character.radius * s
    cx, cy = s / 2, s / 2
    # Body (not rotated): neck and shoulders.
    body = Image.new("RGBa", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(body)
    d.rectangle([cx - 0.3 * r, cy + 0.6 * r, cx + 0.3 * r, s], fill=(*character.skin, 255))
    d.ellipse([cx - 1.6 * r, cy + 1.5 * r, cx + 1.6 * r, cy + 3.5 * r], fill=(*character.hair, 255))
    # Head layer: hair cap, face, eyes, mouth; features slide with head_x/head_y.
    head = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(head)
    fx, fy = cx + 0.35 * r * p["head_y"], cy - 0.3 * r * p["head_x"]
    d.ellipse([cx - 1.12 * r, cy - 1.2 * r, cx + 1.12 * r, cy + 0.6 * r], fill=character.hair)
    d.ellipse([fx - r, cy - r, fx + r, cy + r], fill=character.skin)
    ew, eh = character.eye_size * r, 0.75 * character.eye_size * r
    for name, side in (("left_eye", 1.0), ("right_eye", -1.0)):  # left eye on the image's right
        ex, ey = fx + side * character.eye_gap * r, fy - 0.1 * r
        d.ellipse([ex - ew, ey - eh, ex + ew, ey + eh], fill=(250, 250, 250))
        d.ellipse(
            [ex - 0.55 * ew, ey - 0.8 * eh, ex + 0.55 * ew, ey + 0.8 * eh], fill=character.iris
        )
        closed = p[name]
        if closed > 0:  # the lid comes down from the top
            d.rectangle(
                [ex - ew - 2, ey - eh - 2, ex + ew + 2, ey - eh + 2 * eh * closed],
                fill=character.skin,
            )
        d.line([ex - ew, ey - eh, ex + ew, ey - eh], fill=(40, 30, 30), width=max(2, s // 128))
    if character.has_mouth:
        mw, mh = character.mouth_width * r, 0.02 * r + 0.3 * r * p["mouth"]
        my = fy + 0.45 * r
        d.ellipse([fx - mw, my - mh, fx + mw, my + mh], fill=(120, 30, 40))
    # Neck tilt about the neck point, then composite over the body (premultiplied).
    angle = 15.0 * p["neck_z"]
    head = head.convert("RGBa").rotate(
        angle, resample=Image.Resampling.BICUBIC, center=(cx, cy + 0.9 * r)
    )
    out = Image.alpha_composite(body.convert("RGBA"), head.convert("RGBA"))
    out = out.convert("RGBa").resize((size, size), Image.Resampling.BOX).convert("RGBA")
    rgba = np.asarray(out).copy()
    rgba[rgba[..., 3] == 0] = 0
    return rgba


def sample_pose(rng: np.random.Generator, character: Character) -> dict[str, float | None]:
    """THA1 sampling: morphs uniform in [0, 1], rotations with density ∝ |x| in [-1, 1]."""
    pose: dict[str, float | None] = {}
    for name in NAMES[:3]:
        pose[name] = round(float(rng.uniform(0, 1)), 6)
    for name in NAMES[3:]:
        pose[name] = round(float(rng.choice([-1, 1]) * math.sqrt(rng.uniform(0, 1))), 6)
    if not character.has_mouth:
        pose["mouth"] = None
    return pose


def png_bytes(rgba: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def write_dataset(
    root: Path,
    train_characters: int = 6,
    val_characters: int = 2,
    examples_per_character: int = 16,
    examples_per_shard: int = 16,
    size: int = 256,
    seed: int = 0,
) -> Path:
    """Write a complete dataset folder (shards, dataset.json, manifest) and return ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    splits = {
        "train": range(train_characters),
        "val": range(train_characters, train_characters + val_characters),
    }
    rows, counts, shards = [], {}, {}
    for split, indices in splits.items():
        examples = []
        for index in indices:
            character = make_character(index, seed)
            rest = png_bytes(draw(character, {}, size))
            rng = np.random.default_rng([seed, index, 11])
            for example in range(examples_per_character):
                pose = sample_pose(rng, character)
                expression = {n: (v if n in NAMES[:3] else 0.0) for n, v in pose.items()}
                key = f"{character.name}_{example:06d}"
                meta = {
                    "key": key,
                    "character": character.name,
                    "split": split,
                    "example": example,
                    "seed": seed,
                    "schema": "tha1",
                    "pose": pose,
                    "lighting": {"ambient": 0.5, "directional": 0.5},
                }
                members = {
                    "rest.png": rest,
                    "expression.png": png_bytes(draw(character, expression, size)),
                    "posed.png": png_bytes(draw(character, pose, size)),
                    "json": json.dumps(meta, sort_keys=True).encode(),
                }
                examples.append((key, members))
        counts[split] = len(examples)
        shards[split] = 0
        for shard, start in enumerate(range(0, len(examples), examples_per_shard)):
            path = root / f"{split}-{shard:06d}.tar"
            shards[split] += 1
            with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
                for key, members in examples[start : start + examples_per_shard]:
                    for suffix, data in members.items():
                        _add(tar, f"{key}.{suffix}", data)
                    meta = json.loads(members["json"])
                    rows.append(
                        {
                            "key": key,
                            "shard": path.stem,
                            "character": meta["character"],
                            "split": split,
                            "example": meta["example"],
                            **{n: meta["pose"][n] for n in NAMES},
                        }
                    )
    splits = {s: {"examples": counts[s], "shards": shards[s]} for s in counts}
    info = {
        "schema": {"name": "tha1", "parameters": PARAMETERS},
        "image_size": size,
        "splits": splits,
        "config": {"generator": "tests/shardgen.py", "seed": seed},
        "versions": {"thagen": "test"},
    }
    (root / "dataset.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    write_index(root, rows)
    return root


def write_index(root: Path, rows: list[dict] | None = None) -> Path:
    """The index that readers trust (docs/contracts.md), for the `{split}-NNNNNN.tar` files in
    `root`: a sidecar per shard (`.state/NAME.done.json`: its size, sha256 and example count) and
    `manifest.parquet` with `rows` (default: one row per shard, enough for training's reader)."""
    import hashlib

    import pandas as pd

    state = Path(root) / ".state"
    state.mkdir(parents=True, exist_ok=True)
    tars = sorted(p for p in Path(root).glob("*-*.tar") if p.stem.split("-")[0] in SPLITS)
    if rows is None:
        rows = [
            {
                "key": p.stem,
                "shard": p.stem,
                "character": "",
                "split": p.stem.split("-")[0],
                "example": 0,
            }
            for p in tars
        ]
    for tar in tars:
        data = tar.read_bytes()
        examples = sum(1 for r in rows if r["shard"] == tar.stem)
        digest = {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "examples": examples,
        }
        sidecar = {"shard": tar.stem, "split": tar.stem.split("-")[0], "digest": digest}
        (state / f"{tar.stem}.done.json").write_text(json.dumps(sidecar), encoding="utf-8")
    pd.DataFrame(rows).to_parquet(Path(root) / "manifest.parquet", index=False)
    if not (Path(root) / "failures.parquet").exists():
        pd.DataFrame({"model": [], "character": [], "stage": [], "error": []}).to_parquet(
            Path(root) / "failures.parquet", index=False
        )
    return Path(root)
