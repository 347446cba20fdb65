"""Shard readers refuse what is not a plain, bounded, valid example, naming the shard and the
key or member: tar members that are not regular files, sparse members declaring 8 GiB, huge
headers, damaged or truncated archives; JSON poses that are lists, strings, NaN, Infinity or
out of range; PNGs of another size or 30000²; and training stops before a NaN loss. The same
for the pipeline's readers (resume, merge, report) and for `thagen pose --image`."""

from __future__ import annotations

import io
import os
import re
import tarfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from tests import shardhostile as H  # noqa: E402
from training.data import DatasetError, DatasetInfo, ShardStream, decode, read_shard  # noqa: E402

NAMES = ["left_eye", "right_eye", "mouth"]


def read_all(root: Path) -> list[dict]:
    info = DatasetInfo.load(root)
    return [decode(r, "morpher", NAMES, None, info) for r in read_shard(root / "train-000000.tar")]


def refused(root: Path, *needles: str) -> str:
    with pytest.raises(DatasetError) as caught:
        read_all(root)
    message = str(caught.value)
    assert "\n" not in message and "train-000000.tar" in message, message
    for needle in needles:
        assert needle in message, message
    return message


def test_a_good_shard_reads(tmp_path):
    items = read_all(H.write_dataset(tmp_path, H.good_shard()))
    assert [i["key"] for i in items] == ["synth_000000", "synth_000001"]
    assert items[0]["pose"].tolist() == [0.5, 0.0, 0.0]  # a null (absent) parameter is 0


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        (tarfile.SYMTYPE, "a symbolic link"),
        (tarfile.LNKTYPE, "a hard link"),
        (tarfile.DIRTYPE, "a folder"),
        (tarfile.FIFOTYPE, "a FIFO"),
        (tarfile.CHRTYPE, "a character device"),
        (tarfile.BLKTYPE, "a block device"),
    ],
)
def test_members_that_are_not_regular_files_are_refused(tmp_path, kind, what):
    example = H.example("synth_000000")
    entries = [(H.info(f"synth_000000.{e}", d), d) for e, d in sorted(example.items())]
    odd = H.info("synth_000000.rest.png", kind=kind)
    odd.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    entries[-1] = (odd, b"")
    root = H.write_dataset(tmp_path, H.tar_bytes(entries))
    refused(root, "synth_000000.rest.png", f"is {what}, not a regular file")


def test_sparse_members_declaring_8_gib_are_refused_without_allocating(tmp_path):
    """An old-GNU sparse member and a PAX sparse member, each declaring 8 GiB: refused before
    anything is read (the standard library would allocate the whole declared size)."""
    pax = H.info("synth_000000.rest.png", b"abc")
    pax.pax_headers = {"GNU.sparse.map": f"{(8 << 30) - 3},3", "GNU.sparse.size": str(8 << 30)}
    cases = {
        "old": (H.old_gnu_sparse("synth_000000.rest.png", 8 << 30), "a GNU sparse file"),
        "pax": (H.tar_bytes([(pax, b"abc")], tarfile.PAX_FORMAT), "a PAX sparse file"),
    }
    for name, (shard, what) in cases.items():
        root = H.write_dataset(tmp_path / name, shard)
        tracemalloc.start()
        try:
            refused(root, "synth_000000.rest.png", what)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 8 << 20, f"{name}: peak heap {peak} bytes"


def test_members_over_the_size_limit_are_refused(tmp_path):
    root = H.write_dataset(tmp_path / "png", H.set_size(H.good_shard(), 0, 8 << 30))
    refused(root, "synth_000000.expression.png", f"declares {8 << 30} bytes; the limit is")
    big = H.example("synth_000000", json=b'{"pose": {}, "pad": "' + b"x" * 70000 + b'"}')
    root = H.write_dataset(tmp_path / "json", H.shard_bytes([("synth_000000", big)]))
    refused(root, "synth_000000.json", "the limit is 65536")


def test_huge_headers_and_damaged_archives_are_refused(tmp_path):
    longname = tarfile.TarInfo("x" * 200 + ".png")
    longname.size = 3
    shard = H.tar_bytes([(longname, b"abc")], tarfile.GNU_FORMAT)
    at = 0  # the GNU long-name header comes first: make it claim 1 GiB
    header = bytearray(shard[at : at + 512])
    header[124:136] = b"%011o\0" % (1 << 30)
    H.checksum(header)
    cases = {
        "longname": (bytes(header) + shard[512:], "asks for 1073741824 bytes"),
        "garbage": (
            H.good_shard()[:1536] + b"\xff" * 512 + H.good_shard()[1536:],
            "damaged tar header",
        ),
        "truncated": (H.good_shard()[:1800], "train-000000.tar"),
        "no_end": (H.good_shard()[: end_of_members(H.good_shard())], "no end-of-archive block"),
        "empty": (b"", "unreadable tar"),
    }
    for name, (data, needle) in cases.items():
        root = H.write_dataset(tmp_path / name, data)
        refused(root, needle)


