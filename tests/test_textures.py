"""Texture references resolve inside the model's folder, and texture files decode to RGBA."""

from __future__ import annotations

import io
import json
import os
import struct
import unicodedata
import zlib
from pathlib import Path

import numpy as np
import pymeshio.pmd.reader
import pymeshio.pmx.reader
import pytest
from PIL import Image

from mmd_loader import images as images_module
from mmd_loader.images import (
    MAX_DIMENSION,
    MAX_MODEL_TEXTURE_PIXELS,
    MAX_TEXTURE_PIXELS,
    ImageBudgetError,
    ImageInfo,
    ImageReadError,
    image_info,
    read_image,
    sniff_format,
)
from mmd_loader.model import Material, MaterialFlag, Model, SphereMode
from mmd_loader.textures import (
    TexturePathError,
    alpha_sibling,
    describe_textures,
    find_substitute,
    lookup,
    pmd_sphere_mode,
    resolve_reference,
    resolve_textures,
    split_pmd_texture,
)
from tests.conftest import MMD_DIR

IMAGE_SUFFIXES = (".bmp", ".tga", ".png", ".jpg", ".spa", ".sph", ".dds")


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- resolve_reference ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    [
        "../x.bmp",
        "..\\x.bmp",
        "tex/../../x.bmp",
        "C:\\x.bmp",
        "c:x.bmp",
        "/etc/passwd",
        "\\\\server\\share\\x.bmp",
        "//server/share/x.bmp",
    ],
)
def test_escaping_references_are_refused(tmp_path: Path, ref: str) -> None:
    touch(tmp_path / "x.bmp")
    with pytest.raises(TexturePathError, match="refused") as caught:
        resolve_reference(tmp_path / "model", ref)
    assert isinstance(caught.value, ValueError)
    assert repr(ref) in str(caught.value)


def test_dotdot_that_stays_inside_is_allowed(tmp_path: Path) -> None:
    target = touch(tmp_path / "a.bmp")
    assert resolve_reference(tmp_path, "tex\\..\\a.bmp") == target
    assert resolve_reference(tmp_path, "./a.bmp") == target


def test_backslashes_case_and_whitespace(tmp_path: Path) -> None:
    target = touch(tmp_path / "Tex" / "Face2.BMP")
    assert resolve_reference(tmp_path, "tex\\face2.bmp") == target
    assert resolve_reference(tmp_path, "  TEX/FACE2.bmp\t") == target
    assert resolve_reference(tmp_path, "tex\\face3.bmp") is None
    assert resolve_reference(tmp_path, "") is None


def test_exact_name_wins_and_case_ties_are_deterministic(tmp_path: Path) -> None:
    upper, lower = touch(tmp_path / "A.bmp"), touch(tmp_path / "a.BMP")
    assert resolve_reference(tmp_path, "a.BMP") == lower
    assert resolve_reference(tmp_path, "A.bmp") == upper
    assert resolve_reference(tmp_path, "a.bmp") == upper  # sorted first of the two matches


def test_japanese_names_in_other_normal_forms(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "ガード.bmp")
    assert decomposed != "ガード.bmp"
    target = touch(tmp_path / decomposed)  # as a macOS zip extracts it
    assert resolve_reference(tmp_path, "ガード.bmp") == target
    halfwidth = touch(tmp_path / "ｳｨﾝｸ.png")
    assert resolve_reference(tmp_path, "ウィンク.PNG") == halfwidth
    tilde = touch(tmp_path / "髪～影.bmp")  # cp932 decodes 0x8160 as U+FF5E
    assert resolve_reference(tmp_path, "髪〜影.bmp") == tilde  # Shift-JIS decoders give U+301C


def test_symlinks_leading_outside_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "model"
    outside = touch(tmp_path / "secret.bmp")
    touch(root / "inside.bmp")
    (root / "leak.bmp").symlink_to(outside)
    (root / "dir").symlink_to(tmp_path)
    (root / "alias.bmp").symlink_to(root / "inside.bmp")
    for ref in ("leak.bmp", "dir\\secret.bmp"):
        with pytest.raises(TexturePathError, match="symlink"):
            resolve_reference(root, ref)
    assert resolve_reference(root, "alias.bmp") == root / "alias.bmp"


def test_a_folder_is_not_a_texture(tmp_path: Path) -> None:
    (tmp_path / "tex").mkdir()
    assert resolve_reference(tmp_path, "tex") is None


