"""Who makes a change: the name written into ``label_audit``, lock holders and removal notes.

A leaf of the catalogue package (it imports nothing of the project), so the library, the
team backend, the mixins and the stores can all name the author without importing each other.
"""

from __future__ import annotations

import os
from typing import Any


def user_name() -> str:
    """The login name of this process's user (``uid<N>`` when it has no passwd entry)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def audit_text(value: Any) -> str | None:
    """A label value as ``label_audit`` stores it: text, tightness as ``repr(float)``."""
    if value is None:
        return None
    return repr(float(value)) if isinstance(value, float) else str(value)
