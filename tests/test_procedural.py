"""Procedural characters: valid PMX read back by pymeshio, deterministic, with working morphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymeshio.pmx import reader

from characters import (
    ORNAMENTS,
    build_character,
    head_shape,
    spec_for_seed,
    write_character,
)
from mmd_loader.pmx_writer import PmxData, pmx_bytes
from tests.conftest import ornament_seeds

# Four plain seeds, and a bow and a flower on bones of their own (an extra bone once shifted the
# indices characters.skeleton hangs 首 on, closing a loop of parents: the head never followed 首).
SEEDS = tuple(
    dict.fromkeys((0, 1, 2, 3, ornament_seeds()["bow", True], ornament_seeds()["flower", True]))
)


def _arrays(model) -> dict[str, np.ndarray]:
    """Positions, normals, triangles and skinning of a pymeshio model, in the file's frame."""
    verts = model.vertices
    pos = np.array([[v.position.x, v.position.y, v.position.z] for v in verts])
    nrm = np.array([[v.normal.x, v.normal.y, v.normal.z] for v in verts])
    bones = []
    for v in verts:
        d = v.deform
        if hasattr(d, "index1"):  # BDEF2
            bones.append((d.index0, d.index1, d.weight0))
        else:  # BDEF1
            bones.append((d.index0, d.index0, 1.0))
    return {
        "pos": pos,
        "nrm": nrm,
        "tris": np.array(model.indices).reshape(-1, 3),
        "bones": np.array(bones),
    }


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[int, tuple[Path, object, dict]]:
    out = {}
    for seed in SEEDS:
        path = write_character(seed, tmp_path_factory.mktemp(f"c{seed}") / "chara.pmx")
        model = reader.read_from_file(str(path))
        assert model is not None, path
        out[seed] = (path, model, _arrays(model))
    return out


def _morph(model, name: str) -> tuple[np.ndarray, np.ndarray]:
    matches = [m for m in model.morphs if m.name == name]
    assert len(matches) == 1, f"morph {name} found {len(matches)} times"
    offsets = matches[0].offsets
    idx = np.array([o.vertex_index for o in offsets])
    off = np.array(
        [[o.position_offset.x, o.position_offset.y, o.position_offset.z] for o in offsets]
    )
    return idx, off


def _head_weighted(arrays: dict, model) -> np.ndarray:
    names = [b.name for b in model.bones]
    head_like = {names.index(n) for n in ("頭", "両目", "左目", "右目")}
    b = arrays["bones"]
    w = np.where(np.isin(b[:, 0], list(head_like)), b[:, 2], 0.0)
    w += np.where(np.isin(b[:, 1], list(head_like)), 1 - b[:, 2], 0.0)
    return w >= 0.5


@pytest.mark.numeric
def test_files_read_back_with_counts_names_and_textures(written):
    for seed, (path, model, arrays) in written.items():
        data, images = build_character(spec_for_seed(seed), "chara_tex")
        assert len(model.vertices) == len(data.positions) < 6000
        assert len(arrays["tris"]) == len(data.triangles)
        assert [m.name for m in model.materials] == [m.name for m in data.materials]
        assert sum(m.vertex_count for m in model.materials) == len(model.indices)
        bones = {b.name: b for b in model.bones}
        names = list(bones)
        assert {"センター", "上半身", "首", "頭"} <= set(names)
        assert bones["上半身"].parent_index == names.index("センター")
        assert bones["上半身2"].parent_index == names.index("上半身")  # the chest (tha3)
        assert bones["首"].parent_index == names.index("上半身2")
        assert bones["頭"].parent_index == names.index("首")
        for ornament in ("リボン", "髪飾り"):
            if ornament in bones:  # a named bow or flower has its own bone, on 頭, last
                assert names[-1] == ornament
                assert bones[ornament].parent_index == names.index("頭")
        morphs = {m.name: m.panel for m in model.morphs}
        spec = spec_for_seed(seed)
        for name in ("まばたき", *spec.wink_names("left"), *spec.wink_names("right")):
            assert morphs[name] == 2
        assert morphs["あ"] == 3
        assert any("\\" in t for t in model.textures)
        for ref in model.textures:
            assert (path.parent / ref.replace("\\", "/")).is_file(), ref
        assert set(images) == {Path(t.replace("\\", "/")).name for t in model.textures}
        np.testing.assert_allclose(arrays["pos"], data.positions, atol=1e-6)