# --- PMD's texture*sphere syntax -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("huku1.bmp*sp_g.spa", ("huku1.bmp", "sp_g.spa")),
        ("huku1.bmp*sp_g.sph", ("huku1.bmp", "sp_g.sph")),
        ("metal.sph", (None, "metal.sph")),
        ("Metal.SPA", (None, "Metal.SPA")),
        ("eyeM2.bmp", ("eyeM2.bmp", None)),
        ("*sp_k.spa", (None, "sp_k.spa")),
        ("kami.bmp*", ("kami.bmp", None)),
        ("sp_k.spa*kami.bmp", ("kami.bmp", "sp_k.spa")),
        ("  ", (None, None)),
    ],
)
def test_split_pmd_texture(ref: str, expected: tuple[str | None, str | None]) -> None:
    assert split_pmd_texture(ref) == expected


def test_pmd_sphere_mode() -> None:
    assert pmd_sphere_mode("a.spa") == SphereMode.ADD
    assert pmd_sphere_mode("a.SPH") == SphereMode.MULTIPLY
    assert pmd_sphere_mode(None) == SphereMode.NONE


# --- resolve_textures on a Model -----------------------------------------------------------------


def material(
    name: str,
    texture: str | None = None,
    sphere: str | None = None,
    toon: str | None = None,
    toon_shared: int | None = None,
) -> Material:
    return Material(
        name=name,
        english_name="",
        diffuse=np.ones(4, np.float32),
        specular=np.zeros(3, np.float32),
        specular_power=5.0,
        ambient=np.full(3, 0.5, np.float32),
        flags=MaterialFlag(0),
        edge_color=np.array([0, 0, 0, 1], np.float32),
        edge_size=1.0,
        face_start=0,
        face_count=0,
        texture_ref=texture,
        sphere_ref=sphere,
        sphere_mode=SphereMode.NONE,
        toon_ref=toon,
        toon_shared=toon_shared,
    )


def model(path: Path, fmt: str, materials: list[Material]) -> Model:
    empty = np.zeros((0, 3), np.float32)
    return Model(
        path=path,
        format=fmt,
        version=2.0 if fmt == "pmx" else 1.0,
        name="test",
        english_name="",
        comment="",
        positions=empty,
        normals=empty,
        uvs=np.zeros((0, 2), np.float32),
        extra_uvs=np.zeros((0, 0, 4), np.float32),
        bone_indices=np.zeros((0, 4), np.int32),
        bone_weights=np.zeros((0, 4), np.float32),
        deform=np.zeros(0, np.uint8),
        sdef=np.zeros((0, 3, 3), np.float32),
        edge_scale=np.zeros(0, np.float32),
        triangles=np.zeros((0, 3), np.int32),
        materials=materials,
        bones=[],
        morphs=[],
    )


def test_resolve_textures_sets_paths_and_warns(tmp_path: Path) -> None:
    face = touch(tmp_path / "tex" / "face.png")
    sph = touch(tmp_path / "metal.sph")
    toon = touch(tmp_path / "toon03.bmp")
    own_toon = touch(tmp_path / "toon_hada.bmp")
    m = model(
        tmp_path / "m.pmx",
        "pmx",
        [
            material("face", "Tex\\Face.png", "metal.sph", toon_shared=2),
            material("hair", "tex/hair.png", toon_shared=0),  # toon01 not shipped: no warning
            material("evil", "..\\..\\x.png", toon="toon_hada.bmp"),
            material("plain"),
            material("lost toon", toon="my_toon.bmp", toon_shared=4),  # a PMD's own toon name
        ],
    )
    resolve_textures(m)
    a, b, c, d, _ = m.materials
    assert (a.texture, a.sphere, a.toon) == (face, sph, toon)
    assert (b.texture, b.sphere, b.toon) == (None, None, None)
    assert (c.texture, c.toon) == (None, own_toon)
    assert (d.texture, d.sphere, d.toon) == (None, None, None)
    assert m.warnings == [
        "material 1 'hair': texture 'tex/hair.png' not found",
        "material 2 'evil': texture '..\\\\..\\\\x.png' refused: '..' leaves the model's folder",
        "material 4 'lost toon': toon 'my_toon.bmp' not found",
    ]


