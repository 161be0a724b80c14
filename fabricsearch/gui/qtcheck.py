"""A check of the installed PySide6 that the application cannot run without.

PySide6-Essentials 6.12.0 drops a reference to Python's `None` on every call of a method that
returns nothing and every conversion of None to or from a QVariant (`QComboBox.addItem(text,
None)`, `currentData()`, `QObject.setProperty`). Python 3.11 aborts with "Fatal Python error:
none_dealloc" once the count reaches zero: the window died after about 220 thumbnail
selections. pyproject.toml pins a version without the bug; this check turns a wrong
installation into a plain message at start instead of an abort minutes later.
"""

from __future__ import annotations

import sys

PROBE_CALLS = 100
GOOD_VERSION = "6.11.3"


def none_references_dropped(calls: int = PROBE_CALLS) -> int:
    """How many references to None `calls` rounds of ordinary PySide6 calls lose (0 when
    PySide6 is sound; a few more or less come from Python's own bookkeeping)."""
    from PySide6.QtCore import QObject

    obj = QObject()
    obj.setProperty("fabricsearch_probe", None)
    before = sys.getrefcount(None)
    for _ in range(calls):
        obj.setObjectName("probe")  # returns nothing
        obj.setProperty("fabricsearch_probe", None)  # None → QVariant
        obj.property("fabricsearch_probe")  # QVariant → None
    return before - sys.getrefcount(None)


def pyside_problem() -> str | None:
    """A message for the user when the installed PySide6 would crash the application."""
    import PySide6

    lost = none_references_dropped()
    if lost < PROBE_CALLS // 2:
        return None
    return (
        f"PySide6 {PySide6.__version__} has a reference-counting bug (it loses a reference to "
        f"None on every call; {lost} in {PROBE_CALLS} test calls) that makes the window abort "
        f"after a few hundred clicks. Install PySide6-Essentials=={GOOD_VERSION}, e.g. "
        f"`pip install 'PySide6-Essentials=={GOOD_VERSION}'` or scripts/setup.sh."
    )
