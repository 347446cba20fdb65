"""VMD and VPD files written in code: what the readers give back (names in cp932, frames,
the frame conversion, the four curves), the sections they read past or miss, lenient where MMD
is and one-line errors naming the byte or line where not."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from mmd_loader.errors import MotionLoadError
from mmd_loader.motion import load_motion, parse_motion
from mmd_loader.vmd import (
    BONE_RECORD,
    HEADER_BYTES,
    VmdBoneFrame,
    VmdMorphFrame,
    encode_vmd,
    interpolation_block,
)

EASE = ((10, 30, 90, 120), (20, 20, 107, 107), (0, 127, 127, 0), (64, 0, 64, 127))
LONG = "左人差指先端ボーン"  # 18 cp932 bytes: a VMD keeps 15, cutting the 8th character in half


def _vmd(**kw) -> bytes:
    bones = [
        VmdBoneFrame("頭", 30, (1.0, 2.0, 3.0), (0.1, 0.2, 0.3, 0.9), EASE),
        VmdBoneFrame("センター", 0),
        VmdBoneFrame(LONG, 5),
    ]
    morphs = [VmdMorphFrame("まばたき", 0, 0.0), VmdMorphFrame("ウィンク右", 12, 0.75)]
    return encode_vmd("初音ミクVer2", bones, morphs, **kw)


def test_vmd_keyframes_names_and_the_right_handed_frame():
    motion = parse_motion(_vmd(cameras=2, lights=1, shadows=3), Path("m.vmd"))
    assert (motion.format, motion.version, motion.model_name) == ("vmd", "0002", "初音ミクVer2")
    assert motion.bone_names[:2] == ["頭", "センター"]
    assert motion.bone_raw[2] == LONG.encode("cp932")[:15]
    assert motion.bone_names[2].startswith("左人差指先端") and motion.bone_names[2][-1] == "\ufffd"
    assert motion.morph_names == ["まばたき", "ウィンク右"]
    head = motion.bone_track(0)
    assert head.frames.tolist() == [30.0]
    assert head.positions[0].tolist() == pytest.approx([1.0, 2.0, -3.0])  # z mirrored
    q = np.array([-0.1, -0.2, 0.3, 0.9])  # (x, y, z, w) → (-x, -y, z, w), as models are
    assert head.rotations[0] == pytest.approx(q / np.linalg.norm(q))
    assert head.curves[0].tolist() == [list(c) for c in EASE]
    wink = motion.morph_track(1)
    assert wink.frames.tolist() == [12.0] and wink.weights.tolist() == [0.75]
    assert (motion.camera_keys, motion.light_keys, motion.shadow_keys, motion.ik_keys) == (
        2,
        1,
        3,
        0,
    )
    assert motion.last_frame == 30 and motion.frame_count == 31 and not motion.warnings


def test_curves_come_from_the_shifted_rows_not_the_physics_bytes():
    """MMD reuses bytes 2 and 3 of the interpolation block for a physics switch (0x63): the
    curves are read where the shifted copies keep them."""
    data = bytearray(_vmd())
    block = HEADER_BYTES + 20 + 4 + BONE_RECORD.fields["interpolation"][1]
    assert bytes(data[block : block + 64]) == interpolation_block(EASE)
    data[block + 2] = data[block + 3] = 0x63
    motion = parse_motion(bytes(data), Path("m.vmd"))
    assert motion.bone_track(0).curves[0].tolist() == [list(c) for c in EASE]


def test_old_header_missing_and_truncated_tail_sections():
    old = parse_motion(_vmd(old=True), Path("old.vmd"))
    assert (old.version, old.model_name) == ("0001", "初音ミクVe")  # 10 bytes
    assert old.morph_names == ["まばたき", "ウィンク右"]
    short = parse_motion(_vmd(tail=False), Path("short.vmd"))  # ends after the morphs
    assert short.camera_keys == 0 and not short.warnings and len(short.morph_names) == 2
    data = _vmd()
    bones_only = data[: HEADER_BYTES + 20 + 4 + 3 * BONE_RECORD.itemsize]  # ends after the bones
    assert parse_motion(bones_only, Path("b.vmd")).morph_names == []
    cut = _vmd(cameras=3)[:-40]  # inside the camera section: unused, a warning
    motion = parse_motion(cut, Path("cut.vmd"))
    assert len(motion.morph_names) == 2 and "camera" in motion.warnings[0]


@pytest.mark.parametrize(
    ("mutate", "offset", "words"),
    [
        (lambda d: b"Vocaloid Motion Data 0003" + d[25:], 0, "unknown VMD header"),
        (lambda d: d[:40], 30, "model name"),
        (lambda d: d[:50] + struct.pack("<I", 10**6) + d[54:], 50, "bone keyframe count"),
        (lambda d: d[:120], 50, "needs at least 333 bytes"),
        (lambda d: b"PMX " + d[4:], 0, "not a VMD or VPD"),
    ],
)
def test_bad_vmd_is_one_error_with_the_offset(mutate, offset, words):
    with pytest.raises(MotionLoadError) as info:
        parse_motion(mutate(_vmd()), Path("bad.vmd"))
    message = str(info.value)
    assert message.startswith("bad.vmd") and words in message and "\n" not in message
    if offset is not None:
        assert info.value.offset == offset


def test_only_regular_files_within_the_limit(tmp_path):
    fifo = tmp_path / "pipe.vmd"
    os.mkfifo(fifo)
    with pytest.raises(MotionLoadError, match="FIFO"):
        load_motion(fifo)
    with pytest.raises(MotionLoadError, match="no such file"):
        load_motion(tmp_path / "missing.vmd")
    path = tmp_path / "ok.vmd"
    path.write_bytes(_vmd())
    assert load_motion(path).path == path


def test_same_frame_keeps_the_last_key_and_unsorted_keys_are_sorted():
    bones = [
        VmdBoneFrame("頭", 20, rotation=(0, 0, 0, 1)),
        VmdBoneFrame("頭", 0, rotation=(0, 0.5, 0, 0.5)),
        VmdBoneFrame("首", 3),
        VmdBoneFrame("頭", 20, position=(0, 9, 0)),  # replaces the first key at 20
    ]
    morphs = [VmdMorphFrame("あ", 9, 0.2), VmdMorphFrame("あ", 1, 0.4), VmdMorphFrame("あ", 9, 1.0)]
    motion = parse_motion(encode_vmd("m", bones, morphs), Path("m.vmd"))
    head = motion.bone_track(motion.bone_names.index("頭"))
    assert head.frames.tolist() == [0.0, 20.0]
    assert head.positions[1].tolist() == [0.0, 9.0, 0.0]
    mouth = motion.morph_track(0)
    assert mouth.frames.tolist() == [1.0, 9.0] and mouth.weights.tolist() == pytest.approx(
        [0.4, 1.0]
    )


VPD = """Vocaloid Pose Data file

