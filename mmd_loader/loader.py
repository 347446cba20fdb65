"""Placeholder: replaced by the real loader."""

from pathlib import Path

from mmd_loader.model import Model


def load(path: str | Path) -> Model:
    raise NotImplementedError
