"""The files fabricsearch ships (default taxonomy, icons, the pretrained search model).

They are package data of ``fabricsearch.resources`` (this folder; declared in pyproject.toml)
and are found with `importlib.resources`, so they are there in a wheel install, an editable
install, a source checkout and the PyInstaller bundle alike (docs/packaging.md).
"""

from __future__ import annotations

import atexit
import contextlib
from importlib import resources
from pathlib import Path

_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


def resource_path(*parts: str) -> Path:
    """A file-system path of the shipped resource ``parts`` (e.g. ``"models"`` or
    ``"taxonomy.json"``); it may not exist (a bare checkout without the model).

    Installed as files (the normal case) this is the file itself; from a zip import, the
    resource is extracted to a temporary file that lasts until the process exits."""
    found = resources.files(__name__).joinpath(*parts)
    if isinstance(found, Path):
        return found
    return _extracted.enter_context(resources.as_file(found))
