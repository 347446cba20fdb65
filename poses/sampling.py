"""Drawing poses and lighting from a schema with one example's generator.

Draw order is fixed: one uniform per parameter in schema order, then one choice per exclusive
group (in group-name order) among its members (a member is one parameter, or the parameters that
share a `member`, e.g. a two-sided shape's _left and _right, which keep their own values), then
ambient, then directional. Values are rounded to 6 decimals, the precision they are stored with.
"""

from __future__ import annotations

import numpy as np

from poses.schema import Parameter, Schema

DECIMALS = 6


def draw(param: Parameter, u: float) -> float:
    """Map one uniform u ∈ [0, 1) to the parameter's law.

    `uniform`: lo + u (hi - lo). `abs` (density ∝ |x| on [-h, h]): v = 2u - 1, x = sign(v)·√|v|·h,
    since P(|x| < t) = P(|v| < t²) = t² gives |x| the density 2t.
    """
    lo, hi = param.range
    if param.law == "abs":
        v = 2.0 * u - 1.0
        return float(np.sign(v) * np.sqrt(abs(v)) * hi)
    return lo + u * (hi - lo)


def sample_pose(schema: Schema, rng: np.random.Generator) -> dict[str, float]:
    """One pose: every parameter of the schema, in schema order."""
    u = rng.random(len(schema.parameters))
    values = [draw(p, float(x)) for p, x in zip(schema.parameters, u, strict=True)]
    for group in schema.groups:
        members = schema.members(group)
        keep = members[int(rng.integers(len(members)))]
        for i in schema.groups[group]:
            if i not in keep:
                values[i] = 0.0
    return {p.name: round(v, DECIMALS) for p, v in zip(schema.parameters, values, strict=True)}


def sample_lighting(schema: Schema, rng: np.random.Generator) -> dict[str, float]:
    """Ambient and directional intensities, uniform on the schema's ranges."""
    (a0, a1), (d0, d1) = schema.ambient, schema.directional
    ambient = a0 + rng.random() * (a1 - a0)
    directional = d0 + rng.random() * (d1 - d0)
    return {"ambient": round(ambient, DECIMALS), "directional": round(directional, DECIMALS)}
