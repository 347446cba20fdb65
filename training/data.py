"""Streaming the dataset shards (docs/contracts.md, "Dataset shards") as torch tensors.

``ShardStream`` is an ``IterableDataset`` over the shards of one split that the dataset folder's
index lists (``manifest.parquet`` and the ``.state/NAME.done.json`` sidecars, never a glob:
``media.shardindex``; each shard's size is checked when the stream is made and its sha256 before
its first example is used), read with ``tarfile`` (no webdataset dependency). Work is split
between *consumers*: every (rank, worker) pair, ranks from ``torch.distributed`` when it is
initialised (or given explicitly), workers from the DataLoader. Each epoch:

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

Shards are untrusted bytes (``media.tarfiles``): members that are not regular files or exceed
``MAX_MEMBER_BYTES`` are refused before anything is allocated. A bad example is refused, never
skipped: a pose value that is not a finite number inside the schema's range (a list, a string,
NaN, Infinity, 1e308), metadata that is not UTF-8 JSON, a PNG of another size than the
dataset's images (never silently resized) or one that does not decode all raise
``DatasetError`` naming the shard and key. thagen writes these files, so a bad value means a
damaged or tampered dataset: training on it would end in a NaN loss, skipping it would quietly
change the data.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info

from media.files import brief
from media.owned import read_owned
from media.shardindex import Shard, ShardIndexError, dataset_shards, verify_sha256
from media.tarfiles import TarReadError, iter_members
from training.images import (
    array_to_tensor,
    decode_png,
    decode_png_rgba,
    resize_rgba,
    rgba_batch_to_tensor,
    tensor_to_array,
)

# view → (input image, target image, the image whose parameters are the pose channels)
VIEWS = {
    "morpher": ("rest", "expression", "expression"),
    "rotator": ("expression", "posed", "posed"),
    "combiner": ("expression", "posed", "posed"),
}
KIND_IMAGE = {"morph": "expression", "rotation": "posed"}  # for dataset.json without `image`
MEMBERS = ("rest.png", "expression.png", "posed.png", "json")
MAX_MEMBER_BYTES = 1 << 27  # above the PNG bound of a 4096² image (67 MB)
MAX_JSON_BYTES = 1 << 16  # an example's record is a few hundred bytes
MAX_IMAGE_SIZE = 4096
MAX_INFO_BYTES = 1 << 24  # dataset.json: a few kB
MAX_PARAMETERS = 1024  # THA3 has 45
MAX_NAME_CHARS = 200
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
        """`root/dataset.json`, read within a size limit (never through a link) and checked
        against its schema (docs/contracts.md): anything else is one `DatasetError`."""
        path = Path(root) / "dataset.json"
        try:
            raw = read_owned(path, MAX_INFO_BYTES, "dataset.json")
        except FileNotFoundError:
            raise DatasetError(f"{path}: not found (is {root} a thagen dataset folder?)") from None
        try:
            info = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
        except (ValueError, RecursionError) as error:
            raise DatasetError(f"{path}: not a valid dataset.json ({brief(error, 160)})") from None
        schema, size, params, images = _check_info(path, info)
        splits = info.get("splits")
        return cls(
            Path(root), size, params, splits if isinstance(splits, dict) else {}, schema, images
        )

    def ranges(self) -> dict[str, tuple[float, float]]:
        """Each parameter's [lo, hi] as dataset.json records it (parameters without one are
        only required to be finite); computed once."""
        cached = self.__dict__.get("_ranges")
        if cached is not None:
            return cached
        out: dict[str, tuple[float, float]] = {}
        for param in self.schema.get("parameters", []):
            bounds = param.get("range") if isinstance(param, dict) else None
            if isinstance(bounds, list | tuple) and len(bounds) == 2:
                lo, hi = (float(b) for b in bounds)
                if math.isfinite(lo) and math.isfinite(hi) and lo <= hi:
                    out[str(param.get("name"))] = (lo, hi)
        object.__setattr__(self, "_ranges", out)  # a frozen dataclass: a cache, not a field
        return out

    def pose_names(self, view: str) -> list[str]:
        """The parameters a network's view takes, in schema order: the morpher every parameter
        of the expression image (morphs, and in tha3 the iris rotation), the rotator and
        combiner those of the posed image only (head, neck, body, breathing)."""
        image = VIEWS[view][2]
        images = self.images or tuple(KIND_IMAGE[k] for _, k in self.parameters)
        return [name for (name, _), i in zip(self.parameters, images, strict=True) if i == image]


def _check_info(path: Path, info: object) -> tuple[dict, int, tuple, tuple]:
    """(schema, image size, (name, kind) per parameter, image per parameter) of a dataset.json,
    or a DatasetError naming what breaks the contract."""

    def bad(why: str) -> DatasetError:
        return DatasetError(f"{path}: not a valid dataset.json ({why})")

    schema = info.get("schema") if isinstance(info, dict) else None
    parameters = schema.get("parameters") if isinstance(schema, dict) else None
    if not isinstance(parameters, list) or not 1 <= len(parameters) <= MAX_PARAMETERS:
        raise bad(f"schema.parameters must be a list of 1..{MAX_PARAMETERS} parameters")
    size = info.get("image_size")
    if type(size) is not int or not 1 <= size <= MAX_IMAGE_SIZE:
        raise bad(f"image_size {size!r:.40} is not in 1..{MAX_IMAGE_SIZE}")
    params, images, seen = [], [], set()
    for p in parameters:
        name = p.get("name") if isinstance(p, dict) else None
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS or name in seen:
            raise bad(f"a parameter name {name!r:.60} is not a new name of 1..{MAX_NAME_CHARS}")
        kind = p.get("kind")
        if kind not in ("morph", "rotation"):
            raise DatasetError(f"{path}: parameter {name!r} has kind {kind!r:.40}")
        image = p.get("image") or KIND_IMAGE[kind]
        if image not in ("expression", "posed"):
            raise DatasetError(f"{path}: parameter {name!r} has image {image!r:.40}")
        bounds = p.get("range")
        if not (
            isinstance(bounds, list)
            and len(bounds) == 2
            and all(_finite(b) for b in bounds)
            and bounds[0] <= bounds[1]
        ):
            raise bad(f"parameter {name!r} has range {bounds!r:.60}, not [lo, hi]")
        seen.add(name)
        params.append((name, kind))
        images.append(image)
    framing = schema.get("framing")
    if framing is not None and not isinstance(framing, dict):
        raise bad("schema.framing must be an object")
    crop = (framing or {}).get("morpher_crop")
    if crop is not None:  # the morpher's face crop (view_crop) needs the whole framing
        center = framing.get("head_center")
        if not (
            _finite(crop)
            and 0 < crop <= 16
            and _finite(framing.get("head_fraction"))
            and 0 < framing["head_fraction"] <= 1
            and isinstance(center, list)
            and len(center) == 2
            and all(_finite(c) and 0 <= c <= 1 for c in center)
        ):
            raise bad("schema.framing's morpher_crop, head_fraction and head_center do not fit")
    return schema, size, tuple(params), tuple(images)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def list_shards(root: Path, split: str) -> list[Shard]:
    """The shards of `split` that the dataset's index lists (manifest.parquet and the
    `.state/` sidecars, never a glob), each present with its recorded size; anything missing,
    extra or pointing outside is one `DatasetError` (`media.shardindex`)."""
    try:
        return dataset_shards(root, split)
    except ShardIndexError as error:
        raise DatasetError(str(error)) from None


def _member_limit(name: str) -> int:
    return MAX_JSON_BYTES if name.endswith(".json") else MAX_MEMBER_BYTES


def read_shard(path: Path) -> Iterator[dict]:
    """The raw examples of one shard: ``{"__key__", "__shard__", "rest.png", …}`` as bytes.
    Members that are not regular files, or larger than their limit, raise ``DatasetError``."""
    path = Path(path)
    current: dict | None = None
    try:
        for member, data in iter_members(path, _member_limit):
            key, _, suffix = member.name.rpartition("/")[2].partition(".")
            if current is not None and key != current["__key__"]:
                yield _complete(path, current)
                current = None
            if current is None:
                current = {"__key__": key, "__shard__": path.name}
            if suffix in current:
                raise DatasetError(f"{path}: example {key[:80]!r} has two {suffix[:40]!r} members")
            current[suffix] = data
    except TarReadError as error:
        raise DatasetError(str(error)) from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot read ({error.strerror or error})") from None
    if current is not None:
        yield _complete(path, current)


def read_indexed(shard: Shard) -> Iterator[dict]:
    """`read_shard` of a shard the dataset's index lists, once its bytes have been checked
    against the sha256 its sidecar records (every byte read once per process; about 1.8 GB/s,
    a few percent of decoding its PNGs)."""
    try:
        verify_sha256(shard)
    except (ShardIndexError, OSError, ValueError) as error:
        raise DatasetError(str(error)) from None
    yield from read_shard(shard.path)


def _complete(path: Path, record: dict) -> dict:
    missing = [m for m in MEMBERS if m not in record]
    if missing:
        raise DatasetError(f"{path}: example {record['__key__']!r} lacks {', '.join(missing)}")
    return record


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def read_meta(record: dict, where: str) -> dict:
    """An example's JSON record: strict UTF-8 JSON (no NaN/Infinity), an object with a pose
    object."""
    try:
        text = bytes(record["json"]).decode("utf-8")
        meta = json.loads(text, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, TypeError) as error:
        raise DatasetError(f"{where}.json: not UTF-8 JSON ({brief(error, 120)})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("pose"), dict):
        raise DatasetError(f"{where}.json: not a thagen example record (no pose object)")
    return meta


def pose_values(
    meta: dict, names: list[str], where: str, ranges: dict[str, tuple[float, float]] | None = None
) -> list[float]:
    """The pose vector for ``names`` (a null parameter, one the character lacks, is 0); every
    value must be a finite number inside its range."""
    values = []
    for name in names:
        if name not in meta["pose"]:
            raise DatasetError(f"{where}.json: pose has no {name!r}")
        value = meta["pose"][name]
        if value is None:
            values.append(0.0)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DatasetError(f"{where}.json: pose {name} is {value!r:.60}, not a number")
        value = float(value)
        lo, hi = (ranges or {}).get(name, (-math.inf, math.inf))
        if not math.isfinite(value) or not lo <= value <= hi:
            bounds = f"[{lo:g}, {hi:g}]" if math.isfinite(lo) else "finite"
            raise DatasetError(f"{where}.json: pose {name} = {value!r} is outside {bounds}")
        values.append(value)
    return values


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, or None when the bytes do not start like a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


class RepeatCache:
    """The last few decoded images, by their PNG bytes: a character's rest image is the same
    bytes in each of its examples, so the morpher's input is decoded once per character and
    stream position instead of once per example. A hit compares the bytes themselves (after a
    hash of them), so only an identical PNG returns a cached image."""

    def __init__(self, entries: int = 8) -> None:
        self.entries = entries
        self.items: OrderedDict[tuple, tuple[bytes, torch.Tensor]] = OrderedDict()

    def get(self, data: bytes, key: tuple) -> torch.Tensor | None:
        item = self.items.get((hash(data), len(data), key))
        if item is None or item[0] != data:
            return None
        self.items.move_to_end((hash(data), len(data), key))
        return item[1]

    def put(self, data: bytes, key: tuple, image: torch.Tensor) -> None:
        self.items[(hash(data), len(data), key)] = (bytes(data), image)
        while len(self.items) > self.entries:
            self.items.popitem(last=False)


REPEATS = RepeatCache()  # per process: each DataLoader worker has its own


def decode_image(
    data: bytes,
    expected: int | None,
    size: int | None,
    name: str,
    raw: bool = False,
    crop: tuple[float, float, float, float] | None = None,
) -> torch.Tensor:
    """A shard PNG → tensor: it must be a PNG of ``expected``² pixels (the dataset's size;
    checked from its header before decoding), then cropped to ``crop`` (see `view_crop`) and
    resized to ``size`` for the network. With ``raw`` (and no crop) it stays an (H, W, 4)
    uint8 tensor, for ``collate`` to convert a batch at once."""
    dims = png_size(data)
    if dims is None:
        raise DatasetError(f"{name}: not a PNG")
    if expected is not None and dims != (expected, expected):
        w, h = dims
        raise DatasetError(f"{name}: image is {w}×{h}; the dataset's images are {expected}²")
    try:
        key = (size, crop, raw)
        cached = REPEATS.get(data, key)
        if cached is not None:
            return cached if raw else cached.clone()
        if crop is not None:
            image = _decode_view(data, size, crop, name)
        elif raw:
            image = decode_png_rgba_tensor(data, size, name)
        else:
            image = decode_png(data, size, name)
        REPEATS.put(data, key, image)
        return image if raw else image.clone()
    except Exception as error:  # Pillow raises many kinds on damaged bytes
        message = str(error)
        if not isinstance(error, ValueError):
            message = f"{type(error).__name__}: {error}"
        if not message.startswith(name):
            message = f"{name}: not a readable PNG ({message})"
        raise DatasetError(message[:400]) from None


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
    info: DatasetInfo | None = None,
    raw: bool = False,
    crop: tuple[float, float, float, float] | None = None,
) -> dict:
    """A raw record → ``{"input", "target", "pose", "key", "character", "epoch"}``; with
    ``info`` the images must be the dataset's size and the pose inside the schema's ranges;
    with ``raw`` the images stay uint8 (see ``decode_image``); ``crop`` is the view's part of
    the images (see `view_crop`)."""
    src, dst, _ = VIEWS[view]
    where = f"{record['__shard__']}:{record['__key__']}"
    meta = read_meta(record, where)
    pose = pose_values(meta, pose_names, where, info.ranges() if info else None)
    expected = info.image_size if info else None
    return {
        "input": decode_image(
            record[f"{src}.png"], expected, size, f"{where}.{src}.png", raw, crop
        ),
        "target": decode_image(
            record[f"{dst}.png"], expected, size, f"{where}.{dst}.png", raw, crop
        ),
        "pose": torch.tensor(pose, dtype=torch.float32),
        "key": record["__key__"],
        "character": str(meta.get("character", ""))[:200],
        "epoch": int(record.get("__epoch__", 0)),
    }


def decode_png_rgba_tensor(data: bytes, size: int | None, name: str) -> torch.Tensor:
    return torch.from_numpy(decode_png_rgba(data, size, name))


def collate(samples: list[dict]) -> dict:
    out = {"pose": torch.stack([s["pose"] for s in samples])}
    for k in ("input", "target"):
        images = [s[k] for s in samples]
        raw = images[0].dtype == torch.uint8  # decode(raw=True): convert the batch at once
        out[k] = rgba_batch_to_tensor(images) if raw else torch.stack(images)
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
        raw = self.batch_size is not None  # batches convert their images in collate
        samples = (
            decode(r, self.view, self.pose_names, self.size, self.info, raw, self.crop)
            for r in records
        )
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
                    yield from read_indexed(shard)
                return
            index = 0
            for shard in order:
                for record in read_indexed(shard):
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