def test_resolve_textures_uses_model_root_and_pmd_star_syntax(tmp_path: Path) -> None:
    root = tmp_path / "extracted"
    texture, sphere = touch(root / "huku.bmp"), touch(root / "sp.spa")
    toon = touch(root / "toon10.bmp")
    m = model(
        tmp_path / "archive.zip" / "m.pmd",
        "pmd",
        [material("a", "huku.bmp*sp.spa", toon="toon10.bmp"), material("b", "SP.SPA")],
    )
    m.root = root
    resolve_textures(m)
    assert (m.materials[0].texture, m.materials[0].sphere, m.materials[0].toon) == (
        texture,
        sphere,
        toon,
    )
    assert (m.materials[1].texture, m.materials[1].sphere) == (None, sphere)
    assert m.warnings == []


# --- real models ---------------------------------------------------------------------------------


def real_references(path: Path) -> tuple[list[str], list[str]]:
    """(texture and sphere references, toon references) as the file writes them."""
    if path.suffix.lower() == ".pmx":
        pmx = pymeshio.pmx.reader.read_from_file(str(path))
        return list(pmx.textures), []
    pmd = pymeshio.pmd.reader.read_from_file(str(path))
    refs = []
    for mat in pmd.materials:
        refs += [r for r in split_pmd_texture(mat.texture_file.decode("cp932")) if r]
    return refs, [t.decode("cp932") for t in pmd.toon_textures]


@pytest.mark.parametrize(
    "relative",
    [
        "miku4_3/miku4.3.pmx",
        "hzeo_kaito_v3/hzeoV3kaito_F.pmx",
        "lat_miku_v231/Normal.pmd",
        "lat_miku_v231/Lat式ミクVer2.31_White.pmd",
        "animasa_miku_v2_3/miku_v2.pmd",
        "goblin/goblin_v02.pmx",
        "mmd_bundled/model/Miku_Hatsune_metal.pmd",
    ],
)
def test_real_texture_references_resolve(mmd_dir: Path, relative: str) -> None:
    path = mmd_dir / relative
    refs, toons = real_references(path)
    assert refs
    for ref in refs:
        found = resolve_reference(path.parent, ref)
        assert found is not None and found.is_file(), ref
        assert found.parent.resolve().is_relative_to(path.parent.resolve())
    for ref in toons:  # a model's own toons resolve; MMD's shared defaults may be absent
        if resolve_reference(path.parent, ref) is None:
            assert ref.lower() in {f"toon{i:02d}.bmp" for i in range(1, 11)}, ref


def test_real_backslash_paths_resolve_into_tex_folder(mmd_dir: Path) -> None:
    found = resolve_reference(mmd_dir / "miku4_3", "tex\\face2.bmp")
    assert found == mmd_dir / "miku4_3" / "tex" / "face2.bmp"


def test_real_names_with_case_mismatch(mmd_dir: Path, tmp_path: Path) -> None:
    """The real references against a folder whose files differ in case, as Windows zips do."""
    refs, _ = real_references(mmd_dir / "hzeo_kaito_v3" / "hzeoV3kaito_F.pmx")
    for ref in refs:  # placeholder files under upper-cased names
        touch(tmp_path / ref.upper())
    for ref in refs:
        assert resolve_reference(tmp_path, ref) == tmp_path / ref.upper()


def test_real_shared_toon_beside_the_model(mmd_dir: Path) -> None:
    path = mmd_dir / "animasa_miku_v2_3" / "miku_v2.pmd"
    m = model(path, "pmd", [material("body", "eyeM2.bmp", toon="toon01.bmp", toon_shared=0)])
    resolve_textures(m)
    assert m.materials[0].toon == path.parent / "toon01.bmp"
    assert m.materials[0].texture == path.parent / "eyeM2.bmp"
    assert m.warnings == []


# --- decoding ------------------------------------------------------------------------------------


