"""Evaluation on a split: L1, RMSE, PSNR and SSIM of a network next to the identity baseline.

Every metric is computed on RGBA mapped to [0, 1] (all four channels, straight alpha), per example,
then averaged over the examples: L1 = mean |a − b|; RMSE = √mean (a − b)²; PSNR = 10·log10(1 / MSE)
with MSE floored at 1e-10 (so identical images score 100 dB); SSIM with an 11×11 Gaussian window,
σ = 1.5, C1 = 0.01², C2 = 0.03², averaged over channels and pixels (``skimage``'s
``structural_similarity(gaussian_weights=True, use_sample_covariance=False)`` on the valid region).
The identity baseline outputs the input unchanged (rest for the morpher, expression for the
rotator and combiner), on the same examples.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from media.locks import reading_dataset
from media.owned import write_atomic
from training import checkpoint as ckpt
from training.data import ShardStream
from training.images import grid, save_png
from training.trainer import pick_device

METRICS = ("l1", "rmse", "psnr", "ssim")
PSNR_FLOOR = 1e-10


def _gaussian(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-example SSIM of B×C×H×W images in [0, 1] (valid-region mean, channels averaged)."""
    a, b = a.double(), b.double()
    c = a.shape[1]
    g = _gaussian().to(a.device)
    kx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, kx, groups=c), ky, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return s.mean(dim=(1, 2, 3)).float()


def metrics(output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-example metrics of B×4×H×W tensors in [-1, 1] (mapped to [0, 1] first)."""
    a, b = (output.clamp(-1, 1) + 1) / 2, (target.clamp(-1, 1) + 1) / 2
    diff = (a - b).flatten(1)
    mse = diff.pow(2).mean(1)
    return {
        "l1": diff.abs().mean(1),
        "rmse": mse.sqrt(),
        "psnr": 10 * torch.log10(1 / mse.clamp_min(PSNR_FLOOR)),
        "ssim": ssim(a, b),
    }


def psnr_value(mse: float) -> float:
    """The PSNR formula used above, for one MSE on [0, 1] images."""
    return 10 * math.log10(1 / max(mse, PSNR_FLOOR))


def evaluate(
    checkpoint: Path,
    data: Path,
    split: str = "val",
    *,
    batch_size: int = 8,
    device: str = "auto",
    rotator_checkpoint: Path | None = None,
    limit: int | None = None,
    out: Path | None = None,
    grid_path: Path | None = None,
) -> dict:
    """Metrics of the checkpoint's network and of the identity baseline on ``split``.

    Returns ``{"network", "checkpoint", "split", "examples", "results": {row: {metric: mean}}}``
    with rows ``identity`` and the network's outputs (``morpher``; ``rotator/change`` and
    ``rotator/flow``; ``combiner``); also written as JSON to ``out`` when given. ``grid_path``
    gets a PNG of the first batch: input / output(s) / target rows.
    """
    with reading_dataset(data, "evaluate"):  # never a dataset that is being written
        return _evaluate(
            checkpoint, data, split, batch_size, device, rotator_checkpoint, limit, out, grid_path
        )


def _evaluate(
    checkpoint: Path,
    data: Path,
    split: str,
    batch_size: int,
    device: str,
    rotator_checkpoint: Path | None,
    limit: int | None,
    out: Path | None,
    grid_path: Path | None,
) -> dict:
    dev = pick_device(device)
    model, state = ckpt.load_network(checkpoint, dev)
    network = state["network"]
    rotator = None
    if network == "combiner":
        source = rotator_checkpoint or state.get("rotator_checkpoint")
        if source is None:
            raise ValueError(f"{state['checkpoint']}: combiner without a rotator checkpoint")
        rotator, _ = ckpt.load_network(source, dev)
    stream = ShardStream(
        data,
        split,
        network,
        size=state["config"]["network"]["image_size"],
        batch_size=batch_size,
        shuffle=False,
    )
    if stream.pose_names != state["pose_names"]:
        raise ValueError(f"{data}: schema {stream.pose_names} ≠ checkpoint {state['pose_names']}")
    names = {"morpher": ["morpher"], "rotator": ["rotator/change", "rotator/flow"]}
    rows = ["identity", *names.get(network, [network])]
    sums = {row: dict.fromkeys(METRICS, 0.0) for row in rows}
    count = 0
    with torch.no_grad():
        for batch in DataLoader(stream, batch_size=None):
            if limit is not None and count >= limit:
                break
            take = len(batch["key"]) if limit is None else min(len(batch["key"]), limit - count)
            image = batch["input"][:take].to(dev)
            pose = batch["pose"][:take].to(dev)
            target = batch["target"][:take].to(dev)
            if network == "morpher":
                outputs = [model(image, pose)]
            elif network == "rotator":
                outputs = list(model(image, pose))
            else:
                outputs = [model(*rotator(image, pose), pose)]
            if grid_path is not None and count == 0:
                save_png(grid([image.cpu(), *(o.cpu() for o in outputs), target.cpu()]), grid_path)
            for row, output in zip(rows, [image, *outputs], strict=True):
                for name, values in metrics(output, target).items():
                    sums[row][name] += float(values.sum())
            count += take
    if count == 0:
        raise ValueError(f"{data}: no {split} examples")
    figures = [v for row in sums.values() for v in row.values()]
    if not all(math.isfinite(v) for v in figures):
        raise ValueError(
            f"{state['checkpoint']}: the network's outputs are not finite; not written"
        )
    result = {
        "network": network,
        "checkpoint": state["checkpoint"],
        "data": str(data),
        "split": split,
        "examples": count,
        "metric_space": "RGBA in [0, 1]",
        "results": {row: {k: v / count for k, v in sums[row].items()} for row in rows},
    }
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(Path(out), json.dumps(result, indent=2).encode("utf-8"), "evaluation")
    return result


def format_table(result: dict) -> str:
    """The results as an aligned text table."""
    lines = [f"{result['network']} on {result['split']} ({result['examples']} examples)"]
    lines.append(f"{'':16}" + "".join(f"{m:>10}" for m in METRICS))
    for row, values in result["results"].items():
        lines.append(f"{row:16}" + "".join(f"{values[m]:10.5f}" for m in METRICS))
    return "\n".join(lines)
