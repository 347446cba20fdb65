"""The bones of the upper body and the eyes that THA3-style poses turn (`poses.roles.BODY_ROLES`).

Names propose (MMD's standard bone names and their English and romaji spellings, folded as
morph names are); for the paired bones geometry decides: of the two eye bones, the one sitting
at +x (the character's own left) is `left_eye_bone`, whatever it is called, and likewise for the
shoulders and arms. Bones are looked for where they belong: eye bones in the head's subtree,
shoulders and arms outside it.
"""

from __future__ import annotations

import numpy as np

from mmd_loader.model import Model
from mmd_loader.morph_names import fold
from mmd_loader.roles import FaceRoles
from mmd_loader.sides import face_centre_x

UPPER_BODY_NAMES = ("上半身", "upper body", "upperbody", "upper_body", "jouhanshin", "spine")
CHEST_NAMES = ("上半身2", "upper body2", "upperbody2", "upper body 2", "chest", "spine1")
BOTH_EYES_NAMES = ("両目", "eyes", "both eyes", "ryoume")
EYE_NAMES = ("左目", "右目", "eye_l", "eye_r", "left eye", "right eye", "lefteye", "righteye")
EYE_NAMES += ("eye l", "eye r", "hidarime", "migime", "eyel", "eyer")
SHOULDER_NAMES = ("左肩", "右肩", "shoulder_l", "shoulder_r", "left shoulder", "right shoulder")
SHOULDER_NAMES += ("shoulderl", "shoulderr", "leftshoulder", "rightshoulder")
ARM_NAMES = ("左腕", "右腕", "arm_l", "arm_r", "left arm", "right arm", "arml", "armr")
ARM_NAMES += ("leftarm", "rightarm", "upperarm_l", "upperarm_r")


def find_body_bones(model: Model, roles: FaceRoles) -> dict[str, int]:
    """Bone role → bone index for the roles the model has (absent roles are left out)."""
    out: dict[str, int] = {}
    head_tree = _subtree(model, roles.head) if roles.head >= 0 else set()
    upper = _first(model, UPPER_BODY_NAMES, exclude=head_tree)
    if upper >= 0:
        out["upper_body"] = upper
    chest = _first(model, CHEST_NAMES, exclude=head_tree)
    if chest >= 0 and upper >= 0 and chest in _subtree(model, upper):
        out["chest"] = chest
    elif upper >= 0:
        out["chest"] = upper
    cx = face_centre_x(model, roles.head)
    both = _first(model, BOTH_EYES_NAMES, within=head_tree)
    if both >= 0:
        out["both_eyes"] = both
    eyes = _named(model, EYE_NAMES, within=head_tree)
    out.update(_pair(model, eyes, cx, "left_eye_bone", "right_eye_bone"))
    shoulders = _named(model, SHOULDER_NAMES, exclude=head_tree)
    out.update(_pair(model, shoulders, cx, "left_shoulder", "right_shoulder"))
    arms = _named(model, ARM_NAMES, exclude=head_tree)
    out.update(_pair(model, arms, cx, "left_arm", "right_arm"))
    return out


def _subtree(model: Model, root: int) -> set[int]:
    """`root` and every bone below it (parents may come after children in file order)."""
    children: dict[int, list[int]] = {}
    for index, bone in enumerate(model.bones):
        children.setdefault(bone.parent, []).append(index)
    seen, todo = set(), [root]
    while todo:
        bone = todo.pop()
        if bone in seen or not 0 <= bone < len(model.bones):
            continue
        seen.add(bone)
        todo.extend(children.get(bone, []))
    return seen


def _named(
    model: Model,
    names: tuple[str, ...],
    within: set[int] | None = None,
    exclude: set[int] | None = None,
) -> list[int]:
    """Bones whose folded name is one of `names`, in file order."""
    wanted = {fold(n) for n in names}
    return [
        i
        for i, bone in enumerate(model.bones)
        if fold(bone.name) in wanted
        and (within is None or i in within)
        and (exclude is None or i not in exclude)
    ]


def _first(
    model: Model,
    names: tuple[str, ...],
    within: set[int] | None = None,
    exclude: set[int] | None = None,
) -> int:
    """The bone with the earliest-listed name (then the first in file order), or -1."""
    found = _named(model, names, within, exclude)
    if not found:
        return -1
    rank = {fold(n): k for k, n in reversed(list(enumerate(names)))}
    return min(found, key=lambda i: (rank[fold(model.bones[i].name)], i))


def _pair(model: Model, bones: list[int], cx: float, left: str, right: str) -> dict[str, int]:
    """The left and right bone of a pair, by where they sit: the outermost on each side."""
    out: dict[str, int] = {}
    if not bones:
        return out
    x = np.array([float(model.bones[i].position[0]) - cx for i in bones])
    if (x > 0).any():
        out[left] = bones[int(np.argmax(np.where(x > 0, x, -np.inf)))]
    if (x < 0).any():
        out[right] = bones[int(np.argmin(np.where(x < 0, x, np.inf)))]
    return out
