"""requirements/lock.txt: write it with pip-compile, and check that it is current and installed.

    .venv/bin/python scripts/lock.py compile [--upgrade]  # `make lock`: pip-compile + the stamp
    .venv/bin/python scripts/lock.py check      # `make test`: the stamp is current, venv = lock
    .venv/bin/python scripts/lock.py verify     # CI: pip-compile --dry-run gives the same lock
    python3 scripts/lock.py covers              # exit 0 when the lock fits this Python

The stamp is a line in the lock, the sha256 of everything that decides its resolution:
pyproject.toml's requires-python, dependencies, optional-dependencies and [tool.pip-tools], and
the constraint files that names. Editing any of them without `make lock` fails `check` at once,
offline; `verify` resolves again from the registries (about 20 s) and compares every pin and hash.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
STAMP = "# pyproject.toml's dependencies, sha256: "
# What the lock was resolved for: pip-compile evaluates markers and picks wheels for one Python.
COVERS = {"python": (3, 11), "system": "Linux", "machine": "x86_64"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def project() -> dict:
    import tomllib  # Python >= 3.11, which the lock needs anyway

    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def lock_path(config: dict | None = None) -> Path:
    config = config or project()
    return ROOT / config["tool"]["pip-tools"]["output-file"]


def inputs_digest(config: dict | None = None) -> str:
    """sha256 of what decides the lock's resolution (canonical JSON, then the constraint files)."""
    config = config or project()
    tools = config["tool"]["pip-tools"]
    section = {
        "requires-python": config["project"].get("requires-python"),
        "dependencies": config["project"].get("dependencies", []),
        "optional-dependencies": config["project"].get("optional-dependencies", {}),
        "tool.pip-tools": tools,
    }
    digest = hashlib.sha256(json.dumps(section, sort_keys=True).encode())
    for name in tools.get("constraint", []):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    """name → version of every `name==version` requirement line of a lock."""
    return {canonical(m[1]): m[2] for line in text.splitlines() if (m := PIN.match(line))}


def body(text: str) -> list[str]:
    """The pins and hashes of a lock (pip-compile --dry-run prints them among build warnings)."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if PIN.match(line) or line.startswith("--hash=")]


def covers() -> bool:
    return (
        sys.version_info[:2] == COVERS["python"]
        and platform.system() == COVERS["system"]
        and platform.machine() == COVERS["machine"]
    )


def pip_compile(*extra: str) -> subprocess.CompletedProcess:
    command = [
        str(Path(sys.executable).with_name("pip-compile")),
        "--quiet",
        *extra,
        str(PYPROJECT.relative_to(ROOT)),
    ]
    env = {**os.environ, "CUSTOM_COMPILE_COMMAND": "make lock"}  # the header's command
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)


def compile_lock(upgrade: bool) -> int:
    result = pip_compile(*(["--upgrade"] if upgrade else []))
    if result.returncode:
        sys.stderr.write(result.stdout + result.stderr)
        return result.returncode
    path = lock_path()
    lines = [line for line in path.read_text().splitlines() if not line.startswith(STAMP)]
    end = next(i for i, line in enumerate(lines) if not line.startswith("#"))  # after the header
    lines.insert(end, STAMP + inputs_digest())
    path.write_text("\n".join(lines) + "\n")
    print(f"{path.relative_to(ROOT)}: {len(pins(path.read_text()))} packages")
    return 0


def installed() -> dict[str, str]:
    from importlib import metadata

    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}


def check() -> int:
    try:
        config = project()
    except ModuleNotFoundError:  # Python 3.10: no tomllib, and the lock is for 3.11
        print("note: the lock is for CPython 3.11; this Python cannot read pyproject.toml's stamp")
        return 0
    path = lock_path(config)
    text = path.read_text()
    stamp = next((line[len(STAMP) :] for line in text.splitlines() if line.startswith(STAMP)), "")
    name = path.relative_to(ROOT)
    if stamp != inputs_digest(config):
        print(
            f"{name} is out of date: pyproject.toml's dependencies (or a constraint file) changed "
            "since it was written; run `make lock` and commit both",
            file=sys.stderr,
        )
        return 1
    locked = pins(text)
    if not covers():
        print(
            f"note: {name} covers CPython 3.11 on Linux x86_64; this is CPython "
            f"{platform.python_version()} on {platform.system()} {platform.machine()}, "
            "installed from pyproject.toml's ranges (see README, The two commands)"
        )
        return 0
    have = installed()
    project_name = canonical(config["project"]["name"])
    wrong = sorted(
        f"{k} {have.get(k, 'missing')} (locked {v})" for k, v in locked.items() if have.get(k) != v
    )
    if wrong:
        print(f"the environment is not {name}: " + ", ".join(wrong), file=sys.stderr)
        print("run `make setup` (it installs the lock when it changes)", file=sys.stderr)
        return 1
    extra = sorted(k for k in have if k not in locked and k != project_name)
    note = f"; also installed by hand: {', '.join(extra)}" if extra else ""
    print(f"environment = {name}: {len(locked)} packages, torch {have.get('torch')}{note}")
    return 0


def verify() -> int:
    """Resolve again (pip-compile --dry-run, reusing the lock's pins and hashes) and compare."""
    result = pip_compile("--dry-run")
    if result.returncode:
        sys.stderr.write(result.stdout + result.stderr)
        return result.returncode
    resolved = body(result.stdout + result.stderr)
    written = body(lock_path().read_text())
    if resolved != written:
        added = sorted(set(resolved) - set(written))[:10]
        removed = sorted(set(written) - set(resolved))[:10]
        print(
            f"pip-compile resolves differently from the lock: +{added} -{removed}", file=sys.stderr
        )
        return 1
    count = sum(1 for line in written if PIN.match(line))
    print(f"pip-compile --dry-run reproduces the lock ({count} packages)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("compile").add_argument("--upgrade", action="store_true")
    sub.add_parser("check")
    sub.add_parser("verify")
    sub.add_parser("covers")
    args = parser.parse_args(argv)
    if args.command == "covers":
        return 0 if covers() else 1
    if args.command == "compile":
        return compile_lock(args.upgrade)
    return check() if args.command == "check" else verify()


if __name__ == "__main__":
    sys.exit(main())
