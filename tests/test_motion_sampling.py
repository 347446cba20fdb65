"""MMD's interpolation, against values known without it: Bézier curves solved by the cubic's
roots, slerp against rotations about one axis, holds before and after the keys, the renderer's
Euler order.

Tolerances: the curve parameter is bisected 36 times (2⁻³⁷ ≈ 7e-12 in s; the curve's slope is at
most 3, so 3e-11 in the eased progress), keys are float32 in the file (a quaternion component's
rounding, 6e-8, moves an angle by about 1e-5 degrees), the rest is float64 arithmetic."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mmd_loader.keyframes import (
    bezier_ease,
    euler_angles,
    euler_matrices,
    quaternion_matrices,
    quaternion_power,
    sample_position,
    sample_rotation,
    sample_weight,
    slerp,
)
from mmd_loader.motion import parse_motion
from mmd_loader.vmd import VmdBoneFrame, VmdMorphFrame, encode_vmd
from render.pose import euler_matrix

pytestmark = pytest.mark.numeric
CURVES = [
    (20, 20, 107, 107),
    (64, 0, 64, 127),
    (0, 127, 127, 0),
    (10, 90, 40, 127),
    (127, 0, 0, 127),
]
EASE_TOL = 1e-10  # bisection (3e-11 where x's slope is at least 0.05) plus float64 rounding
DEG_TOL = 1e-4  # float32 keys (about 1e-5 degrees) with margin


def _cubic(s, p1, p2):
    return (1 + 3 * p1 - 3 * p2) * s**3 + (3 * p2 - 6 * p1) * s**2 + 3 * p1 * s


def reference_ease(curve, u: float) -> float:
    """y(s) where x(s) = u, s from the cubic's real root in [0, 1] (numpy's polynomial roots;
    for u where x is not flat)."""
    x1, y1, x2, y2 = (c / 127.0 for c in curve)
    roots = np.roots([1 + 3 * x1 - 3 * x2, 3 * x2 - 6 * x1, 3 * x1, -u])
    real = [r.real for r in roots if abs(r.imag) < 1e-9 and -1e-9 <= r.real <= 1 + 1e-9]
    return _cubic(min(real, key=lambda r: abs(r - u)), y1, y2)


@pytest.mark.parametrize("curve", CURVES)
def test_bezier_ease_against_the_curve_itself(curve):
    """Points (x(s), y(s)) of the curve, at parameters s where x is not flat: there the eased
    progress at u = x(s) is y(s) to the bisection's precision (at a flat x, as (127, 0, 0, 127)
    has at s = 1/2, u = x(s) cannot even be told apart from its neighbours in float64)."""
    x1, y1, x2, y2 = (c / 127.0 for c in curve)
    s = np.linspace(0.0, 1.0, 201)
    slope = 3 * (1 + 3 * x1 - 3 * x2) * s**2 + 2 * (3 * x2 - 6 * x1) * s + 3 * x1
    s = s[slope >= 0.05]
    got = bezier_ease(np.tile(curve, (len(s), 1)), _cubic(s, x1, x2))
    np.testing.assert_allclose(got, _cubic(s, y1, y2), atol=EASE_TOL)
    ends = bezier_ease(np.tile(curve, (2, 1)), np.array([0.0, 1.0]))
    assert abs(ends[0]) < EASE_TOL and abs(ends[1] - 1.0) < EASE_TOL


def test_a_linear_curve_is_the_identity_exactly():
    u = np.linspace(0, 1, 17)
    assert np.array_equal(bezier_ease(np.tile((20, 20, 107, 107), (17, 1)), u), u)
    assert np.array_equal(bezier_ease(np.tile((5, 5, 90, 90), (17, 1)), u), u)


def _y(degrees: float) -> tuple[float, float, float, float]:
    """MMD's quaternion for a turn about its y axis."""
    h = math.radians(degrees) / 2
    return (0.0, math.sin(h), 0.0, math.cos(h))


def _motion(bones=(), morphs=()):
    return parse_motion(encode_vmd("m", bones, morphs), Path("m.vmd"))


def _yaw(quaternions: np.ndarray) -> np.ndarray:
    """Degrees about the model frame's y of quaternions about y alone."""
    return np.degrees(2 * np.arctan2(quaternions[:, 1], quaternions[:, 3]))