def real_images() -> list[Path]:
    if not MMD_DIR.is_dir():
        return []
    return sorted(p for p in MMD_DIR.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def test_every_real_texture_decodes(mmd_dir: Path) -> None:
    paths = real_images()
    assert len(paths) > 100
    for path in paths:
        rgba = read_image(path)
        with Image.open(path) as image:  # every real file is one Pillow reads right as it is
            expected = np.asarray(image.convert("RGBA"))
        assert rgba.dtype == np.uint8 and rgba.flags.c_contiguous, path
        np.testing.assert_array_equal(rgba, expected, err_msg=str(path))
        assert rgba.std() > 0 or rgba.shape[1] <= 32, path  # not a blank decode


def test_real_alpha_and_formats(mmd_dir: Path) -> None:
    png_sphere = mmd_dir / "miku4_3" / "tex" / "metal.sph"  # a PNG named .sph
    assert sniff_format(png_sphere.read_bytes()[:32]) == "PNG"
    assert read_image(png_sphere).shape == (256, 256, 4)
    tga = read_image(mmd_dir / "hzeo_kaito_v3" / "丸.tga")  # 32-bit TGA with real alpha
    assert tga[..., 3].min() == 0 and tga[..., 3].max() == 205
    rle = read_image(mmd_dir / "hzeo_kaito_v3" / "face.tga")  # RLE, bottom-left origin
    assert (rle[..., 3] == 255).all()
    cheek = read_image(mmd_dir / "lat_miku_v231" / "hoho.png")
    assert cheek[..., 3].min() == 0 and 0 < cheek[..., 3].max() < 255
    bmp = read_image(mmd_dir / "lat_miku_v231" / "me.bmp")
    assert (bmp[..., 3] == 255).all()


def tga_rle(pixels: np.ndarray, top_left: bool) -> bytes:
    """Encode (H, W, 4) RGBA as 32-bit RLE TGA by hand: runs of equal pixels, raw packets else."""
    height, width, _ = pixels.shape
    rows = pixels if top_left else pixels[::-1]
    bgra = rows[..., [2, 1, 0, 3]].reshape(-1, 4)
    header = struct.pack("<BBBHHBHHHHBB", 0, 0, 10, 0, 0, 0, 0, 0, width, height, 32, 8)
    out, i = bytearray(header), 0
    while i < len(bgra):
        run = 1
        while i + run < len(bgra) and run < 128 and (bgra[i + run] == bgra[i]).all():
            run += 1
        if run > 1:
            out += bytes([0x80 | (run - 1)]) + bgra[i].tobytes()
        else:
            raw = 1
            while (
                i + raw < len(bgra) and raw < 128 and not (bgra[i + raw] == bgra[i + raw - 1]).all()
            ):
                raw += 1
            out += bytes([raw - 1]) + bgra[i : i + raw].tobytes()
        i += run if run > 1 else raw
    if top_left:
        out[17] |= 0x20
    return bytes(out)


@pytest.mark.parametrize("top_left", [False, True])
def test_hand_encoded_tga_rle(tmp_path: Path, top_left: bool) -> None:
    rng = np.random.default_rng(7)
    pixels = np.zeros((5, 300, 4), np.uint8)  # runs longer than 128 and raw stretches
    pixels[0] = (255, 0, 0, 255)
    pixels[1, :150] = (0, 255, 0, 128)
    pixels[2:] = rng.integers(0, 256, (3, 300, 4), np.uint8)
    path = tmp_path / "hand.tga"
    path.write_bytes(tga_rle(pixels, top_left))
    np.testing.assert_array_equal(read_image(path), pixels)


def test_tga_grayscale_and_24_bit(tmp_path: Path) -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    header = struct.pack("<BBBHHBHHHHBB", 0, 0, 3, 0, 0, 0, 0, 0, 4, 3, 8, 0x20)
    (tmp_path / "g.tga").write_bytes(header + grey.tobytes())
    rgba = read_image(tmp_path / "g.tga")
    np.testing.assert_array_equal(rgba[..., 0], grey)
    assert (rgba[..., 3] == 255).all()
    rgb = np.random.default_rng(1).integers(0, 256, (3, 4, 3), np.uint8)
    header = struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, 4, 3, 24, 0)
    (tmp_path / "c.tga").write_bytes(header + rgb[::-1, :, ::-1].tobytes())  # bottom-up BGR
    np.testing.assert_array_equal(read_image(tmp_path / "c.tga")[..., :3], rgb)


def bmp32(pixels: np.ndarray) -> bytes:
    """A 32-bit BI_RGB BMP (bottom-up) whose fourth byte carries alpha, as MMD textures do."""
    height, width, _ = pixels.shape
    body = pixels[::-1][..., [2, 1, 0, 3]].tobytes()
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 32, 0, len(body), 2835, 2835, 0, 0)
    head = struct.pack("<2sIHHI", b"BM", 54 + len(body), 0, 0, 54)
    return head + info + body


def test_bmp_32_bit_alpha(tmp_path: Path) -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (4, 5, 4), np.uint8)
    (tmp_path / "a.bmp").write_bytes(bmp32(pixels))
    np.testing.assert_array_equal(read_image(tmp_path / "a.bmp"), pixels)
    pixels[..., 3] = 0  # all-zero alpha: padding, not transparency (MMD draws it opaque)
    (tmp_path / "z.bmp").write_bytes(bmp32(pixels))
    rgba = read_image(tmp_path / "z.bmp")
    np.testing.assert_array_equal(rgba[..., :3], pixels[..., :3])
    assert (rgba[..., 3] == 255).all()


