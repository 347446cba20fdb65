"""Texture images drawn in numpy: face, hair, mouth, the white of the eye and the irises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from characters.face import face_box
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
    """Skin, blush under the eyes and the nose (the mouth line is geometry: characters.mouth)."""
    half, yc = face_box(spec)
    u, v = pixels(512, 512, ss=1)  # features have smooth edges of their own
    x, y = u * 2 * half - half, yc + half - v * 2 * half
    img = np.ones((*u.shape, 3), np.float32) * np.float32(spec.skin)
    for side in (-1, 1):
        bx, by = side * (spec.eye_x + 0.04), spec.eye_y - 1.5 * spec.eye_half_height
        r2 = ((x - bx) / (1.1 * spec.eye_half_width)) ** 2 + ((y - by) / 0.08) ** 2
        blend(img, (1.0, 0.45, 0.5), 0.45 * np.clip(1 - r2, 0, 1) ** 1.5)
    nose_y = spec.eye_y - 0.6 * (spec.eye_y - spec.mouth_y)
    r2 = ((x - 0.015) / 0.028) ** 2 + ((y - nose_y) / 0.014) ** 2
    blend(img, np.asarray(spec.skin) * 0.7, 0.8 * np.clip((1 - r2) * 3, 0, 1))
    return downsample(img, ss=1)


def hair_texture(spec: CharacterSpec, rng: np.random.Generator) -> np.ndarray:
    u, v = pixels(128, 256)
    shade = np.ones_like(u)
    for freq, amp in ((7, 0.07), (13, 0.06), (29, 0.05)):
        shade += amp * np.sin(2 * np.pi * (freq * u + rng.uniform()))
    shade *= 1 - 0.28 * v
    img = np.asarray(spec.hair) * shade[..., None]
    band = 0.2 + 0.012 * np.sin(2 * np.pi * (5 * u + rng.uniform()))
    light = np.clip(1 - np.abs(v - band) / 0.035, 0, 1)
    blend(img, np.clip(np.asarray(spec.hair) * 0.6 + 0.4, 0, 1), 0.35 * light)
    return downsample(np.clip(img, 0, 1))


def mouth_texture() -> np.ndarray:
    u, v = pixels(64, 64)
    img = np.ones((*u.shape, 3), np.float32) * np.float32((0.35, 0.08, 0.1))
    blend(img, (0.97, 0.97, 0.97), v < 0.16)
    tongue = ((u - 0.5) / 0.38) ** 2 + ((v - 1.0) / 0.4) ** 2 < 1
    blend(img, (0.85, 0.4, 0.42), tongue)
    return downsample(img)


def save_png(path: Path, pixels: np.ndarray) -> None:
    mode = "RGBA" if pixels.shape[-1] == 4 else "RGB"
    Image.fromarray(pixels, mode).save(path, format="PNG", optimize=False, compress_level=6)


def eye_white_texture(spec: CharacterSpec) -> np.ndarray:
    """The white of the eye, shaded under the upper lid (the patch spans 1.75 eye half-heights
    above the eye's centre to 1.45 below; the lid's rest edge is near 1.05 above)."""
    u, v = pixels(64, 64, ss=1)
    yn = 1.75 - v * 3.2
    img = np.ones((*u.shape, 3), np.float32) * np.float32((0.98, 0.98, 1.0))
    blend(img, (0.72, 0.74, 0.86), 0.8 * np.clip(1 - (1.05 - yn) / 0.45, 0, 1))
    return downsample(img, ss=1)


def iris_texture(spec: CharacterSpec) -> np.ndarray:
    """Both irises side by side (u < 0.5 the right eye's), RGBA, alpha = the iris ellipse."""
    u, v = pixels(256, 128, ss=2)
    side = np.where(u >= 0.5, 1, -1)
    xo, yn = ((u % 0.5) * 2) * 2 - 1, 1 - v * 2  # -1..1 over the iris's box
    eye = np.asarray(spec.eye_color, np.float32)
    r = np.sqrt(xo**2 + yn**2)
    t = np.clip((1 - yn) / 2, 0, 1)[..., None]
    img = np.zeros((*u.shape, 4), np.float32)
    img[..., :3] = eye * 0.3 * (1 - t) + np.clip(eye * 1.15 + 0.12, 0, 1) * t
    blend(img, eye * 0.25, (r > 0.82) & (r < 1))
    rp = np.sqrt((xo / 0.42) ** 2 + ((yn + 0.05) / 0.42) ** 2)
    blend(img, eye * 0.12, rp < 1)
    for hx, hy, hr in ((-0.38, 0.35, 0.3), (0.35, -0.45, 0.13)):
        hr2 = ((xo - side * hx) / hr) ** 2 + ((yn - hy) / (hr * 1.3)) ** 2
        blend(img, (1.0, 1.0, 1.0), (hr2 < 1) * 0.95)
    img[..., 3] = np.clip((1 - r) * 40, 0, 1)
    return downsample(img, ss=2)
