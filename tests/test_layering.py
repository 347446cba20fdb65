"""The packages depend on each other one way only, and rendering never pulls in torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Each package and the project packages it may import (thagen, the CLI, may import all).
ALLOWED = {
    "media": set(),
    "poses": {"media"},
    "mmd_loader": {"poses", "media"},
    "characters": {"mmd_loader", "poses", "media"},
    "render": {"mmd_loader", "poses", "media"},
    "pipeline": {"characters", "mmd_loader", "render", "poses", "media"},
    "tracking": {"poses", "media"},
    "training": {"poses", "media"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_packages_depend_one_way():
    offences = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in imported_modules(path):
                top = name.split(".")[0]
                if top in ALLOWED and top != package and top not in allowed:
                    offences.append(f"{path.relative_to(ROOT)} imports {name}")
                if top == "thagen":
                    offences.append(f"{path.relative_to(ROOT)} imports the CLI ({name})")
    assert not offences, "\n".join(offences)


def test_every_package_is_checked():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench", "thagen"}
    assert packages == set(ALLOWED)


def test_rendering_and_cli_help_do_not_import_torch():
    code = (
        "import sys, mmd_loader, render, render.renderer, thagen.cli;"
        "thagen.cli.build_parser();"
        "print('torch' in sys.modules, 'mediapipe' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_readme_diagram_is_generated_from_the_imports():
    out = subprocess.run(
        [sys.executable, "scripts/import_graph.py", "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr
