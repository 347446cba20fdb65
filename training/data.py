"""Streaming the dataset shards (docs/contracts.md, "Dataset shards") as torch tensors.

``ShardStream`` is an ``IterableDataset`` over ``{split}-*.tar`` in a dataset folder, read with
``tarfile`` (no webdataset dependency). Work is split between *consumers*: every (rank, worker)
pair, ranks from ``torch.distributed`` when it is initialised (or given explicitly), workers from
the DataLoader. Each epoch:

1. the shard order is shuffled with a generator seeded by (seed, epoch), the same on every consumer;
2. with at least as many shards as consumers, consumer ``c`` of ``C`` reads shards ``c, c+C, …`` of
   that order; with fewer shards (tiny datasets), every consumer reads every shard and keeps the
   examples whose running index ``i`` satisfies ``i % C == c`` — either way each example goes to
   exactly one consumer;
3. a shuffle buffer seeded by (seed, epoch, rank, worker) reorders the raw records, which are only
   decoded (PNG → float RGBA in [-1, 1], C×H×W) after leaving the buffer.

Items are single examples, or batches when ``batch_size`` is set (then use
``DataLoader(stream, batch_size=None)``). With ``epochs=None`` each worker streams forever, epoch
after epoch, so the DataLoader's round-robin over workers never breaks: global item ``g`` is item
``g // W`` of logical worker ``g % W``. That makes the stream a pure function of (seed, item index),
and ``start=N`` resumes it exactly after N items: logical worker ``w`` skips ``len(range(w, N, W))``
raw records' worth of items (cheap: nothing is decoded) and DataLoader worker ``i`` plays logical
worker ``(i + N) % W``, so the next item is the one a straight run would have produced.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info

from training.images import array_to_tensor, decode_png, resize_rgba, tensor_to_array

# view → (input image, target image, the image whose parameters are the pose channels)
VIEWS = {
    "morpher": ("rest", "expression", "expression"),
    "rotator": ("expression", "posed", "posed"),
    "combiner": ("expression", "posed", "posed"),
}
KIND_IMAGE = {"morph": "expression", "rotation": "posed"}  # for dataset.json without `image`
MEMBERS = ("rest.png", "expression.png", "posed.png", "json")


class DatasetError(ValueError):
    """A dataset folder or shard that breaks the contract; names the file and the problem."""


@dataclass(frozen=True)
class DatasetInfo:
    """What training needs from ``dataset.json``: the schema's parameters and the image size."""

    root: Path
    image_size: int
    parameters: tuple[tuple[str, str], ...]  # (name, kind) in schema order
    splits: dict
    schema: dict = field(default_factory=dict)  # as dataset.json records it (Schema.to_json)
    images: tuple[str, ...] = ()  # per parameter: the image it belongs to (expression | posed)

    @classmethod
    def load(cls, root: Path) -> DatasetInfo:
        path = Path(root) / "dataset.json"
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
            params = tuple((p["name"], p["kind"]) for p in info["schema"]["parameters"])
            size = int(info["image_size"])
        except FileNotFoundError:
            raise DatasetError(f"{path}: not found (is {root} a thagen dataset folder?)") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise DatasetError(f"{path}: not a valid dataset.json ({error!r})") from None
        for name, kind in params:
            if kind not in ("morph", "rotation"):
                raise DatasetError(f"{path}: parameter {name!r} has kind {kind!r}")
        images = tuple(
            p.get("image") or KIND_IMAGE[p["kind"]] for p in info["schema"]["parameters"]
        )
        for (name, _), image in zip(params, images, strict=True):
            if image not in ("expression", "posed"):
                raise DatasetError(f"{path}: parameter {name!r} has image {image!r}")
        splits = dict(info.get("splits", {}))
        return cls(Path(root), size, params, splits, info["schema"], images)

    def pose_names(self, view: str) -> list[str]:
        """The parameters a network's view takes, in schema order: the morpher every parameter
        of the expression image (morphs, and in tha3 the iris rotation), the rotator and
        combiner those of the posed image only (head, neck, body, breathing)."""
        image = VIEWS[view][2]
        images = self.images or tuple(KIND_IMAGE[k] for _, k in self.parameters)
        return [name for (name, _), i in zip(self.parameters, images, strict=True) if i == image]


def list_shards(root: Path, split: str) -> list[Path]:
    shards = sorted(Path(root).glob(f"{split}-*.tar"))
    if not shards:
        raise DatasetError(f"{root}: no {split}-*.tar shards")
    return shards


def read_shard(path: Path) -> Iterator[dict]:
    """The raw examples of one shard: ``{"__key__", "__shard__", "rest.png", …}`` as bytes."""
    current: dict | None = None
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, _, suffix = member.name.rpartition("/")[2].partition(".")
                if current is not None and key != current["__key__"]:
                    yield _complete(path, current)
                    current = None
                if current is None:
                    current = {"__key__": key, "__shard__": path.name}
                current[suffix] = tar.extractfile(member).read()
    except tarfile.TarError as error:
        raise DatasetError(f"{path}: unreadable tar ({error})") from None
    if current is not None:
        yield _complete(path, current)


def _complete(path: Path, record: dict) -> dict:
    missing = [m for m in MEMBERS if m not in record]
    if missing:
        raise DatasetError(f"{path}: example {record['__key__']!r} lacks {', '.join(missing)}")
    return record


