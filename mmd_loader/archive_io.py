"""One pass over an archive through libarchive: each entry's header (raw name bytes, kind, declared
size, position, encryption) and, on demand, its data in bounded chunks.

libarchive (Debian: libarchive13) is found and loaded by `libarchive-c`; this module declares
the few functions it needs that `libarchive-c` does not expose (raw path bytes, header
positions, encryption flags, the format code) on a private handle, so its error handling is
ours: every failure is a `ReadFailure` carrying libarchive's message.

Only the formats MMD models are shared in are enabled (zip, RAR 4 and 5, 7z, LHA, tar) and only
the decompression filters built into the library (gzip, bzip2, xz/lzma, zstd, lzip): never one
that would run an external program. Names are read in a UTF-8 locale for this thread (where the
process's is not UTF-8), so libarchive hands over UTF-8 where it knows the encoding and the
stored bytes where it does not; LHA names, which are cp932 in practice, are converted from it.
"""

from __future__ import annotations

import ctypes
import functools
import locale
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

FORMATS = ("zip", "rar", "rar5", "7zip", "lha", "tar")
FILTERS = ("gzip", "bzip2", "xz", "lzma", "zstd", "lzip")
ARCHIVE_OK, ARCHIVE_EOF, ARCHIVE_WARN = 0, 1, -20
BLOCK = 64 * 1024
# archive_format() codes (the family, without the variant bits)
FORMAT_NAMES = {
    0x30000: "tar",
    0x50000: "zip",
    0xB0000: "lha",
    0xD0000: "rar",
    0xE0000: "7z",
    0x100000: "rar5",
}
# Formats whose entries' data follow their headers in the file, one after another (not solid):
# the gap between two entries' data bounds the first one's packed size. (RAR 5 may be solid:
# a duplicate file there packs to almost nothing.)
POSITIONAL = {"zip", "rar", "lha"}
S_IFMT, S_IFREG, S_IFDIR, S_IFLNK = 0o170000, 0o100000, 0o040000, 0o120000


class ReadFailure(Exception):
    """libarchive failed; the message is its own."""


class Unavailable(ReadFailure):
    """libarchive itself cannot be loaded."""


@dataclass(frozen=True)
class RawEntry:
    """An entry's header as libarchive reports it."""

    index: int
    name: bytes | None  # None: libarchive could not represent it
    kind: int  # S_IF* bits of the mode
    size: int | None  # declared uncompressed size, None when the header has none
    offset: int  # file bytes consumed once the header is read: where its data starts
    encrypted: bool
    hardlink: bool


_VOIDP, _CHARP, _INT64 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_longlong
_PROTOTYPES = {
    "archive_read_new": ([], _VOIDP),
    "archive_read_free": ([_VOIDP], ctypes.c_int),
    "archive_read_open_fd": ([_VOIDP, ctypes.c_int, ctypes.c_size_t], ctypes.c_int),
    "archive_read_set_options": ([_VOIDP, _CHARP], ctypes.c_int),
    "archive_read_next_header": ([_VOIDP, ctypes.POINTER(_VOIDP)], ctypes.c_int),
    "archive_read_data": ([_VOIDP, _VOIDP, ctypes.c_size_t], ctypes.c_ssize_t),
    "archive_read_data_skip": ([_VOIDP], ctypes.c_int),
    "archive_filter_bytes": ([_VOIDP, ctypes.c_int], _INT64),
    "archive_filter_count": ([_VOIDP], ctypes.c_int),
    "archive_format": ([_VOIDP], ctypes.c_int),
    "archive_error_string": ([_VOIDP], _CHARP),
    "archive_entry_pathname": ([_VOIDP], _CHARP),
    "archive_entry_filetype": ([_VOIDP], ctypes.c_uint),
    "archive_entry_size": ([_VOIDP], _INT64),
    "archive_entry_size_is_set": ([_VOIDP], ctypes.c_int),
    "archive_entry_hardlink": ([_VOIDP], _CHARP),
    "archive_entry_is_encrypted": ([_VOIDP], ctypes.c_int),
    "archive_version_string": ([], _CHARP),
}


@functools.cache
def _lib() -> ctypes.CDLL:
    try:
        from libarchive import ffi  # libarchive-c: finds and loads the library
    except (ImportError, OSError, AttributeError) as error:
        raise Unavailable(
            f"libarchive is not available ({error}); install the Debian package libarchive13 "
            "and the Python package libarchive-c"
        ) from None
    lib = ctypes.CDLL(ffi.libarchive_path)  # a handle of our own: our prototypes, our checks
    for name, (args, result) in _PROTOTYPES.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = args, result
    for name in FORMATS + FILTERS:
        kind = "format" if name in FORMATS else "filter"
        getattr(lib, f"archive_read_support_{kind}_{name}").argtypes = [_VOIDP]
    return lib


@functools.cache
def _builtin_filters() -> tuple[str, ...]:
    """The FILTERS this libarchive decodes itself: one it would hand to an external program (it
    says so with a warning when registering it) is left out."""
    lib = _lib()
    probe = lib.archive_read_new()
    try:
        return tuple(
            name
            for name in FILTERS
            if getattr(lib, f"archive_read_support_filter_{name}")(probe) == ARCHIVE_OK
        )
    finally:
        lib.archive_read_free(probe)


def library_version() -> str:
    """libarchive's version string, e.g. 'libarchive 3.6.2'."""
    return _lib().archive_version_string().decode("ascii", "replace")


