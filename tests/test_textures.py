"""Texture references resolve inside the model's folder, and texture files decode to RGBA."""

from __future__ import annotations

import io
import struct
import unicodedata
import zlib
from pathlib import Path

import numpy as np
import pymeshio.pmd.reader
import pymeshio.pmx.reader
import pytest
from PIL import Image

from mmd_loader.images import MAX_DIMENSION, ImageReadError, read_image, sniff_format
from mmd_loader.model import Material, MaterialFlag, Model, SphereMode
from mmd_loader.textures import (
    TexturePathError,
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
