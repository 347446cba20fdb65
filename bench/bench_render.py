"""Renderer throughput: random THA1 poses → numpy RGBA, against the bare-raster bound.

`python -m bench.bench_render [MODEL]` or `make bench`. The bare-raster bound replays the same
draw calls (scene + anti-aliasing resolve) on static buffers with no readback, then glFinish.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
POSES = 200
WARMUP = 10


def random_poses(count: int, seed: int = 0) -> list:
    """THA1 poses: morphs uniform in [0, 1], rotations with density ∝ |x| on [-1, 1]."""
    from render import Pose

    rng = np.random.default_rng(seed)
    morphs = rng.uniform(0.0, 1.0, (count, 3))
    rotations = np.sqrt(rng.uniform(0.0, 1.0, (count, 3))) * rng.choice([-1.0, 1.0], (count, 3))
    return [Pose.tha1(*m, *r) for m, r in zip(morphs, rotations, strict=True)]


def _rate(step, items: list) -> float:
    for item in items[:WARMUP]:
        step(item)
    start = time.perf_counter()
    for item in items:
        step(item)
    return len(items) / (time.perf_counter() - start)


def bench_render(model_path: Path, size: int = 256, supersample: int = 2, msaa: int = 0) -> dict:
    """Print and return images/s end to end, the bare-raster bound, their ratio, and a breakdown."""
    from mmd_loader import detect_face, load
    from render import Lighting, Renderer, RenderSettings
    from render.context import renderer_name

    model = load(model_path)
    roles = detect_face(model)
    poses = random_poses(POSES)
    lighting = Lighting()
    settings = RenderSettings(size=size, supersample=supersample, msaa=msaa)
    with Renderer(settings) as renderer:
        renderer.set_model(model, roles)
        scene, targets, ctx = renderer.scene, renderer.targets, renderer.ctx
        mvp = scene.framing.matrix()

        def bare(_pose) -> None:
            targets.begin()
            scene.draw(mvp, lighting, 0.6, False)
            targets.resolve()
            ctx.finish()

        end_to_end = _rate(lambda pose: renderer.render(pose, lighting), poses)
        bound = _rate(bare, poses)
        deform = _rate(lambda pose: scene.apply(pose, settings.max_degrees), poses)
        read = _rate(lambda _pose: targets.finish(), poses)
        moving = len(scene.order) - scene.start
        drawn = sum(m.count for m in scene.materials) // 3
        gl = renderer_name(ctx)
    result = {
        "model": str(model_path),
        "renderer": gl,
        "size": size,
        "supersample": supersample,
        "msaa": msaa,
        "images_per_s": end_to_end,
        "bare_raster_per_s": bound,
        "ratio": end_to_end / bound,
        "deform_ms": 1e3 / deform,
        "resolve_readback_ms": 1e3 / read,
        "moving_vertices": moving,
        "vertices": len(model.positions),
        "triangles_drawn": drawn,
        "triangles": len(model.triangles),
    }
    print(
        f"render {Path(model_path).name} {size}² ss×{supersample} msaa {msaa} on {gl}\n"
        f"  end to end (pose → numpy RGBA): {end_to_end:7.1f} images/s\n"
        f"  bare raster (static, no readback): {bound:7.1f} images/s\n"
        f"  ratio {result['ratio']:.2f}; per image: deform {result['deform_ms']:.2f} ms, "
        f"resolve+readback {result['resolve_readback_ms']:.2f} ms\n"
        f"  {moving}/{len(model.positions)} vertices re-uploaded per pose, "
        f"{drawn}/{len(model.triangles)} triangles drawn",
        flush=True,
    )
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    default = ROOT.parent / "shared" / "mmd" / "animasa_miku_v2_3" / "miku_v2.pmd"
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    bench_render(path)
    for ss, ms in ((1, 0), (1, 4), (3, 0)):
        bench_render(path, supersample=ss, msaa=ms)
