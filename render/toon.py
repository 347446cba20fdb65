"""MMD's shared toon ramps (`toon01.bmp`..`toon10.bmp`), made in code for models that lack them.

Each shared ramp is a 32×32 image whose top half is white and whose bottom half is the shadow
tone; MMD samples it at v = 0.5 - 0.5 · (n · l), so lit surfaces read the top and unlit ones the
bottom. The tones below are those of the files MMD ships (toon05 and toon06 are soft gradients).
"""

from __future__ import annotations

import numpy as np

RAMP_SIZE = 32
_WHITE = (255, 255, 255)
# Per shared ramp: (v where the shadow starts, shadow tone at that v, tone at the bottom).
_RAMPS: tuple[tuple[float, tuple[int, int, int], tuple[int, int, int]], ...] = (
    (0.5, (205, 205, 205), (205, 205, 205)),
    (0.5, (245, 225, 225), (245, 225, 225)),
    (0.5, (154, 154, 154), (154, 154, 154)),
    (0.5, (248, 239, 235), (248, 239, 235)),
    (0.55, (255, 250, 248), (255, 230, 221)),
    (0.75, (201, 178, 12), (195, 172, 3)),
    (0.5, _WHITE, _WHITE),
    (0.5, _WHITE, _WHITE),
    (0.5, _WHITE, _WHITE),
    (0.5, _WHITE, _WHITE),
)
_TOON06_TOP = (255, 237, 97)


def default_toon(index: int) -> np.ndarray:
    """MMD's shared toon ramp `toon{index+1:02d}.bmp` as (32, 32, 4) uint8 RGBA, row 0 = top."""
    if not 0 <= index < len(_RAMPS):
        raise ValueError(f"shared toon index must be in 0..9, not {index}")
    start, near, far = _RAMPS[index]
    top = np.array(_TOON06_TOP if index == 5 else _WHITE, np.float64)
    v = (np.arange(RAMP_SIZE) + 0.5) / RAMP_SIZE
    t = np.clip((v - start) / max(1.0 - start, 1e-6), 0.0, 1.0)[:, None]
    shade = np.array(near, np.float64) * (1.0 - t) + np.array(far, np.float64) * t
    column = np.where((v < start)[:, None], top, shade)
    rgb = np.repeat(np.rint(column)[:, None, :], RAMP_SIZE, axis=1).astype(np.uint8)
    alpha = np.full((RAMP_SIZE, RAMP_SIZE, 1), 255, np.uint8)
    return np.concatenate([rgb, alpha], axis=2)