def end_of_members(shard: bytes) -> int:
    with tarfile.open(fileobj=io.BytesIO(shard)) as tar:
        list(tar)
        return tar.offset


def test_bad_pose_values_are_refused_with_shard_and_key(tmp_path):
    cases = {
        "list": ('{"left_eye": [1, 2]}', "pose left_eye is [1, 2], not a number"),
        "string": ('{"left_eye": "abc"}', "pose left_eye is 'abc', not a number"),
        "bool": ('{"left_eye": true}', "not a number"),
        "nan": ('{"left_eye": NaN}', "not UTF-8 JSON (NaN is not a number JSON allows)"),
        "infinity": ('{"left_eye": Infinity}', "Infinity is not a number JSON allows"),
        "overflow": ('{"left_eye": 1e400}', "pose left_eye = inf is outside [0, 1]"),
        "huge": ('{"left_eye": 1e308}', "pose left_eye = 1e+308 is outside [0, 1]"),
        "range": ('{"left_eye": -0.5}', "pose left_eye = -0.5 is outside [0, 1]"),
        "missing": ('{"right_eye": 0}', "pose has no 'left_eye'"),
        "not_a_dict": ("[1]", "no pose object"),
    }
    for name, (pose, needle) in cases.items():
        others = ', "right_eye": 0, "mouth": 0' if name not in ("missing", "not_a_dict") else ""
        text = pose[:-1] + others + "}" if pose.startswith("{") else pose
        meta = b'{"character": "synth", "pose": ' + text.encode() + b"}"
        shard = H.shard_bytes([("synth_000000", H.example("synth_000000", json=meta))])
        refused(
            H.write_dataset(tmp_path / name, shard), "train-000000.tar:synth_000000.json", needle
        )
    bom = "\ufeff".encode("utf-16-le") + H.record("synth_000000").decode().encode("utf-16-le")
    shard = H.shard_bytes([("synth_000000", H.example("synth_000000", json=bom))])
    refused(H.write_dataset(tmp_path / "utf16", shard), "synth_000000.json: not UTF-8 JSON")


def test_images_of_another_size_are_refused_not_resized(tmp_path):
    cases = {
        "small": (H.png(4), "synth_000000.rest.png: image is 4×4; the dataset's images are 8²"),
        "bomb": (H.png_header_only(30000, 30000), "image is 30000×30000"),
        "not_png": (b"GIF89a" + bytes(40), "synth_000000.rest.png: not a PNG"),
        "broken": (H.png()[:40] + bytes(30) + H.png()[70:], "synth_000000.rest.png"),
    }
    for name, (data, needle) in cases.items():
        shard = H.shard_bytes([("synth_000000", H.example("synth_000000", rest_png=data))])
        refused(H.write_dataset(tmp_path / name, shard), needle)
    # the dataset's own size may still be resized for a smaller network, as before
    root = H.write_dataset(tmp_path / "fine", H.good_shard())
    info = DatasetInfo.load(root)
    first = next(read_shard(root / "train-000000.tar"))
    assert decode(first, "morpher", NAMES, 4, info)["input"].shape == (4, 4, 4)


def test_a_bomb_dataset_json_is_refused(tmp_path):
    root = H.write_dataset(tmp_path, H.good_shard(), size=30000)
    with pytest.raises(DatasetError, match=re.escape("image_size 30000 is not in 1..4096")):
        DatasetInfo.load(root)


def test_training_refuses_a_nan_example_and_never_saves_nan_weights(tmp_path):
    from dataclasses import replace

    from training.configs import CONFIGS
    from training.trainer import train

    small = CONFIGS["cpu-small"]
    tiny = replace(
        small,
        network=replace(small.network, image_size=8, base_channels=4, max_channels=8, res_blocks=1),
        batch_size=2,
        log_every=1,
        sample_every=100,
        checkpoint_every=1000,
        num_workers=0,
    )
    meta = b'{"character": "synth", "pose": {"left_eye": NaN, "right_eye": 0, "mouth": 0}}'
    shard = H.shard_bytes(
        [
            ("synth_000000", H.example("synth_000000")),
            ("synth_000001", H.example("synth_000001", json=meta)),
        ]
    )
    root = H.write_dataset(tmp_path / "data", shard)
    with pytest.raises(DatasetError, match=re.escape("train-000000.tar:synth_000001.json")):
        train("morpher", root, tmp_path / "run", tiny, steps=3, log=lambda _: None)
    assert not list((tmp_path / "run").rglob("*.safetensors"))


