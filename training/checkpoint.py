"""Checkpoints: ``RUN/checkpoints/step_NNNNNN/{model.safetensors, optimizer.safetensors,
state.json}``. Tensors are safetensors, everything else JSON; loading never unpickles anything.

``state.json`` holds the format tag, the network kind, the step, the full training config, the
pose parameter names, the optimizer's param groups and non-tensor state, and the torch RNG state.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

FORMAT = "thagen-checkpoint-1"
FILES = ("model.safetensors", "optimizer.safetensors", "state.json")


class CheckpointError(ValueError):
    """A checkpoint that is missing or not in thagen's format; names the path."""


def save_checkpoint(
    run_dir: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict
) -> Path:
    """Write the checkpoint for ``step`` (atomically: a temporary folder renamed into place)."""
    final = checkpoint_dir(run_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": FORMAT})
    tensors, optim_json = _optimizer_to_safe(optimizer)
    save_file(tensors, str(tmp / "optimizer.safetensors"), metadata={"format": FORMAT})
    rng = base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii")
    full = {"format": FORMAT, "step": step, **state, "optimizer": optim_json, "rng": {"torch": rng}}
    (tmp / "state.json").write_text(json.dumps(full, indent=2), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    """Where the checkpoint of ``step`` lives in a run folder."""
    return Path(run_dir) / "checkpoints" / f"step_{step:06d}"


def _optimizer_to_safe(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = optimizer.state_dict()
    tensors, other = {}, {}
    for index, entry in sd["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"state.{index}.{name}"] = value.detach().to("cpu").contiguous()
            else:
                other.setdefault(str(index), {})[name] = value
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in g.items()}
        for g in sd["param_groups"]
    ]
    return tensors, {"param_groups": groups, "state": other}


def find_checkpoint(path: Path) -> Path:
    """A checkpoint folder from a checkpoint folder or a run folder (its latest checkpoint)."""
    path = Path(path)
    if (path / "state.json").is_file():
        return path
    candidates = sorted((path / "checkpoints").glob("step_[0-9]*[0-9]"))
    candidates = [c for c in candidates if (c / "state.json").is_file()]
    if not candidates:
        raise CheckpointError(f"{path}: no checkpoint here (expected state.json or checkpoints/)")
    return candidates[-1]


def read_state(checkpoint: Path) -> dict:
    path = Path(checkpoint) / "state.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not JSON ({error})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} state file")
    return state


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; anything else (a pickle, say) is refused unread."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a safetensors file ({error})") from None


def load_weights(model: nn.Module, checkpoint: Path) -> None:
    path = Path(checkpoint) / "model.safetensors"
    try:
        model.load_state_dict(read_tensors(path), strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit the network ({error})") from None


def load_optimizer(optimizer: torch.optim.Optimizer, checkpoint: Path, state: dict) -> None:
    tensors = read_tensors(Path(checkpoint) / "optimizer.safetensors")
    entries: dict[int, dict] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        entries.setdefault(int(index), {})[name] = value
    for index, extra in state["optimizer"].get("state", {}).items():
        entries.setdefault(int(index), {}).update(extra)
    groups = state["optimizer"]["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": entries, "param_groups": groups})


def restore_rng(state: dict) -> None:
    raw = base64.b64decode(state["rng"]["torch"])
    torch.set_rng_state(torch.frombuffer(bytearray(raw), dtype=torch.uint8))


def build_network(state: dict) -> nn.Module:
    """An untrained network of the kind and config recorded in ``state``."""
    from training.configs import TrainConfig
    from training.networks import NETWORKS

    config = TrainConfig.from_dict(state["config"])
    return NETWORKS[state["network"]](config.network, pose_size=len(state["pose_names"]))


def load_network(path: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """(network in eval mode, its state) from a checkpoint or run folder."""
    checkpoint = find_checkpoint(path)
    state = read_state(checkpoint)
    model = build_network(state)
    load_weights(model, checkpoint)
    state["checkpoint"] = str(checkpoint)
    return model.to(device).eval(), state
