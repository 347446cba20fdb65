"""PNG deflate libraries on the renderer's images: CPU ms per 256² image and size, per level.

    .venv/bin/python bench/bench_png.py [MODEL]

Renders 20 random THA1 poses of MODEL, filters their rows with "Up" as pipeline/png.py does, and
deflates them with zlib, ISA-L (`isal`, what the pipeline uses at levels 1–3) and, when
installed, libdeflate (`deflate`) and zlib-ng (`zlib-ng`). Every output is checked to inflate
back to the same rows. The choice in pipeline/png.py rests on these figures.
"""

from __future__ import annotations

import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT.parent / "shared" / "mmd" / "animasa_miku_v2_3" / "miku_v2.pmd"


def candidates() -> dict:
    from isal import isal_zlib

    out = {f"zlib {lvl}": (lambda d, lvl=lvl: zlib.compress(d, lvl)) for lvl in (1, 6)}
    out.update({f"isal {lvl}": (lambda d, lvl=lvl: isal_zlib.compress(d, lvl)) for lvl in (1, 2)})
    try:
        import deflate

        out.update(
            {f"libdeflate {n}": (lambda d, n=n: deflate.zlib_compress(d, n)) for n in (1, 4)}
        )
    except ImportError:
        pass
    try:
        from zlib_ng import zlib_ng

        out.update({f"zlib-ng {n}": (lambda d, n=n: zlib_ng.compress(d, n)) for n in (1, 2)})
    except ImportError:
        pass
    return out


def bench_png(model_path: str | Path = DEFAULT_MODEL, size: int = 256) -> dict:
    from bench.bench_render import random_poses
    from mmd_loader import detect_face, load
    from pipeline.png import filter_up
    from poses import load_schema
    from render import Lighting, Renderer, RenderSettings

    model = load(model_path)
    with Renderer(RenderSettings(size=size, threads=0)) as renderer:
        renderer.set_model(model, detect_face(model))
        poses = random_poses(renderer.bind(load_schema("tha1")), 20)
        rows = [filter_up(renderer.render(p, Lighting())).tobytes() for p in poses]
    print(f"PNG deflate of {len(rows)} renders of {Path(model_path).name} at {size}² ('Up' rows)")
    result = {}
    for name, compress in candidates().items():
        out = [compress(r) for r in rows[:3]]  # warm
        best = float("inf")
        for _ in range(5):
            start = time.process_time()
            out = [compress(r) for r in rows]
            best = min(best, time.process_time() - start)
        if any(zlib.decompress(o) != r for o, r in zip(out, rows, strict=True)):
            raise AssertionError(f"{name}: does not inflate back to its input")
        ms, kib = 1e3 * best / len(rows), sum(map(len, out)) / len(out) / 1024
        result[name] = (ms, kib)
        print(f"  {name:<14} {ms:6.3f} CPU ms per image, {kib:6.1f} KiB")
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    bench_png(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MODEL)
