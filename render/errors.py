"""The renderer's error type (importing it costs nothing: no GL here)."""

from __future__ import annotations


class RenderError(RuntimeError):
    """The renderer cannot do what was asked (no GL context, an unusable model, a bad pose)."""