def test_same_seed_same_bytes_and_seeds_differ(tmp_path):
    a = write_character(7, tmp_path / "a" / "x.pmx")
    b = write_character(7, tmp_path / "b" / "x.pmx")
    assert a.read_bytes() == b.read_bytes()
    for png in (a.parent / "x_tex").iterdir():
        assert png.read_bytes() == (b.parent / "x_tex" / png.name).read_bytes()
    specs = [spec_for_seed(s) for s in range(40)]
    assert spec_for_seed(7) == spec_for_seed(7)
    assert len({s.hair for s in specs}) == 40
    assert len({round(s.head_width, 6) for s in specs}) == 40
    assert {s.wink_side for s in specs} == {"left", "right"}
    assert {s.back_hair for s in specs} == {"short", "medium", "long"}
    assert {s.twin_tails for s in specs} == {s.ahoge for s in specs} == {True, False}
    assert len({s.other_wink_name for s in specs}) > 2
    assert {s.smile_plain for s in specs} == {True, False}
    assert {s.ornament for s in specs} == set(ORNAMENTS)


@pytest.mark.numeric
def test_winding_matches_mmd_and_normals_point_out(written):
    """In the file's frame, cross(b - a, c - a) points along the stored normals (as in real
    models), and the head's normals point away from the head's centre."""
    for seed, (_, _, arrays) in written.items():
        pos, nrm, tris = arrays["pos"], arrays["nrm"], arrays["tris"]
        a, b, c = pos[tris[:, 0]], pos[tris[:, 1]], pos[tris[:, 2]]
        geo = np.cross(b - a, c - a)
        live = np.linalg.norm(geo, axis=1) > 1e-9
        agree = np.sum(geo * nrm[tris].sum(1), axis=1)[live] > 0
        assert agree.mean() > 0.99, seed
        spec = spec_for_seed(seed)
        skin = head_shape(spec).mesh_vertices()  # the head's skin comes first
        np.testing.assert_allclose(pos[: len(skin)], skin, atol=1e-5)
        centre = np.array([0.0, spec.head_centre_y, 0.0])
        assert (np.sum(nrm[: len(skin)] * (skin - centre), axis=1) > 0).all()
        face = (np.abs(pos[:, 0]) < 0.3) & (np.abs(pos[:, 1] - spec.eye_y) < 0.3)
        face &= pos[:, 2] < -0.5 * spec.head_depth
        assert (nrm[face][:, 2] < -0.5).all()  # the face looks towards -z


@pytest.mark.numeric
def test_blinks_move_the_expected_side_down(written):
    """まばたき closes both eyes; each eye has a neutral wink (the lid comes down, the lower lid
    rises a little) and a smile wink (the lid stops in an arc and the lower lid rises to it),
    under names that mislead."""
    for seed, (_, model, arrays) in written.items():
        spec = spec_for_seed(seed)
        cases = {"まばたき": ((1, -1), False)}
        for eye, sign in (("left", 1), ("right", -1)):
            neutral, smile = spec.wink_names(eye)
            cases[neutral] = ((sign,), False)
            cases[smile] = ((sign,), True)
        assert len(cases) == 5, cases  # five distinct names
        for name, (sides, smiling) in cases.items():
            idx, off = _morph(model, name)
            x = arrays["pos"][idx, 0]
            assert set(np.sign(x).astype(int)) == set(sides), (seed, name)
            assert np.abs(x).min() > 0.2 * spec.eye_x
            lid_drop, rise = -off[:, 1].min(), off[:, 1].max()
            if smiling:  # the lower lid rises to meet the lid's arc
                assert rise > 0.5 * spec.eye_half_height
                assert lid_drop > 0.4 * spec.eye_half_height
            else:  # the lid comes down; the lower lid rises a little to meet it (as on the real
                # models, whose neutral closures move 2-32 % of their displacement up)
                assert lid_drop > 1.2 * spec.eye_half_height and rise < 0.5 * lid_drop
                size = np.linalg.norm(off, axis=1)
                assert size[off[:, 1] > 0].sum() < 0.35 * size.sum()
            y = arrays["pos"][idx, 1]
            assert (np.abs(y - spec.eye_y) < 3 * spec.eye_half_height).all()
        neutral = {spec.wink_names(e)[0] for e in ("left", "right")}
        assert ("ウィンク" in neutral) is not spec.smile_plain


