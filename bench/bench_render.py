"""Renderer throughput: random THA1 poses → numpy RGBA, against the bare-raster bound.

`python -m bench.bench_render [MODEL]` or `make bench`. The bare-raster bound replays the same
draw calls (clear, scene, anti-aliasing resolve) on static buffers with no readback, then
glFinish. Each llvmpipe thread setting runs in its own process (Mesa reads LP_NUM_THREADS once).
End to end and bare are timed in interleaved rounds and the median round is reported, so a burst
of other work on the machine hits both alike; CPU time (every thread of the process, llvmpipe's
included) is printed beside the wall-clock rate because that other work changes it much less.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT.parent / "shared" / "mmd" / "animasa_miku_v2_3" / "miku_v2.pmd"
POSES = 60  # per round
ROUNDS = 5
WARMUP = 10
THREADS = (0, 2)  # llvmpipe raster threads: none (the pipeline's choice) and one per core
GOAL_RATE, GOAL_RATIO = 60.0, 0.6


def random_poses(binding, count: int, seed: int = 0) -> list:
    """Poses drawn by the binding's schema's own laws (tha1: morphs uniform in [0, 1],
    rotations with density ∝ |x| on [-1, 1]), as `Pose`s of its model."""
    from poses.sampling import sample_pose

    rng = np.random.default_rng(seed)
    return [binding.pose(sample_pose(binding.schema, rng)) for _ in range(count)]


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(step, items: list) -> tuple[float, float]:
    """(wall seconds, CPU seconds) for `step` over `items`."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    for item in items:
        step(item)
    return time.perf_counter() - wall, cpu_seconds() - cpu


def measure(model_path: str, size: int, supersample: int, msaa: int, threads: int) -> dict:
    """One process's figures for one setting (run it in a fresh process: see `bench_render`)."""
    from mmd_loader import detect_face, load
    from poses import load_schema
    from render import Lighting, Renderer, RenderSettings
    from render.context import renderer_name

    model = load(model_path)
    roles = detect_face(model)
    lighting = Lighting()
    settings = RenderSettings(size=size, supersample=supersample, msaa=msaa, threads=threads)
    with Renderer(settings) as renderer:
        renderer.set_model(model, roles)
        poses = random_poses(renderer.bind(load_schema("tha1")), POSES * ROUNDS + WARMUP)
        scene, targets, ctx = renderer.scene, renderer.targets, renderer.ctx
        mvp = scene.framing.matrix()

        def whole(pose) -> None:
            renderer.render(pose, lighting)

        def bare(_pose) -> None:
            targets.begin()
            scene.draw(mvp, lighting, 0.6, False)
            targets.resolve()
            ctx.finish()

        def pose_only(pose) -> None:
            scene.apply(pose)

        steps = {"whole": whole, "bare": bare, "pose": pose_only}
        for step in steps.values():
            for pose in poses[:WARMUP]:
                step(pose)
        rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
        for r in range(ROUNDS):
            chunk = poses[WARMUP + r * POSES : WARMUP + (r + 1) * POSES]
            for name, step in steps.items():
                rounds[name].append(_timed(step, chunk))
        result = {
            "threads": threads,
            "renderer": renderer_name(ctx),
            "moving_vertices": len(scene.rig.order) - scene.rig.start,
            "vertices": len(model.positions),
            "triangles_drawn": sum(m.count for m in scene.materials) // 3,
            "triangles": len(model.triangles),
        }
    for name, times in rounds.items():
        result[f"{name}_per_s"] = POSES / statistics.median(wall for wall, _ in times)
        result[f"{name}_cpu_ms"] = 1e3 * statistics.median(cpu for _, cpu in times) / POSES
    return result


def bench_render(
    model_path: str | Path = DEFAULT_MODEL, size: int = 256, supersample: int = 2, msaa: int = 0
) -> dict:
    """Print and return images/s end to end, the bare-raster bound and their ratio, for each
    llvmpipe thread setting, with CPU time per image and where it goes."""
    load = os.getloadavg()[0]
    spawn = multiprocessing.get_context("spawn")
    rows = []
    for threads in THREADS:
        with spawn.Pool(1) as pool:
            args = (str(model_path), size, supersample, msaa, threads)
            rows.append(pool.apply(measure, args))
    best = max(rows, key=lambda r: r["whole_per_s"])
    aa = f"{supersample}×{supersample} supersampling" if supersample > 1 else "no supersampling"
    aa += f" + MSAA {msaa}" if msaa > 1 else ""
    print(
        f"render {Path(model_path).name} at {size}², {aa}, on {best['renderer']}\n"
        f"  load average {load:.1f} on {os.cpu_count()} cores before this run (other work "
        f"slows the wall-clock rates; CPU ms per image depends on it much less)"
    )
    print(
        "  LP_NUM_THREADS   end to end (pose → numpy RGBA)   bare raster (no upload/readback)"
        "   ratio"
    )
    for r in rows:
        print(
            f"  {r['threads']:>14}   {r['whole_per_s']:7.1f} images/s ({r['whole_cpu_ms']:5.2f} "
            f"CPU ms)    {r['bare_per_s']:7.1f} images/s ({r['bare_cpu_ms']:5.2f} CPU ms)"
            f"   {r['whole_per_s'] / r['bare_per_s']:5.2f}"
        )
    ratio = best["whole_per_s"] / best["bare_per_s"]
    met = best["whole_per_s"] >= GOAL_RATE and ratio >= GOAL_RATIO
    print(
        f"  best: {best['whole_per_s']:.1f} images/s end to end, {ratio:.2f} of the bare bound "
        f"(goal ≥ {GOAL_RATE:.0f} images/s and ≥ {GOAL_RATIO}): {'met' if met else 'NOT met'}"
    )
    print(
        f"  where the CPU time goes ({best['threads']} threads): {best['whole_cpu_ms']:.2f} ms "
        f"per image; posing (morphs, skinning, upload of {best['moving_vertices']}/"
        f"{best['vertices']} vertices) {best['pose_cpu_ms']:.2f} ms; clear, draw "
        f"({best['triangles_drawn']}/{best['triangles']} triangles in view) and resolve "
        f"{best['bare_cpu_ms']:.2f} ms; the rest is the readback",
        flush=True,
    )
    return {"model": str(model_path), "size": size, "supersample": supersample, "rows": rows}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    bench_render(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MODEL)