@functools.cache
def _libc_locale() -> tuple[ctypes.CDLL, int] | None:
    """(libc, a C.UTF-8 LC_CTYPE locale object) when the process's codeset is not UTF-8."""
    if locale.nl_langinfo(locale.CODESET).replace("-", "").upper() == "UTF8":
        return None
    libc = ctypes.CDLL(None)
    libc.newlocale.argtypes, libc.newlocale.restype = [ctypes.c_int, _CHARP, _VOIDP], _VOIDP
    libc.uselocale.argtypes, libc.uselocale.restype = [_VOIDP], _VOIDP
    for name in (b"C.UTF-8", b"C.utf8", b"en_US.UTF-8"):
        handle = libc.newlocale(1 << 0, name, None)  # LC_CTYPE_MASK (glibc: 1 << LC_CTYPE)
        if handle:
            return libc, handle
    return None


@contextmanager
def _utf8_ctype() -> Iterator[None]:
    """This thread's LC_CTYPE is UTF-8 inside (libarchive converts names through it)."""
    found = _libc_locale()
    if found is None:
        yield
        return
    libc, handle = found
    previous = libc.uselocale(handle)
    try:
        yield
    finally:
        libc.uselocale(previous)


@contextmanager
def archive_pass(fd: int) -> Iterator[ArchivePass]:
    """One forward pass over the archive file open at `fd` (not closed here), from its start."""
    with _utf8_ctype():
        reader = ArchivePass(fd)
        try:
            reader.open()
            yield reader
        finally:
            reader.close()


class ArchivePass:
    """libarchive reading one archive from a file descriptor it does not own."""

    def __init__(self, fd: int) -> None:
        self.lib = _lib()
        self.fd = fd
        self.file_size = os.fstat(fd).st_size
        self.handle = None
        self.buffer = ctypes.create_string_buffer(BLOCK)
        self.consumed = 0  # file bytes libarchive has read so far (monotonic)

    def open(self) -> None:
        lib = self.lib
        self.handle = lib.archive_read_new()
        if not self.handle:
            raise ReadFailure("out of memory")
        for name in FORMATS:
            getattr(lib, f"archive_read_support_format_{name}")(self.handle)
        for name in _builtin_filters():
            getattr(lib, f"archive_read_support_filter_{name}")(self.handle)
        lib.archive_read_set_options(self.handle, b"lha:hdrcharset=CP932")
        os.lseek(self.fd, 0, os.SEEK_SET)
        self._check(lib.archive_read_open_fd(self.handle, self.fd, BLOCK))

    def close(self) -> None:
        if self.handle:
            self.lib.archive_read_free(self.handle)
            self.handle = None

    def _check(self, code: int) -> int:
        if code < ARCHIVE_WARN:  # FAILED or FATAL; a warning is not a failure
            raise ReadFailure(self.error())
        return code

    def error(self) -> str:
        message = self.lib.archive_error_string(self.handle)
        if not message:
            return "unreadable archive data (libarchive gives no reason)"
        return message.decode("utf-8", "replace").strip()

    @property
    def format(self) -> str:
        """The archive's format family ('zip', 'rar', 'rar5', '7z', 'lha', 'tar')."""
        code = self.lib.archive_format(self.handle) & 0xFF0000
        return FORMAT_NAMES.get(code, f"format 0x{code:x}")

    @property
    def filtered(self) -> bool:
        """Whether a decompression filter sits under the format (a .tar.gz)."""
        return self.lib.archive_filter_count(self.handle) > 1

    @property
    def positional(self) -> bool:
        """Whether entries' data lie one after another in the file (so the gap to the next
        entry's data bounds an entry's compressed size)."""
        return self.format in POSITIONAL or (self.format == "tar" and not self.filtered)

    def _update_consumed(self) -> None:
        self.consumed = max(self.consumed, self.lib.archive_filter_bytes(self.handle, -1))

    def entries(self) -> Iterator[RawEntry]:
        """Each entry's header, in archive order. Reading an entry's data (`chunks`) must happen
        before the iterator advances."""
        lib, pointer = self.lib, ctypes.c_void_p()
        index = 0
        while True:
            code = lib.archive_read_next_header(self.handle, ctypes.byref(pointer))
            if code == ARCHIVE_EOF:
                return
            self._check(code)
            entry = pointer.value
            size = lib.archive_entry_size(entry)
            offset = lib.archive_filter_bytes(self.handle, -1)
            self._update_consumed()
            yield RawEntry(
                index=index,
                name=lib.archive_entry_pathname(entry),
                kind=lib.archive_entry_filetype(entry) & S_IFMT,
                size=size if lib.archive_entry_size_is_set(entry) and size >= 0 else None,
                offset=offset,
                encrypted=bool(lib.archive_entry_is_encrypted(entry)),
                hardlink=lib.archive_entry_hardlink(entry) is not None,
            )
            index += 1

    def chunks(self) -> Iterator[memoryview]:
        """The current entry's data, in chunks of at most BLOCK bytes (views into one buffer:
        use each before asking for the next)."""
        lib, view = self.lib, memoryview(self.buffer)
        while True:
            count = lib.archive_read_data(self.handle, self.buffer, BLOCK)
            if count == 0:
                return
            if count < 0:  # even a warning (a CRC mismatch is one): the data is not trusted
                raise ReadFailure(self.error())
            self._update_consumed()
            yield view[:count]
