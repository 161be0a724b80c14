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
    from fabricsearch.gui.session import LibrarySession
    from fabricsearch.gui.shell import RecordsView, Shell

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
    changed = Signal()  # suggestions arrived or were used: the grids show `suggestions`
    #: What the label panel says of the selection's suggestion: its text ("" none), how many
    #: images it covers, whether there is anything to accept.
    selectionSuggestion = Signal(str, int, bool)

    def __init__(self, session: LibrarySession, shell: Shell, records: RecordsView) -> None:
        super().__init__(session)
        self.session = session
        self.shell = shell
        self.records = records  # whether every image is labelled (nothing to suggest)
        self.suggestions: dict[int, Any] = {}
        # Images unlike any labelled fabric → the head's guess, never offered nor accepted.
        self.unfamiliar: dict[int, Any] = {}
        self._generation = 0

    @property
    def loading(self) -> bool:
        return self.shell.runner.running("suggest")

    def refresh(self) -> None:
        """Predict labels for the unlabelled images in the background."""
        lib = self.session.library
        self._generation += 1
        generation = self._generation
        if lib is None or self.session.active_model is None or self.records.all_labelled():
            self._set({})  # nothing to suggest: no model to load
            return
        if self._import_running():
            # The grid reloads every 1.5 s while an import runs, and each reload restarted a
            # prediction over every unlabelled image: a model load and the network on photos
            # the import's own feature thread is about to read, on the same cores, the window
            # waiting meanwhile. The suggestions shown stay; the import's last reload asks.
            return

        def done(rep: Any) -> None:
            if generation == self._generation:
                if rep is None:
                    self._set({})
                else:
                    odd = {s.image_id: s for s in rep.unfamiliar}
                    self._set({s.image_id: s for s in rep.suggestions}, odd)

        self.shell.runner.start(
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

    def _import_running(self) -> bool:
        # The worker's state, not its thread: the state is "finished" before the import's
        # outcome reaches this thread, so its last reload never finds it still running.
        worker = self.shell.runner.worker("import")
        return worker is not None and worker.state == "running"

    def _set(self, suggestions: dict[int, Any], unfamiliar: dict[int, Any] | None = None) -> None:
        self.suggestions = suggestions
        self.unfamiliar = unfamiliar or {}
        self.changed.emit()
        self.show_for_selection()

    def for_records(self, records: list[Any], min_confidence: float = 0.0) -> list[Any]:
        out = []
        for r in records:
            s = self.suggestions.get(r.id)
            if s is not None and not r.labelled and s.confidence >= min_confidence:
                out.append(s)
        return out

    def show_for_selection(self) -> None:
        records = self.shell.selected_records()
        found = self.for_records(records)
        odd = [r for r in records if not r.labelled and r.id in self.unfamiliar]
        tax = self.session.taxonomy
        unlike = f"{len(odd)} unlike any labelled fabric" if odd else ""
        show = self.selectionSuggestion.emit
        if not found:  # nothing to accept
            if len(odd) == 1 and len(records) == 1:
                show("None of these — unlike any labelled fabric", 0, False)
            elif odd:
                show(f"No suggestion: {unlike}", 0, False)
            else:
                show("", 0, False)
        elif len(found) == 1:
            text = f"Suggested: {describe(found[0], tax)}"
            show(f"{text} ({unlike})" if odd else text, 1, True)
        else:
            text = f"Suggestions for {len(found)} of the {len(records)} selected images"
            show(f"{text} ({unlike})" if odd else text, len(found), True)

    def accept(self, min_confidence: float = 0.0) -> bool:
        """Accept the selection's suggestions at or above `min_confidence` (one undo step)."""
        shell, lib = self.shell, self.session.library
        if lib is None:
            return False
        found = self.for_records(shell.selected_records(), min_confidence)
        if not found:
            shell.status("No suggestion to accept for the selection.", 4000)
            return False
        try:
            command = apply_suggestions(lib, found, self.session.labels_changed)
        except Exception as exc:  # noqa: BLE001 - refused (e.g. read-only): say why
            reason = message_for(exc, what="accepting suggestions")
            shell.sink.inform("Labels", f"Cannot set these labels: {reason}", warning=True)
            return False
        shell.undo_stack.push(command)
        shell.status(command.text(), 4000)
        return True

    def accept_or_open(self) -> None:
        """Enter: accept the selection's suggestion, else open the current image."""
        records = self.shell.selected_records()
        if self.for_records(records):
            self.accept()
            return
        if records:
            self.shell.open_image(records[0].id)

    def labels_changed(self, ids: list[int]) -> None:
        """Labelled images show their labels; their ghost labels go (they come back if the
        labels are cleared, since the prediction is kept)."""
        self.changed.emit()
        self.show_for_selection()
