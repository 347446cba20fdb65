"""Faces shaded as their authors saw them (`mmd_loader.face_parts`, phong's RAMP variant) and
the flag for what that cannot fix (`face_shading_artifacts`), on procedural characters with
known truth (a low-poly face with split normals, cheek decals with tilted normals, a skin
ramp that darkens) and on every face model in ../shared/mmd."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from characters import cases
from mmd_loader import detect_face, load
from mmd_loader.face import morph_centre
from mmd_loader.face_parts import face_parts
from pipeline.catalog import model_flags
from pipeline.face_flags import DARK_LIGHT, MAX_DARK_SHARE, dark_face_share, face_materials
from render import Lighting, Pose, Renderer, RenderSettings
from tests.conftest import require_mmd_dir
from tests.test_render import model_id, usable_models

SIZE = 128
SEED = 3


@functools.cache
def character(kind: str, folder: str) -> Path:
    return getattr(cases, kind)(SEED, Path(folder) / kind / "character.pmx")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("face_shading"))


def dark_share(path: Path, face_ramp: bool) -> float:
    """`dark_face_share` of a model under the quality renderer (phong, 128 px)."""
    model = load(path)
    roles = detect_face(model)
    with Renderer(RenderSettings(size=SIZE, threads=0, face_ramp=face_ramp)) as renderer:
        renderer.set_model(model, roles)
        rest = renderer.render(Pose())
        project = renderer.framing.project
        eyes = [
            project(morph_centre(model, roles.morphs[r])[None], SIZE)[0]
            for r in ("left_eye", "right_eye")
        ]
        u = max(abs(eyes[0][0] - eyes[1][0]), 1.0)
        share = dark_face_share(renderer, rest, eyes, roles, u)
    assert share is not None
    return share


def face_pixels(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The face's own materials alone at rest: (default lighting, flat lighting (ambient 1, no
    directional), opaque mask), under phong with and without the face shading."""
    model = load(path)
    roles = detect_face(model)
    materials = face_materials(model, face_parts(model, roles))
    out = []
    for face_ramp in (True, False):
        with Renderer(RenderSettings(size=SIZE, threads=0, face_ramp=face_ramp)) as r:
            r.set_model(model, roles)
            out.append(r.render(Pose(), Lighting(), only=materials))
    with Renderer(RenderSettings(size=SIZE, threads=0)) as r:
        r.set_model(model, roles)
        flat = r.render(Pose(), Lighting(1.0, 0.0), only=materials)
    return out[0], out[1], flat


@pytest.mark.parametrize("kind", ["faceted", "tilted_decal"])
def test_faces_with_facets_or_tilted_decals_show_the_painted_colours(folder, kind):
    """A low-poly face with split normals and cheek decals with normals tilted 70° are drawn
    in the colours their textures and materials say (the flat render), byte for byte but where
    the skin turns from the light at its outline (the jaw's corners, the neck's sides: the ramp
    is evaluated per vertex and interpolated, and a triangle spanning its turn shades a few
    levels darker): the face is lit through its ramp, whose lit half is white, and a decal takes
    the skin's normals. Lambert faces (face_ramp off) show facets and decals darker."""
    ramp, lambert, flat = face_pixels(character(kind, folder))
    opaque = (flat[..., 3] == 255) & (ramp[..., 3] == 255)
    assert opaque.sum() > 2000
    off = np.abs(ramp.astype(int) - flat.astype(int)).max(axis=2)[opaque]
    assert (off > 0).mean() < 0.1 and off.max() <= 8, ((off > 0).mean(), off.max())
    darker = flat[..., :3].astype(int).sum(-1) - lambert[..., :3].astype(int).sum(-1) > 3 * 24
    assert (darker & opaque).mean() > 0.02


@pytest.mark.numeric
def test_the_faceted_face_loses_its_plates_and_the_flag_stays_quiet(folder):
    """The measure behind face_shading_artifacts: with the face shading, no pixel of the face
    below the eyes is lit under DARK_LIGHT of its painted colour; with Lambert faces the facets
    and the cheeks' fall-off are (shares exact: pixel counts)."""
    path = character("faceted", folder)
    assert dark_share(path, face_ramp=True) <= 0.005
    assert dark_share(path, face_ramp=False) > 4 * MAX_DARK_SHARE
    assert "face_shading_artifacts" not in {f["code"] for f in flags_of(path)}


def flags_of(path: Path) -> list[dict]:
    model = load(path)
    return model_flags(model, detect_face(model))


def test_a_ramp_dark_on_its_lit_side_is_flagged_and_nothing_else(folder):
    """A skin lit through a ramp that darkens across its lit half: the face shading follows the
    author's ramp, and the flag says the face is drawn dark."""
    found = flags_of(character("dark_ramp", folder))
    assert [f["code"] for f in found] == ["face_shading_artifacts"], found
    assert found[0]["value"] > MAX_DARK_SHARE


@pytest.mark.numeric
@pytest.mark.parametrize("path", usable_models(), ids=model_id)
def test_real_faces_are_not_dark_where_their_authors_painted_them_light(path):
    """On every face model the face below the eyes is lit at DARK_LIGHT of its painted colour
    or more (at most 0.5 % of it below: measured 0-0.3 %); Lat式ミク's plates (eye sockets,
    mouth box, nose line), hzeo KAITO's nose smear and the rest under Lambert: 8-30 %."""
    require_mmd_dir()
    assert dark_share(path, face_ramp=True) <= 0.005
    if path.name in ("Normal.pmd", "hzeoV3kaito_F.pmx"):
        assert dark_share(path, face_ramp=False) > 0.1


def test_the_nose_line_and_decals_of_lat_miku_are_face_parts():
    """Lat式ミク's nose line (a fin in a hairpin material, edge-on in front of the face) and its
    cheek texture layer are lit as the face; the hairpins sharing the fin's material are not."""
    path = require_mmd_dir() / "lat_miku_v231" / "Normal.pmd"
    model = load(path)
    face = face_parts(model, detect_face(model))
    fin_material = 7
    tris = model.triangles[
        model.materials[fin_material].face_start : model.materials[fin_material].face_start
        + model.materials[fin_material].face_count
    ]
    lit = face.vertices[tris].all(axis=1)
    assert 0 < lit.sum() < len(tris)  # the nose line, not the hairpins
    x = model.positions[tris[lit]][..., 0]
    assert np.abs(x).max() < 0.05  # on the centre line
    assert 20 in face.materials(model) and 17 in face.skin


def test_dark_light_is_the_flag_s_documented_threshold():
    assert 0.0 < DARK_LIGHT < 1.0 and 0.0 < MAX_DARK_SHARE < 0.1
