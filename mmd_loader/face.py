"""Placeholder: replaced by face detection."""

from mmd_loader.model import Model
from mmd_loader.roles import FaceRoles


def detect_face(model: Model, overrides: dict | None = None) -> FaceRoles:
    raise NotImplementedError