def test_bmp_palette_and_sniffing_ignores_extension(tmp_path: Path) -> None:
    rgb = np.zeros((6, 7, 3), np.uint8)
    rgb[:3] = (200, 10, 10)
    rgb[3:] = (10, 10, 200)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(
        tmp_path / "p.png", format="BMP"
    )  # an 8-bit palette BMP named .png
    assert (tmp_path / "p.png").read_bytes()[28] == 8
    np.testing.assert_array_equal(read_image(tmp_path / "p.png")[..., :3], rgb)
    Image.fromarray(rgb).save(tmp_path / "real.spa", format="PNG")
    np.testing.assert_array_equal(read_image(tmp_path / "real.spa")[..., :3], rgb)


@pytest.mark.parametrize("pixel_format", ["DXT1", "DXT3", "DXT5"])
def test_dds_compressed(tmp_path: Path, pixel_format: str) -> None:
    pixels = np.zeros((8, 8, 4), np.uint8)
    pixels[:4] = (255, 0, 0, 255)  # solid 4x4 blocks survive block compression exactly
    pixels[4:] = (0, 0, 255, 255)
    Image.fromarray(pixels).save(tmp_path / "t.dds", pixel_format=pixel_format)
    np.testing.assert_array_equal(read_image(tmp_path / "t.dds"), pixels)


def test_dds_uncompressed_keeps_alpha(tmp_path: Path) -> None:
    pixels = np.random.default_rng(5).integers(0, 256, (4, 6, 4), np.uint8)
    Image.fromarray(pixels).save(tmp_path / "u.dds")
    np.testing.assert_array_equal(read_image(tmp_path / "u.dds"), pixels)


@pytest.mark.numeric
def test_jpeg(tmp_path: Path) -> None:
    Image.new("RGB", (16, 8), (30, 160, 90)).save(tmp_path / "x.jpg", quality=95)
    rgba = read_image(tmp_path / "x.jpg")
    assert rgba.shape == (8, 16, 4)
    assert np.abs(rgba[..., :3].astype(int) - (30, 160, 90)).max() <= 3


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size but carries (almost) no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"")
    chunks = b""
    for kind, body in ((b"IHDR", ihdr), (b"IDAT", idat), (b"IEND", b"")):
        chunks += struct.pack(">I", len(body)) + kind + body
        chunks += struct.pack(">I", zlib.crc32(kind + body))
    return b"\x89PNG\r\n\x1a\n" + chunks


