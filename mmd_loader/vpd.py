"""VPD (Vocaloid Pose Data) reading: one pose, as text (cp932).

    Vocaloid Pose Data file

    miku.osm;            // the model file it was saved from
    2;                   // the number of bone blocks

    Bone0{頭
      0.000000,0.000000,0.000000;             // translation x, y, z
      0.000000,0.087156,0.000000,0.996195;    // rotation quaternion x, y, z, w
    }

    Morph0{まばたき
      1.000000;                               // weight
    }

`//` starts a comment. Blocks are numbered from 0 per kind; names are whole (not cut at 15
bytes as in a VMD). Values are in MMD's left-handed frame and converted as VMD keyframes are.
A pose is a motion of one frame (frame 0). What thagen does not need is lenient: the declared
bone count may disagree with the blocks (a warning), a UTF-8 file (MikuMikuMoving) is read too,
and unknown lines between blocks are warnings. A block that cannot be read is an error naming
the line.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from mmd_loader.errors import MotionLoadError, quote
from mmd_loader.motion import LINEAR_CURVE, BoneKeys, MorphKeys, Motion

VPD_MAGIC = "Vocaloid Pose Data file"
MAX_VPD_BYTES = 16 * 1024 * 1024
MAX_BLOCKS = 100_000
MAX_NAME_CHARS = 256
MAX_WARNINGS = 20
_BLOCK = re.compile(r"^(Bone|Morph)(\d+)\s*\{(.*)$")
_BOM = b"\xef\xbb\xbf"


def sniff_vpd(data: bytes) -> bool:
    """Whether the bytes start like a VPD file (after a UTF-8 BOM and blank space)."""
    head = data[:256].removeprefix(_BOM).lstrip()
    return head.startswith(VPD_MAGIC.encode("ascii"))


def parse_vpd(data: bytes, path: Path) -> Motion:
    """Parse VPD bytes; every failure is a MotionLoadError naming the line."""
    if len(data) > MAX_VPD_BYTES:
        raise MotionLoadError(path, f"{len(data)} bytes, more than a pose file may have")
    lines = _text(data, path).splitlines()
    reader = _Reader(path, lines)
    return reader.motion()


def _text(data: bytes, path: Path) -> str:
    if data.startswith(_BOM):
        encodings = ("utf-8",)
        data = data[len(_BOM) :]
    else:
        encodings = ("cp932", "utf-8")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as error:
            failure = error
    raise MotionLoadError(path, "not cp932 or UTF-8 text", failure.start)


class _Reader:
    def __init__(self, path: Path, lines: list[str]) -> None:
        self.path = path
        self.lines = lines
        self.at = 0  # index of the next line
        self.warnings: list[str] = []

    def fail(self, message: str, line: int | None = None) -> MotionLoadError:
        return MotionLoadError(self.path, message, line=line if line is not None else self.at)

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(f"line {self.at}: {message}")

    def next_line(self) -> str | None:
        """The next line without its comment and outer blanks, skipping empty ones."""
        while self.at < len(self.lines):
            text = self.lines[self.at].split("//", 1)[0].strip()
            self.at += 1
            if text:
                return text
        return None

    def statement(self, what: str) -> str:
        line = self.next_line()
        if line is None or not line.endswith(";"):
            found = "the end of the file" if line is None else quote(line)
            raise self.fail(f"expected {what} ending in ';', found {found}")
        return line[:-1].strip()

    def motion(self) -> Motion:
        if self.next_line() != VPD_MAGIC:
            raise self.fail(f"not a VPD file (the first line is not {VPD_MAGIC!r})")
        model_file = self.statement("the model file name")
        declared = self.statement("the bone count")
        if not declared.isdigit():
            raise self.fail(f"the bone count is {quote(declared)}, not a number")
        bones: dict[str, tuple[list[float], list[float]]] = {}
        morphs: dict[str, float] = {}
        blocks = 0
        while (line := self.next_line()) is not None:
            match = _BLOCK.match(line)
            if match is None:
                self.warn(f"not a Bone or Morph block: {quote(line)}, ignored")
                continue
            blocks += 1
            if blocks > MAX_BLOCKS:
                raise self.fail(f"more than {MAX_BLOCKS} blocks")
            kind, name, start = match.group(1), match.group(3).strip(), self.at
            if len(name) > MAX_NAME_CHARS:
                raise self.fail(f"{kind} name longer than {MAX_NAME_CHARS} characters")
            values = self._block_values(kind, name, start)
            if kind == "Bone":
                bones[name] = (values[0], values[1])
            else:
                morphs[name] = values[0][0]
        if int(declared) != len(bones):
            self.warnings.append(f"declares {int(declared)} bones, holds {len(bones)}")
        return _motion(self.path, model_file, bones, morphs, self.warnings)

    def _block_values(self, kind: str, name: str, start: int) -> list[list[float]]:
        """The block's statements as lists of numbers, up to its closing brace."""
        statements: list[tuple[str, int]] = []  # (text, the line it starts on)
        pending, pending_line = "", None
        while True:
            line = self.next_line()
            if line is None:
                raise self.fail(f"{kind} {quote(name)} has no closing '}}'", start)
            closing = "}" in line
            for k, part in enumerate(line.split("}", 1)[0].split(";")):
                if k:  # a ';' ended the statement before this part
                    statements.append((pending.strip(), pending_line or self.at))
                    pending, pending_line = "", None
                if part.strip() and pending_line is None:
                    pending_line = self.at
                pending += " " + part
            if closing:
                break
            if self.at - start > 8:
                raise self.fail(f"{kind} {quote(name)}: too many lines before its '}}'", start)
        if pending.strip():
            statements.append((pending.strip(), pending_line or self.at))
        sizes = (3, 4) if kind == "Bone" else (1,)
        if len(statements) != len(sizes):
            raise self.fail(
                f"{kind} {quote(name)} has {len(statements)} value statements, expected "
                f"{len(sizes)}",
                start,
            )
        out = []
        for (text, line), size in zip(statements, sizes, strict=True):
            numbers = [n.strip() for n in text.split(",")]
            what = f"{kind} {quote(name)}: {quote(text)}"
            if len(numbers) != size:
                raise self.fail(f"{what} is not {size} numbers", line)
            try:
                row = [float(n) for n in numbers]
            except ValueError:
                raise self.fail(f"{what} is not numbers", line) from None
            if not all(math.isfinite(v) for v in row):
                raise self.fail(f"{what} is not finite", line)
            out.append(row)
        return out


