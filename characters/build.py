"""A character from its seed: the parts assembled into PMX data and written with its textures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from characters import body, textures
from characters.buns import add_bun_ornaments, add_buns
from characters.decals import add_cheek_decals
from characters.eyes import Eyes
from characters.face import Face
from characters.fringe import add_fringe
from characters.hair import add_hair
from characters.headwear import add_headwear
from characters.layout import MATERIALS
from characters.materials import material_keys, materials
from characters.mesh import Mesh
from characters.mouth import Mouth
from characters.ornaments import add_ornament
from characters.outfits import Outfit
from characters.overlays import add_overlays, overlay_morphs
from characters.skeleton import base_bones, upper_body_bones, with_ornament_bone
from characters.spec import CharacterSpec, spec_for_seed
from characters.tha3 import Parts, tha3_spec
from mmd_loader.pmx_writer import BDEF1, BDEF2, PmxData, PmxVertexMorph, write_pmx


def build_character(spec: CharacterSpec, texture_dir: str) -> tuple[PmxData, dict[str, np.ndarray]]:
    """The PMX data and the texture images (file name -> pixels) for `spec`; textures are
    referenced as `texture_dir` + separator + file name."""
    rng = np.random.default_rng([spec.seed, 0x4A1])
    mesh = Mesh()
    face = Face(spec, mesh)
    face.skin()
    for side in (1, -1):
        face.eye(side)
    face.mouth()
    add_cheek_decals(spec, mesh)
    add_overlays(spec, mesh)
    cap = add_hair(spec, mesh, rng)
    add_fringe(spec, mesh)
    add_ornament(spec, mesh)
    add_buns(spec, mesh, cap)
    add_bun_ornaments(spec, mesh)
    add_headwear(spec, mesh)
    shoulder_y, head_y = body.add_neck_and_shoulders(spec, mesh)
    parts = add_parts(spec, mesh, face, shoulder_y)
    parts.widen_i()

    v = mesh.arrays()
    body.reweight_upper_body(spec, v, shoulder_y)
    tris = {m: np.concatenate(t) if t else np.zeros((0, 3), int) for m, t in mesh.tris.items()}
    clothes = np.unique(tris["clothes"])
    v["uv"][clothes] = body.clothes_uv(v["pos"][clothes], shoulder_y)
    n = len(v["pos"])
    bone_indices = np.zeros((n, 4), np.int32)
    bone_indices[:, 0], bone_indices[:, 1] = v["b0"], v["b1"]
    bone_weights = np.zeros((n, 4), np.float32)
    bone_weights[:, 0], bone_weights[:, 1] = v["w0"], 1 - v["w0"]
    blended = (v["w0"] > 0) & (v["w0"] < 1)
    bone_weights[~blended] = [1, 0, 0, 0]
    bone_indices[~blended, 1] = 0
    bone_indices[(v["w0"] <= 0), 0] = v["b1"][v["w0"] <= 0]

    winks = [*spec.wink_names("left"), *spec.wink_names("right")]
    panels = {"まばたき": 2, **dict.fromkeys(winks, 2), "あ": 3, "い": 3, "上": 1}
    morphs = []
    for name, panel in panels.items():
        table = face.morphs[name]
        idx = np.array(sorted(table), np.int32)
        morphs.append(PmxVertexMorph(name, panel, idx, np.array([table[i] for i in idx])))
    morphs += parts.morphs()
    morphs += overlay_morphs(spec, material_keys(spec))

    bones = base_bones(spec, shoulder_y, head_y)
    files = ("face.png", "eye.png", "hair.png", "mouth.png", "iris.png", "clothes.png")
    refs = [f"{texture_dir}\\{f}" for f in files]
    refs[2] = f"{texture_dir}/{files[2]}"  # real models mix both separators
    data = PmxData(
        name=f"thagen character {spec.seed}",
        english_name=f"thagen character {spec.seed}",
        comment=f"Procedural character, seed {spec.seed}. Made by thagen make-character. CC0 1.0: "
        "no rights reserved.",
        positions=v["pos"].astype(np.float32),
        normals=v["nrm"].astype(np.float32),
        uvs=v["uv"].astype(np.float32),
        bone_indices=bone_indices,
        bone_weights=bone_weights,
        deform=np.where(blended, BDEF2, BDEF1).astype(np.uint8),
        triangles=np.concatenate([tris[m] for m in MATERIALS]).astype(np.int32),
        materials=materials(spec, {m: len(t) for m, t in tris.items()}),
        bones=with_ornament_bone(spec, upper_body_bones(spec, bones, shoulder_y)),
        morphs=morphs,
        textures=refs,
    )
    images = {
        "face.png": textures.face_texture(spec),
        "eye.png": textures.eye_white_texture(spec),
        "iris.png": textures.iris_texture(spec),
        "hair.png": textures.hair_texture(spec, rng),
        "mouth.png": textures.mouth_texture(spec),
        "clothes.png": textures.clothes_texture(spec),
    }
    return data, images


def write_character(seed: int, out: Path, face_seed: int | None = None) -> Path:
    """Write the character for `seed` (its face from `face_seed`, default `seed`: see
    `spec_for_seed`) to `out` (.pmx) and its textures to `<stem>_tex/` beside it. Same seeds,
    same bytes."""
    return write_spec(spec_for_seed(seed, face_seed), out)


def write_spec(spec: CharacterSpec, out: Path) -> Path:
    """Write the character `spec` describes (e.g. a seed's spec with fields replaced) as
    `write_character` does."""
    out = Path(out)
    if out.suffix.lower() != ".pmx":
        raise ValueError(f"{out}: a character is written as .pmx")
    tex_dir = out.parent / f"{out.stem}_tex"
    data, images = build_character(spec, tex_dir.name)
    tex_dir.mkdir(parents=True, exist_ok=True)
    for name, pixels in images.items():
        textures.save_png(tex_dir / name, pixels)
    return write_pmx(out, data)


def spec_dict(spec: CharacterSpec) -> dict:
    """The spec as plain JSON-ready values."""
    return dataclasses.asdict(spec)


def add_parts(spec: CharacterSpec, mesh: Mesh, face: Face, shoulder_y: float) -> Parts:
    """Add the eyes, mouth line and upper body to `mesh`; returns what the morphs, bones and
    textures need."""
    eyes = Eyes(spec, mesh)
    eyes.build()
    mouth = Mouth(spec, mesh, face)
    mouth.build()
    body.add_lower_torso(spec, mesh, shoulder_y)
    body.add_tie(spec, mesh, shoulder_y)
    body.add_arms(spec, mesh, shoulder_y)
    Outfit(spec, mesh, shoulder_y).build()
    return Parts(spec, tha3_spec(spec.seed), mesh, face, eyes, mouth, shoulder_y)
