"""Loading MMD models (PMD/PMX, folders and zips) and finding each model's face parts."""

from mmd_loader.errors import ModelLoadError
from mmd_loader.face import detect_face
from mmd_loader.loader import load
from mmd_loader.model import Bone, Material, Model, Morph, MorphKind
from mmd_loader.roles import FaceRoles, HeadBox, RoleMorph

__all__ = [
    "Bone",
    "FaceRoles",
    "HeadBox",
    "Material",
    "Model",
    "ModelLoadError",
    "Morph",
    "MorphKind",
    "RoleMorph",
    "detect_face",
    "load",
]