def test_bad_images_raise_image_read_error(tmp_path: Path) -> None:
    cases = {
        "garbage.bmp": b"\x00\x01garbage" * 4,
        "truncated.png": (lambda b: b[: len(b) // 2])(_png_bytes()),
        "huge.png": png_header_only(MAX_DIMENSION + 1, 16),
        "bomb.png": png_header_only(100_000, 100_000),
        "huge.bmp": bmp32(np.zeros((1, 1, 4), np.uint8))[:18]
        + struct.pack("<ii", MAX_DIMENSION + 1, 1)
        + bmp32(np.zeros((1, 1, 4), np.uint8))[26:],
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageReadError) as caught:
            read_image(tmp_path / name)
        assert name in str(caught.value)
    for name in ("huge.png", "huge.bmp", "bomb.png"):
        with pytest.raises(ImageReadError, match="limit"):
            read_image(tmp_path / name)
    with pytest.raises(ImageReadError, match="cannot read"):
        read_image(tmp_path / "missing.bmp")
    with pytest.raises(ImageReadError, match="limit"):
        read_image(tmp_path / "truncated.png", max_bytes=10)


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    Image.fromarray(noise).save(buffer, format="PNG")
    return buffer.getvalue()


# --- converted files and split alpha (issue 9) ---------------------------------------------------


def test_missing_texture_is_substituted_by_a_converted_sibling(tmp_path: Path) -> None:
    png = touch(tmp_path / "tex" / "Cloth.PNG")
    bmp = touch(tmp_path / "tex" / "cloth.bmp")
    touch(tmp_path / "band.jpg")
    touch(tmp_path / "eye.png")
    m = model(
        tmp_path / "m.pmx",
        "pmx",
        [
            material("cloth", "tex\\cloth.tga"),  # .png and .bmp beside it: .png is preferred
            material("band", "band.tga"),
            material("metal", "eye.png", sphere="eye.sph"),  # sphere names are never converted
            material("gone", "tex\\nothing.tga", toon="nope\\cloth.tga"),  # no folder "nope"
            material("exact", "tex/cloth.bmp"),
        ],
    )
    resolve_textures(m)
    cloth, band, metal, gone, exact = m.materials
    assert cloth.texture == png and band.texture == tmp_path / "band.jpg"
    assert metal.texture == tmp_path / "eye.png" and metal.sphere is None
    assert gone.texture is None and gone.toon is None
    assert exact.texture == bmp
    assert m.warnings == [
        "material 0 'cloth': texture 'tex\\\\cloth.tga' not found; using 'tex/Cloth.PNG' beside it",
        "material 1 'band': texture 'band.tga' not found; using 'band.jpg' beside it",
        "material 2 'metal': sphere 'eye.sph' not found",
        "material 3 'gone': texture 'tex\\\\nothing.tga' not found",
        "material 3 'gone': toon 'nope\\\\cloth.tga' not found",
    ]


def test_substitutes_stay_inside_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "model"
    outside = touch(tmp_path / "x.png")
    root.mkdir()
    (root / "x.png").symlink_to(outside)
    with pytest.raises(TexturePathError, match="symlink"):
        find_substitute(root, "x.tga")
    assert lookup(root, "x.tga").status == "refused"
    assert lookup(root, "..\\x.tga").status == "refused"
    assert find_substitute(root, "y.tga") is None


@pytest.mark.parametrize(
    ("texture", "alpha"),
    [
        ("face.jpga.jpg", "face.alpha.png"),  # the repack convention
        ("face.jpga.jpg", "face.jpga.alpha.png"),
        ("Face.JPG", "face.ALPHA.png"),  # names fold as Windows folds them
        ("face.bmp", "face.alpha.png"),
    ],
)
def test_alpha_sibling(tmp_path: Path, texture: str, alpha: str) -> None:
    colour, mask = touch(tmp_path / texture), touch(tmp_path / alpha)
    assert alpha_sibling(colour) == mask


def test_no_alpha_sibling(tmp_path: Path) -> None:
    colour = touch(tmp_path / "face.jpga.jpg")
    touch(tmp_path / "other.alpha.png")
    touch(tmp_path / "sub" / "face.alpha.png")  # another folder is not a sibling
    assert alpha_sibling(colour) is None
    assert alpha_sibling(touch(tmp_path / "x.alpha.png")) is None  # not its own alpha
    (tmp_path / "face.alpha.png").symlink_to(tmp_path / "sub" / "face.alpha.png")
    assert alpha_sibling(colour) is None  # a symlink to another folder is not a sibling


def test_describe_textures_lists_every_slot_and_status(tmp_path: Path) -> None:
    Image.new("RGB", (8, 4), (1, 2, 3)).save(tmp_path / "skin.png")
    Image.new("RGB", (2, 2)).save(tmp_path / "cloth.png")
    Image.new("L", (8, 4)).save(tmp_path / "skin.alpha.png")
    touch(tmp_path / "broken.bmp", b"BM" + b"\x00" * 10)
    Image.new("RGB", (4, 4)).save(tmp_path / "metal.sph", format="BMP")
    m = model(
        tmp_path / "m.pmx",
        "pmx",
        [
            material("skin", "skin.png", "metal.sph", toon="toon02.bmp"),
            material("cloth", "cloth.tga", toon="my_toon.bmp"),
            material("evil", "..\\x.png", "broken.bmp"),
            material("plain"),
        ],
    )
    resolve_textures(m)
    rows = describe_textures(m)
    assert [(r["material"], r["name"]) for r in rows] == [
        (0, "skin"),
        (1, "cloth"),
        (2, "evil"),
        (3, "plain"),
    ]
    skin, cloth, evil, plain = rows
    assert skin["texture"] == {
        "reference": "skin.png",
        "file": "skin.png",
        "status": "ok",
        "detail": "",
        "size": [8, 4],
        "alpha": "skin.alpha.png",
    }
    assert skin["sphere"]["status"] == "ok" and skin["sphere"]["size"] == [4, 4]
    assert skin["toon"]["status"] == "builtin" and skin["toon"]["file"] is None
    assert cloth["texture"]["status"] == "substituted"
    assert cloth["texture"]["file"] == "cloth.png" and "cloth.png" in cloth["texture"]["detail"]
    assert cloth["toon"]["status"] == "missing" and cloth["toon"]["file"] is None
    assert evil["texture"]["status"] == "refused" and "leaves" in evil["texture"]["detail"]
    assert evil["sphere"]["status"] == "unreadable" and evil["sphere"]["file"] == "broken.bmp"
    assert plain["texture"] is None and plain["sphere"] is None and plain["toon"] is None
    json.dumps(rows)  # plain data, ready for inspect --json


def test_inspect_json_lists_textures_of_a_repacked_character(tmp_path: Path) -> None:
    """A procedural character as a redistribution leaves it: its face converted to TGA, its
    hair split into a colour JPEG and an alpha PNG under the repack names."""
    from characters import write_character
    from mmd_loader.inspection import inspect_model

    path = write_character(1, tmp_path / "c" / "c.pmx")
    folder = next(path.parent.glob("*_tex"))
    with Image.open(folder / "face.png") as face:
        face.save(folder / "face.tga")
    (folder / "face.png").unlink()
    (folder / "mouth.png").unlink()
    report, loaded, _ = inspect_model(path)
    assert loaded is not None
    by_name = {row["name"]: row for row in report.textures}
    assert len(report.textures) == len(loaded.materials)
    face = by_name["肌"]["texture"]
    assert face["status"] == "substituted" and face["file"].endswith("face.tga")
    assert by_name["口"]["texture"]["status"] == "missing"
    assert by_name["髪"]["texture"]["status"] == "ok"
    assert any("face.tga" in w for w in report.warnings)
    assert json.loads(json.dumps(report.to_dict()))["textures"] == report.textures


# --- headers and budgets (issue 14) --------------------------------------------------------------


def zero_png(path: Path, width: int, height: int) -> Path:
    """An all-zero RGBA PNG, written row by row: 8192² costs about 256 KB on disk."""
    compressor = zlib.compressobj(9)
    row = bytes(1 + 4 * width)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    chunks = b""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    for kind, data in ((b"IHDR", ihdr), (b"IDAT", body), (b"IEND", b"")):
        chunks += struct.pack(">I", len(data)) + kind + data
        chunks += struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)
    return path


def test_image_info_reads_only_the_header(tmp_path: Path) -> None:
    # The file declares 8192² but holds no pixel data: a decode would fail, the header does not.
    path = tmp_path / "claims.png"
    path.write_bytes(png_header_only(8192, 8192))
    assert image_info(path) == ImageInfo("PNG", 8192, 8192)
    assert image_info(path).pixels == 8192 * 8192
    header = bmp32(np.zeros((1, 1, 4), np.uint8))
    (tmp_path / "claims.bmp").write_bytes(
        header[:18] + struct.pack("<ii", 5000, -3000) + header[26:54]
    )
    assert image_info(tmp_path / "claims.bmp") == ImageInfo("BMP", 5000, 3000)
    tga = struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, 6000, 7000, 32, 8)
    (tmp_path / "claims.tga").write_bytes(tga)
    assert image_info(tmp_path / "claims.tga") == ImageInfo("TGA", 6000, 7000)
    touch(tmp_path / "garbage.png", b"\x00" * 40)
    touch(tmp_path / "cut.png", png_header_only(4, 4)[:20])
    for bad, reason in (
        ("missing.png", "cannot read"),
        ("garbage.png", "unrecognised"),
        ("cut.png", "cannot read the PNG header"),
    ):
        with pytest.raises(ImageReadError, match=reason):
            image_info(tmp_path / bad)
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ImageReadError, match="not a regular file"):
        image_info(tmp_path / "folder.png")
    os.mkfifo(tmp_path / "fifo.png")  # would block a reader forever
    with pytest.raises(ImageReadError, match="not a regular file"):
        image_info(tmp_path / "fifo.png")