@pytest.mark.numeric
def test_mouth_opens_below_the_eyes(written):
    for seed, (_, model, arrays) in written.items():
        spec = spec_for_seed(seed)
        idx, off = _morph(model, "あ")
        y = arrays["pos"][idx, 1]
        assert (y < spec.eye_y - spec.eye_half_height).all()
        assert (np.abs(arrays["pos"][idx, 0]) < 2 * spec.eye_x).all()
        # The lower edge and the jaw drop; the upper lip may rise a little, as on the real
        # models (whose あ moves 1-37 % of its displacement up, by at most half its drop).
        drop, size = -off[:, 1].min(), np.linalg.norm(off, axis=1)
        assert drop > 0.15 and off[:, 1].max() < 0.5 * drop
        assert size[off[:, 1] > 0].sum() < 0.4 * size.sum()


@pytest.mark.numeric
def test_skinning_neck_seam_and_head(written):
    for seed, (_, model, arrays) in written.items():
        spec = spec_for_seed(seed)
        names = [b.name for b in model.bones]
        head, neck, upper = names.index("頭"), names.index("首"), names.index("上半身")
        b = arrays["bones"]
        blended = b[:, 2] < 1
        pairs = {tuple(sorted(p)) for p in b[blended, :2].astype(int).tolist()}
        assert tuple(sorted((head, neck))) in pairs
        assert ((b[:, 0] == upper) & (b[:, 2] == 1)).any()
        # The chin is the lowest head-driven point in front of the face's centre line.
        pos, mask = arrays["pos"], _head_weighted(arrays, model)
        front = mask & (np.abs(pos[:, 0]) < 0.2) & (pos[:, 2] < 0)
        assert pos[front, 1].min() == pytest.approx(spec.chin_y, abs=0.02)
        assert spec.mouth_y > spec.chin_y


def _width(pos: np.ndarray, lo: float, hi: float) -> float:
    """x extent of the points with lo < y < hi."""
    return float(np.ptp(pos[(pos[:, 1] > lo) & (pos[:, 1] < hi), 0]))


def test_head_box_truth_excludes_hair_sticking_up():
    """Hair that sticks up is weighted to 頭 yet above the recorded head top; twin tails and long
    hair are weighted to 頭 yet far below the chin: a box around head vertices would be wrong."""
    specs = [spec_for_seed(s) for s in range(60)]
    plain = [s for s in specs if s.ornament == "none"]  # hair only (ornaments: test_face_*)
    up = next(s for s in plain if s.ahoge and not s.spikes)
    down = next(s for s in plain if s.twin_tails or s.back_hair == "long")
    for spec in (up, down):
        data, _ = build_character(spec, "t")
        head = data.bones.index(next(b for b in data.bones if b.name == "頭"))
        on_head = (data.bone_indices[:, 0] == head) & (data.bone_weights[:, 0] == 1)
        pos = data.positions[on_head]
        assert spec.chin_y < spec.eye_y < spec.head_top_y
        assert _width(pos, spec.head_top_y - 0.35, spec.head_top_y - 0.25) > 2 * spec.eye_x
        if spec is up:
            assert pos[:, 1].max() > spec.head_top_y + 0.3
            assert _width(pos, spec.head_top_y + 0.01, np.inf) < 2 * spec.eye_x
        else:
            assert pos[:, 1].min() < spec.chin_y - 1.0


def test_writer_rejects_inconsistent_arrays():
    data, _ = build_character(spec_for_seed(0), "t")
    bad = PmxData(**{**data.__dict__, "triangles": data.triangles + len(data.positions)})
    with pytest.raises(ValueError, match="outside"):
        pmx_bytes(bad)
    bad = PmxData(**{**data.__dict__, "normals": data.normals[:-1]})
    with pytest.raises(ValueError, match="normals"):
        pmx_bytes(bad)


def test_out_path_must_be_pmx(tmp_path):
    with pytest.raises(ValueError, match="pmx"):
        write_character(1, tmp_path / "x.pmd")


def test_loads_without_warnings_and_the_head_hangs_on_the_neck(written):
    """thagen's loader reads every procedural character as written: no bone, weight or texture
    dropped, and 頭's chain of parents runs through 首 to the root."""
    from mmd_loader import load

    for seed, (path, _, _) in written.items():
        model = load(path)
        assert model.warnings == [], (seed, model.warnings)
        names = [b.name for b in model.bones]
        chain, bone = [], names.index("頭")
        while bone >= 0:
            chain.append(names[bone])
            bone = model.bones[bone].parent
        assert chain == ["頭", "首", "上半身2", "上半身", "センター"], seed
