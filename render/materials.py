"""Materials on the GPU: texture uploads (cached per file), default toon ramps, draw records."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import moderngl
import numpy as np

from mmd_loader.model import Material, MaterialFlag, SphereMode
from render.toon import default_toon

WHITE = np.full((1, 1, 4), 255, np.uint8)


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
    """Textures of one model, uploaded once per file; `release()` frees them all."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self._textures: dict[tuple[Path, bool], moderngl.Texture | None] = {}
        self.opaque: set[moderngl.Texture] = set()  # textures whose alpha is 255 everywhere
        self.warnings: list[str] = []

    def get(self, path: Path | None, *, repeat: bool = True) -> moderngl.Texture | None:
        """The texture for `path`, or None when there is none or it cannot be read."""
        if path is None:
            return None
        key = (Path(path), repeat)
        if key not in self._textures:
            self._textures[key] = self._load(key[0], repeat)
        return self._textures[key]

    def _load(self, path: Path, repeat: bool) -> moderngl.Texture | None:
        from mmd_loader.images import read_image

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rgba = read_image(path)
        except Exception as error:  # a bad texture falls back to the material colour
            self.warnings.append(f"{path}: {error}")
            return None
        texture = upload_rgba(self.ctx, rgba, mipmaps=True, repeat=repeat)
        if np.all(np.asarray(rgba)[..., 3] == 255):
            self.opaque.add(texture)
        return texture

    def release(self) -> None:
        for texture in self._textures.values():
            if texture is not None:
                texture.release()
        self._textures.clear()
        self.opaque.clear()


class SharedTextures:
    """Textures every model may use, kept for the Renderer's life: white and the toon ramps."""

    def __init__(self, ctx: moderngl.Context) -> None:
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
    textured: bool  # False: no texture (white), the shader skips sampling
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
) -> DrawMaterial:
    """The draw record of `material`; missing textures fall back to white (the material colour)."""
    texture = cache.get(material.texture) or shared.white
    sphere = cache.get(material.sphere, repeat=False) if material.sphere_mode else None
    mode = int(material.sphere_mode) if sphere is not None else 0
    if mode == SphereMode.SUBTEXTURE:  # needs the extra uv channel: not drawn
        mode = 0
    toon = cache.get(material.toon, repeat=False)
    if toon is None:
        shared_index = material.toon_shared
        toon = shared.toons[shared_index] if shared_index is not None else shared.white
    diffuse = _floats(material.diffuse, 4)
    opaque = diffuse[3] >= 1.0 and (texture is shared.white or texture in cache.opaque)
    return DrawMaterial(
        index=index,
        first=first,
        count=count,
        diffuse=diffuse,
        ambient=_floats(material.ambient, 3),
        specular=_floats(material.specular, 3),
        specular_power=float(material.specular_power),
        double_sided=material.double_sided,
        opaque=opaque,
        textured=texture is not shared.white,
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
