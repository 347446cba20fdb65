"""Only regular files are read: a FIFO, socket, device or folder given as a model, zip, texture,
overrides file or sidecar is refused with a clear error, without ever blocking on it; and the
one symlink rule of folder walks (`mmd_loader.walk`), with every skip reported."""

from __future__ import annotations

import os
import signal
import socket
import zipfile
from pathlib import Path

import pytest

from media.files import FileRefusedError, open_regular, read_regular, require_regular_file
from mmd_loader import ModelLoadError, load
from mmd_loader.archive import ArchiveError, is_archive, list_models
from mmd_loader.images import ImageReadError, read_image
from mmd_loader.inspection import inspect_paths
from mmd_loader.overrides import OverridesError, load_overrides, overrides_for
from mmd_loader.walk import walk_models
from pipeline.catalog import find_files, scan
from tests.test_loader import tiny_pmx

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")


@pytest.fixture(autouse=True)
def no_hang():
    """A blocked open would hang the suite: turn it into a failure after 20 s instead."""

    def fail(*_):
        raise AssertionError("blocked on a non-regular file")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def specials(tmp_path: Path) -> dict[str, Path]:
    """A FIFO, a socket, a character device and a folder, each named like a model file."""
    fifo = tmp_path / "fifo.pmx"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock.pmx"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    device = tmp_path / "device.pmx"
    device.symlink_to(os.devnull)  # /dev/null: a character device
    folder = tmp_path / "folder.pmx"
    folder.mkdir()
    yield {"FIFO": fifo, "socket": sock_path, "character device": device, "directory": folder}
    sock.close()


def test_helpers_refuse_everything_but_regular_files(specials, tmp_path: Path) -> None:
    for kind, path in specials.items():
        for call in (
            lambda p: require_regular_file(p, "model"),
            lambda p: open_regular(p, "model"),
            lambda p: read_regular(p, "model", 1000),
        ):
            with pytest.raises(FileRefusedError, match=f"is a {kind}") as caught:
                call(path)
            assert caught.value.path == str(path) and "not a regular model file" in str(
                caught.value
            )
    regular = tmp_path / "ok.bin"
    regular.write_bytes(b"12345")
    assert read_regular(regular, "input", 5) == b"12345"
    assert require_regular_file(regular).st_size == 5
    with pytest.raises(FileRefusedError, match="5 bytes, more than the limit 4 for input"):
        read_regular(regular, "input", 4)
    with pytest.raises(FileRefusedError, match="no such file"):
        read_regular(tmp_path / "missing", "input", 4)
    with pytest.raises(ModelLoadError, match="FIFO"):  # the caller's own error type
        require_regular_file(specials["FIFO"], "model", error=ModelLoadError)


def test_every_reader_refuses_a_fifo_with_its_own_error(specials, tmp_path: Path) -> None:
    fifo = specials["FIFO"]
    with pytest.raises(ModelLoadError, match=r"fifo\.pmx: is a FIFO \(named pipe\)"):
        load(fifo)
    with pytest.raises(ModelLoadError, match="is a directory"):
        load(specials["directory"])
    with pytest.raises(ImageReadError, match="FIFO"):
        read_image(fifo)
    with pytest.raises(OverridesError, match="FIFO"):
        load_overrides(fifo)
    zipped = tmp_path / "models.zip"
    os.mkfifo(zipped)
    assert not is_archive(zipped)
    with pytest.raises(ArchiveError, match="FIFO"):
        list_models(zipped)
    model = tmp_path / "m.pmx"
    model.write_bytes(tiny_pmx())
    os.mkfifo(tmp_path / "m.pmx.thagen.yaml")  # a sidecar is never silently ignored
    with pytest.raises(OverridesError, match=r"m\.pmx\.thagen\.yaml: is a FIFO"):
        overrides_for(model)