def view_crop(schema: dict | None, view: str) -> tuple[float, float, float, float] | None:
    """The part of the images a view sees, as fractions (left, top, right, bottom): for the
    morpher, the square of the framing's `morpher_crop` head heights round the head box's
    centre when the schema sets one (tha3: THA3's 192² face crop of the 512² image, columns
    160-352 and rows 32-224); otherwise, and for the other views, the whole image (None)."""
    framing = (schema or {}).get("framing") or {}
    crop = framing.get("morpher_crop")
    if view != "morpher" or not crop:
        return None
    half = 0.5 * float(crop) * float(framing["head_fraction"])
    cx, cy = (float(v) for v in framing["head_center"])
    return (cx - half, cy - half, cx + half, cy + half)


def _decode_view(
    data: bytes, size: int | None, crop: tuple[float, ...] | None, name: str
) -> torch.Tensor:
    """A PNG as a view sees it: cropped to `crop` (transparent past the image's edge), then
    resized to `size`."""
    if crop is None:
        return decode_png(data, size, name)
    full = decode_png(data, None, name)
    height, width = full.shape[1:]
    box = tuple(round(v * n) for v, n in zip(crop, (width, height, width, height), strict=True))
    image = Image.fromarray(tensor_to_array(full), "RGBA").crop(box)
    return array_to_tensor(np.asarray(resize_rgba(image, size or box[2] - box[0])))


def decode(
    record: dict,
    view: str,
    pose_names: list[str],
    size: int | None,
    crop: tuple[float, float, float, float] | None = None,
) -> dict:
    """A raw record → ``{"input", "target", "pose", "key", "character", "epoch"}`` (the images
    cropped to `crop`, see `view_crop`, then resized to `size`)."""
    src, dst, _ = VIEWS[view]
    where = f"{record['__shard__']}:{record['__key__']}"
    try:
        meta = json.loads(record["json"])
        pose_dict = meta["pose"]
        pose = [pose_dict[name] for name in pose_names]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise DatasetError(f"{where}.json: bad metadata ({error!r})") from None
    return {
        "input": _decode_view(record[f"{src}.png"], size, crop, f"{where}.{src}.png"),
        "target": _decode_view(record[f"{dst}.png"], size, crop, f"{where}.{dst}.png"),
        "pose": torch.tensor([0.0 if v is None else float(v) for v in pose], dtype=torch.float32),
        "key": record["__key__"],
        "character": str(meta.get("character", "")),
        "epoch": int(record.get("__epoch__", 0)),
    }


def collate(samples: list[dict]) -> dict:
    out = {k: torch.stack([s[k] for s in samples]) for k in ("input", "target", "pose")}
    out.update({k: [s[k] for s in samples] for k in ("key", "character")})
    out["epoch"] = samples[-1]["epoch"]
    return out


def shuffled(items: Iterator, rng: np.random.Generator, buffer_size: int) -> Iterator:
    """Reservoir-style shuffle buffer: deterministic given ``rng``."""
    buffer: list = []
    for item in items:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        j = int(rng.integers(len(buffer)))
        buffer[j], item = item, buffer[j]
        yield item
    rng.shuffle(buffer)
    yield from buffer


def distributed_rank() -> tuple[int, int]:
    """(rank, world_size) from torch.distributed when initialised, else (0, 1)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class ShardStream(IterableDataset):
    """Examples (or batches) of one split, viewed for one network. See the module docstring."""

    def __init__(
        self,
        root: Path,
        split: str,
        view: str,
        *,
        size: int | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        shuffle: bool = True,
        buffer_size: int = 256,
        epochs: int | None = 1,
        epoch: int = 0,
        start: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
        self.info = DatasetInfo.load(root)
        self.shards = list_shards(root, split)
        self.view, self.size, self.batch_size = view, size, batch_size
        self.seed, self.shuffle, self.buffer_size = seed, shuffle, buffer_size
        self.epochs, self.epoch, self.start = epochs, epoch, start
        self.rank, self.world_size = rank, world_size
        self.pose_names = self.info.pose_names(view)
        self.crop = view_crop(self.info.schema, view)

    def set_epoch(self, epoch: int) -> None:
        """The first epoch to stream (finite streams: call before each epoch)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict]:
        worker = get_worker_info()
        workers, dl_id = (worker.num_workers, worker.id) if worker else (1, 0)
        logical = (dl_id + self.start) % workers
        rank, world = (
            (self.rank, self.world_size) if self.world_size is not None else distributed_rank()
        )
        consumer, consumers = (rank or 0) * workers + logical, world * workers
        skip = len(range(logical, self.start, workers)) * (self.batch_size or 1)
        records = self._records(consumer, consumers, rank or 0, logical)
        for _ in range(skip):
            next(records, None)
        samples = (decode(r, self.view, self.pose_names, self.size, self.crop) for r in records)
        if self.batch_size is None:
            yield from samples
            return
        batch: list[dict] = []
        for sample in samples:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield collate(batch)
                batch = []
        if batch:
            yield collate(batch)

    def _records(self, consumer: int, consumers: int, rank: int, worker: int) -> Iterator[dict]:
        epoch = self.epoch
        while self.epochs is None or epoch < self.epoch + self.epochs:
            yield from self._epoch_records(epoch, consumer, consumers, rank, worker)
            epoch += 1

    def _epoch_records(
        self, epoch: int, consumer: int, consumers: int, rank: int, worker: int
    ) -> Iterator[dict]:
        order = list(self.shards)
        if self.shuffle:
            np.random.default_rng([self.seed, epoch]).shuffle(order)
        by_shard = len(order) >= consumers

        def mine() -> Iterator[dict]:
            if by_shard:
                for shard in order[consumer::consumers]:
                    yield from read_shard(shard)
                return
            index = 0
            for shard in order:
                for record in read_shard(shard):
                    if index % consumers == consumer:
                        yield record
                    index += 1

        records = mine()
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch, rank, worker])
            records = shuffled(records, rng, self.buffer_size)
        for record in records:
            record["__epoch__"] = epoch
            yield record
