"""Materials on the GPU: texture uploads (cached per file), default toon ramps, draw records.

Textures are held to a budget (`TextureBudget`): the declared size of each file is read from its
header before anything is decoded. A texture over the per-texture budget is, by the default
policy "downscale", decoded reduced by a power of two until it fits (at 256-px output a face
samples its texture's mip levels of 1024 px or less, so this changes no visible detail and keeps
the author's look; "refuse" drops it instead). A texture that would take the model past its
per-model budget is refused. Whatever a material loses — refused, unreadable, out of memory, a
failed upload, an unreadable alpha sibling — is a line in `TextureCache.warnings` and a
`TextureProblem` in `TextureCache.problems`, never a silent substitution.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from enum import IntFlag
from pathlib import Path
from typing import NamedTuple

import moderngl
import numpy as np

from mmd_loader.images import MAX_MODEL_TEXTURE_PIXELS, MAX_TEXTURE_PIXELS
from mmd_loader.model import Material, MaterialFlag, SphereMode
from render.toon import default_toon

WHITE = np.full((1, 1, 4), 255, np.uint8)
TEXTURE_POLICIES = ("downscale", "refuse")


class Samplers(IntFlag):
    """What a material's shader variant samples: its texture, its sphere map, and (phong only)
    its toon ramp as the light's shape (`RAMP`: the face, `mmd_loader.face_parts`; toon
    always samples the ramp). Each combination is its own program (llvmpipe pays for a fetch
    in a branch not taken); falsy = none of them."""

    NONE = 0
    TEXTURE = 1
    SPHERE = 2
    RAMP = 4


@dataclass(frozen=True)
class TextureBudget:
    """Pixel budgets for one model's textures (width × height as the headers declare them).

    `max_pixels` per texture, `max_model_pixels` for all the model's uploads together (counted
    after downscaling); `policy` for a texture over `max_pixels`: "downscale" or "refuse".
    """

    max_pixels: int = MAX_TEXTURE_PIXELS
    max_model_pixels: int = MAX_MODEL_TEXTURE_PIXELS
    policy: str = "downscale"

    def __post_init__(self) -> None:
        if self.max_pixels < 1 or self.max_model_pixels < 1:
            raise ValueError("texture budgets must be at least 1 pixel")
        if self.policy not in TEXTURE_POLICIES:
            raise ValueError(
                f"texture policy must be one of {TEXTURE_POLICIES}, not {self.policy!r}"
            )


class TextureProblem(NamedTuple):
    """A texture a material should have and does not get (in full) when drawn."""

    material: int  # index in the model
    name: str  # the material's name
    slot: str  # "texture", "sphere", "toon" or "alpha" (the texture's alpha sibling)
    path: str  # the file
    reason: str


def upload_rgba(
    ctx: moderngl.Context, rgba: np.ndarray, *, mipmaps: bool, repeat: bool
) -> moderngl.Texture:
    """An RGBA8 texture from an (H, W, 4) uint8 array whose row 0 is the image top.

    Rows go up unflipped, so MMD's uv (v = 0 at the top) samples them directly.
    """
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    texture = ctx.texture((rgba.shape[1], rgba.shape[0]), 4, rgba)
    texture.repeat_x = texture.repeat_y = repeat
    if mipmaps:
        texture.build_mipmaps()
        texture.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
    else:
        texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
    return texture


class TextureCache:
    """Textures of one model, uploaded once per file and slot; `release()` frees them all."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self._textures: dict[tuple[Path, str], moderngl.Texture | None] = {}
        self._failures: dict[tuple[Path, str], list[tuple[str, Path, str]]] = {}
        self._reported: set[tuple[int, str]] = set()
        self.opaque: set[moderngl.Texture] = set()  # textures whose alpha is 255 everywhere
        self.warnings: list[str] = []
        self.problems: list[TextureProblem] = []
        self.pixels = 0  # texels uploaded for this model (the per-model budget counts these)

    def get(
        self,
        path: Path | None,
        slot: str = "texture",
        budget: TextureBudget | None = None,
        owner: tuple[int, str] | None = None,
    ) -> moderngl.Texture | None:
        """The texture for `path` in `slot` ("texture" repeats and takes a colour-only file's
        alpha from its sibling; "sphere" and "toon" clamp), or None when there is none or it
        cannot be used. `owner` = (material index, name) records what went wrong for it."""
        if path is None:
            return None
        key = (Path(path), slot)
        if key not in self._textures:
            self._failures[key] = []
            self._textures[key] = self._load(key[0], slot, budget or TextureBudget(), key)
        if owner is not None:
            for problem_slot, problem_path, reason in self._failures[key]:
                self._report(owner, problem_slot, problem_path, reason)
        return self._textures[key]

    def _report(self, owner: tuple[int, str], slot: str, path: Path, reason: str) -> None:
        if (owner[0], slot) in self._reported:  # a material is drawn again after re-culling
            return
        self._reported.add((owner[0], slot))
        self.problems.append(TextureProblem(owner[0], owner[1], slot, str(path), reason))

    def _fail(self, key: tuple[Path, str], slot: str, path: Path, reason: str) -> None:
        self.warnings.append(f"{path}: {reason}")
        self._failures[key].append((slot, path, reason))

    def _load(
        self, path: Path, slot: str, budget: TextureBudget, key: tuple[Path, str]
    ) -> moderngl.Texture | None:
        from mmd_loader.images import ImageReadError, image_info, read_image, reduction

        fit = budget.policy == "downscale"
        try:
            info = image_info(path)
            if not fit and info.pixels > budget.max_pixels:
                self._fail(
                    key,
                    slot,
                    path,
                    f"refused: {info.width}x{info.height} is over the budget of "
                    f"{budget.max_pixels} pixels per texture",
                )
                return None
            factor = reduction(info.width, info.height, budget.max_pixels) if fit else 1
            planned = -(-info.width // factor) * -(-info.height // factor)
            if self.pixels + planned > budget.max_model_pixels:
                self._fail(
                    key,
                    slot,
                    path,
                    f"refused: {info.width}x{info.height} would take the model's textures to "
                    f"{self.pixels + planned} pixels, over its budget of "
                    f"{budget.max_model_pixels}",
                )
                return None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rgba = read_image(path, max_pixels=budget.max_pixels, fit=fit)
        except ImageReadError as error:
            self._fail(key, slot, path, error.reason)
            return None
        except MemoryError:
            self._fail(key, slot, path, "out of memory while decoding")
            return None
        if rgba.shape[0] * rgba.shape[1] < info.pixels:
            self.warnings.append(
                f"{path}: {info.width}x{info.height} is over the budget of {budget.max_pixels} "
                f"pixels per texture; downscaled to {rgba.shape[1]}x{rgba.shape[0]}"
            )
        if slot == "texture":
            rgba = self._with_alpha_sibling(path, rgba, budget, key)
        try:
            texture = upload_rgba(self.ctx, rgba, mipmaps=True, repeat=slot == "texture")
        except (moderngl.Error, MemoryError) as error:
            self._fail(key, slot, path, f"cannot upload {rgba.shape[1]}x{rgba.shape[0]}: {error}")
            return None
        self.pixels += rgba.shape[0] * rgba.shape[1]
        if np.all(rgba[..., 3] == 255):
            self.opaque.add(texture)
        return texture

    def _with_alpha_sibling(
        self, path: Path, rgba: np.ndarray, budget: TextureBudget, key: tuple[Path, str]
    ) -> np.ndarray:
        """`rgba` with its alpha from `NAME.alpha.png` when it has none of its own."""
        from mmd_loader.images import ImageReadError, read_image
        from mmd_loader.textures import alpha_sibling

        sibling = alpha_sibling(path)
        if sibling is None or not np.all(rgba[..., 3] == 255):
            return rgba
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mask = read_image(sibling, max_pixels=budget.max_pixels, fit=True)
        except (ImageReadError, MemoryError) as error:
            reason = getattr(error, "reason", "out of memory while decoding")
            self._fail(key, "alpha", sibling, f"alpha sibling of {path.name}: {reason}")
            return rgba
        return apply_alpha(rgba, mask)

    def release(self) -> None:
        for texture in self._textures.values():
            if texture is not None:
                texture.release()
        self._textures.clear()
        self.opaque.clear()


def apply_alpha(rgba: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`rgba` with alpha from `mask` (an RGBA image): its alpha channel when it has one, else its
    grey level (a greyscale mask); resized to `rgba`'s size when they differ."""
    from PIL import Image

    alpha = mask[..., 3] if np.any(mask[..., 3] != 255) else mask[..., :3].max(axis=2)
    if alpha.shape != rgba.shape[:2]:
        resized = Image.fromarray(np.ascontiguousarray(alpha), "L").resize(
            (rgba.shape[1], rgba.shape[0]), Image.Resampling.BILINEAR
        )
        alpha = np.asarray(resized)
    out = rgba.copy()
    out[..., 3] = alpha
    return out


class SharedTextures:
    """What every model may use, kept for the Renderer's life: white, the toon ramps, the
    texture budget each model's `TextureCache` is held to, and `material_light`: for phong, the
    light MMD composes material colours with (154/255), baked into each draw record's diffuse
    (saturate(diffuse · light + ambient), ambient 0) so the shader does not redo it per pixel;
    None for toon, whose light varies with the Lighting."""

    def __init__(
        self,
        ctx: moderngl.Context,
        budget: TextureBudget | None = None,
        material_light: float | None = None,
    ) -> None:
        self.budget = budget or TextureBudget()
        self.material_light = material_light
        self.white = upload_rgba(ctx, WHITE, mipmaps=False, repeat=True)
        self.toons = [
            upload_rgba(ctx, default_toon(i), mipmaps=False, repeat=False) for i in range(10)
        ]

    def release(self) -> None:
        for texture in [self.white, *self.toons]:
            texture.release()


@dataclass
class DrawMaterial:
    """What one draw call needs: its index range and its uniforms and textures."""

    index: int  # material index in the model
    first: int  # first index in the IBO
    count: int  # number of indices
    diffuse: tuple[float, float, float, float]
    ambient: tuple[float, float, float]
    specular: tuple[float, float, float]
    specular_power: float
    double_sided: bool
    opaque: bool  # alpha 1 at every fragment: drawn without blending or discard
    # Samplers: what the program samples (falsy: neither texture nor sphere map). With a sphere
    # map but no texture, `texture` is white and is not sampled.
    textured: Samplers
    edge: bool
    edge_color: tuple[float, float, float, float]
    edge_size: float
    texture: moderngl.Texture
    sphere: moderngl.Texture
    sphere_mode: int
    toon: moderngl.Texture


def draw_material(
    material: Material,
    index: int,
    first: int,
    count: int,
    cache: TextureCache,
    shared: SharedTextures,
    face: bool = False,
) -> DrawMaterial:
    """The draw record of `material`; missing textures fall back to white (the material colour),
    and what is lost is recorded in `cache.problems`. `face`: part of the face, lit through its
    toon ramp under phong (`Samplers.RAMP`)."""
    owner, budget = (index, material.name), shared.budget
    texture = cache.get(material.texture, "texture", budget, owner) or shared.white
    sphere = None
    if material.sphere_mode:
        sphere = cache.get(material.sphere, "sphere", budget, owner)
    mode = int(material.sphere_mode) if sphere is not None else 0
    if mode == SphereMode.SUBTEXTURE:  # needs the extra uv channel: not drawn
        mode = 0
    toon = cache.get(material.toon, "toon", budget, owner)
    if toon is None:
        shared_index = material.toon_shared
        toon = shared.toons[shared_index] if shared_index is not None else shared.white
    diffuse, ambient = _floats(material.diffuse, 4), _floats(material.ambient, 3)
    if shared.material_light is not None:  # phong: MMD's colour, composed once
        rgb = np.clip(np.multiply(diffuse[:3], shared.material_light) + ambient, 0.0, 1.0)
        diffuse, ambient = (*(float(c) for c in rgb), diffuse[3]), (0.0, 0.0, 0.0)
    opaque = diffuse[3] >= 1.0 and (texture is shared.white or texture in cache.opaque)
    samplers = Samplers.NONE
    if texture is not shared.white:
        samplers |= Samplers.TEXTURE
    if mode:
        samplers |= Samplers.SPHERE
    if face and shared.material_light is not None:
        samplers |= Samplers.RAMP
    return DrawMaterial(
        index=index,
        first=first,
        count=count,
        diffuse=diffuse,
        ambient=ambient,
        specular=_floats(material.specular, 3),
        specular_power=float(material.specular_power),
        double_sided=material.double_sided,
        opaque=opaque,
        textured=samplers,
        edge=bool(material.flags & MaterialFlag.EDGE) and float(material.edge_size) > 0.0,
        edge_color=_floats(material.edge_color, 4),
        edge_size=float(material.edge_size),
        texture=texture,
        sphere=sphere or shared.white,
        sphere_mode=mode,
        toon=toon,
    )


def _floats(values: np.ndarray, n: int) -> tuple:
    array = np.nan_to_num(np.asarray(values, np.float64).reshape(-1)[:n], nan=0.0)
    return tuple(float(v) for v in array)
