"""`thagen train`, `evaluate`, `pose` and `train-demo`. torch is imported inside the handlers."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

NETWORK_NAMES = ("morpher", "rotator", "combiner")
CONFIG_NAMES = ("tha1", "cpu-small")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a THA1 network on dataset shards")
    p.add_argument("network", choices=NETWORK_NAMES)
    p.add_argument("--data", type=Path, required=True, help="dataset folder (shards)")
    p.add_argument("--out", type=Path, required=True, help="run folder, e.g. runs/NAME")
    p.add_argument("--config", default="tha1", choices=CONFIG_NAMES)
    p.add_argument("--steps", type=int, help="total steps (default: the config's)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help="DataLoader workers (default: the config's)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda:0…")
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    p.add_argument("--rotator-checkpoint", type=Path, help="trained rotator (for the combiner)")
    p.add_argument("--vgg16-weights", type=Path, help="VGG16 weights file: adds perceptual loss")
    p.add_argument("--perceptual-weight", type=float, help="weight of the perceptual loss")
    p.add_argument("--change-weight", type=float, help="weight of the L1 on changed pixels")
    p.add_argument("--sample-every", type=int)
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--shuffle-buffer", type=int, help="examples in the shuffle buffer (1: none)")
    p.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "fp16"),
        help="autocast the forward pass (bf16; fp16 with a gradient scaler); weights stay fp32",
    )
    p.add_argument(
        "--channels-last", action="store_true", help="NHWC images and activations (GPUs)"
    )
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="data-parallel processes on this machine (torchrun; one per GPU, gloo on the CPU); "
        "each trains at --batch-size",
    )
    p.set_defaults(handler=train_command)

    p = sub.add_parser("evaluate", help="L1/RMSE/PSNR/SSIM of a checkpoint vs the identity")
    p.add_argument("--checkpoint", type=Path, required=True, help="checkpoint or run folder")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--limit", type=int, help="evaluate only the first N examples")
    p.add_argument("--rotator-checkpoint", type=Path, help="override the combiner's rotator")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, help="output JSON (default: CHECKPOINT/eval_SPLIT.json)")
    p.set_defaults(handler=evaluate_command)

    p = sub.add_parser("pose", help="pose a drawing with trained networks")
    p.add_argument("--checkpoints", type=Path, nargs="+", required=True, help="runs or a folder")
    p.add_argument("--image", type=Path, required=True, help="RGBA PNG, 256×256 or the net's size")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--pose", help="e.g. left_eye=1,head_y=0.5 (others 0)")
    group.add_argument(
        "--sequence", type=Path, help="pose CSV, or an MMD motion (.vmd/.vpd) with --model"
    )
    p.add_argument("-o", "--out", type=Path, required=True, help=".png, or .gif/.mp4 for sequences")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--model",
        type=Path,
        help="the MMD model a .vmd/.vpd was made for: its morphs and bones say what the motion "
        "does (its face is mapped onto the networks' pose)",
    )
    p.add_argument("--fps", type=float, help="frames per second a motion is sampled at (30)")
    p.add_argument(
        "--schema",
        help="the schema YAML a motion is mapped onto (default: the checkpoint's, tha1/tha3)",
    )
    p.set_defaults(handler=pose_command)

    p = sub.add_parser("train-demo", help="train cpu-small morpher + rotator, evaluate, report")
    p.add_argument("--data", type=Path, required=True, help="dataset folder (train and val)")
    p.add_argument("--out", type=Path, required=True, help="output folder, e.g. runs/demo")
    p.add_argument("--minutes", type=float, default=14.0, help="training budget, both networks")
    p.add_argument("--config", default="cpu-small", choices=CONFIG_NAMES)
    p.set_defaults(handler=train_demo_command)


# `thagen train` options passed on to every rank when --nproc starts several processes.
FORWARDED = (
    "config",
    "steps",
    "batch_size",
    "lr",
    "seed",
    "workers",
    "device",
    "rotator_checkpoint",
    "vgg16_weights",
    "perceptual_weight",
    "change_weight",
    "sample_every",
    "checkpoint_every",
    "shuffle_buffer",
    "precision",
)


def rank_argv(args: argparse.Namespace) -> list[str]:
    """The arguments of `python -m training` for every rank of a `--nproc` run."""
    argv = [args.network, "--data", str(args.data), "--out", str(args.out)]
    for name in FORWARDED:
        value = getattr(args, name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    argv += ["--resume"] if args.resume else []
    argv += ["--channels-last"] if args.channels_last else []
    return argv


def train_command(args: argparse.Namespace) -> int:
    if args.nproc < 1:
        raise ValueError(f"--nproc must be >= 1, not {args.nproc}")
    if args.shuffle_buffer is not None and args.shuffle_buffer < 1:
        raise ValueError(f"--shuffle-buffer must be >= 1, not {args.shuffle_buffer}")
    if args.nproc > 1:
        from training.distributed import launch

        code = launch(args.nproc, rank_argv(args))
        if code:
            print(f"training failed (exit code {code}); the failing rank's message is above")
        return code
    from training.configs import get_config
    from training.distributed import shutdown
    from training.trainer import train

    config = get_config(args.config).with_overrides(
        batch_size=args.batch_size,
        lr=args.lr,
        sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every,
        shuffle_buffer=args.shuffle_buffer,
        perceptual_weight=args.perceptual_weight,
        change_weight=args.change_weight,
    )
    try:
        result = train(
            args.network,
            args.data,
            args.out,
            config,
            steps=args.steps,
            resume=args.resume,
            seed=args.seed,
            device=args.device,
            rotator_checkpoint=args.rotator_checkpoint,
            vgg16_weights=args.vgg16_weights,
            num_workers=args.workers,
            precision=args.precision,
            channels_last=args.channels_last,
        )
    finally:
        shutdown()
    if os.environ.get("RANK", "0") == "0":
        print(f"{result.step} steps, last loss {result.loss:.5f}, checkpoint {result.checkpoint}")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate, format_table

    out = args.json or Path(args.checkpoint) / f"eval_{args.split}.json"
    result = evaluate(
        args.checkpoint,
        args.data,
        args.split,
        batch_size=args.batch_size,
        device=args.device,
        rotator_checkpoint=args.rotator_checkpoint,
        limit=args.limit,
        out=out,
    )
    print(format_table(result))
    print(f"wrote {out}")
    return 0


def pose_command(args: argparse.Namespace) -> int:
    from poses.sequence import MOTION_SUFFIXES
    from training.posing import Poser, animate, pose_image

    motion = args.sequence is not None and args.sequence.suffix.lower() in MOTION_SUFFIXES
    if not motion and (args.model or args.fps or args.schema):
        raise ValueError("--model, --fps and --schema go with a motion (--sequence X.vmd)")
    if motion and args.model is None:
        raise ValueError(
            f"{args.sequence}: a motion needs --model, the MMD model it drives: what its morphs "
            "and bones do there decides the pose"
        )
    poser = Poser.load(args.checkpoints, args.device)
    if args.sequence is None:
        out = pose_image(poser, args.image, args.pose, args.out)
    elif motion:
        source = _motion_source(args, poser)
        out = animate(poser, args.image, source, args.out)
        for line in source.report.lines():
            print(f"  {line}")
    else:
        out = animate(poser, args.image, args.sequence, args.out)
    print(f"wrote {out}")
    return 0


def _motion_source(args: argparse.Namespace, poser):
    """The motion as a pose sequence, through the converter the `thagen` CLI hands over
    (`args.convert_motion`: training may not read MMD files itself)."""
    convert = getattr(args, "convert_motion", None)
    if convert is None:
        raise ValueError(f"{args.sequence}: motions are converted by `thagen pose`")
    schema = args.schema or (poser.schema or {}).get("name")
    if not schema:
        raise ValueError("the checkpoint records no schema: give --schema (tha1, tha3 or a YAML)")
    source = convert(args.sequence, args.model, schema, 30.0 if args.fps is None else args.fps)
    missing = [n for n in poser.names if n not in source.names]
    if missing:
        raise ValueError(f"schema {schema} lacks the networks' parameters {missing[:8]}")
    return source


def train_demo_command(args: argparse.Namespace) -> int:
    from training.demo import run_demo

    summary = run_demo(args.data, args.out, args.minutes, config=args.config)
    print(f"{summary['seconds'] / 60:.1f} min; report {summary['report']}")
    return 0