def test_a_fifo_texture_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "tex").mkdir()
    os.mkfifo(tmp_path / "tex" / "body.png")  # what tiny_pmx's material names
    model = load(_write(tmp_path / "m.pmx", tiny_pmx()))
    assert model.materials[0].texture is None
    assert any("body.png" in w for w in model.warnings)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- the symlink rule of folder walks -----------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """A models folder with every kind of entry a walk meets, and a folder outside it."""
    outside = tmp_path / "outside"
    _write(outside / "elsewhere" / "far.pmx", tiny_pmx())
    _write(outside / "far.pmd", b"Pmd")
    root = tmp_path / "models"
    _write(root / "a" / "m.pmx", tiny_pmx())
    _write(root / "a" / "readme.txt", b"not a model")
    _write(root / "blobs" / "0001", tiny_pmx(extra_uv=0))  # a model stored under a hash name
    (root / "b_link").symlink_to(outside / "elsewhere")  # a folder outside
    (root / "c.pmx").symlink_to(outside / "far.pmd")  # a model file outside
    (root / "d.pmx").symlink_to(root / "blobs" / "0001")  # inside, not itself a model name
    (root / "e_link").symlink_to(root / "a")  # a folder inside: walked as itself
    (root / "f.pmx").symlink_to(root / "missing.pmx")  # broken
    (root / "g.pmx").symlink_to(root / "a" / "m.pmx")  # a model file inside
    (root / "loop").symlink_to(root)  # a loop
    os.mkfifo(root / "h.pmx")
    (root / "notes.txt").symlink_to(outside / "far.pmd")  # not named like a model: ignored
    return {"root": root, "outside": outside}


def test_walk_follows_links_only_inside_and_reports_every_skip(tree) -> None:
    root = tree["root"]
    files, skipped = walk_models(root)
    assert [f.relative_to(root).as_posix() for f in files] == ["a/m.pmx", "d.pmx"]
    reasons = {s.path.relative_to(root).as_posix(): s.reason for s in skipped}
    assert sorted(reasons) == ["b_link", "c.pmx", "e_link", "f.pmx", "g.pmx", "h.pmx", "loop"]
    assert "outside" in reasons["b_link"] and "not followed" in reasons["b_link"]
    assert "outside" in reasons["c.pmx"]
    assert "walked as itself" in reasons["e_link"] and "walked as itself" in reasons["loop"]
    assert reasons["f.pmx"].startswith("broken symlink")
    assert "listed as itself" in reasons["g.pmx"]
    assert reasons["h.pmx"] == "is a FIFO (named pipe), not a regular file"
    # the root itself may be a symlink: naming it is the user's choice
    alias = tree["outside"] / "alias"
    alias.symlink_to(root)
    assert [f.relative_to(alias).as_posix() for f in walk_models(alias)[0]] == ["a/m.pmx", "d.pmx"]
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        walk_models(root / "nothing")


def test_scan_and_inspect_use_the_walk_and_report_skips(tree, capsys) -> None:
    root = tree["root"]
    files, skipped = find_files(root)
    assert files == walk_models(root)[0] and len(skipped) == 7
    table = scan([root], jobs=1, progress=False)
    assert sorted(Path(p).name for p in table["path"]) == ["0001", "m.pmx"]  # d.pmx resolved
    assert len(table.attrs["skipped"]) == 7
    err = capsys.readouterr().err
    assert f"skipped {root / 'b_link'}: symlink to" in err and "h.pmx: is a FIFO" in err
    reports = inspect_paths([root])
    by_path = {Path(r.path).name: r for r in reports}
    assert by_path["m.pmx"].format == "pmx" and by_path["d.pmx"].format == "pmx"
    assert not by_path["c.pmx"].usable and "outside" in by_path["c.pmx"].reasons[0]
    assert len(reports) == 2 + 7


def test_zip_in_a_walk_is_read_as_a_regular_file(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    with zipfile.ZipFile(root / "pack.zip", "w") as zf:
        zf.writestr("p/m.pmx", tiny_pmx())
    files, skipped = walk_models(root)
    assert files == [root / "pack.zip"] and skipped == []
    assert [r.member for r in inspect_paths([root])] == ["p/m.pmx"]
