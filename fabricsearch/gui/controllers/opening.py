"""Opening photos: the desktop's viewer, or a program the user picked (*Open with…*).

`QDesktopServices.openUrl` answers False when the desktop has no handler for the file (a bare
Linux session, a format no viewer claims); the window then asks for a program instead of only
saying so, remembers it (`Settings.open_with_program`) and starts it detached with the photo's
path. *Open with…* in the grids' context menu always asks, starting from the remembered one."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QProcess
from PySide6.QtWidgets import QFileDialog

import fabricsearch.gui.desktop as desktop

if TYPE_CHECKING:
    from fabricsearch.gui.session import LibrarySession
    from fabricsearch.gui.shell import Shell

#: At most this many selected photos go to one program start.
MAX_FILES = 50


def start_program(program: str, paths: list[Path]) -> bool:
    """Start `program` detached with the photos' paths as its arguments (a macOS ``.app``
    through ``open -a``); False when it cannot be started."""
    args = [str(p) for p in paths]
    if sys.platform == "darwin" and program.endswith(".app"):
        return bool(QProcess.startDetached("open", ["-a", program, *args]))
    ok = QProcess.startDetached(program, args)
    # PySide6 returns (ok, pid) for some overloads.
    return bool(ok[0] if isinstance(ok, tuple) else ok)


class OpenController(QObject):
    def __init__(self, session: LibrarySession, shell: Shell) -> None:
        super().__init__(session)
        self.session = session
        self.shell = shell

    def _paths(self, image_id: int | None) -> list[Path]:
        lib = self.session.library
        if lib is None:
            return []
        if image_id is not None:
            return [Path(lib.get(image_id).path)]
        return [Path(r.path) for r in self.shell.selected_records()[:MAX_FILES]]

    def open(self, image_id: int) -> bool:
        """The desktop's viewer; where there is none, the remembered program, else ask."""
        paths = self._paths(image_id)
        if not paths:
            return False
        if desktop.open_file(paths[0]):
            return True
        program = self.shell.settings.open_with_program
        if program and Path(program).exists():
            return self._start(program, paths)
        kind = paths[0].suffix.lstrip(".").upper() or "this kind of"
        return self.open_with(
            image_id, title=f"No application opens {kind} files: choose a program to open it"
        )

    def open_with(self, image_id: int | None = None, title: str = "Open with") -> bool:
        """Ask for a program (starting from the remembered one), remember it, start it with
        the photo (`image_id`) or the selected photos."""
        paths = self._paths(image_id)
        if not paths:
            self.shell.status("Select a photo to open first.", 4000)
            return False
        remembered = self.shell.settings.open_with_program or ""
        program, _ = QFileDialog.getOpenFileName(self.shell.dialog_parent(), title, remembered)
        if not program:
            return False
        self.shell.settings.open_with_program = program
        return self._start(program, paths)

    def _start(self, program: str, paths: list[Path]) -> bool:
        if start_program(program, paths):
            self.shell.status(
                f"Opened {paths[0].name}{' …' if len(paths) > 1 else ''} with {Path(program).name}",
                4000,
            )
            return True
        self.shell.sink.inform("Open with", f"Cannot start {program}.", warning=True)
        return False
