"""References read from a file: lenient where MMD is (a reference that points nowhere is dropped
with a warning naming the item and the entry), strict where the mesh needs it, and bounded
(group morph fan-outs, deep nesting and cycles are skipped, never a hang or a crash).
Every hostile input is built here in code."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from characters import build_character, spec_for_seed
from mmd_loader import ModelLoadError, detect_face, load
from mmd_loader.errors import QUOTE_LIMIT, REASON_LIMIT
from mmd_loader.model import MAX_GROUP_DEPTH, MAX_GROUP_ENTRIES, MAX_WARNINGS, MorphKind
from mmd_loader.pmx_writer import pmx_bytes
from tests.hostile_pmx import write_character_with
from tests.numerics import U32
from tests.test_loader import _f, _text, _vertex, tiny_pmx, write

# The procedural character's morphs (the same names and order for every seed's count).
WRITER_MORPHS = [m.name for m in build_character(spec_for_seed(1), "x")[0].morphs]  # seed 1
BLINK, WINK, OTHER, MOUTH = 0, 1, 2, WRITER_MORPHS.index("あ")


def warnings_about(model, text: str) -> list[str]:
    return [w for w in model.warnings if text in w]


# --- group morphs -------------------------------------------------------------------------------


@pytest.mark.numeric
def test_group_morphs_within_the_bounds_resolve_exactly(tmp_path: Path) -> None:
    def extra(sizes):
        n = len(WRITER_MORPHS)  # the writer's morphs come first
        return [
            sizes.group("outer", [(n + 1, 0.5), (BLINK, 1.0)]),  # n: outer
            sizes.group("inner", [(BLINK, 1.0), (MOUTH, 2.0)]),  # n + 1: inner
        ]

    model = load(write_character_with(tmp_path, 1, extra))
    outer = model.morph_index("outer")
    assert model.morphs[outer].kind == MorphKind.GROUP and model.check_group_morphs() == {}
    indices, offsets = model.vertex_offsets(outer)
    expected = np.zeros_like(model.positions)
    for morph, weight in ((BLINK, 1.5), (MOUTH, 1.0)):  # 0.5 * (1 blink + 2 mouth) + 1 blink
        np.add.at(expected, model.morphs[morph].indices, model.morphs[morph].offsets * weight)
    moved = np.flatnonzero(np.abs(expected).sum(axis=1) > 0)
    np.testing.assert_array_equal(indices, np.union1d(moved, indices))
    # 1.5·blink + 1·mouth in float32, resolved through the groups or summed here: each side
    # rounds at most 3 times, on terms adding up to 2.5 × the largest offset.
    bound = 2 * 3 * U32 * 2.5 * float(np.abs(expected).max())
    np.testing.assert_allclose(offsets, expected[indices], rtol=0, atol=bound)


@pytest.mark.numeric
def test_exponential_group_fan_out_is_skipped_with_a_warning(tmp_path: Path) -> None:
    """40 levels, each group naming the next twice: 2**40 paths from a few hundred bytes."""
    levels = 40

    def extra(sizes):
        first = len(WRITER_MORPHS)
        records = []
        for k in range(levels):
            child = first + k + 1 if k + 1 < levels else BLINK
            name = "まばたき" if k == 0 else f"fan{k}"  # the top is a face-detection candidate
            records.append(sizes.group(name, [(child, 1.0), (child, 1.0)], panel=2))
        return records

    model = load(write_character_with(tmp_path, 1, extra))
    problems = model.check_group_morphs()
    top = len(WRITER_MORPHS)
    assert top in problems and "fan39" not in {model.morphs[i].name for i in problems}
    deepest_kept = levels - MAX_GROUP_DEPTH  # fan24 .. fan39 nest at most 16 deep
    kept = [i for i in range(top, top + levels) if i not in problems]
    assert kept == list(range(top + deepest_kept, top + levels))
    assert any("nest 17 deep" in w and "'fan23'" in w for w in model.warnings)
    assert warnings_about(model, "group morph 'まばたき' skipped: it includes group morph 'fan1'")
    assert model.vertex_offsets(top)[0].size == 0  # skipped: resolves to nothing
    # within the bounds it expands fully: fan39 doubles まばたき, fan38 quadruples it
    blink = model.vertex_offsets(BLINK)[1]
    np.testing.assert_allclose(model.vertex_offsets(top + levels - 2)[1], 4 * blink, rtol=1e-5)
    roles = detect_face(model)  # no hang: the real まばたき (index 0) is used
    assert roles.usable, roles.problems


def test_fan_out_past_the_entry_bound_at_shallow_depth(tmp_path: Path) -> None:
    """Four levels of 20-way fan-out: 160,000 paths, depth 4 (only the entry bound catches it)."""

    def extra(sizes):
        first = len(WRITER_MORPHS)
        return [
            sizes.group(f"wide{k}", [(first + k + 1 if k < 3 else BLINK, 0.1)] * 20)
            for k in range(4)
        ]

    model = load(write_character_with(tmp_path, 1, extra))
    problems = model.check_group_morphs()
    assert problems == {len(WRITER_MORPHS): f"it expands to more than {MAX_GROUP_ENTRIES} entries"}
    assert model.vertex_offsets(7)[0].size > 0  # 8,000 paths: resolved


def test_group_morphs_nested_past_the_recursion_limit(tmp_path: Path) -> None:
    """A chain of 3,000 group morphs (the old recursive resolver hit RecursionError)."""
    chain = 3000

    def extra(sizes):
        first = 128  # padded: the file's morph indices are 2 bytes
        records = []
        for k in range(chain):
            child = first + k + 1 if k + 1 < chain else BLINK
            records.append(sizes.group("まばたき" if k == 0 else f"deep{k}", [(child, 1.0)]))
        return records

    model = load(write_character_with(tmp_path, 4, extra, pad_morphs=128))
    problems = model.check_group_morphs()
    assert len(problems) == chain - MAX_GROUP_DEPTH
    assert len(model.warnings) == MAX_WARNINGS + 1  # capped, with one line saying so
    assert model.warnings[-1].startswith(f"more than {MAX_WARNINGS} warnings")
    assert model.vertex_offsets(128)[0].size == 0
    assert detect_face(model).usable


def test_group_morph_cycles_are_skipped(tmp_path: Path) -> None:
    def extra(sizes):
        a, b, _c, d, _e = range(len(WRITER_MORPHS), len(WRITER_MORPHS) + 5)
        return [
            sizes.group("a", [(b, 1.0), (BLINK, 1.0)]),
            sizes.group("b", [(a, 1.0)]),
            sizes.group("c", [(a, 1.0)]),  # includes a cycle
            sizes.group("d", [(d, 1.0), (BLINK, 1.0)]),  # names itself
            sizes.group("e", [(BLINK, 1.0), (WINK, 1.0)]),  # fine
        ]

    model = load(write_character_with(tmp_path, 1, extra))
    problems = model.check_group_morphs()
    n = len(WRITER_MORPHS)
    assert sorted(problems) == [n, n + 1, n + 2, n + 3]
    assert all("cycle" in problems[i] for i in problems)
    assert model.vertex_offsets(n + 4)[0].size > 0  # e
    for name in "abcd":
        assert warnings_about(model, f"group morph '{name}' skipped")


# --- references that point nowhere ---------------------------------------------------------------


def test_material_morph_entry_minus_two_is_skipped_and_minus_one_kept(tmp_path: Path) -> None:
    """A material morph entry -2 made a whole real model unusable; MMD skips such entries."""
    model = load(write_character_with(tmp_path, 6, lambda s: [s.material("照れ", [-2, 0, -1, 99])]))
    morph = model.morphs[model.morph_index("照れ")]
    assert [o.material for o in morph.material_offsets] == [0, -1]
    assert morph.indices.tolist() == [0, -1]
    n = len(model.materials)
    assert warnings_about(
        model,
        f"morph '照れ' entry 0: material index -2 points nowhere (the model has {n}), entry "
        "skipped; 2 such entries skipped",
    )
    assert detect_face(model).usable


@pytest.mark.numeric
def test_dangling_entries_of_each_morph_kind_are_skipped(tmp_path: Path) -> None:
    def extra(sizes):
        far_vertex = (1 << (8 * sizes.vertex_size)) - 1 if sizes.vertex_size < 4 else 10**8
        return [
            sizes.vertex("v", [(0, (0, 1, 0)), (far_vertex, (0, 1, 0))]),
            sizes.bone("b", [0, 100]),
            sizes.group("g", [(BLINK, 1.0), (120, 1.0)]),
        ]

    model = load(write_character_with(tmp_path, 1, extra))
    by_name = {m.name: m for m in model.morphs}
    assert by_name["v"].indices.tolist() == [0] and by_name["v"].offsets.shape == (1, 3)
    assert by_name["b"].indices.tolist() == [0] and by_name["b"].rotations.shape == (1, 4)
    assert by_name["g"].indices.tolist() == [BLINK] and by_name["g"].weights.tolist() == [1.0]
    for name, target in (("v", "vertex index"), ("b", "bone index 100"), ("g", "morph index 120")):
        (line,) = warnings_about(model, f"morph '{name}' entry 1:")
        assert target in line and "entry skipped" in line
    np.testing.assert_allclose(model.vertex_offsets(model.morph_index("g"))[1],
                               model.vertex_offsets(BLINK)[1])  # fmt: skip


def test_dangling_bone_references_are_dropped(tmp_path: Path) -> None:
    data, _ = build_character(spec_for_seed(8), "t")
    names = [b.name for b in data.bones]
    eyes, last = names.index("両目"), len(names) - 1
    data.bones[eyes].parent = eyes  # a parent loop of one
    data.bones[last].parent = 100  # points nowhere
    model = load(write(tmp_path, pmx_bytes(data)))
    assert model.bones[last].parent == -1 and model.bones[eyes].parent == -1
    assert warnings_about(model, f"bone {names[last]!r}: parent 100 points nowhere")
    assert warnings_about(model, f"bone '両目': parent {eyes} closes a loop of parents")
    assert detect_face(model).usable


@pytest.mark.numeric
def test_vertex_weight_on_a_missing_bone_is_dropped(tmp_path: Path) -> None:
    b = lambda *idx: struct.pack(f"<{len(idx)}b", *idx)  # noqa: E731
    data = tiny_pmx()
    good = _vertex(0, b"\x00" + b(1), 1)
    assert data.count(good) == 1
    model = load(write(tmp_path, data.replace(good, _vertex(0, b"\x00" + b(9), 1))))
    assert model.bone_indices[0].tolist() == [0, 0, 0, 0]
    np.testing.assert_allclose(model.bone_weights[0], [1, 0, 0, 0])  # follows bone 0 rigidly
    assert warnings_about(model, "1 vertices weight bones that do not exist (first: vertex 0")


def test_triangles_out_of_range_stay_an_error(tmp_path: Path) -> None:
    """The mesh itself is not guessed: a triangle naming a missing vertex fails the load."""
    faces = struct.pack("<i6B", 6, 0, 1, 2, 0, 2, 3)
    bad = tiny_pmx().replace(faces, struct.pack("<i6B", 6, 0, 1, 2, 0, 2, 200))
    with pytest.raises(ModelLoadError, match="triangle vertex index 200"):
        load(write(tmp_path, bad))


def _pmd_offsets(data: bytes) -> dict[str, int]:
    """Byte offsets of the sections of a PMD file (for mutating one in place)."""
    at = 283
    n_vertices = struct.unpack_from("<I", data, at)[0]
    out = {"vertices": at + 4}
    at += 4 + 38 * n_vertices
    at += 4 + 2 * struct.unpack_from("<I", data, at)[0]
    at += 4 + 70 * struct.unpack_from("<I", data, at)[0]
    n_bones = struct.unpack_from("<H", data, at)[0]
    out["bones"], out["n_bones"] = at + 2, n_bones
    at += 2 + 39 * n_bones
    n_iks = struct.unpack_from("<H", data, at)[0]
    out["iks"] = at + 2
    at += 2
    for _ in range(n_iks):
        at += 11 + 2 * data[at + 4]
    out["morphs"] = at + 2
    return out


@pytest.mark.numeric
def test_pmd_dangling_references_are_dropped(mmd_dir: Path, tmp_path: Path) -> None:
    data = bytearray((mmd_dir / "animasa_miku_v2_3" / "miku_v2.pmd").read_bytes())
    plain = load(mmd_dir / "animasa_miku_v2_3" / "miku_v2.pmd")
    at = _pmd_offsets(bytes(data))
    struct.pack_into("<H", data, at["vertices"] + 32, 9999)  # vertex 0's first bone
    struct.pack_into("<H", data, at["bones"] + 39 * 5 + 20, 9999)  # bone 5's parent
    struct.pack_into("<H", data, at["iks"] + 11, 9999)  # the first IK's first link
    base_count = struct.unpack_from("<I", data, at["morphs"] + 20)[0]
    struct.pack_into("<I", data, at["morphs"] + 25, 10**6)  # base entry 0 names no vertex
    second = at["morphs"] + 25 + 16 * base_count  # the first real morph's first entry
    struct.pack_into("<I", data, second + 25, base_count + 7)  # past the base
    model = load(write(tmp_path, bytes(data), "m.pmd"))
    assert len(model.positions) == len(plain.positions) and len(model.morphs) == 30
    assert model.bones[5].parent == -1 and plain.bones[5].parent >= 0
    assert model.bone_indices[0, 0] == 0 and model.bone_weights[0].sum() == pytest.approx(1)
    ik_bone = next(b for b in model.bones if b.ik is not None)
    plain_ik = next(b for b in plain.bones if b.ik is not None)
    assert len(ik_bone.ik.links) == len(plain_ik.ik.links) - 1
    first = model.morphs[0]
    assert len(first.indices) < len(plain.morphs[0].indices)
    for text in ("vertices weight bones", "parent 9999 points nowhere", "link 9999",
                 "base entry 0 names vertex 1000000", f"morph {first.name!r} entry 0"):  # fmt: skip
        assert warnings_about(model, text), (text, model.warnings)


# --- messages -----------------------------------------------------------------------------------


def test_decoded_garbage_is_quoted_short(tmp_path: Path) -> None:
    """A 30,000-character material name (a lying length would give the same) stays out of the
    error: at most QUOTE_LIMIT characters of it are quoted, with an ellipsis."""
    data = tiny_pmx()
    name = _text("body") + _text("body en")
    assert data.count(name) == 1
    end = bytes([0, 1, 3]) + _text("") + struct.pack("<i", 6)
    assert data.count(end) == 1
    bad = data.replace(name, _text("Z" * 30_000) + _text("body en"))
    bad = bad.replace(end, bytes([0, 1, 3]) + _text("") + struct.pack("<i", 5))
    with pytest.raises(ModelLoadError) as caught:
        load(write(tmp_path, bad))
    message = caught.value.reason
    assert "Z" * QUOTE_LIMIT + "…'" in message and "Z" * (QUOTE_LIMIT + 1) not in message
    assert len(str(caught.value)) < 300
    assert len(ModelLoadError("f", "x" * 100_000).reason) == REASON_LIMIT


def test_texture_index_out_of_range_is_a_warning(tmp_path: Path) -> None:
    material_tail = _f(0, 0, 0, 1, 1.5) + struct.pack("<2b", 0, -1)
    data = tiny_pmx()
    assert data.count(material_tail) == 1
    model = load(write(tmp_path, data.replace(material_tail, _f(0, 0, 0, 1, 1.5) + b"\x05\xff")))
    assert model.materials[0].texture_ref is None
    assert warnings_about(model, "material 'body': texture index 5 points nowhere")
