"""Converting a dance to poses: `python bench/bench_motion.py` prints the figures (best of 3).

A synthetic five-minute dance (`bench.dance`: 57 bones keyed every 2-8 frames, about 103k bone
and 7k morph keyframes, 11.6 MB, as real dances are) on a procedural character: reading the
VMD, mapping it onto the model (the face finder's closure analysis, name tables, bone chain),
sampling 9,001 poses at 30 fps with MMD's interpolation, and all of `thagen motion` (the model
loaded and its face found too, the CSV written).
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECONDS = 300  # five minutes: frames 0..9000 at MMD's 30 per second


def _best(fn, runs: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_motion() -> dict:
    import numpy as np

    from bench.dance import dance
    from characters import write_character
    from mmd_loader import detect_face, load
    from mmd_loader.motion import load_motion
    from mmd_loader.motion_schema import MotionMapping, MotionSequence
    from poses.schema import load_schema
    from thagen.cli import main

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        vmd = folder / "dance.vmd"
        vmd.write_bytes(dance(SECONDS))
        model_path = write_character(3, folder / "c" / "character.pmx")
        read, motion = _best(lambda: load_motion(vmd))
        keys = len(motion.bones.frame), len(motion.morphs.frame)
        size = vmd.stat().st_size / 1e6
        print(
            f"dance: {keys[0]:,} bone + {keys[1]:,} morph keyframes, {size:.1f} MB, frames "
            f"0..{motion.last_frame}; read {read * 1000:.0f} ms"
        )
        model = load(model_path)
        roles = detect_face(model)
        for name in ("tha1", "tha3"):
            schema = load_schema(name)
            built, mapping = _best(lambda schema=schema: MotionMapping.build(schema, model, roles))

            def convert(mapping=mapping):
                sequence = MotionSequence(mapping, motion, 30.0)
                return sum(len(v) for _, v in sequence.chunks()), sequence

            sampled, (rows, sequence) = _best(convert)
            assert rows == 9001 and np.isfinite(sequence.converter.values(np.array([0.0]))).all()
            csv = folder / f"{name}.csv"
            argv = ["motion", str(vmd), "--model", str(model_path), "--schema", name]
            with contextlib.redirect_stdout(io.StringIO()):  # its own report lines
                whole, _ = _best(lambda argv=argv, csv=csv: main([*argv, "-o", str(csv)]))
            out[name] = {"map_s": built, "sample_s": sampled, "thagen_motion_s": whole}
            print(
                f"{name}: map {built * 1000:.0f} ms, sample {rows:,} poses {sampled:.2f} s "
                f"({rows / sampled:,.0f} poses/s); read + map + sample "
                f"{read + built + sampled:.2f} s; `thagen motion` (model load, face, CSV) "
                f"{whole:.2f} s"
            )
    return out


if __name__ == "__main__":
    import os

    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    bench_motion()
