"""The demo library, prepared in the background: the window is up at once and the welcome page
says "Preparing the demo library… 40 %" while the first start builds it (minutes on a laptop
CPU); the demo opens when it is ready, unless the user opened another library meanwhile."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:
    from fabricsearch.gui.controllers.library import LibraryController
    from fabricsearch.gui.session import LibrarySession
    from fabricsearch.gui.shell import Shell

log = logging.getLogger(__name__)

SLOT = "demo"


class DemoController(QObject):
    ready = Signal(str)  # the demo library's folder, once built (before it is opened)
    #: What the welcome page says while it is built ("": nothing, it is done).
    preparing = Signal(str)
    problemFound = Signal(str)  # why it could not be built

    def __init__(self, session: LibrarySession, shell: Shell, libraries: LibraryController) -> None:
        super().__init__(session)
        self.session = session
        self.shell = shell
        self.libraries = libraries  # opens it when ready
        self._open_when_ready = True
        self._logged = -1  # the last tenth of the build written to the log

    def running(self) -> bool:
        return self.shell.runner.running(SLOT)

    def prepare(self, open_when_ready: bool = True) -> None:
        """Build (or check) the demo library in a worker; open it when done."""
        from fabricsearch.services.demo import prepare_demo_library

        self._open_when_ready = open_when_ready
        if self.running():
            return
        self._logged = -1
        self.preparing.emit("Preparing the demo library…")
        log.info("preparing the demo library in the background")
        self.shell.runner.start(
            prepare_demo_library,
            name="demo library",
            slot=SLOT,
            on_progress=self._progress,
            on_finished=self._finished,
            on_failed=self._failed,
            on_cancelled=lambda: self.preparing.emit(""),
        )

    def _progress(self, p: Any) -> None:
        text = f"Preparing the demo library… {p.done} %"
        if p.done // 10 > self._logged:  # the log follows too, a line per tenth
            self._logged = p.done // 10
            log.info("preparing the demo library: %d %% (%s)", p.done, p.message)
        if p.message and p.message != "Ready":
            text += f" ({p.message.lower()})"
        self.preparing.emit(text)

    def _finished(self, folder: Any) -> None:
        self.preparing.emit("")
        self.ready.emit(str(folder))
        if self._open_when_ready and self.session.library is None:
            self.libraries.open_library(Path(folder))

    def _failed(self, message: str) -> None:
        self.preparing.emit("")
        log.error("demo library unavailable: %s", message)
        self.problemFound.emit(f"The demo library could not be prepared: {message}")
