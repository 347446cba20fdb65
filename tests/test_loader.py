"""The PMD/PMX loader on real models (against an independent parser's reference) and on tiny
PMX 2.1 files written here, plus its error handling."""

from __future__ import annotations

import gc
import io
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmd_loader import ModelLoadError, load
from mmd_loader.images import read_image
from mmd_loader.model import BoneFlag, Deform, Model, MorphKind, Panel, SphereMode
from tests.conftest import all_model_files
from tests.numerics import U32

# --- a minimal PMX writer (1-byte indices, UTF-16LE) --------------------------------------------


def _text(s: str) -> bytes:
    raw = s.encode("utf-16-le")
    return struct.pack("<i", len(raw)) + raw


def _f(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def _section(items: list[bytes]) -> bytes:
    return struct.pack("<i", len(items)) + b"".join(items)


def _vertex(i: int, deform: bytes, extra_uv: int) -> bytes:
    head = _f(i, 2 * i, 3 * i + 1, 0, 0, 1, 0.5, 0.25)
    return head + _f(i, i + 0.5, 0, 1) * extra_uv + deform + _f(1.0)


def tiny_pmx(version: float = 2.1, extra_uv: int = 1, encoding: int = 0) -> bytes:
    """Four vertices (BDEF1, BDEF2, SDEF, QDEF), two triangles, one material, two bones (one IK),
    vertex/flip/impulse/UV1 morphs, one rigid body and, in 2.1, one soft body."""
    header = b"PMX " + _f(version) + bytes([8, encoding, extra_uv, 1, 1, 1, 1, 1, 1])
    info = _text("tiny") + _text("tiny en") + _text("comment") + _text("")
    b = lambda *idx: struct.pack(f"<{len(idx)}b", *idx)  # noqa: E731
    deforms = [
        b"\x00" + b(1),
        b"\x01" + b(0, 1) + _f(0.25),
        b"\x03" + b(0, 1) + _f(0.5) + _f(0, 1, 2, 3, 4, 5, 6, 7, 8),
        b"\x04" + b(0, 1, -1, -1) + _f(0.2, 0.2, 0.3, 0.0),
    ]
    vertices = _section([_vertex(i, d, extra_uv) for i, d in enumerate(deforms)])
    faces = struct.pack("<i6B", 6, 0, 1, 2, 0, 2, 3)
    textures = _section([_text("tex\\body.png")])
    material = (
        _text("body") + _text("body en") + _f(1, 0.5, 0.25, 0.8) + _f(0.1, 0.2, 0.3, 5)
        + _f(0.4, 0.5, 0.6) + bytes([0x11]) + _f(0, 0, 0, 1, 1.5)
        + b(0, -1) + bytes([0, 1, 3]) + _text("") + struct.pack("<i", 6)
    )  # fmt: skip
    root = _text("root") + _text("") + _f(0, 1, 2) + b(-1) + struct.pack("<iH", 0, 0x000A)
    root += _f(0, 1, 0)
    ik = _text("ik") + _text("") + _f(1, 0, 0) + b(0) + struct.pack("<iH", 0, 0x003F) + b(0)
    ik += b(0) + struct.pack("<if", 10, 0.5) + struct.pack("<i", 1) + b(0) + b"\x01"
    ik += _f(-0.1, -0.2, -0.3) + _f(0.4, 0.5, 0.6)

    def morph(name: str, panel: int, kind: int, entries: list[bytes]) -> bytes:
        return _text(name) + _text("") + bytes([panel, kind]) + _section(entries)

    morphs = [
        morph("v", 2, 1, [b(3) + _f(0, 0, 1)]),
        morph("flip", 4, 9, [b(0) + _f(0.5)]),
        morph("impulse", 4, 10, [b(0) + b"\x01" + _f(1, 2, 3, 4, 5, 6)]),
        morph("uv1", 3, 4, [b(2) + _f(0.1, 0.2, 0.3, 0.4)]),
    ]
    rigid = _text("body") + _text("") + b(0) + b"\x00" + struct.pack("<H", 0xFFFF) + b"\x00"
    rigid += _f(1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0.5, 0.5, 0, 0.5) + b"\x00"
    out = header + info + vertices + faces + textures + _section([material])
    out += _section([root, ik]) + _section(morphs) + _section([]) + _section([rigid])
    out += _section([])  # joints
    if version >= 2.1:
        soft = _text("skirt") + _text("") + b"\x00" + b(0) + b"\x00" + struct.pack("<H", 0)
        soft += b"\x00" + struct.pack("<iiffi", 0, 0, 1.0, 0.1, 0) + _f(*[0.0] * 18)
        soft += struct.pack("<4i", 1, 1, 1, 1) + _f(1, 1, 1)
        soft += _section([b(0) + b(1) + b"\x00"]) + _section([b(2), b(3)])
        out += _section([soft])
    return out


def write(tmp_path: Path, data: bytes, name: str = "m.pmx") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- tiny PMX 2.1 files ---------------------------------------------------------------------------


@pytest.mark.numeric
def test_pmx21_vertices_and_skinning(tmp_path: Path) -> None:
    m = load(write(tmp_path, tiny_pmx()))
    assert m.format == "pmx" and m.version == pytest.approx(2.1)
    np.testing.assert_allclose(m.positions[3], [3, 6, -10])  # z negated
    assert m.deform.tolist() == [Deform.BDEF1, Deform.BDEF2, Deform.SDEF, Deform.QDEF]
    np.testing.assert_allclose(m.bone_weights[1], [0.25, 0.75, 0, 0])
    assert m.bone_indices[0].tolist() == [1, 0, 0, 0]
    # QDEF like BDEF4: -1 slots become bone 0 with weight 0, the rest normalised
    assert m.bone_indices[3].tolist() == [0, 1, 0, 0]
    np.testing.assert_allclose(m.bone_weights[3], [0.5, 0.5, 0, 0])
    np.testing.assert_allclose(m.sdef[2], [[0, 1, -2], [3, 4, -5], [6, 7, -8]])
    assert not m.sdef[[0, 1, 3]].any()
    assert m.extra_uvs.shape == (4, 1, 4)
    np.testing.assert_allclose(m.extra_uvs[2, 0], [2, 2.5, 0, 1])
    np.testing.assert_allclose(m.bone_weights.sum(axis=1), 1.0)
    assert m.triangles.tolist() == [[0, 1, 2], [0, 2, 3]]


@pytest.mark.numeric
def test_pmx21_materials_bones_and_sections(tmp_path: Path) -> None:
    m = load(write(tmp_path, tiny_pmx()))
    (mat,) = m.materials
    assert (mat.face_start, mat.face_count) == (0, 2)
    assert mat.double_sided and mat.texture_ref == "tex\\body.png" and mat.sphere_ref is None
    assert mat.sphere_mode == SphereMode.NONE
    assert (mat.toon_shared, mat.toon_ref) == (3, "toon04.bmp")
    root, ik = m.bones
    np.testing.assert_allclose(root.position, [0, 1, -2])
    assert root.tail_offset is not None and root.parent == -1
    assert ik.flags & BoneFlag.IK and ik.tail_bone == 0 and ik.ik is not None
    (link,) = ik.ik.links
    # limits mirror like rotations: x, y negate (and swap min/max), z keeps its sign
    # The file's float32 nearest each decimal: within u of it (2u: the decimal is float64 here).
    np.testing.assert_allclose(link.limit_min, [-0.4, -0.5, -0.3], rtol=2 * U32)
    np.testing.assert_allclose(link.limit_max, [0.1, 0.2, 0.6], rtol=2 * U32)
    assert (m.rigid_body_count, m.joint_count, m.soft_body_count) == (1, 0, 1)


@pytest.mark.numeric
def test_pmx21_morphs(tmp_path: Path) -> None:
    m = load(write(tmp_path, tiny_pmx()))
    v, flip, impulse, uv1 = m.morphs
    assert (v.kind, v.panel, v.indices.tolist()) == (MorphKind.VERTEX, Panel.EYE, [3])
    np.testing.assert_allclose(v.offsets, [[0, 0, -1]])
    assert flip.kind == MorphKind.FLIP and flip.indices.tolist() == [0]
    np.testing.assert_allclose(flip.weights, [0.5])
    assert impulse.kind == MorphKind.IMPULSE and impulse.local.tolist() == [True]
    np.testing.assert_allclose(impulse.offsets, [[1, 2, -3, -4, -5, 6]])
    assert uv1.kind == MorphKind.UV1 and uv1.indices.tolist() == [2]
    np.testing.assert_allclose(uv1.offsets, [[0.1, 0.2, 0.3, 0.4]], rtol=2 * U32)


def test_pmx20_utf8_without_extra_uv(tmp_path: Path) -> None:
    m = load(write(tmp_path, tiny_pmx(version=2.0, extra_uv=0, encoding=1)))
    assert m.soft_body_count == 0 and m.extra_uvs.shape == (4, 0, 4)
    assert m.name == "" or m.version == 2.0  # UTF-16 text read as UTF-8 is replaced, not fatal


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({4: _f(3.0)}, "version"),
        ({9: b"\x02"}, "encoding"),
        ({10: b"\x05"}, "additional UV"),
        ({12: b"\x03"}, "index size"),
    ],
)
def test_bad_pmx_headers(tmp_path: Path, patch: dict[int, bytes], message: str) -> None:
    data = bytearray(tiny_pmx())
    for at, raw in patch.items():
        data[at : at + len(raw)] = raw
    with pytest.raises(ModelLoadError, match=message) as e:
        load(write(tmp_path, bytes(data)))
    assert e.value.offset is not None


