"""Synthetic dances: VMD files with the keyframe counts of real ones, written in code (for the
motion benchmark, the README's media and datasets drawn from motions; no real motion is
redistributable).

A real five-minute dance keys most of a model's ~60 standard bones every few frames (about
100k bone keyframes, each with its own Bézier curves) and lip-syncs: a vowel morph per syllable
with the others keyed back to 0, blinks every few seconds, the odd smile, wink and brow. Here
every bone turns along a sum of slow sines (the head the most), keys fall every 2-8 frames with
seeded curves, syllables come six a second in phrases with pauses, blinks every 2-6 s.
"""

from __future__ import annotations

import math

import numpy as np

from mmd_loader.vmd import BONE_RECORD, HEADER_BYTES, MORPH_RECORD

FPS = 30
# (name, amplitude in degrees about x, y, z): MMD's standard bones, the face's chain the most
BONES = [
    ("センター", (0, 8, 0)),
    ("下半身", (6, 12, 4)),
    ("上半身", (8, 15, 6)),
    ("上半身2", (5, 8, 4)),
    ("首", (6, 10, 5)),
    ("頭", (12, 22, 9)),
    ("両目", (4, 6, 0)),
    ("左目", (2, 3, 0)),
    ("右目", (2, 3, 0)),
    ("左足ＩＫ", (0, 10, 0)),
    ("右足ＩＫ", (0, 10, 0)),
    ("左つま先ＩＫ", (0, 0, 0)),
    ("右つま先ＩＫ", (0, 0, 0)),
] + [
    (f"{side}{part}", amplitude)
    for side in ("左", "右")
    for part, amplitude in (
        ("肩", (4, 4, 8)),
        ("腕", (20, 30, 45)),
        ("ひじ", (10, 40, 10)),
        ("手首", (15, 20, 15)),
        ("足", (20, 10, 8)),
        ("ひざ", (30, 0, 0)),
        ("足首", (10, 5, 5)),
        *(
            (f"{finger}{k}", (0, 0, 25))
            for finger in ("親指", "人指", "中指", "薬指", "小指")
            for k in ("１", "２", "３")
        ),
    )
]
VOWELS = ("あ", "い", "う", "え", "お")
EYE_MORPHS = ("まばたき", "笑い", "ウィンク", "ウィンク右")
BROWS = ("困る", "上", "怒り", "にこり")


def _quaternions(angles: np.ndarray) -> np.ndarray:
    """MMD's quaternions (n, 4) of Euler angles (n, 3) in degrees, composed y · x · z."""
    h = np.radians(angles) / 2
    s, c = np.sin(h), np.cos(h)
    sx, sy, sz, cx, cy, cz = s[:, 0], s[:, 1], s[:, 2], c[:, 0], c[:, 1], c[:, 2]
    # (0, sy, 0, cy) ⊗ (sx, 0, 0, cx) ⊗ (0, 0, sz, cz)
    x, y, z, w = cy * sx, sy * cx, -sy * sx, cy * cx
    return np.stack([x * cz + y * sz, y * cz - x * sz, z * cz + w * sz, w * cz - z * sz], 1)


