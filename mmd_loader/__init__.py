"""Loading MMD models (PMD/PMX, folders and zips) and finding each model's face parts; reading
MMD motions (VMD/VPD) and mapping them onto a pose schema (`mmd_loader.motion_schema`)."""

from mmd_loader.errors import ModelLoadError, MotionLoadError
from mmd_loader.face import detect_face
from mmd_loader.loader import load
from mmd_loader.model import Bone, Material, Model, Morph, MorphKind
from mmd_loader.motion import Motion, load_motion
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
    "Motion",
    "MotionLoadError",
    "RoleMorph",
    "detect_face",
    "load",
    "load_motion",
]
