"""Texture images drawn in numpy: face, hair, mouth, the white of the eye and the irises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from characters.face import face_box
from characters.mouth_styles import MOUTH_INSIDE
from characters.spec import CharacterSpec


def pixels(width: int, height: int, ss: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates u, v in 0..1 of a supersampled image (float32)."""
    u = (np.arange(width * ss, dtype=np.float32) + 0.5) / (width * ss)
    v = (np.arange(height * ss, dtype=np.float32) + 0.5) / (height * ss)
    return np.meshgrid(u, v)


def downsample(img: np.ndarray, ss: int = 2) -> np.ndarray:
    h, w, c = img.shape
    small = img.reshape(h // ss, ss, w // ss, ss, c).mean(axis=(1, 3))
    return np.clip(np.round(small * 255), 0, 255).astype(np.uint8)


def blend(img: np.ndarray, color, alpha: np.ndarray) -> None:
    """Paint `color` over `img` with per-pixel `alpha` (only where it is positive)."""
    alpha = np.broadcast_to(alpha, img.shape[:2])
    where = alpha > 0
    a = np.minimum(alpha[where], 1).astype(np.float32)[:, None]
    color = np.asarray(color, np.float32)
    if color.ndim > 1:
        color = color[where]
    img[where, :3] = img[where, :3] * (1 - a) + color * a


def face_texture(spec: CharacterSpec) -> np.ndarray:
    """Skin, the blush under the eyes (`spec.blush`: 0 none) and the nose's mark (`spec.nose`;
    the mouth line is geometry: characters.mouth)."""
    half, yc = face_box(spec)
    u, v = pixels(512, 512, ss=1)  # features have smooth edges of their own
    x, y = u * 2 * half - half, yc + half - v * 2 * half
    img = np.ones((*u.shape, 3), np.float32) * np.float32(spec.skin)
    for side in (-1, 1):
        bx, by = side * (spec.eye_x + 0.04), spec.eye_y - 1.5 * spec.eye_half_height
        r2 = ((x - bx) / (1.1 * spec.eye_half_width)) ** 2 + ((y - by) / 0.08) ** 2
        blend(img, (1.0, 0.45, 0.5), spec.blush * np.clip(1 - r2, 0, 1) ** 1.5)
    nose_y = spec.eye_y - 0.6 * (spec.eye_y - spec.mouth_y)
    shade = np.asarray(spec.skin) * 0.7
    if spec.nose == "shadow":
        r2 = ((x - 0.015) / 0.028) ** 2 + ((y - nose_y) / 0.014) ** 2
        blend(img, shade, 0.8 * np.clip((1 - r2) * 3, 0, 1))
    elif spec.nose == "dot":
        r2 = (x / 0.012) ** 2 + ((y - nose_y) / 0.01) ** 2
        blend(img, shade * 0.85, 0.9 * np.clip((1 - r2) * 3, 0, 1))
    elif spec.nose == "line":  # a short stroke down the side of the nose
        along = np.clip((y - nose_y) / 0.09, -1, 1)
        r2 = ((x - 0.02 - 0.015 * along) / 0.008) ** 2 + ((y - nose_y - 0.04) / 0.06) ** 2
        blend(img, shade, 0.7 * np.clip((1 - r2) * 3, 0, 1))
    return downsample(img, ss=1)


def hair_texture(spec: CharacterSpec, rng: np.random.Generator) -> np.ndarray:
    """Hair (u across a strand or round the cap, v from the root): soft shading across, darker
    towards the tips (or lighter), thin dark strand lines, a highlight band (the "angel ring")
    and, for some, tips in a second colour, in the strengths real models' hair textures show."""
    u, v = pixels(128, 256)
    hair = np.asarray(spec.hair, np.float32)
    shade = np.ones_like(u)
    for freq, amp in ((7, 0.07), (13, 0.06), (29, 0.05)):
        shade += amp * np.sin(2 * np.pi * (freq * u + rng.uniform()))
    shade *= 1 - float(rng.uniform(-0.1, 0.4)) * v
    img = hair * shade[..., None]
    if rng.random() < 0.3:  # tips in another colour
        tips = np.clip(hair * rng.uniform(0.5, 1.3, 3) + rng.uniform(-0.1, 0.2), 0, 1)
        blend(img, tips, np.clip((v - 0.55) / 0.4, 0, 1) * float(rng.uniform(0.4, 0.9)))
    lines = int(rng.integers(0, 14))
    for x in rng.uniform(0, 1, lines):
        width = float(rng.uniform(0.004, 0.012))
        strength = float(rng.uniform(0.2, 0.6)) * np.clip(v * 4, 0, 1)
        blend(img, hair * 0.45, strength * np.clip(1 - np.abs(u - x) / width, 0, 1))
    band = float(rng.uniform(0.12, 0.3)) + 0.012 * np.sin(2 * np.pi * (5 * u + rng.uniform()))
    light = np.clip(1 - np.abs(v - band) / float(rng.uniform(0.02, 0.05)), 0, 1)
    blend(img, np.clip(hair * 0.6 + 0.4, 0, 1), float(rng.uniform(0.1, 0.6)) * light)
    return downsample(np.clip(img, 0, 1))


def clothes_texture(spec: CharacterSpec) -> np.ndarray:
    """The clothes (u round the body, v down from the shoulders): a seam, a trim or stripes, and
    shading, as the spec's `OutfitStyle` says."""
    style = spec.outfit
    u, v = pixels(128, 128, ss=1)
    base = np.asarray(spec.clothes, np.float32)
    img = np.ones((*u.shape, 3), np.float32) * base
    blend(img, base * 0.75, 0.5 * np.clip((v - 0.3) / 0.7, 0, 1))  # darker lower down
    trim = np.asarray(style.collar_colour, np.float32)
    if style.pattern == "stripes":
        blend(img, trim, (np.sin(2 * np.pi * v * 14) > 0.6) * 1.0)
    elif style.pattern == "trim":
        blend(img, trim, (np.abs(v - 0.08) < 0.03) * 1.0)
    elif style.pattern == "seams":
        for x in (0.25, 0.5, 0.75):
            blend(img, base * 0.4, np.clip(1 - np.abs(u - x) / 0.006, 0, 1))
    elif style.pattern == "two-tone":
        blend(img, trim, (np.abs(u - 0.5) > 0.12) * 1.0)
    return downsample(img, ss=1)


def mouth_texture(spec: CharacterSpec) -> np.ndarray:
    """The mouth's interior (v in [0, MOUTH_INSIDE]: teeth at the top, the tongue at the
    bottom, as the spec's `MouthStyle` says) and, below it, the line's colour."""
    style = spec.mouth_style
    u, v = pixels(64, 64)
    img = np.ones((*u.shape, 3), np.float32) * np.float32(style.interior)
    inside = v / MOUTH_INSIDE  # 0 at the interior's top edge, 1 at its bottom
    shade = np.clip(1 - np.abs(inside - 0.45) / 0.6, 0, 1)  # darker towards the throat
    blend(img, np.asarray(style.interior) * 0.55, 0.6 * shade)
    if style.teeth in ("top", "both"):
        blend(img, (0.97, 0.97, 0.97), inside < style.teeth_size)
    if style.tongue > 0:
        tongue = ((u - 0.5) / style.tongue) ** 2 + ((inside - 1.0) / 0.42) ** 2 < 1
        blend(img, style.tongue_colour, tongue)
    if style.teeth == "both":
        blend(img, (0.95, 0.95, 0.95), (inside > 1 - 0.7 * style.teeth_size) & (inside <= 1))
    blend(img, style.line_colour, v > MOUTH_INSIDE)
    return downsample(img)


def save_png(path: Path, pixels: np.ndarray) -> None:
    mode = "RGBA" if pixels.shape[-1] == 4 else "RGB"
    Image.fromarray(pixels, mode).save(path, format="PNG", optimize=False, compress_level=6)


def eye_white_texture(spec: CharacterSpec) -> np.ndarray:
    """The white of the eye, shaded under the upper lid (the patch spans 1.75 eye half-heights
    above the eye's centre to 1.45 below; the lid's rest edge is near its `top_height`)."""
    style = spec.eye_style
    u, v = pixels(64, 64, ss=1)
    yn = 1.75 - v * 3.2
    img = np.ones((*u.shape, 3), np.float32) * np.float32(style.white)
    edge = style.top_height + 0.1
    blend(img, style.white_shade, 0.8 * np.clip(1 - (edge - yn) / 0.45, 0, 1))
    return downsample(img, ss=1)


def iris_texture(spec: CharacterSpec) -> np.ndarray:
    """Both irises side by side (u < 0.5 the right eye's), RGBA, alpha = the iris ellipse: a
    gradient from a dark top to a light (or second-hue) bottom, radial streaks, a dark ring, the
    upper lid's shadow, the pupil and the highlights, as the spec's `EyeStyle` says."""
    style = spec.eye_style
    u, v = pixels(256, 128, ss=2)
    side = np.where(u >= 0.5, 1, -1)
    xo, yn = ((u % 0.5) * 2) * 2 - 1, 1 - v * 2  # -1..1 over the iris's box
    eye = np.asarray(spec.eye_color, np.float32)
    light = np.asarray(
        style.iris_bottom if style.iris_bottom else np.clip(eye * 1.15 + 0.12, 0, 1), np.float32
    )
    r = np.sqrt(xo**2 + yn**2)
    t = np.clip((1 - yn) / 2, 0, 1)[..., None]
    img = np.zeros((*u.shape, 4), np.float32)
    img[..., :3] = eye * style.iris_top_dark * (1 - t) + light * t
    if style.streaks:
        angle = np.arctan2(yn, xo)
        streak = np.clip(np.sin(17 * angle) * np.sin(7 * angle + 1.3), 0, 1) * (r > 0.3)
        blend(img, eye * 0.35, style.streaks * streak)
    if style.lid_shadow:
        blend(img, eye * 0.15, style.lid_shadow * np.clip((yn - 0.2) / 0.6, 0, 1))
    if style.ring:
        blend(img, eye * 0.25, np.clip((r - (1 - style.ring)) / 0.05, 0, 1) * (r < 1))
    pupil = np.sqrt((xo / (style.pupil * style.pupil_slit)) ** 2 + ((yn + 0.05) / style.pupil) ** 2)
    blend(img, eye * 0.1, np.clip((1 - pupil) * 8, 0, 1))
    spots = ((-0.38, 0.35, 1.0), (0.35, -0.45, 0.45), (-0.1, -0.55, 0.3))[: style.highlights]
    for hx, hy, scale in spots:
        hr = style.highlight_size * scale
        hr2 = ((xo - side * style.highlight_side * -hx) / hr) ** 2 + ((yn - hy) / (hr * 1.3)) ** 2
        blend(img, (1.0, 1.0, 1.0), (hr2 < 1) * 0.95)
    img[..., 3] = np.clip((1 - r) * 40, 0, 1)
    return downsample(img, ss=2)
