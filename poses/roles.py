"""The face parts that face detection finds in a model and that schemas drive by name.

Morph roles are resolved vertex morphs (`mmd_loader.detect_face` binds them by geometry);
bone roles are bones found by name (and, for the eyes, by side of the face). A schema parameter
names a role (`roles: [left_eye]`, `bone: head`) or model morph/bone names directly.
"""

from __future__ import annotations

EYE_ROLES = ("left_eye", "right_eye")  # neutral closures, the character's own sides
# Smile closures (⌒ or ^), told from neutral ones by the shape test of `mmd_loader.face`.
HAPPY_EYE_ROLES = ("left_eye_happy", "right_eye_happy")
MOUTH_ROLE = "mouth"  # the あ opening
MORPH_ROLES = (*EYE_ROLES, MOUTH_ROLE)  # THA1's three
# Smile (happy) winks, kept for richer schemas (THA3's eye_happy_wink_left/right); never THA1's.
HAPPY_ROLES = {"left_eye": "left_eye_happy", "right_eye": "right_eye_happy"}
FACE_ROLES = (*MORPH_ROLES, *HAPPY_EYE_ROLES)  # every morph role a schema may name
HEAD_ROLES = ("head", "neck")  # 頭 (the head joint) and 首 (the neck root), from detect_face
# Bones found by `mmd_loader.body`: 上半身 and the chest (上半身2, or 上半身 when a model has no
# 上半身2), the eye bones 左目/右目 (sides decided by where they sit), 両目 (it turns both eyes
# through their append), and the shoulders 左肩/右肩 and arms 左腕/右腕.
BODY_ROLES = (
    "upper_body",
    "chest",
    "left_eye_bone",
    "right_eye_bone",
    "both_eyes",
    "left_shoulder",
    "right_shoulder",
    "left_arm",
    "right_arm",
)
BONE_ROLES = (*HEAD_ROLES, *BODY_ROLES)

SIDES = ("left", "right")  # a morph parameter's side of the face, the character's own
# Which image of an example a parameter belongs to: the expression image shows every
# `expression` parameter (head and body at rest), the posed image every parameter.
IMAGES = ("expression", "posed")
# What the face tracker measures (`tracking.calibrate`), for a schema's `track:` field.
TRACKED = (
    "left_eye",
    "right_eye",
    "mouth",
    "pitch",
    "yaw",
    "roll",
    "left_brow_raise",
    "right_brow_raise",
    "iris_pitch",
    "iris_yaw",
)
