"""Face detection on real models: roles, sides decided by geometry, bones, head box, overrides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmd_loader import detect_face, load
from mmd_loader.face import morph_centre
from mmd_loader.head_box import head_driven_mask
from mmd_loader.morph_names import EyeMorphKind, eye_morph_kind, normalize
from mmd_loader.overrides import FaceOverrides, OverridesError, load_overrides, overrides_for
from tests.conftest import require_mmd_dir

# Hand-checked by closing each eye morph on the model and looking at the closed eye, zoomed in,
# in a front render: (left eye, right eye) = the most neutral closure of the character's own left
# eye (on the image's right) and of its right eye; "まばたき" = that side of the blink. Then the
# smile winks found (the closed lid an upward arc ⌒), (left, right) or None: they are kept under
# the left_eye_happy / right_eye_happy roles and never used for THA1's eyes.
EYE_TABLE = {
    # ウィンク/ウィンク右 close in a ⌒ arc (smile); ウィンク２/ｳｨﾝｸ２右 and まばたき lie straight
    "animasa_miku_v2_3/miku_v2.pmd": (("ｳｨﾝｸ２右", "ウィンク２"), ("ウィンク右", "ウィンク")),
    "j3_animasa_miku_pmx/index.pmx": (("ｳｨﾝｸ２右", "ウィンク２"), ("ウィンク右", "ウィンク")),
    # low-poly lids that sag (∪) in every closure; ウインク2 is the left eye's wink, no smile
    "goblin/goblin_v02.pmx": (("ウインク2", "ウインク"), (None, None)),
    # ウィンク/ウィンク右 arch (smile); ウィンク２/ｳｨﾝｸ２右 and まばたき sag a little (∪)
    "hzeo_kaito_v3/hzeoV3kaito_F.pmx": (("ｳｨﾝｸ２右", "ウィンク２"), ("ウィンク右", "ウィンク")),
    "hzeo_kaito_v3/hzeoV3kaito_Fvn.pmx": (("ｳｨﾝｸ２右", "ウィンク２"), ("ウィンク右", "ウィンク")),
    "hzeo_kaito_v3/hzeoV3kaito_Fvr.pmx": (("ｳｨﾝｸ２右", "ウィンク２"), ("ウィンク右", "ウィンク")),
    # its only wink (right eye) is an arc with a raised cheek; まばたき is neutral
    "lat_miku_v231/Lat式ミクVer2.31_White.pmd": (("まばたき", "まばたき"), (None, "ウィンク")),
    "lat_miku_v231/Normal.pmd": (("まばたき", "まばたき"), (None, "ウィンク")),
    # ウィンク/ウィンク右 arch (smile); ウィンク２/ｳｨﾝｸ右２ and まばたき sag (∪)
    "miku4_3/miku4.3.pmx": (("ｳｨﾝｸ右２", "ウィンク２"), ("ウィンク右", "ウィンク")),
    # only まばたき, a thick lash band whose lower edge sags (∪)
    "mmd_bundled/model/Haku_Yowane.pmd": (("まばたき", "まばたき"), (None, None)),
    # ウィンク/ウィンク右 arch (smile); ウィンク２/ｳｨﾝｸ２右 and まばたき sag (∪)
    "mmd_bundled/model/KAITO.pmd": (("ｳｨﾝｸ２右", "ウィンク２"), ("ウィンク右", "ウィンク")),
    # its only wink (right eye) arches (smile); まばたき sags (∪)
    "mmd_bundled/model/Len_Kagamine.pmd": (("まばたき", "まばたき"), (None, "ウィンク")),
    # the other way round: ウインク/ウインク右 sag (∪, neutral), ウインク２/ウインク２右 arch
    "mmd_bundled/model/MEIKO.pmd": (("ウインク右", "ウインク"), ("ウインク２右", "ウインク２")),
    # ウィンク/ウィンクＬ lie nearly straight with a slight arch (borderline smile); まばたき
    # sags slightly (∪) and is the neutral one
    "mmd_bundled/model/Meiko_Sakine.pmd": (("まばたき", "まばたき"), ("ウィンクＬ", "ウィンク")),
    # its only wink (right eye) arches (smile); まばたき is straight
    "mmd_bundled/model/Miku_Hatsune.pmd": (("まばたき", "まばたき"), (None, "ウィンク")),
    # the same face as miku_v2.pmd
    "mmd_bundled/model/Miku_Hatsune_Ver2.pmd": (
        ("ｳｨﾝｸ２右", "ウィンク２"),
        ("ウィンク右", "ウィンク"),
    ),
    "mmd_bundled/model/Miku_Hatsune_metal.pmd": (
        ("ｳｨﾝｸ２右", "ウィンク２"),
        ("ウィンク右", "ウィンク"),
    ),
    # its only wink (right eye) arches (smile); まばたき sags (∪)
    "mmd_bundled/model/Neru_Akita.pmd": (("まばたき", "まばたき"), (None, "ウィンク")),
    # ウインク/ウィンク右 arch (smile); ウインク２/ｳｨﾝｸ２右 and まばたき sag (∪)
    "mmd_bundled/model/Rin_Kagamene_act2.pmd": (
        ("ｳｨﾝｸ２右", "ウインク２"),
        ("ウィンク右", "ウインク"),
    ),
    # its only wink (right eye) arches (smile); まばたき is straight
    "mmd_bundled/model/Rin_Kagamine.pmd": (("まばたき", "まばたき"), (None, "ウィンク")),
}


@pytest.fixture(scope="module")
def detected() -> dict:
    root = require_mmd_dir()
    out = {}
    for rel in EYE_TABLE:
        model = load(root / rel)
        out[rel] = (model, detect_face(model))
    return out


@pytest.mark.numeric
@pytest.mark.parametrize("rel", sorted(EYE_TABLE))
def test_every_face_model_is_usable_with_eyes_on_their_own_side(detected, rel):
    model, roles = detected[rel]
    assert roles.usable, roles.problems
    assert model.bones[roles.neck].name == "首"
    assert model.bones[roles.head].name == "頭"
    assert roles.morphs["mouth"].morph == "あ"
    (left, right), _ = EYE_TABLE[rel]
    assert roles.morphs["left_eye"].morph == left
    assert roles.morphs["right_eye"].morph == right
    # The chosen closures are neutral: no model here needs the smile_closure flag.
    assert not [f for f in roles.flags if f.code == "smile_closure"]
    for role in ("left_eye", "right_eye"):
        assert roles.eyes[role].chosen == roles.morphs[role].morph
        assert not roles.eyes[role].candidates[0].smile
    # Independent of any morph name: the character's own left side is where its 左 bones are.
    left_bones = [b.position[0] for b in model.bones if b.name.startswith("左")]
    side = np.sign(np.median(left_bones))
    cx = model.bones[roles.head].position[0]
    assert side * (morph_centre(model, roles.morphs["left_eye"])[0] - cx) > 0
    assert side * (morph_centre(model, roles.morphs["right_eye"])[0] - cx) < 0
    # Closing an eye moves vertices down on average; the mouth sits below both eyes.
    for role in ("left_eye", "right_eye"):
        assert roles.morphs[role].offsets[:, 1].mean() < 0
    mouth_y = morph_centre(model, roles.morphs["mouth"])[1]
    assert mouth_y < morph_centre(model, roles.morphs["left_eye"])[1]


@pytest.mark.parametrize("rel", sorted(EYE_TABLE))
def test_smile_winks_are_kept_as_happy_roles_on_their_own_side(detected, rel):
    model, roles = detected[rel]
    _, happy = EYE_TABLE[rel]
    cx = model.bones[roles.head].position[0]
    for role, sign, name in zip(("left_eye_happy", "right_eye_happy"), (1, -1), happy, strict=True):
        bound = roles.morphs.get(role)
        assert (bound.morph if bound else None) == name, role
        if bound is not None:
            assert sign * (morph_centre(model, bound)[0] - cx) > 0
            eye = role.removesuffix("_happy")
            scored = {c.morph: c for c in roles.eyes[eye].candidates}
            assert scored[name].smile and scored[name].score > roles.eyes[eye].candidates[0].score


@pytest.mark.parametrize("rel", sorted(EYE_TABLE))
def test_head_box_brackets_the_face(detected, rel):
    model, roles = detected[rel]
    box = roles.head_box
    eye_y = morph_centre(model, roles.morphs["left_eye"])[1]
    mouth_y = morph_centre(model, roles.morphs["mouth"])[1]
    assert box.chin < mouth_y < eye_y < box.top
    # Anime proportions: the chin is below the mouth by less than the eye-mouth distance, and
    # the eyes sit in the lower part of the head (anime craniums and hair are big).
    eye_to_mouth = eye_y - mouth_y
    assert mouth_y - box.chin < 1.5 * eye_to_mouth
    height = box.top - box.chin
    assert 0.28 < (eye_y - box.chin) / height < 0.7


def test_head_box_ignores_twin_tails_and_back_hair(detected):
    model, roles = detected["animasa_miku_v2_3/miku_v2.pmd"]
    box = roles.head_box
    head_driven = model.positions[head_driven_mask(model, roles.head)]
    # Miku's twin tails reach far below her chin; the box must not follow them.
    assert head_driven[:, 1].min() < box.chin - 5
    assert 3.0 < box.top - box.chin < 4.5


def test_blink_only_model_is_split_into_two_disjoint_sides(detected):
    model, roles = detected["mmd_bundled/model/Haku_Yowane.pmd"]
    left, right = roles.morphs["left_eye"], roles.morphs["right_eye"]
    assert left.how == right.how == "split"
    assert not set(left.indices.tolist()) & set(right.indices.tolist())
    blink = model.vertex_offsets(model.morph_index("まばたき"))[0]
    assert set(left.indices.tolist()) | set(right.indices.tolist()) <= set(blink.tolist())


def test_models_without_a_face_say_why(mmd_dir: Path):
    test_model = detect_face(load(mmd_dir / "yw_test_model_cc0/yw_test_model.pmx"))
    assert not test_model.usable
    assert "no morph closes the left eye" in test_model.problems
    assert "no morph opens the mouth (あ)" in test_model.problems
    dummy = detect_face(load(mmd_dir / "mmd_bundled/model/Dammy_Bone.pmd"))
    assert not dummy.usable
    assert "the model has no vertices" in dummy.problems


def test_override_wins_over_detection(detected, tmp_path):
    model, _ = detected["animasa_miku_v2_3/miku_v2.pmd"]
    forced = FaceOverrides(left_eye="まばたき@left", right_eye="まばたき@right", chin=15.0)
    roles = detect_face(model, forced)
    assert roles.morphs["left_eye"].how == "override"
    assert roles.morphs["left_eye"].morph == "まばたき"
    assert (model.positions[roles.morphs["left_eye"].indices, 0] > 0).all()
    assert roles.head_box.chin == 15.0
    bad = detect_face(model, FaceOverrides(mouth="存在しない"))
    assert any("存在しない" in p for p in bad.problems)


def test_overrides_files_yaml_csv_and_sidecar(tmp_path):
    yaml_file = tmp_path / "o.yaml"
    yaml_file.write_text("'*.pmd':\n  left_eye: ウィンク\n  chin: 16.5\n", encoding="utf-8")
    table = load_overrides(yaml_file)
    assert overrides_for(Path("x/miku.pmd"), table).left_eye == "ウィンク"
    assert overrides_for(Path("x/miku.pmx"), table) is None
    csv_file = tmp_path / "o.csv"
    csv_file.write_text("model,mouth,head_top\nmiku.pmx,あ2,21\n", encoding="utf-8")
    assert load_overrides(csv_file)["miku.pmx"].head_top == 21.0
    sidecar = tmp_path / "m.pmx.thagen.yaml"
    sidecar.write_text("mouth: お\n", encoding="utf-8")
    assert overrides_for(tmp_path / "m.pmx", table).mouth == "お"
    broken = tmp_path / "b.yaml"
    broken.write_text("m.pmx:\n  eyes: x\n", encoding="utf-8")
    with pytest.raises(OverridesError, match="unknown override field"):
        load_overrides(broken)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("まばたき", EyeMorphKind.BLINK),
        ("ウィンク", EyeMorphKind.WINK),
        ("ウインク", EyeMorphKind.WINK),
        ("ｳｨﾝｸ", EyeMorphKind.WINK),
        ("ウィンク２", EyeMorphKind.WINK),
        ("ウィンク2", EyeMorphKind.WINK),
        ("ウィンク右", EyeMorphKind.WINK),
        ("ウィンクＬ", EyeMorphKind.WINK),
        ("まばたき・ひだり", EyeMorphKind.WINK),
        ("まばたき右", EyeMorphKind.WINK),
        ("Wink_R", EyeMorphKind.WINK),
        ("blink", EyeMorphKind.BLINK),
        ("blink_left", EyeMorphKind.WINK),
        ("じと目", None),
        ("あ", None),
    ],
)
def test_eye_morph_names(name, kind):
    assert eye_morph_kind(name) is kind


def test_normalize_folds_widths_and_small_kana():
    assert normalize("ｳｨﾝｸ２右") == normalize("ウインク2右") == "ウィンク2右"
