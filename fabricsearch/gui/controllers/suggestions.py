"""Label suggestions from the active model's classification heads (`fabricsearch.suggest`):
ghost labels for unlabelled images, accepted with Enter (one undoable step), accept-all above
a confidence, and "next unlabelled" ordered by the model's lowest confidence. Images unlike
any labelled fabric get no ghost label: "None of these — unlike any labelled fabric", and
neither Enter nor Shift+Enter accepts anything for them."""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from fabricsearch.errors import message_for
from fabricsearch.gui.commands import apply_suggestions
from fabricsearch.gui.models import describe

if TYPE_CHECKING:
    from fabricsearch.gui.main_window import MainWindow

log = logging.getLogger(__name__)


def predict_all(library: Any, progress: Any = None, cancel: Any = None) -> Any:
    """Worker body: a prediction for every unlabelled image (threshold 0: the window shows
    the confidence and lets the user choose what to accept)."""
    from fabricsearch.services.labels import SuggestError, suggest_labels

    try:
        return suggest_labels(library, 0.0, progress=progress, cancel=cancel)
    except SuggestError as exc:
        log.info("no label suggestions: %s", exc)
        return None


class SuggestionController(QObject):
    changed = Signal()  # suggestions arrived or were used

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.suggestions: dict[int, Any] = {}
        # Images unlike any labelled fabric → the head's guess, never offered nor accepted.
        self.unfamiliar: dict[int, Any] = {}
        self._generation = 0

    @property
    def loading(self) -> bool:
        return self.w.runner.running("suggest")

    def refresh(self) -> None:
        """Predict labels for the unlabelled images in the background."""
        lib = self.w.library
        self._generation += 1
        generation = self._generation
        if lib is None or lib.active_model() is None or self.w.browser.all_labelled():
            self._set({})  # nothing to suggest: no model to load
            return

        def done(rep: Any) -> None:
            if generation == self._generation:
                if rep is None:
                    self._set({})
                else:
                    odd = {s.image_id: s for s in rep.unfamiliar}
                    self._set({s.image_id: s for s in rep.suggestions}, odd)

        self.w.runner.start(
            partial(predict_all, lib),
            name="suggest",
            slot="suggest",
            replace=True,
            on_finished=done,
            on_failed=lambda m: log.warning("label suggestions failed: %s", m),
        )

    def clear(self) -> None:
        self._generation += 1
        self._set({})

    def _set(self, suggestions: dict[int, Any], unfamiliar: dict[int, Any] | None = None) -> None:
        self.suggestions = suggestions
        self.unfamiliar = unfamiliar or {}
        self.w.browser.set_suggestions(suggestions)
        if self.w.search_panel.model is not None:
            self.w.search_panel.model.set_suggestions(suggestions)
        self.show_for_selection()
        self.changed.emit()

    def for_records(self, records: list[Any], min_confidence: float = 0.0) -> list[Any]:
        out = []
        for r in records:
            s = self.suggestions.get(r.id)
            if s is not None and not r.labelled and s.confidence >= min_confidence:
                out.append(s)
        return out

    def show_for_selection(self) -> None:
        records = self.w.selected_records()
        found = self.for_records(records)
        odd = [r for r in records if not r.labelled and r.id in self.unfamiliar]
        tax = self.w.library.taxonomy if self.w.library is not None else None
        panel = self.w.label_panel
        unlike = f"{len(odd)} unlike any labelled fabric" if odd else ""
        if not found:
            if len(odd) == 1 and len(records) == 1:
                panel.set_suggestion("None of these — unlike any labelled fabric")
            elif odd:
                panel.set_suggestion(f"No suggestion: {unlike}")
            else:
                panel.set_suggestion(None)
            panel.accept_button.setVisible(False)  # nothing to accept
        elif len(found) == 1:
            text = f"Suggested: {describe(found[0], tax)}"
            panel.set_suggestion(f"{text} ({unlike})" if odd else text, 1)
        else:
            text = f"Suggestions for {len(found)} of the {len(records)} selected images"
            panel.set_suggestion(f"{text} ({unlike})" if odd else text, len(found))

    def accept(self, min_confidence: float = 0.0) -> bool:
        """Accept the selection's suggestions at or above `min_confidence` (one undo step)."""
        w = self.w
        if w.library is None:
            return False
        found = self.for_records(w.selected_records(), min_confidence)
        if not found:
            w.statusBar().showMessage("No suggestion to accept for the selection.", 4000)
            return False
        try:
            command = apply_suggestions(w.library, found, w.session.labels_changed)
        except Exception as exc:  # noqa: BLE001 - refused (e.g. read-only): say why
            reason = message_for(exc, what="accepting suggestions")
            w.sink.inform("Labels", f"Cannot set these labels: {reason}", warning=True)
            return False
        w.undo_stack.push(command)
        w.statusBar().showMessage(command.text(), 4000)
        return True

    def accept_or_open(self) -> None:
        """Enter: accept the selection's suggestion, else open the current image."""
        if self.for_records(self.w.selected_records()):
            self.accept()
            return
        records = self.w.selected_records()
        if records:
            self.w.open_image(records[0].id)

    def labels_changed(self, ids: list[int]) -> None:
        """Labelled images show their labels; their ghost labels go (they come back if the
        labels are cleared, since the prediction is kept)."""
        self.w.browser.set_suggestions(self.suggestions)
        self.show_for_selection()

    def next_least_confident(self) -> int | None:
        """Select the unlabelled image shown whose suggestion is least confident (none first)."""
        w = self.w
        if w.library is None or w.browser.model is None:
            return None
        if w.tabs.currentIndex() != 0:
            w.tabs.setCurrentIndex(0)
        image_id = w.browser.least_confident_unlabelled_id()
        if image_id is None:
            w.statusBar().showMessage("Every image shown is labelled.", 4000)
            return None
        w.browser.grid.select_ids([image_id])
        w.browser.grid.setFocus()
        return image_id