miku.osm;\t\t// 親ファイル名
3;\t\t\t\t// 総ポーズボーン数

Bone0{頭
  0.000000,0.500000,1.000000;\t\t\t\t// trans x,y,z
  0.000000,0.087156,0.000000,0.996195;\t\t// Quaternion x,y,z,w
}

Bone1{首
  0,0,0;
  0,0,0,1;
}

Morph0{まばたき
  0.250000;\t\t\t\t// weight
}

Morph1{ウィンク右
  1;
}
"""


@pytest.mark.parametrize("encoding", ["cp932", "utf-8-sig"])
def test_vpd_is_one_frame_of_bones_and_morphs(encoding):
    motion = parse_motion(VPD.encode(encoding), Path("pose.vpd"))
    assert (motion.format, motion.model_name) == ("vpd", "miku")
    assert motion.bone_names == ["頭", "首"] and motion.morph_names == ["まばたき", "ウィンク右"]
    head = motion.bone_track(0)
    assert head.frames.tolist() == [0.0] and head.positions[0].tolist() == [0.0, 0.5, -1.0]
    assert head.rotations[0] == pytest.approx([0.0, -0.087156, 0.0, 0.996195], abs=1e-6)
    assert motion.morph_track(0).weights.tolist() == [0.25]
    assert motion.last_frame == 0 and motion.name_limit is None
    assert motion.warnings == ["declares 3 bones, holds 2"]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (VPD.replace("Vocaloid Pose Data file", "Vocaloid Pose Data fil"), None, "VPD"),
        (VPD.replace("0.250000;", "0.25 0.5;"), 17, "not numbers"),
        (VPD.replace("0,0,0,1;", "0,0,1;"), 13, "not 4 numbers"),
        (VPD.replace("  1;\n}\n", "  1;\n"), 20, "no closing"),
        (VPD.replace("3;\t", "three;\t"), 4, "bone count"),
        (VPD.replace("0,0,0;", "nan,0,0;"), 12, "not finite"),
    ],
)
def test_bad_vpd_names_the_line(text, line, words):
    with pytest.raises(MotionLoadError) as info:
        parse_motion(text.encode("cp932"), Path("bad.vpd"))
    assert words in str(info.value) and str(info.value).startswith("bad.vpd")
    if line is not None:
        assert info.value.line == line


def test_vpd_that_is_not_text_is_refused():
    with pytest.raises(MotionLoadError, match="not cp932 or UTF-8"):
        parse_motion(b"Vocaloid Pose Data file\n\x82\xff\xff", Path("x.vpd"))
