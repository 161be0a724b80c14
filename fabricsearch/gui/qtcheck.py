"""Checks at start of what the application cannot run without: a sound PySide6, and the
system libraries of Qt's X11 plugin (`xcb_problem`).

PySide6-Essentials 6.12.0 drops a reference to Python's `None` on every call of a method that
returns nothing and every conversion of None to or from a QVariant (`QComboBox.addItem(text,
None)`, `currentData()`, `QObject.setProperty`). Python 3.11 aborts with "Fatal Python error:
none_dealloc" once the count reaches zero: the window died after about 220 thumbnail
selections. pyproject.toml pins a version without the bug; this check turns a wrong
installation into a plain message at start instead of an abort minutes later.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

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


# --- the system libraries of Qt's X11 platform plugin ---------------------------------------
#: What Qt's xcb platform plugin (libqxcb.so → libQt6XcbQpa.so.6) loads, and the Debian/Ubuntu
#: package of each (`readelf -d` on PySide6 6.11's plugin). Qt itself only says "Could not
#: load the Qt platform plugin "xcb"" and aborts; libxcb-cursor0 is the one most often missing
#: (Qt ≥ 6.5 needs it, desktop installs often lack it).
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libGL.so.1": "libgl1",
    "libglib-2.0.so.0": "libglib2.0-0",
}


def loadable(soname: str) -> bool:
    """Whether the dynamic loader finds `soname` (what Qt's plugin will ask it for)."""
    import ctypes

    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_xcb(platform: str | None = None, env: dict[str, str] | None = None) -> bool:
    """Whether Qt will start on its X11 (xcb) plugin: Linux, and QT_QPA_PLATFORM naming xcb
    first, or unset outside a Wayland session."""
    import os

    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if chosen:
        return chosen == "xcb"
    return not (env.get("XDG_SESSION_TYPE") == "wayland" and env.get("WAYLAND_DISPLAY"))


def missing_xcb_libraries(find: Callable[[str], bool] | None = None) -> dict[str, str]:
    """{library: its Debian/Ubuntu package} for each library of `XCB_LIBRARIES` that `find`
    (default `loadable`) does not find."""
    find = loadable if find is None else find
    return {lib: pkg for lib, pkg in XCB_LIBRARIES.items() if not find(lib)}


def xcb_problem(
    find: Callable[[str], bool] | None = None,
    platform: str | None = None,
    env: dict[str, str] | None = None,
) -> str | None:
    """A message naming the packages to install when Qt's X11 plugin could not load (None:
    nothing missing, or not an X11 start)."""
    if not uses_xcb(platform, env):
        return None
    missing = missing_xcb_libraries(find)
    if not missing:
        return None
    packages = " ".join(dict.fromkeys(missing.values()))
    return (
        f"the window cannot open: Qt's X11 support needs {', '.join(missing)}, which this "
        f"system lacks. On Debian or Ubuntu install them with `sudo apt install {packages}` "
        "(other systems: the packages that provide these libraries), then start fabricsearch "
        "again. The command-line tools work without them."
    )


def main() -> int:
    """`python -m fabricsearch.gui.qtcheck` (scripts/setup.sh): warn about missing X11
    libraries; 1 when some are missing."""
    missing = missing_xcb_libraries() if sys.platform.startswith("linux") else {}
    if not missing:
        return 0
    packages = " ".join(dict.fromkeys(missing.values()))
    print(
        f"warning: the fabricsearch window needs {', '.join(missing)}, which this system "
        f"lacks.\n  On Debian or Ubuntu: sudo apt install {packages}\n"
        "  (the command-line tools work without them)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