def test_out_of_range_indices(tmp_path: Path) -> None:
    data = tiny_pmx()
    faces = struct.pack("<i6B", 6, 0, 1, 2, 0, 2, 3)
    bad = data.replace(faces, struct.pack("<i6B", 6, 0, 1, 2, 0, 2, 9))
    with pytest.raises(ModelLoadError, match="triangle vertex index 9") as e:
        load(write(tmp_path, bad))
    assert e.value.offset == data.index(faces) + 4 + 5
    # a morph entry pointing nowhere is skipped, as MMD does: the model stays usable
    bad = data.replace(_text("v") + _text("") + bytes([2, 1, 1, 0, 0, 0, 3]),
                       _text("v") + _text("") + bytes([2, 1, 1, 0, 0, 0, 7]))  # fmt: skip
    m = load(write(tmp_path, bad))
    assert m.morphs[0].name == "v" and len(m.morphs[0].indices) == 0
    assert m.morphs[0].offsets.shape == (0, 3)
    assert m.warnings[0] == (
        "morph 'v' entry 0: vertex index 7 points nowhere (the model has 4), entry skipped"
    )


def test_errors_name_file_and_offset(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such file"):
        load(tmp_path / "missing.pmx")
    with pytest.raises(ModelLoadError, match="directory"):
        load(tmp_path)
    with pytest.raises(ModelLoadError, match="not a PMD/PMX") as e:
        load(write(tmp_path, b"GIF89a" + bytes(100)))
    assert e.value.offset == 0 and str(tmp_path) in str(e.value)
    data = tiny_pmx()
    for cut in (3, 20, 60, 200, len(data) - 3):
        with pytest.raises(ModelLoadError) as e:
            load(write(tmp_path, data[:cut]))
        assert e.value.offset is not None and 0 <= e.value.offset <= cut


def test_absurd_counts_fail_fast(tmp_path: Path) -> None:
    data = bytearray(tiny_pmx())
    at = 17 + len(_text("tiny") + _text("tiny en") + _text("comment") + _text(""))  # vertex count
    data[at : at + 4] = struct.pack("<i", 2_000_000_000)
    with pytest.raises(ModelLoadError, match="vertex count") as e:
        load(write(tmp_path, bytes(data)))
    assert e.value.offset == at


# --- real models ---------------------------------------------------------------------------------


@pytest.mark.numeric
@pytest.mark.parametrize("path", all_model_files(), ids=lambda p: p.name)
def test_every_real_model_loads(path: Path) -> None:
    m = load(path)
    n = len(m.positions)
    assert m.root == path.parent and m.path == path
    assert m.triangles.shape[1:] == (3,) and (n == 0 or m.triangles.max() < n)
    assert sum(mat.face_count for mat in m.materials) == len(m.triangles)
    assert m.bone_indices.shape == (n, 4) and (m.bone_indices < max(len(m.bones), 1)).all()
    np.testing.assert_allclose(m.bone_weights.sum(axis=1), 1.0, atol=1e-5)
    for morph in m.morphs:
        if morph.kind == MorphKind.VERTEX:
            assert len(morph.indices) == 0 or morph.indices.max() < n


def test_reference_counts_and_names(mmd_dir: Path, reference_rows: list[dict]) -> None:
    checked = 0
    for row in reference_rows:
        if "error" in row:
            continue
        m = load(mmd_dir / row["file"])
        morphs = [x for x in row["morph_names"] if not (row["format"] == "pmd" and x == "base")]
        got = (m.format, len(m.positions), len(m.triangles), len(m.materials), len(m.bones))
        assert got == (row["format"], row["vertices"], row["faces"], row["materials"], row["bones"])
        assert [x.name for x in m.morphs] == morphs, row["file"]
        assert [b.name for b in m.bones] == row["bone_names"], row["file"]
        checked += 1
    assert checked >= 20


@pytest.mark.numeric
def test_pmd_and_pmx_animasa_miku_agree(mmd_dir: Path) -> None:
    pmd = load(mmd_dir / "animasa_miku_v2_3" / "miku_v2.pmd")
    pmx = load(mmd_dir / "j3_animasa_miku_pmx" / "index.pmx")
    np.testing.assert_allclose(pmd.positions, pmx.positions, atol=1e-5)
    np.testing.assert_allclose(pmd.normals, pmx.normals, atol=1e-5)
    np.testing.assert_array_equal(pmd.triangles, pmx.triangles)
    assert len(pmd.morphs) == len(pmx.morphs) == 30
    for morph in pmd.morphs:
        other = pmx.morphs[pmx.morph_index(morph.name)]
        order_a, order_b = np.argsort(morph.indices), np.argsort(other.indices)
        np.testing.assert_array_equal(morph.indices[order_a], other.indices[order_b])
        np.testing.assert_allclose(morph.offsets[order_a], other.offsets[order_b], atol=1e-5)
    # the same skinning, however each file spells it (PMX may say BDEF1 where PMD says 100/0)
    for m in (pmd, pmx):
        dense = np.zeros((len(m.positions), len(m.bones)), np.float32)
        np.add.at(dense, (np.arange(len(dense))[:, None], m.bone_indices), m.bone_weights)
        m.dense = dense
    np.testing.assert_allclose(pmd.dense, pmx.dense, atol=1e-6)
    for a, b in zip(pmd.bones, pmx.bones, strict=True):
        assert (a.parent, a.append_parent) == (b.parent, b.append_parent), a.name
        assert a.append_ratio == pytest.approx(b.append_ratio), a.name
        assert (a.ik is None) == (b.ik is None), a.name
        if a.ik is not None:
            assert (a.ik.target, a.ik.loop) == (b.ik.target, b.ik.loop)
            assert a.ik.limit_angle == pytest.approx(b.ik.limit_angle)


def test_pmd_specials(mmd_dir: Path) -> None:
    kaito = load(mmd_dir / "mmd_bundled" / "model" / "KAITO.pmd")  # ends before the physics
    assert kaito.english_name == "KAITO" and kaito.bones[0].english_name == "center"
    assert (kaito.rigid_body_count, kaito.joint_count) == (0, 0)
    assert all(m.toon_ref is None or m.toon_ref.startswith("toon") for m in kaito.materials)
    dummy = load(mmd_dir / "mmd_bundled" / "model" / "Dammy_Bone.pmd")
    assert len(dummy.positions) == 0 and len(dummy.triangles) == 0 and len(dummy.bones) == 30
    miku = load(mmd_dir / "animasa_miku_v2_3" / "miku_v2.pmd")
    assert miku.english_name and len(miku.toon_textures) == 10 and miku.rigid_body_count > 0
    assert [m.panel for m in miku.morphs[:2]] == [Panel.EYEBROW, Panel.EYEBROW]
    assert {m.kind for m in miku.morphs} == {MorphKind.VERTEX}


def test_pmd_sphere_syntax(mmd_dir: Path) -> None:
    lat = load(mmd_dir / "lat_miku_v231" / "Normal.pmd")
    spheres = [m for m in lat.materials if m.sphere_ref]
    assert spheres, "Lat式ミク uses sphere maps"
    for m in spheres:
        mode = SphereMode.ADD if m.sphere_ref.lower().endswith(".spa") else SphereMode.MULTIPLY
        assert m.sphere_mode == mode and "*" not in (m.texture_ref or "")


def test_extra_uv_model(mmd_dir: Path) -> None:
    m = load(mmd_dir / "yw_test_model_cc0" / "yw_test_model.pmx")
    assert m.extra_uvs.shape == (len(m.positions), 1, 4) and len(m.morphs) == 0


# --- zipped models -------------------------------------------------------------------------------


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that `tempfile` puts its temporary folders in, for this test only."""
    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    return work


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def resolved_files(model: Model) -> list[tuple[int, str, Path]]:
    """(material index, kind, path relative to the model's folder) of every resolved file."""
    return [
        (i, kind, getattr(mat, kind).relative_to(model.root))
        for i, mat in enumerate(model.materials)
        for kind in ("texture", "sphere", "toon")
        if getattr(mat, kind) is not None
    ]


def test_zipped_model_textures_live_as_long_as_the_model(mmd_dir: Path, temp_root: Path) -> None:
    source = mmd_dir / "miku4_3"
    files = sorted(f for f in source.rglob("*") if f.is_file())
    entries = {f"Miku4_3/{f.relative_to(source).as_posix()}": f.read_bytes() for f in files}
    archive = make_zip(temp_root.parent / "miku.zip", entries)
    plain = load(source / "miku4.3.pmx")
    model = load(archive)
    assert model.path == archive / "Miku4_3" / "miku4.3.pmx" and model.warnings == plain.warnings
    assert model.root.is_relative_to(temp_root) and len(model.keepalive) == 1
    assert resolved_files(model) == resolved_files(plain) and len(resolved_files(model)) > 50
    for path in {model.root / rel for _, _, rel in resolved_files(model)}:
        image = read_image(path)  # the file is on disk and decodes
        assert image.ndim == 3 and image.shape[2] == 4 and image.size > 0
    folder = model.root
    del model
    gc.collect()
    assert not folder.exists() and list(temp_root.iterdir()) == []


def png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (255, 0, 0, 255)).save(out, "PNG")
    return out.getvalue()


def test_zip_member_matching_and_refusals(tmp_path: Path, temp_root: Path) -> None:
    archive = make_zip(
        tmp_path / "pack.zip",
        {"Pack/Tiny.pmx": tiny_pmx(), "Pack/TEX/Body.png": png((3, 2)), "b/two.pmx": tiny_pmx()},
    )
    model = load(archive, member="pack\\TINY.PMX")  # as a Windows user might type it
    assert model.path == archive / "Pack" / "Tiny.pmx" and model.name == "tiny"
    texture = model.materials[0].texture  # written as "tex\\body.png"
    assert texture == model.root / "TEX" / "Body.png" and read_image(texture).shape == (2, 3, 4)
    del model
    gc.collect()
    assert list(temp_root.iterdir()) == []
    refusals = [
        (None, r"holds 2 models.*'Pack/Tiny.pmx', 'b/two.pmx'"),
        ("Pack/missing.pmx", r"no such model.*'b/two.pmx'"),
        ("../Pack/Tiny.pmx", r"'\.\.' in path refused"),
    ]
    for member, message in refusals:
        with pytest.raises(ModelLoadError, match=message) as caught:
            load(archive, member=member)
        assert str(archive) in str(caught.value)
        assert list(temp_root.iterdir()) == []  # nothing left behind after a refusal
