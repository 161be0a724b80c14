"""Where a model's files lie: the weights (``.safetensors``) and, beside them, the same
metadata as readable JSON. A leaf module: the catalogue (copying, a team library's model
files) and the checkpoint reader share it without the catalogue importing `hashing`."""

from __future__ import annotations

from pathlib import Path


def metadata_path(weights_path: str | Path) -> Path:
    """The JSON beside a model's weights file."""
    return Path(weights_path).with_suffix(".json")


__all__ = ["metadata_path"]
