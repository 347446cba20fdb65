"""Print the package import graph as a Mermaid flowchart (the README's architecture diagram).

    .venv/bin/python scripts/import_graph.py            # prints the ```mermaid block
    .venv/bin/python scripts/import_graph.py --check    # exit 1 if README.md's block differs
    .venv/bin/python scripts/import_graph.py --write    # rewrite README.md's block

An edge A --> B means some module of package A imports package B (tests/test_layering.py says
which edges are allowed).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "thagen",
    "pipeline",
    "training",
    "tracking",
    "characters",
    "render",
    "mmd_loader",
    "poses",
    "media",
)
BEGIN, END = "<!-- import-graph:begin -->", "<!-- import-graph:end -->"


def edges() -> list[tuple[str, str]]:
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top in PACKAGES and top != package:
                        found.add((package, top))
    order = {p: i for i, p in enumerate(PACKAGES)}
    return sorted(found, key=lambda e: (order[e[0]], order[e[1]]))


def mermaid() -> str:
    lines = ["```mermaid", "flowchart TD"]
    lines += [f"    {a} --> {b}" for a, b in edges() if a != "thagen"]
    lines.append("```")
    return "\n".join(lines)


def readme_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    return text[start + len(BEGIN) : end].strip() if 0 <= start < end else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with README.md")
    parser.add_argument("--write", action="store_true", help="rewrite README.md's block")
    args = parser.parse_args()
    if args.write:
        readme = ROOT / "README.md"
        text = readme.read_text(encoding="utf-8")
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        readme.write_text(text[:start] + "\n" + mermaid() + "\n" + text[end:], encoding="utf-8")
        return 0
    if args.check:
        same = readme_block() == mermaid()
        print("README diagram is current" if same else "README diagram differs; re-run")
        return 0 if same else 1
    print(mermaid())
    return 0


if __name__ == "__main__":
    sys.exit(main())