def _motion(
    path: Path,
    model_file: str,
    bones: dict[str, tuple[list[float], list[float]]],
    morphs: dict[str, float],
    warnings: list[str],
) -> Motion:
    """The pose as a one-frame Motion (frame 0), converted to the right-handed frame."""
    n = len(bones)
    position = np.array([t for t, _ in bones.values()], np.float32).reshape(n, 3)
    rotation = np.array([q for _, q in bones.values()], np.float32).reshape(n, 4)
    position[:, 2] *= -1
    rotation[:, :2] *= -1
    curves = np.broadcast_to(np.array(LINEAR_CURVE, np.uint8), (n, 4, 4)).copy()
    names = list(bones)
    morph_names = list(morphs)
    return Motion(
        path=path,
        format="vpd",
        version="1",
        model_name=model_file.removesuffix(".osm"),
        bone_names=names,
        bone_raw=[_stored(n) for n in names],
        bones=BoneKeys(
            np.arange(n, dtype=np.int32), np.zeros(n, np.int64), position, rotation, curves
        ),
        morph_names=morph_names,
        morph_raw=[_stored(n) for n in morph_names],
        morphs=MorphKeys(
            np.arange(len(morphs), dtype=np.int32),
            np.zeros(len(morphs), np.int64),
            np.array(list(morphs.values()), np.float32),
        ),
        name_limit=None,
        warnings=warnings,
    )


def _stored(name: str) -> bytes:
    """A VPD name as bytes to match model names with (cp932 when it can be, else UTF-8)."""
    try:
        return name.encode("cp932")
    except UnicodeEncodeError:
        return name.encode("utf-8")
