"""The `thagen` command: every subcommand is there, and user errors are one line and exit 2."""

from __future__ import annotations

import json

import pytest

from thagen.cli import build_parser, main

COMMANDS = [
    "inspect",
    "make-character",
    "motion",
    "render",
    "preview",
    "scan",
    "generate",
    "merge",
    "report",
    "dataset-default",
    "track",
    "train",
    "evaluate",
    "pose",
    "train-demo",
]


def test_every_subcommand_is_registered():
    choices = build_parser()._subparsers._group_actions[0].choices
    assert set(COMMANDS) <= set(choices)


@pytest.mark.parametrize(
    "argv",
    [
        ["inspect", "/nonexistent/model.pmx"],
        ["render", "/nonexistent/model.pmx", "-o", "x.png"],
        ["generate", "--models", "/nonexistent", "--out", "{tmp}/ds", "--no-progress"],
        ["report", "/nonexistent"],
        ["track", "/nonexistent.mp4", "-o", "{tmp}/p.csv", "--no-progress"],
        ["motion", "/nonexistent.vmd", "--model", "/nonexistent.pmx", "-o", "{tmp}/p.csv"],
        ["render", "/nonexistent.pmx", "--sequence", "/nonexistent.vmd", "-o", "{tmp}/a.gif"],
        ["generate", "--models", "{tmp}", "-o", "{tmp}/d", "--poses", "/nonexistent"],
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv, tmp_path, capsys):
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "/nonexistent" in err
    assert "Traceback" not in err


def test_make_character_then_inspect_json(tmp_path, capsys):
    out = tmp_path / "c.pmx"
    assert main(["make-character", "--seed", "5", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["inspect", "--json", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["usable"] and report["format"] == "pmx"
    assert {"left_eye", "right_eye", "mouth", "neck", "head"} <= set(report["roles"])
