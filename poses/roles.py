"""The face parts that face detection finds in a model and that schemas drive by name.

Morph roles are resolved vertex morphs (`mmd_loader.detect_face` binds them by geometry);
bone roles are bones found by name. A schema parameter names a role (`roles: [left_eye]`,
`bone: head`) or model morph/bone names directly.
"""

from __future__ import annotations

EYE_ROLES = ("left_eye", "right_eye")  # neutral closures, the character's own sides
MOUTH_ROLE = "mouth"  # the あ opening
MORPH_ROLES = (*EYE_ROLES, MOUTH_ROLE)
# Smile (happy) winks, kept for richer schemas (THA3's eye_happy_wink_left/right); never THA1's.
HAPPY_ROLES = {"left_eye": "left_eye_happy", "right_eye": "right_eye_happy"}
FACE_ROLES = (*MORPH_ROLES, *HAPPY_ROLES.values())  # every morph role a schema may name
BONE_ROLES = ("head", "neck")  # 頭 (the head joint) and 首 (the neck root)
