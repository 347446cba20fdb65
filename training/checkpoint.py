"""Checkpoints: ``RUN/checkpoints/step_NNNNNN/{model.safetensors, optimizer.safetensors,
state.json}``. Tensors are safetensors, everything else JSON; loading never unpickles anything.

``state.json`` holds the format tag, the network kind, the step, the full training config, the
pose parameter names, the optimizer's param groups and non-tensor state, and the torch RNG state.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from media.files import brief, read_regular, require_regular_file
from media.owned import LINK_REASON, subfolder, temporary_name

FORMAT = "thagen-checkpoint-1"
FILES = ("model.safetensors", "optimizer.safetensors", "state.json")
MAX_STATE_BYTES = 1 << 24  # state.json: a few kB of config and optimizer settings
MAX_POSE_NAMES = 256  # THA3 has 45
MAX_STEP = 10**12
MAX_PARAMETERS = 1 << 30  # 4 GiB of fp32 weights; THA1's networks have about 34 M
ADAM_STATE = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step")


class CheckpointError(ValueError):
    """A checkpoint that is missing or not in thagen's format; names the path."""


def save_checkpoint(
    run_dir: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict
) -> Path:
    """Write the checkpoint for ``step`` (atomically: a temporary folder of its own, renamed into
    place). ``checkpoints/`` must be a real folder and an earlier ``step_N`` a real folder too,
    never a link (``media.owned``)."""
    final = subfolder(run_dir, "checkpoints") / checkpoint_dir(run_dir, step).name
    tmp = temporary_name(final)
    tmp.mkdir()  # a new name: nothing there to follow
    weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": FORMAT})
    tensors, optim_json = _optimizer_to_safe(optimizer)
    save_file(tensors, str(tmp / "optimizer.safetensors"), metadata={"format": FORMAT})
    rng = base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii")
    full = {"format": FORMAT, "step": step, **state, "optimizer": optim_json, "rng": {"torch": rng}}
    (tmp / "state.json").write_text(json.dumps(full, indent=2), encoding="utf-8")
    if os.path.lexists(final):
        if os.path.islink(final) or not final.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            raise CheckpointError(f"{final}: {LINK_REASON} (remove it)")
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def sweep_temporaries(run_dir: Path) -> list[str]:
    """Remove the temporary checkpoint folders a killed run left (only by the run folder's one
    writer, `media.locks.RunLock`)."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir() or folder.is_symlink():
        return []
    removed = []
    for path in sorted(folder.glob("step_*.tmp")):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


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


def _refused(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(f"{path}: {reason}")


def read_state(checkpoint: Path) -> dict:
    """A checkpoint's ``state.json``: read within a size limit and checked against its schema
    (a checkpoint is untrusted input, like a model file): anything else is one
    ``CheckpointError`` naming the file."""
    path = Path(checkpoint) / "state.json"
    raw = read_regular(path, "checkpoint state", MAX_STATE_BYTES, _refused)
    try:
        state = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{path}: not JSON ({brief(error, 160)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} state file")
    problem = _state_problem(state)
    if problem:
        raise CheckpointError(f"{path}: not a valid {FORMAT} state file ({problem})")
    return state


def _state_problem(state: dict) -> str | None:
    """What breaks the state file's schema, or None."""
    from training.configs import TrainConfig
    from training.networks import NETWORKS

    if not isinstance(state.get("network"), str) or state["network"] not in NETWORKS:
        return f"network {state.get('network')!r:.40} is not one of {', '.join(NETWORKS)}"
    for key, hi in (("step", MAX_STEP), ("seed", 2**63 - 1)):
        value = state.get(key)
        if type(value) is not int or not 0 <= value <= hi:
            return f"{key} {value!r:.40} is not an integer in 0..{hi}"
    names = state.get("pose_names")
    if (
        not isinstance(names, list)
        or not 1 <= len(names) <= MAX_POSE_NAMES
        or not all(isinstance(n, str) and 0 < len(n) <= 200 for n in names)
        or len(set(names)) != len(names)
    ):
        return f"pose_names must be 1..{MAX_POSE_NAMES} distinct names"
    try:
        TrainConfig.from_dict(state.get("config"))
    except ValueError as error:
        return f"config: {error}"
    optimizer = state.get("optimizer")
    if not isinstance(optimizer, dict) or not isinstance(optimizer.get("param_groups"), list):
        return "optimizer must hold param_groups"
    if not isinstance(optimizer.get("state", {}), dict):
        return "optimizer.state must be an object"
    rng = state.get("rng")
    if not isinstance(rng, dict) or not isinstance(rng.get("torch"), str):
        return "rng must hold the torch generator's state"
    if not isinstance(state.get("world_size", 1), int) or state.get("world_size", 1) < 1:
        return "world_size must be a positive integer"
    if not isinstance(state.get("grad_scaler"), dict | None):
        return "grad_scaler must be an object or null"
    if not isinstance(state.get("schema"), dict | None):
        return "schema must be an object or null"
    return None


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; anything else (a pickle, say) is refused unread."""
    path = Path(path)
    require_regular_file(path, "checkpoint tensors", error=_refused)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: not a safetensors file ({brief(error, 200)})") from None


def load_weights(model: nn.Module, checkpoint: Path) -> None:
    """The checkpoint's weights into ``model``: every tensor of the network, of its shape, and
    finite (a network with NaN weights would write NaN figures and empty images)."""
    path = Path(checkpoint) / "model.safetensors"
    tensors = read_tensors(path)
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path}: weights {', '.join(sorted(bad)[:3])} are not finite")
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise CheckpointError(
            f"{path}: weights do not fit the network ({brief(error, 300)})"
        ) from None


def load_optimizer(optimizer: torch.optim.Optimizer, checkpoint: Path, state: dict) -> None:
    """The checkpoint's optimizer state into ``optimizer`` (Adam's moments per parameter, of the
    parameter's shape; the param groups of this optimizer, with values of the same kinds)."""
    path = Path(checkpoint) / "optimizer.safetensors"
    tensors = read_tensors(path)
    live = optimizer.state_dict()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    entries: dict[int, dict] = {}
    for key, value in tensors.items():
        kind, _, rest = key.partition(".")
        index, _, name = rest.partition(".")
        if kind != "state" or not index.isdigit() or int(index) >= len(params):
            raise CheckpointError(f"{path}: tensor {key[:80]!r} is not a parameter's state")
        shape = () if name == "step" else tuple(params[int(index)].shape)
        if name not in ADAM_STATE or tuple(value.shape) != shape:
            raise CheckpointError(
                f"{path}: tensor {key[:80]!r} of shape {tuple(value.shape)} does not fit"
            )
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: tensor {key[:80]!r} is not finite")
        entries.setdefault(int(index), {})[name] = value
    where = Path(checkpoint) / "state.json"
    extra_state = state["optimizer"].get("state", {})
    for index, extra in extra_state.items():
        if not str(index).isdigit() or int(index) >= len(params) or not isinstance(extra, dict):
            raise CheckpointError(f"{where}: optimizer state {str(index)[:40]!r} does not fit")
        entries.setdefault(int(index), {}).update(extra)
    groups = state["optimizer"]["param_groups"]
    if len(groups) != len(live["param_groups"]):
        raise CheckpointError(f"{where}: {len(groups)} optimizer param groups, expected 1")
    for group, mine in zip(groups, live["param_groups"], strict=True):
        if (
            not isinstance(group, dict)
            or set(group) != set(mine)
            or group["params"] != mine["params"]
        ):
            raise CheckpointError(f"{where}: the optimizer's param groups do not fit")
        for name, value in group.items():
            if name == "betas" and isinstance(value, list):
                group["betas"] = value = tuple(value)
            if not _same_kind(value, mine[name]):
                raise CheckpointError(f"{where}: optimizer {name} is {value!r:.40}")
    try:
        optimizer.load_state_dict({"state": entries, "param_groups": groups})
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"{path}: optimizer state does not fit ({brief(error, 200)})"
        ) from None