def test_rotation_eases_along_the_rotation_curve_between_keys():
    curves = ((20, 20, 107, 107),) * 3 + ((64, 0, 64, 127),)
    motion = _motion(
        [
            VmdBoneFrame("頭", 10, rotation=_y(0)),
            VmdBoneFrame("頭", 30, rotation=_y(60), curves=curves),
        ]
    )
    frames = np.array([0.0, 10.0, 15.0, 20.0, 27.5, 30.0, 45.0])
    yaw = _yaw(sample_rotation(motion.bone_track(0), frames))
    eased = [reference_ease(curves[3], (f - 10) / 20) for f in (15.0, 20.0, 27.5)]
    # MMD's +60° about its y is -60° in the right-handed frame (x and y of quaternions flip)
    want = [0.0, 0.0, *(-60.0 * e for e in eased), -60.0, -60.0]
    np.testing.assert_allclose(yaw, want, atol=DEG_TOL)


def test_positions_move_along_their_own_curves():
    curves = ((64, 0, 64, 127), (20, 20, 107, 107), (0, 127, 127, 0), (20, 20, 107, 107))
    motion = _motion(
        [VmdBoneFrame("センター", 0), VmdBoneFrame("センター", 8, (8.0, 4.0, 2.0), curves=curves)]
    )
    got = sample_position(motion.bone_track(0), np.array([2.0, 4.0, 8.0]))
    for row, f in zip(got, (2.0, 4.0, 8.0), strict=True):
        u = f / 8
        want = [8 * reference_ease(curves[0], u), 4 * u, -2 * reference_ease(curves[2], u)]
        np.testing.assert_allclose(row, want, atol=1e-6)


def test_one_key_holds_and_ends_hold():
    motion = _motion(
        [VmdBoneFrame("頭", 5, rotation=_y(30))],
        [VmdMorphFrame("あ", 10, 0.2), VmdMorphFrame("あ", 20, 1.0), VmdMorphFrame("い", 7, 0.5)],
    )
    frames = np.array([0.0, 5.0, 100.0])
    np.testing.assert_allclose(
        _yaw(sample_rotation(motion.bone_track(0), frames)), [-30.0] * 3, atol=DEG_TOL
    )
    a = sample_weight(motion.morph_track(0), np.array([0.0, 10.0, 12.5, 15.0, 20.0, 99.0]))
    np.testing.assert_allclose(a, [0.2, 0.2, 0.4, 0.6, 1.0, 1.0], atol=1e-7)
    i = sample_weight(motion.morph_track(1), np.array([0.0, 7.0, 8.0]))
    np.testing.assert_allclose(i, [0.5, 0.5, 0.5])


def test_unsorted_and_repeated_keys_play_as_mmd_keeps_them():
    motion = _motion(
        [
            VmdBoneFrame("頭", 20, rotation=_y(90)),
            VmdBoneFrame("頭", 0, rotation=_y(0)),
            VmdBoneFrame("頭", 20, rotation=_y(40)),  # the later key at 20 replaces the first
        ]
    )
    yaw = _yaw(sample_rotation(motion.bone_track(0), np.array([10.0, 20.0])))
    np.testing.assert_allclose(yaw, [-20.0, -40.0], atol=DEG_TOL)


def test_slerp_takes_the_short_arc_and_powers_scale_the_angle():
    q0 = np.array([[0.0, 0.0, 0.0, 1.0]])
    h = math.radians(100) / 2
    q1 = np.array([[0.0, math.sin(h), 0.0, math.cos(h)]])
    half = slerp(q0, q1, np.array([0.5]))
    assert np.allclose(slerp(q0, -q1, np.array([0.5])), half)  # -q is the same rotation
    assert _yaw(half)[0] == pytest.approx(50.0, abs=1e-9)
    assert _yaw(quaternion_power(q1, -0.3))[0] == pytest.approx(-30.0, abs=1e-9)


def test_euler_order_is_the_renderers():
    rng = np.random.default_rng(7)
    angles = rng.uniform(-80, 80, (50, 3))
    matrices = euler_matrices(angles)
    for a, m in zip(angles, matrices, strict=True):
        np.testing.assert_allclose(m, euler_matrix(tuple(a)), atol=1e-12)
    np.testing.assert_allclose(euler_angles(matrices), angles, atol=1e-9)
    h = math.radians(30) / 2
    about_x = quaternion_matrices(np.array([[math.sin(h), 0, 0, math.cos(h)]]))
    np.testing.assert_allclose(about_x[0], euler_matrix((30.0, 0.0, 0.0)), atol=1e-12)