def test_image_info_matches_every_real_texture(mmd_dir: Path) -> None:
    for path in real_images():
        info = image_info(path)
        height, width = read_image(path).shape[:2]
        assert (info.width, info.height) == (width, height), path


def test_dds_and_jpeg_headers(tmp_path: Path) -> None:
    Image.new("RGBA", (12, 8)).save(tmp_path / "t.dds", pixel_format="DXT5")
    Image.new("RGB", (30, 20)).save(tmp_path / "t.jpg")
    assert image_info(tmp_path / "t.dds") == ImageInfo("DDS", 12, 8)
    assert image_info(tmp_path / "t.jpg") == ImageInfo("JPEG", 30, 20)


def test_budget_refuses_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "claims.png"
    path.write_bytes(png_header_only(4096, 4096))  # no pixels: a decode attempt would fail
    with pytest.raises(ImageBudgetError, match="over the budget") as caught:
        read_image(path, max_pixels=2048 * 2048)
    assert isinstance(caught.value, ImageReadError) and "4096x4096" in str(caught.value)


def checker(width: int, height: int, block: int) -> np.ndarray:
    """RGBA blocks of `block` px in four colours, half of them half transparent."""
    ys, xs = np.mgrid[0:height, 0:width]
    index = (ys // block + 2 * (xs // block)) % 4
    colours = np.array(
        [[255, 0, 0, 255], [0, 255, 0, 128], [0, 0, 255, 255], [255, 255, 0, 128]], np.uint8
    )
    return colours[index]


@pytest.mark.parametrize("fmt", ["PNG", "TGA", "BMP32"])
def test_budget_downscales_by_powers_of_two(tmp_path: Path, fmt: str) -> None:
    pixels = checker(64, 32, 4)
    path = tmp_path / f"t.{fmt.lower()}"
    if fmt == "BMP32":
        path.write_bytes(bmp32(pixels))
    else:
        Image.fromarray(pixels).save(path, format=fmt)
    assert read_image(path, max_pixels=64 * 32).shape == (32, 64, 4)  # at the budget: as is
    reduced = read_image(path, max_pixels=64 * 32 - 1, fit=True)
    assert reduced.shape == (16, 32, 4)  # factor 2
    np.testing.assert_array_equal(reduced, pixels[::2, ::2])  # 4-px blocks: exact at /2
    assert read_image(path, max_pixels=100, fit=True).shape == (4, 8, 4)  # factor 8


@pytest.mark.numeric
def test_downscaling_keeps_straight_alpha_colours(tmp_path: Path) -> None:
    pixels = np.zeros((2, 2, 4), np.uint8)
    pixels[0, 0] = (200, 100, 50, 255)  # one opaque texel among transparent black ones
    Image.fromarray(pixels).save(tmp_path / "a.png")
    (one,) = read_image(tmp_path / "a.png", max_pixels=1, fit=True).reshape(-1, 4)
    assert abs(int(one[3]) - 64) <= 1
    assert np.abs(one[:3].astype(int) - (200, 100, 50)).max() <= 2  # no black fringe


def test_downscaling_a_zero_alpha_bmp_keeps_it_opaque(tmp_path: Path) -> None:
    pixels = checker(8, 8, 2)
    pixels[..., 3] = 0  # MMD reads an all-zero BMP alpha as opaque
    (tmp_path / "z.bmp").write_bytes(bmp32(pixels))
    reduced = read_image(tmp_path / "z.bmp", max_pixels=16, fit=True)
    assert reduced.shape == (4, 4, 4) and (reduced[..., 3] == 255).all()
    np.testing.assert_array_equal(reduced[..., :3], pixels[::2, ::2, :3])


@pytest.mark.numeric
def test_jpeg_downscales_while_decoding(tmp_path: Path) -> None:
    Image.new("RGB", (800, 400), (30, 160, 90)).save(tmp_path / "big.jpg", quality=95)
    reduced = read_image(tmp_path / "big.jpg", max_pixels=200 * 100, fit=True)
    assert reduced.shape == (100, 200, 4)
    assert np.abs(reduced[..., :3].astype(int) - (30, 160, 90)).max() <= 3


def test_running_out_of_memory_is_an_image_read_error(tmp_path: Path, monkeypatch) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "t.png")
    (tmp_path / "t.bmp").write_bytes(bmp32(np.zeros((4, 4, 4), np.uint8)))

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(Image.Image, "load", no_memory)
    monkeypatch.setattr(images_module, "_finish", no_memory)
    for name in ("t.png", "t.bmp"):
        with pytest.raises(ImageReadError, match="out of memory") as caught:
            read_image(tmp_path / name)
        assert name in str(caught.value)


def test_hostile_zero_png_is_cheap_to_check(tmp_path: Path) -> None:
    """Issue 14's texture: an all-zero 8192² PNG, 256 KB on disk, 256 MB decoded."""
    path = zero_png(tmp_path / "zero.png", 8192, 8192)
    assert path.stat().st_size < 300_000
    assert image_info(path) == ImageInfo("PNG", 8192, 8192)
    with pytest.raises(ImageBudgetError):
        read_image(path, max_pixels=MAX_TEXTURE_PIXELS)
    assert MAX_TEXTURE_PIXELS == 4096 * 4096 and MAX_MODEL_TEXTURE_PIXELS == 4 * 4096 * 4096
