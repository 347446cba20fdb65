"""The GPU check: render, generate and train on NVIDIA GPUs in one run, and print the figures.

    scripts/gpu_check.sh [MODEL] [--examples 500] [--steps 300] [--batch-size 25]

1. finds the NVIDIA GPUs through EGL device enumeration (`render.devices`) and CUDA through torch,
   and stops with one line and exit 1 when either is missing;
2. renders random THA1 poses of MODEL (default miku_v2.pmd) at 256² on the first GPU: images/s
   end to end and for the bare raster, and checks that images drawn over the rest image (as the
   pipeline draws them) are the bytes of full renders on this driver too;
3. generates a small dataset of MODEL with one worker per CPU core spread over every GPU
   (`LocalRunner(devices=...)`, as `thagen generate --gpus` does): examples/s;
4. trains the full `tha1` morpher on it at batch 25 with bf16 autocast on cuda:0: steps/s after a
   warm-up, peak memory.

`--allow-cpu` runs the same stages on Mesa's llvmpipe and the CPU at toy sizes: it exists so the
script itself is tested where there is no GPU (tests/test_gpu.py); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MMD_DIR = Path(os.environ.get("THAGEN_MMD_DIR", ROOT.parent / "shared" / "mmd"))
DEFAULT_MODEL = MMD_DIR / "animasa_miku_v2_3" / "miku_v2.pmd"


class CheckFailed(RuntimeError):
    """A stage could not run here; the message is the one line the script prints."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--images", type=int, default=300, help="poses rendered in stage 2")
    parser.add_argument("--examples", type=int, default=500, help="examples generated")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=300, help="training steps")
    parser.add_argument("--warmup", type=int, default=20, help="steps left out of steps/s")
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--precision", default="bf16", choices=("bf16", "fp16", "fp32"))
    parser.add_argument("--config", default="tha1", choices=("tha1", "cpu-small"))
    parser.add_argument("--workers", type=int, default=0, help="generate workers (0: cores)")
    parser.add_argument("--out", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--allow-cpu", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("images", "examples", "steps", "batch_size", "size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup >= args.steps:
        args.warmup = 0
    return args


def find_gpus(allow_cpu: bool) -> tuple[list[int], str]:
    """(EGL device indices of the NVIDIA GPUs, the torch device); CheckFailed when there is
    no NVIDIA GPU for EGL or none for torch."""
    import torch

    from render.devices import describe_devices, egl_devices

    devices = egl_devices()
    nvidia = [d.index for d in devices if d.nvidia]
    if allow_cpu:
        return ([d.index for d in devices][:1] or [0]), "cpu"
    problems = []
    if not nvidia:
        problems.append(f"no NVIDIA GPU among the EGL devices ({describe_devices(devices)})")
    if not torch.cuda.is_available():
        problems.append(f"torch {torch.__version__} sees no CUDA device (a CUDA build is needed)")
    if problems:
        raise CheckFailed("; ".join(problems))
    return nvidia, "cuda:0"


def render_stage(model_path: Path, device: int, images: int, size: int) -> dict:
    """Images/s end to end (pose → numpy RGBA) and for the bare raster, on one EGL device."""
    from bench.bench_render import random_poses
    from mmd_loader import detect_face, load
    from poses import load_schema
    from render import Lighting, Pose, Renderer, RenderSettings
    from render.context import renderer_name

    model = load(model_path)
    roles = detect_face(model)
    with Renderer(RenderSettings(size=size, device=device)) as renderer:
        renderer.set_model(model, roles)
        poses = random_poses(renderer.bind(load_schema("tha1")), images + 10)
        light = Lighting()
        for pose in poses[:10]:
            renderer.render(pose, light)
        start = time.perf_counter()
        for pose in poses[10:]:
            renderer.render(pose, light)
        whole = time.perf_counter() - start
        scene, targets, ctx = renderer.scene, renderer.targets, renderer.ctx
        mvp = scene.framing.matrix()
        start = time.perf_counter()
        for _ in range(images):
            targets.begin()
            scene.draw(mvp, light, 0.6, False)
            targets.resolve()
        ctx.finish()
        bare = time.perf_counter() - start
        name = renderer_name(ctx)
        # The pipeline draws expression and posed images over the rest image: on this driver
        # too they must be the bytes of a full render (scissor and a part of the triangles).
        rest, differ, checked = renderer.render(Pose(), light), 0, poses[: min(20, images)]
        for pose in checked:
            for q in (Pose(morphs=pose.morphs), pose):
                differ += not np.array_equal(
                    renderer.render(q, light), renderer.render(q, light, rest=rest)
                )
    return {
        "gl_renderer": name,
        "egl_device": device,
        "images_per_s": images / whole,
        "bare_images_per_s": images / bare,
        "over_rest_checked": 2 * len(checked),
        "over_rest_differ": differ,
    }


def generate_stage(model_path: Path, out: Path, devices: list[int], args) -> dict:
    """A dataset of the model rendered by local workers spread over `devices`."""
    from pipeline.catalog import scan
    from pipeline.config import GenerateConfig
    from pipeline.generate import generate
    from pipeline.runners import LocalRunner
    from pipeline.splits import SplitConfig

    splits = SplitConfig(train=1.0, val=0.0, test=0.0)
    catalog = scan([model_path], splits, jobs=1, progress=False)
    if not catalog["usable"].all():
        raise CheckFailed(f"{model_path}: not usable: {catalog['reasons'].iloc[0]}")
    workers = args.workers or os.cpu_count() or 1
    config = GenerateConfig(
        examples_per_character=args.examples,
        image_size=args.size,
        shard_max_examples=max(1, args.examples // (2 * workers)),
        splits=splits,
    )
    with LocalRunner(workers, devices) as runner:
        warm = replace(config, examples_per_character=2 * workers, shard_max_examples=2)
        generate(warm, catalog, out.with_name(out.name + "-warm"), runner, progress=False)
        start = time.perf_counter()
        info = generate(config, catalog, out, runner, progress=False)["dataset"]
        seconds = time.perf_counter() - start
    return {
        "workers": workers,
        "egl_devices": devices,
        "examples": info["counts"]["examples"],
        "examples_per_s": info["counts"]["examples"] / seconds,
        "gl_renderer": info["versions"]["gl_renderer"],
    }


def train_stage(data: Path, out: Path, device: str, args) -> dict:
    """Steps/s of the morpher after a warm-up, and the peak device memory."""
    import torch

    from training.configs import get_config
    from training.trainer import Trainer

    config = get_config(args.config).with_overrides(
        batch_size=args.batch_size,
        log_every=10**9,
        sample_every=10**9,
        checkpoint_every=10**9,
        num_workers=min(4, os.cpu_count() or 1) if device != "cpu" else 0,
    )
    trainer = Trainer(
        "morpher", data, out, config, device=device, precision=args.precision, log=lambda _: None
    )
    cuda = trainer.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(trainer.device)
    batches = iter(trainer.stream())
    start = time.perf_counter()
    for step in range(args.steps):
        if step == args.warmup:
            if cuda:
                torch.cuda.synchronize(trainer.device)
            start = time.perf_counter()
        loss, _, _ = trainer.train_step(next(batches))
    if cuda:
        torch.cuda.synchronize(trainer.device)
    seconds = time.perf_counter() - start
    timed = args.steps - args.warmup
    return {
        "device": str(trainer.device),
        "device_name": torch.cuda.get_device_name(trainer.device) if cuda else "cpu",
        "config": args.config,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "steps": args.steps,
        "steps_per_s": timed / seconds,
        "examples_per_s": timed * args.batch_size / seconds,
        "peak_memory_gib": torch.cuda.max_memory_allocated(trainer.device) / 2**30 if cuda else 0,
        "last_loss": loss,
    }


def report(figures: dict) -> str:
    r, g, t = figures["render"], figures["generate"], figures["train"]
    return "\n".join(
        [
            f"gpu_check on {r['gl_renderer']} (EGL device {r['egl_device']}), torch {t['device']}",
            f"  render {figures['model']} at {figures['size']}²: {r['images_per_s']:.1f} images/s "
            f"end to end, {r['bare_images_per_s']:.1f} images/s bare raster; drawn over the rest "
            f"image, {r['over_rest_differ']} of {r['over_rest_checked']} images differ from full "
            "renders (should be 0)",
            f"  generate: {g['examples']} examples, {g['examples_per_s']:.1f} examples/s with "
            f"{g['workers']} workers on EGL devices {g['egl_devices']}",
            f"  train {t['config']} morpher, batch {t['batch_size']}, {t['precision']}: "
            f"{t['steps_per_s']:.2f} steps/s ({t['examples_per_s']:.0f} examples/s), peak "
            f"memory {t['peak_memory_gib']:.2f} GiB on {t['device_name']}, "
            f"last loss {t['last_loss']:.4f}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if not args.model.is_file():
            raise CheckFailed(f"{args.model}: no such model file (pass one: gpu_check.sh MODEL)")
        devices, torch_device = find_gpus(args.allow_cpu)
        work = args.out or Path(tempfile.mkdtemp(prefix="thagen-gpu-check-"))
        try:
            figures = {"model": args.model.name, "size": args.size}
            figures["render"] = render_stage(args.model, devices[0], args.images, args.size)
            data = work / "dataset"
            figures["generate"] = generate_stage(args.model, data, devices, args)
            figures["train"] = train_stage(data, work / "run", torch_device, args)
        finally:
            if args.out is None:
                shutil.rmtree(work, ignore_errors=True)
    except CheckFailed as error:
        print(f"gpu_check: {error}", file=sys.stderr)
        return 1
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
