"""Where the window's messages to the user go: an injected sink.

The window never decides by itself whether to pop up a box: it hands every message, question
and report dialog to its `MessageSink`. The application uses `DialogSink` (message boxes);
scripted runs (``--screenshot``, ``--self-test``) and tests inject a `RecordingSink`, which
keeps what would have been shown and answers questions with a preset answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from PySide6.QtWidgets import QDialog, QMessageBox, QWidget

log = logging.getLogger(__name__)


class MessageSink(Protocol):
    def inform(self, title: str, text: str, warning: bool = False) -> None: ...

    def confirm(self, title: str, text: str) -> bool: ...

    def present(self, dialog: QDialog) -> None: ...


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """ "1 image", "2 images", "1,200 photos": a count with its noun agreeing (`nouns` for an
    irregular plural, e.g. ``plural(n, "category", "categories")``)."""
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"


def _log(title: str, text: str, warning: bool) -> None:
    log.log(logging.WARNING if warning else logging.INFO, "%s: %s", title, text)


class DialogSink:
    """Message boxes over `parent` (the real application)."""

    def __init__(self, parent: QWidget) -> None:
        self.parent = parent

    def inform(self, title: str, text: str, warning: bool = False) -> None:
        _log(title, text, warning)
        box = QMessageBox(
            QMessageBox.Icon.Warning if warning else QMessageBox.Icon.Information,
            title,
            text,
            QMessageBox.StandardButton.Ok,
            self.parent,
        )
        box.open()

    def confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self.parent,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def present(self, dialog: QDialog) -> None:
        dialog.open()


@dataclass
class RecordingSink:
    """Records messages, questions and report dialogs instead of showing them."""

    answer: bool = True  # what `confirm` answers
    messages: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    dialogs: list[QDialog] = field(default_factory=list)

    def inform(self, title: str, text: str, warning: bool = False) -> None:
        _log(title, text, warning)
        self.messages.append(text)

    def confirm(self, title: str, text: str) -> bool:
        self.questions.append(text)
        return self.answer

    def present(self, dialog: QDialog) -> None:
        self.dialogs.append(dialog)