def test_a_non_finite_loss_stops_training_before_a_checkpoint(tmp_path, monkeypatch):
    from dataclasses import replace

    from training import losses
    from training.configs import CONFIGS
    from training.trainer import train

    small = CONFIGS["cpu-small"]
    tiny = replace(
        small,
        network=replace(small.network, image_size=8, base_channels=4, max_channels=8, res_blocks=1),
        batch_size=2,
        num_workers=0,
    )
    real = losses.Objective.__call__

    def nan_loss(self, *args, **kwargs):
        loss, parts = real(self, *args, **kwargs)
        return loss * float("nan"), parts

    monkeypatch.setattr(losses.Objective, "__call__", nan_loss)
    root = H.write_dataset(tmp_path / "data", H.good_shard())
    with pytest.raises(ValueError, match=r"step 1: the loss is nan \(batch synth_00000"):
        train("morpher", root, tmp_path / "run", tiny, steps=3, log=lambda _: None)
    assert not list((tmp_path / "run").rglob("*.safetensors"))


def test_the_stream_refuses_too(tmp_path):
    meta = b'{"character": "synth", "pose": {"left_eye": [0], "right_eye": 0, "mouth": 0}}'
    shard = H.shard_bytes([("synth_000000", H.example("synth_000000", json=meta))])
    root = H.write_dataset(tmp_path, shard)
    with pytest.raises(DatasetError, match=re.escape("synth_000000.json: pose left_eye is")):
        list(ShardStream(root, "train", "morpher", shuffle=False))


# ------------------------------------------------------------------ the pipeline's own readers


def test_pipeline_readers_refuse_unsafe_members(tmp_path):
    from media.tarfiles import TarReadError
    from pipeline.report import sample_strip
    from pipeline.shards import read_keys

    (tmp_path / "train-000000.tar").write_bytes(H.old_gnu_sparse("synth_000000.rest.png", 8 << 30))
    with pytest.raises(TarReadError, match="a GNU sparse file"):
        read_keys(tmp_path / "train-000000.tar")
    with pytest.raises(TarReadError, match="a GNU sparse file"):
        sample_strip(tmp_path, "train-000000", "synth_000000")
    bomb = H.example("synth_000000", rest_png=H.png_header_only(30000, 30000))
    (tmp_path / "train-000001.tar").write_bytes(H.shard_bytes([("synth_000000", bomb)]))
    with pytest.raises(
        ValueError, match=r"synth_000000.rest.png is not a readable PNG \(Image size"
    ):
        sample_strip(tmp_path, "train-000001", "synth_000000", size=8)
    os.mkfifo(tmp_path / "train-000002.tar")
    with pytest.raises(TarReadError, match="is a FIFO"):
        read_keys(tmp_path / "train-000002.tar")


# ------------------------------------------------------------------------ thagen pose --image


@pytest.fixture(scope="module")
def morpher_run(tmp_path_factory) -> Path:
    from dataclasses import replace

    from tests.shardgen import write_dataset
    from training.configs import CONFIGS
    from training.trainer import train

    root = tmp_path_factory.mktemp("pose")
    data = write_dataset(
        root / "data", 1, 1, examples_per_character=2, examples_per_shard=2, size=32
    )
    small = CONFIGS["cpu-small"]
    tiny = replace(
        small,
        network=replace(
            small.network, image_size=32, base_channels=4, max_channels=8, res_blocks=1
        ),
        batch_size=2,
        num_workers=0,
    )
    return train(
        "morpher", data, root / "runs" / "morpher", tiny, steps=1, log=lambda _: None
    ).run_dir


def test_pose_image_bombs_and_fifos_are_one_line(tmp_path, morpher_run, capsys):
    from thagen.cli import main

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(H.png_header_only(30000, 30000))
    fifo = tmp_path / "face.png"
    os.mkfifo(fifo)
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((32, 32, 4), np.uint8), "RGBA").save(good)
    for image, needle in (
        (bomb, "bomb.png: image is too large to read (Image size (900000000 pixels)"),
        (fifo, "face.png: is a FIFO (named pipe), not a regular image file"),
    ):
        argv = ["pose", "--checkpoints", str(morpher_run), "--image", str(image)]
        assert main([*argv, "--pose", "left_eye=1", "-o", str(tmp_path / "o.png")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
    argv = ["pose", "--checkpoints", str(morpher_run), "--image", str(good)]
    assert main([*argv, "--pose", "left_eye=1", "-o", str(tmp_path / "o.png")]) == 0
    assert Image.open(tmp_path / "o.png").size == (32, 32)
