"""A synthetic "person" clip with known head roll, for tests and the README's media.

Built from scikit-image's astronaut photograph (shipped inside the package, so nothing is
downloaded; scikit-image is in the `dev` extra): 1 s still for calibration, then one 2 s sine
period of ±12°, each frame the photo turned about her face.
"""

from __future__ import annotations

import numpy as np

FACE_CENTRE = (222, 125)  # (x, y) of the astronaut's face in the 512² photo: the rotation centre


def person_angles(fps: float) -> np.ndarray:
    """Degrees counter-clockwise on screen: 1 s at 0°, then one 2 s sine period of ±12°."""
    t = np.arange(round(2 * fps)) / fps
    return np.concatenate([np.zeros(round(fps)), 12.0 * np.sin(np.pi * t)])


def person_frame(angle: float, size: int) -> np.ndarray:
    """The astronaut turned `angle` degrees about her face, cropped to 256² and scaled to size²."""
    from skimage import data, transform

    turned = transform.rotate(
        data.astronaut(), angle, center=FACE_CENTRE, mode="edge", preserve_range=True
    )
    small = transform.resize(
        turned[0:256, 94:350], (size, size), preserve_range=True, anti_aliasing=True
    )
    return np.rint(small).astype(np.uint8)
