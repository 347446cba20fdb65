"""One process's renders, skinned vertices and PNG bytes of fixed poses, for
tests/test_determinism_scope.py, which runs it under different instruction sets (one GL context
per process, so one process per setting).

    python -m tests.determinism_probe OUT.npz [MODEL ...]

Renders a procedural character (seed 3) and each MODEL at 256² in 8 poses drawn by THA1's laws
(seed 0) under THA1's lighting, and writes the RGBA images, the vertices the rig skinned for each
pose (numpy, float32), the PNG bytes thagen writes for each image (ISA-L, level 1), and the GL
renderer string (llvmpipe names its vector width).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

POSES = 8


def main(argv: list[str]) -> int:
    from bench.bench_render import random_poses
    from characters import write_character
    from mmd_loader import detect_face, load
    from pipeline.png import encode_png
    from poses import load_schema
    from render import Lighting, Renderer, RenderSettings

    out, paths = Path(argv[0]), [Path(p) for p in argv[1:]]
    with tempfile.TemporaryDirectory() as tmp:
        paths.insert(0, write_character(3, Path(tmp) / "c3.pmx"))
        images, skinned, pngs = [], [], []
        with Renderer(RenderSettings(size=256)) as renderer:
            light = Lighting(ambient=0.8, directional=0.5)
            for path in paths:
                model = load(path)
                renderer.set_model(model, detect_face(model))
                for pose in random_poses(renderer.bind(load_schema("tha1")), POSES, seed=0):
                    image = renderer.render(pose, light)
                    images.append(image)
                    skinned.append(renderer.scene.apply(pose).data.astype(np.float32).ravel())
                    pngs.append(np.frombuffer(encode_png(image, 1), np.uint8))
            gl = renderer.ctx.info["GL_RENDERER"]
    np.savez(
        out,
        images=np.stack(images),
        skinned=np.concatenate(skinned),
        png=np.concatenate(pngs),
        png_sizes=np.array([len(p) for p in pngs]),
        gl=np.array(gl),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
