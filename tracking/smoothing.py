"""The one-euro filter (Casiez, Roussel, Vogel, CHI 2012): little jitter when still, little lag
when moving.

Each channel is low-passed with a cutoff that grows with its (low-passed) speed:
``cutoff = min_cutoff + beta * |dx/dt|``. Lower ``min_cutoff`` (Hz) removes more jitter; higher
``beta`` reduces lag in fast motion; ``d_cutoff`` (Hz) smooths the speed estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroSettings:
    min_cutoff: float = 1.0
    beta: float = 0.5
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "beta", "d_cutoff"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name != "beta" and value == 0):
                raise ValueError(f"one-euro {name} must be a positive number, got {value}")


class OneEuroFilter:
    """Filters vectors sampled at increasing times (any number of channels)."""

    def __init__(self, settings: OneEuroSettings = OneEuroSettings()) -> None:
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        self._t: float | None = None
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def __call__(self, t: float, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._t is None or self._x is None or self._dx is None:
            self._t, self._x, self._dx = t, x.copy(), np.zeros_like(x)
            return x.copy()
        dt = t - self._t
        if dt <= 0:
            raise ValueError(f"one-euro filter: time {t} does not follow {self._t}")
        s = self.settings
        dx = _blend(self._dx, (x - self._x) / dt, _alpha(s.d_cutoff, dt))
        cutoff = s.min_cutoff + s.beta * np.abs(dx)
        self._t, self._x, self._dx = t, _blend(self._x, x, _alpha(cutoff, dt)), dx
        return self._x.copy()


def smooth(
    times: np.ndarray, values: np.ndarray, settings: OneEuroSettings = OneEuroSettings()
) -> np.ndarray:
    """``values`` (n, channels) filtered along time."""
    f = OneEuroFilter(settings)
    return np.array([f(float(t), v) for t, v in zip(times, values, strict=True)])


def _alpha(cutoff: float | np.ndarray, dt: float) -> float | np.ndarray:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def _blend(previous: np.ndarray, current: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    return alpha * current + (1.0 - alpha) * previous