def _bone_keys(rng: np.random.Generator, name: str, amplitude, last: int) -> np.ndarray:
    """A bone's keys every 2-8 frames to `last`, turning along sums of slow sines, each key
    with seeded curves (40% linear)."""
    steps = rng.integers(2, 9, last // 2 + 2)
    frames = np.concatenate([[0], np.cumsum(steps)])
    frames = np.append(frames[frames < last], last)
    freqs = rng.uniform(0.05, 0.6, (3, 3))  # Hz, three sines per axis
    phases = rng.uniform(0, 2 * math.pi, (3, 3))
    t = frames[:, None, None] / FPS
    waves = np.sin(2 * math.pi * freqs[None] * t + phases[None]).sum(axis=2) / 2.2
    keys = np.zeros(len(frames), BONE_RECORD)
    keys["name"] = name.encode("cp932")
    keys["frame"] = frames
    keys["rotation"] = _quaternions(waves * np.asarray(amplitude, float))
    curves = rng.integers(0, 128, (len(frames), 4, 4))
    linear = rng.random((len(frames), 4)) < 0.4
    curves[linear] = (20, 20, 107, 107)
    row = curves.transpose(0, 2, 1).reshape(len(frames), 16).astype(np.uint8)  # x1s, y1s, …
    pad = np.array([1, 0, 0], np.uint8)
    keys["interpolation"] = np.concatenate(
        [np.concatenate([row[:, k:], np.tile(pad[:k], (len(frames), 1))], 1) for k in range(4)], 1
    )
    return keys


def dance(seconds: float, seed: int = 0) -> bytes:
    """A VMD of `seconds` of dance (bones and lip-sync) for a model with MMD's standard names."""
    rng = np.random.default_rng([seed, 0xDA7CE])
    last = round(seconds * FPS)
    bones = np.concatenate([_bone_keys(rng, name, amp, last) for name, amp in BONES])
    morphs = _lip_sync(rng, last) + _eyes(rng, last) + _brows(rng, last)
    return _encode(bones, morphs)


def _lip_sync(rng: np.random.Generator, last: int) -> list[tuple[str, int, float]]:
    """Phrases of syllables (one vowel open, the others keyed shut), pauses between."""
    keys = [(v, 0, 0.0) for v in VOWELS]
    frame = int(rng.integers(15, 60))
    while frame < last - 10:
        phrase_end = min(last - 10, frame + int(rng.integers(60, 240)))
        while frame < phrase_end:
            vowel = VOWELS[int(rng.integers(len(VOWELS)))]
            weight = float(rng.uniform(0.4, 1.0))
            for v in VOWELS:
                keys.append((v, frame, weight if v == vowel else 0.0))
            frame += int(rng.integers(3, 8))
        for v in VOWELS:
            keys.append((v, frame, 0.0))
        frame += int(rng.integers(20, 90))
    return keys


def _eyes(rng: np.random.Generator, last: int) -> list[tuple[str, int, float]]:
    keys = [(m, 0, 0.0) for m in EYE_MORPHS]
    frame = int(rng.integers(30, 120))
    while frame < last - 12:
        kind = rng.random()
        if kind < 0.8:  # a blink: closed in 2-3 frames, open again in 4
            keys += [("まばたき", frame, 0.0), ("まばたき", frame + 3, 1.0)]
            keys += [("まばたき", frame + 7, 0.0)]
            frame += 8
        elif kind < 0.93:  # a smile held a while
            hold = int(rng.integers(30, 150))
            keys += [("笑い", frame, 0.0), ("笑い", frame + 8, float(rng.uniform(0.6, 1.0)))]
            keys += [("笑い", frame + 8 + hold, 0.8), ("笑い", frame + 16 + hold, 0.0)]
            frame += 16 + hold
        else:  # a wink
            name = "ウィンク" if rng.random() < 0.5 else "ウィンク右"
            keys += [(name, frame, 0.0), (name, frame + 4, 1.0), (name, frame + 20, 1.0)]
            keys += [(name, frame + 26, 0.0)]
            frame += 26
        frame += int(rng.integers(60, 180))
    return [k for k in keys if k[1] <= last]


def _brows(rng: np.random.Generator, last: int) -> list[tuple[str, int, float]]:
    keys = [(b, 0, 0.0) for b in BROWS]
    frame = int(rng.integers(60, 300))
    while frame < last - 60:
        name = BROWS[int(rng.integers(len(BROWS)))]
        hold = int(rng.integers(20, 120))
        weight = float(rng.uniform(0.3, 1.0))
        keys += [(name, frame, 0.0), (name, frame + 10, weight), (name, frame + 10 + hold, weight)]
        keys += [(name, frame + 20 + hold, 0.0)]
        frame += 20 + hold + int(rng.integers(60, 400))
    return [k for k in keys if k[1] <= last]


def _encode(bones: np.ndarray, morphs: list) -> bytes:
    m = np.zeros(len(morphs), MORPH_RECORD)
    m["name"] = [n.encode("cp932") for n, _, _ in morphs]
    m["frame"] = [f for _, f, _ in morphs]
    m["weight"] = [w for _, _, w in morphs]
    header = b"Vocaloid Motion Data 0002".ljust(HEADER_BYTES, b"\0") + b"dance".ljust(20, b"\0")
    tail = np.zeros(4, np.uint32).tobytes()  # no camera, light, shadow or IK keys
    parts = [header, np.uint32(len(bones)).tobytes(), bones.tobytes(), np.uint32(len(m)).tobytes()]
    return b"".join([*parts, m.tobytes(), tail])
