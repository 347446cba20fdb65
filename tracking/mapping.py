"""From what the tracker measures to a schema's parameters.

A parameter is driven by a measurement when the schema says it means the same thing: one whose
`track:` names a measurement takes it (brow raises, the irises' gaze: in the parameter's own
units; an angle divided by the parameter's `degrees`); a morph bound to the `left_eye`,
`right_eye` or `mouth` role takes that closure or opening; a rotation of the `head` about x or y
takes the head's pitch or yaw, a rotation of the `neck` about z its roll, each divided by the
parameter's own `degrees`. Values are clipped to the parameter's range; a parameter nothing
drives stays at its neutral value.
"""

from __future__ import annotations

import numpy as np

from poses.schema import Schema
from tracking.calibrate import ANGLES, MEASUREMENTS

ROTATIONS = {("head", "x"): "pitch", ("head", "y"): "yaw", ("neck", "z"): "roll"}


class PoseMapper:
    """Measurements (``MEASUREMENTS`` order) → values in ``schema.names`` order."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.names = tuple(schema.names)
        self.neutral = np.array([p.neutral for p in schema.parameters])
        self.lo = np.array([p.range[0] for p in schema.parameters])
        self.hi = np.array([p.range[1] for p in schema.parameters])
        self.source = np.full(len(self.names), -1)
        self.scale = np.ones(len(self.names))
        for i, p in enumerate(schema.parameters):
            if p.track is not None:
                self.source[i] = MEASUREMENTS.index(p.track)
                if p.track in ANGLES and p.degrees:
                    self.scale[i] = 1.0 / p.degrees
            elif p.kind == "morph":
                role = next((r for r in p.roles if r in MEASUREMENTS), None)
                if role is not None:
                    self.source[i] = MEASUREMENTS.index(role)
            elif (p.bone, p.axis) in ROTATIONS and p.degrees:
                self.source[i] = MEASUREMENTS.index(ROTATIONS[p.bone, p.axis])
                self.scale[i] = 1.0 / p.degrees

    @property
    def driven(self) -> list[str]:
        """The parameters the tracker estimates (the others stay neutral)."""
        return [n for n, s in zip(self.names, self.source, strict=True) if s >= 0]

    def __call__(self, measurements: np.ndarray) -> np.ndarray:
        values = self.neutral.copy()
        driven = self.source >= 0
        values[driven] = np.asarray(measurements)[self.source[driven]] * self.scale[driven]
        return np.clip(values, self.lo, self.hi)
