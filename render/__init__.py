"""Headless MMD face rendering for THA1 data: pose a model, draw it offscreen (moderngl, EGL)."""

from render.errors import RenderError
from render.framing import Framing
from render.pose import Lighting, Pose
from render.renderer import Renderer, RenderSettings

__all__ = ["Framing", "Lighting", "Pose", "RenderError", "RenderSettings", "Renderer"]