def _same_kind(value: object, like: object) -> bool:
    """Whether a checkpoint's param-group value has the kind this optimizer's has (finite when
    a number)."""
    if like is None:
        return value is None
    if isinstance(like, bool):
        return isinstance(value, bool)
    if isinstance(like, int | float):
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if isinstance(like, tuple | list):
        return (
            isinstance(value, tuple | list)
            and len(value) == len(like)
            and all(_same_kind(v, w) for v, w in zip(value, like, strict=True))
        )
    return type(value) is type(like)


def restore_rng(state: dict) -> None:
    """The torch generator's state from a checkpoint (its bytes checked first)."""
    try:
        raw = base64.b64decode(state["rng"]["torch"], validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError("checkpoint rng: not base64") from None
    if len(raw) != torch.get_rng_state().numel():
        raise CheckpointError(f"checkpoint rng: {len(raw)} bytes, not a torch generator's state")
    try:
        torch.set_rng_state(torch.frombuffer(bytearray(raw), dtype=torch.uint8))
    except RuntimeError as error:
        raise CheckpointError(f"checkpoint rng: not a generator state ({error})") from None


def parameter_count(state: dict) -> int:
    """How many numbers the network ``state`` records holds in its state dict (weights and
    buffers; counted on the meta device: nothing is allocated)."""
    from training.configs import TrainConfig
    from training.networks import NETWORKS

    config = TrainConfig.from_dict(state["config"])
    make = NETWORKS[state["network"]]
    with torch.device("meta"):
        network = make(config.network, pose_size=len(state["pose_names"]))
        return sum(t.numel() for t in network.state_dict().values())


def build_network(state: dict) -> nn.Module:
    """An untrained network of the kind and config recorded in ``state`` (``read_state``'s),
    refused before anything is allocated when it would hold more than ``MAX_PARAMETERS``."""
    from training.configs import TrainConfig
    from training.networks import NETWORKS

    count = parameter_count(state)
    if count > MAX_PARAMETERS:
        raise CheckpointError(
            f"{state.get('checkpoint', 'checkpoint')}: a {state['network']} of {count:,} "
            f"parameters, more than {MAX_PARAMETERS:,}"
        )
    config = TrainConfig.from_dict(state["config"])
    return NETWORKS[state["network"]](config.network, pose_size=len(state["pose_names"]))


def stored_count(path: Path) -> int:
    """How many numbers a safetensors file holds, from its header (no tensor is read)."""
    require_regular_file(path, "checkpoint tensors", error=_refused)
    try:
        with safe_open(str(path), framework="pt") as f:
            return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: not a safetensors file ({brief(error, 200)})") from None


def load_network(path: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """(network in eval mode, its state) from a checkpoint or run folder. The network the
    state describes is built only when its weights file holds exactly its parameters (so a
    tampered state.json cannot make it allocate more than the files hold)."""
    checkpoint = find_checkpoint(path)
    state = read_state(checkpoint)
    state["checkpoint"] = str(checkpoint)
    weights = Path(checkpoint) / "model.safetensors"
    expected, stored = parameter_count(state), stored_count(weights)
    if expected != stored:
        raise CheckpointError(
            f"{weights}: holds {stored:,} weights; the network its state.json describes has "
            f"{expected:,}"
        )
    model = build_network(state)
    load_weights(model, checkpoint)
    return model.to(device).eval(), state
