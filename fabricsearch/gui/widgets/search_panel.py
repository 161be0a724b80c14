"""Search results: the query, a ranked thumbnail grid with scores and a compact explanation,
facet filters over the results, the colour ↔ texture balance and the search history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QStyle,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fabricsearch.catalogue import ImageRecord
from fabricsearch.gui.models import (
    HitRole,
    RecordRole,
    ResultsModel,
    SuggestionRole,
    ThumbnailCache,
)
from fabricsearch.gui.widgets.facets import FacetBar, filter_records
from fabricsearch.gui.widgets.flow import ElidedLabel
from fabricsearch.gui.widgets.grid import ThumbnailDelegate, ThumbnailGrid, paint_badge
from fabricsearch.gui.widgets.palette import paint_chips
from fabricsearch.services.search import BALANCE_DEFAULT, SearchHit, SearchResult
from fabricsearch.taxonomy import Taxonomy

EXTRA_HEIGHT = 30  # chip strip + explanation line below the score
#: While the balance slider is dragged, the results follow after this pause of the drag
#: (a re-rank of the kept candidates takes milliseconds; this only coalesces mouse moves).
DRAG_DEBOUNCE_MS = 60
#: Short enough for one line of a 1280 px window (the header never wraps).
PROMPT = "Drop or paste (Ctrl+V) a fabric photo to search, or press Ctrl+Shift+F"
TEXT_TIP = (
    "Only fabrics whose record matches (field:value terms, free words); combined with "
    "the photo inside the search, so the top N are the best of those. Enter applies. (Ctrl+F)"
)


def headline(result: SearchResult) -> str:
    """The results header in the user's words: '24 similar fabrics · same fabric first'."""
    n = len(result.hits)
    if not n:
        return "No similar fabrics (a text filter or a small library can leave none)"
    parts = [f"{n} similar fabric{'s' * (n != 1)}"]
    if result.hits[0].exact:
        parts.append("the photo itself first")
    elif result.hits[0].same_fabric:
        parts.append("same fabric first")
    return " · ".join(parts)


def explanation(hit: SearchHit) -> str:
    """'same fabric 97 · colour 92 · texture ~ predicted 64 % · tight 95' from the re-ranking
    (unknown parts left out; a predicted label shows the confidence it weighs)."""
    return hit.explain()


def search_time_ms(result: SearchResult) -> float:
    """The search's wall time: its "total" when measured (the stages are parts of it)."""
    times = result.elapsed_ms
    if "total" in times:
        return float(times["total"])
    return float(sum(times.values()))


class ResultDelegate(ThumbnailDelegate):
    """Thumbnail, rank and score, the main colours as chips, and the match explanation;
    selection is a frame around the thumbnail (never drawn over its pixels)."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        hit: SearchHit | None = index.data(HitRole)
        rec = index.data(RecordRole)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        painter.save()
        box = self.paint_frame_and_thumbnail(painter, opt, index)
        r = QRectF(opt.rect).adjusted(4, 4, -4, -4)
        y = box.bottom() + 4
        text_colour = opt.palette.text().color()
        painter.setPen(text_colour)
        if hit is not None:
            bold = QFont(opt.font)
            bold.setBold(True)
            painter.setFont(bold)
            if rec is not None:
                paint_badge(
                    painter, QRectF(r.left(), y + 3, 10, 10), rec, index.data(SuggestionRole)
                )
            painter.drawText(
                QRectF(r.left() + 14, y, r.width() - 14, 16),
                Qt.AlignmentFlag.AlignLeft,
                f"#{hit.rank}",
            )
            painter.drawText(
                QRectF(r.left(), y, r.width(), 16),
                Qt.AlignmentFlag.AlignRight,
                f"{hit.score:.2f}",
            )
            y += 18
            if rec is not None:
                paint_chips(painter, QRectF(r.left(), y, r.width(), 8), rec.palette)
            y += 11
            small = QFont(opt.font)
            small.setPointSizeF(max(6.5, opt.font.pointSizeF() * 0.85))
            painter.setFont(small)
            painter.setPen(opt.palette.placeholderText().color())
            text = painter.fontMetrics().elidedText(
                explanation(hit), Qt.TextElideMode.ElideRight, int(r.width())
            )
            painter.drawText(QRectF(r.left(), y, r.width(), 16), Qt.AlignmentFlag.AlignLeft, text)
        painter.restore()

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        px = option.decorationSize.width()
        return QSize(px + 56, px + 8 + 18 + EXTRA_HEIGHT)


class SearchPanel(QWidget):
    """Query summary, export buttons and the ranked result grid."""

    selectionChangedIds = Signal(list)
    activatedId = Signal(int)
    exportCsvRequested = Signal()
    exportSheetRequested = Signal()
    kChanged = Signal(int)
    balanceChanged = Signal(float)  # on release / key step, and debounced while dragging
    backRequested = Signal()
    forwardRequested = Signal()
    historyRequested = Signal(int)  # position in the history
    textChanged = Signal(str)  # the text filter, on Enter (or cleared)

    def __init__(self, cache: ThumbnailCache | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: SearchResult | None = None
        self.model: ResultsModel | None = None
        self._hits: list[SearchHit] = []  # every hit of the result (before the facets)
        self._records: list[ImageRecord] = []
        self.grid = ThumbnailGrid(self, text_lines=1, extra=EXTRA_HEIGHT)
        self.grid.setItemDelegate(ResultDelegate(self.grid))

        self.query_thumb = QLabel()
        self.query_thumb.setFixedSize(48, 48)
        self.query_thumb.setScaledContents(False)
        # One short line in the user's words; the model, bits and timing are its tooltip.
        self.summary = ElidedLabel(PROMPT, min_chars=10)
        self.k_spin = QSpinBox()
        self.k_spin.setRange(5, 500)
        self.k_spin.setValue(40)
        self.k_spin.setPrefix("top ")
        self.k_spin.setToolTip("Number of results")
        self.k_spin.setKeyboardTracking(False)  # search again on Enter or a step, not per digit
        self.k_spin.valueChanged.connect(self.kChanged)
        self.csv_button = QToolButton()
        self.csv_button.setText("CSV…")
        self.csv_button.setToolTip("Export the result list as CSV")
        self.csv_button.setIcon(
            self.style().standardIcon(QStyle.StandardPixmap.SP_DialogSaveButton)
        )
        self.csv_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.sheet_button = QToolButton()
        self.sheet_button.setText("Sheet…")
        self.sheet_button.setToolTip("Export the results as a contact sheet (PNG or PDF)")
        self.sheet_button.setIcon(
            self.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogContentsView)
        )
        self.sheet_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.csv_button.clicked.connect(self.exportCsvRequested)
        self.sheet_button.clicked.connect(self.exportSheetRequested)
        self._set_export_enabled(False)

        sp = QStyle.StandardPixmap
        self.back_button = QToolButton()
        self.back_button.setIcon(self.style().standardIcon(sp.SP_ArrowBack))
        self.back_button.setToolTip("Previous search (Alt+←)")
        self.back_button.clicked.connect(self.backRequested)
        self.forward_button = QToolButton()
        self.forward_button.setIcon(self.style().standardIcon(sp.SP_ArrowForward))
        self.forward_button.setToolTip("Next search (Alt+→)")
        self.forward_button.clicked.connect(self.forwardRequested)
        self.recent_button = QToolButton()
        self.recent_button.setText("Recent")
        self.recent_button.setToolTip("The last searches")
        self.recent_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.recent_menu = QMenu(self.recent_button)
        self.recent_button.setMenu(self.recent_menu)
        self.set_history([], -1)

        # Colour ↔ texture: a parameter of the ranking (0 texture only, 100 colour only).
        self.balance_slider = QSlider(Qt.Orientation.Horizontal)
        self.balance_slider.setRange(0, 100)
        self.balance_slider.setValue(round(100 * BALANCE_DEFAULT))
        self.balance_slider.setPageStep(10)
        self.balance_slider.setFixedWidth(90)
        self.balance_slider.setToolTip(
            "Balance of the ranking: left = the same weave in any colour, right = the same "
            "colour in any weave; the middle weighs both equally (the default)"
        )
        # Re-ranking is instant (Searcher.rerank): the results follow the drag itself.
        self._drag_timer = QTimer(self)
        self._drag_timer.setSingleShot(True)
        self._drag_timer.setInterval(DRAG_DEBOUNCE_MS)
        self._drag_timer.timeout.connect(self._balance_changed)
        self.balance_slider.sliderReleased.connect(self._balance_changed)
        self.balance_slider.valueChanged.connect(self._balance_moved)
        self.text_edit = QLineEdit()
        self.text_edit.setPlaceholderText("Text: supplier:Acme …")
        # Room for a few words whatever else the line holds (it once shrank to "T…").
        self.text_edit.setMinimumWidth(self.text_edit.fontMetrics().horizontalAdvance("x" * 18))
        self.text_edit.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.text_edit.setClearButtonEnabled(True)
        self.text_edit.setToolTip(TEXT_TIP)
        self.text_edit.returnPressed.connect(lambda: self.textChanged.emit(self.text()))
        self.text_edit.textChanged.connect(lambda t: None if t else self.textChanged.emit(""))
        self.text_edit.textChanged.connect(lambda t: self.facets.set_extra_active(bool(t.strip())))
        self.facets = FacetBar(compact=True)
        self.facets.filterChanged.connect(self._apply_facets)
        self.facets.reset_button.clicked.connect(self.text_edit.clear)  # Clear: the text too
        self.facets.add_widget(self.text_edit)
        # "7 of 40 shown" has its room kept: a filter never moves the splitter.
        self.shown_label = QLabel()
        self.shown_label.setMinimumWidth(
            self.shown_label.fontMetrics().horizontalAdvance("000 of 000 shown")
        )
        self.shown_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

        # Three lines that each fit a narrow window (issue 24): where the results come from,
        # how they are ranked and exported, and what narrows them (the facets wrap).
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        for w in (self.back_button, self.forward_button, self.recent_button):
            top.addWidget(w)
        top.addWidget(self.query_thumb)
        top.addWidget(self.summary, 1)
        top.addWidget(self.shown_label)
        ranking = QHBoxLayout()
        ranking.setContentsMargins(0, 0, 0, 0)
        ranking.addWidget(QLabel("Texture"))
        ranking.addWidget(self.balance_slider)
        ranking.addWidget(QLabel("Colour"))
        ranking.addWidget(self.k_spin)
        ranking.addStretch(1)
        ranking.addWidget(self.csv_button)
        ranking.addWidget(self.sheet_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addLayout(ranking)
        layout.addWidget(self.facets)
        layout.addWidget(self.grid, 1)
        self.grid.selectionChangedIds.connect(self.selectionChangedIds)
        self.grid.activatedId.connect(self.activatedId)
        if cache is not None:
            self.set_cache(cache)

    def set_cache(self, cache: ThumbnailCache) -> None:
        old = self.model
        self.model = ResultsModel(cache, self)
        self.grid.setModel(self.model)
        if old is not None:  # the previous library's (its records, its cache): not kept
            old.deleteLater()
        self.set_thumb_size(self.grid.iconSize().width())

    def set_thumb_size(self, px: int) -> None:
        self.grid.set_thumb_size(px)
        self.grid.setGridSize(QSize(px + 56 + 8, px + 8 + 18 + EXTRA_HEIGHT + 8))

    def listen(self, session: Any) -> None:
        """Follow the window's `LibrarySession`: its categories, the labels it changed, the
        search shown (or why none is), whether its text filter is understood, the history."""
        self._session = session
        session.taxonomyChanged.connect(self.set_taxonomy)
        session.labelsChanged.connect(self._labels_changed)
        session.searchStarted.connect(self._search_started)
        session.resultsChanged.connect(self._results_changed)
        session.textFilterChecked.connect(self._text_checked)
        session.historyChanged.connect(lambda: self.set_history(session.history, session.position))

    def _search_started(self, name: str, busy: bool) -> None:
        if busy:  # a re-rank takes milliseconds: no "searching" flicker
            self.set_busy(name)

    def _results_changed(self, outcome: Any) -> None:
        if outcome is None:
            note = self._session.results_note
            self.clear(PROMPT if note is None else note)
            return
        self.set_result(outcome.result, outcome.records, outcome.query.name)
        if outcome.preview is not None:
            self.set_query_pixmap(QPixmap.fromImage(outcome.preview))

    def _text_checked(self, error: str, refused: bool) -> None:
        if refused:
            self.show_text_error(error)
        else:
            self.mark_text_error(error or None)

    def top_n(self) -> int:
        """How many results are asked for."""
        return self.k_spin.value()

    def shown_hits(self) -> tuple[list[SearchHit], list[ImageRecord]] | None:
        """The hits shown (the facets applied) and their records; None with no results."""
        if self.result is None or not self.result.hits or self.model is None:
            return None
        return self.model.hits(), self.model.records()

    def _labels_changed(self, _ids: list[int]) -> None:
        if self.model is not None:  # results shown
            self.update_records(self._session.changed_records())

    def set_taxonomy(self, tax: Taxonomy) -> None:
        self.facets.set_taxonomy(tax)
        if self.model is not None:
            self.model.taxonomy = tax

    def text(self) -> str:
        return self.text_edit.text().strip()

    def balance(self) -> float:
        return self.balance_slider.value() / 100.0

    def set_balance(self, value: float) -> None:
        """Set the slider as a user would (one `balanceChanged`)."""
        self.balance_slider.setValue(round(100 * value))

    def _balance_moved(self, _value: int) -> None:
        if self.balance_slider.isSliderDown():
            self._drag_timer.start()  # restarts: one re-rank per pause of the drag
        else:
            self._balance_changed()

    def _balance_changed(self) -> None:
        self._drag_timer.stop()
        value = self.balance()
        if value != getattr(self, "_last_balance", BALANCE_DEFAULT):
            self._last_balance = value
            self.balanceChanged.emit(value)

    def set_history(self, entries: Sequence[Any], position: int) -> None:
        self.back_button.setEnabled(position > 0)
        self.forward_button.setEnabled(0 <= position < len(entries) - 1)
        self._history = list(entries)
        self._position = position
        self.recent_menu.clear()
        for i, action in reversed(list(enumerate(self.history_actions(self.recent_menu)))):
            action.triggered.connect(lambda _c=False, i=i: self.historyRequested.emit(i))
            self.recent_menu.addAction(action)
        self.recent_button.setEnabled(bool(entries))

    def history_actions(self, parent: Any) -> list[QAction]:
        """One action per past search, with its thumbnail; the current one checked."""
        out = []
        for i, entry in enumerate(self._history):
            action = QAction(entry.title, parent)
            if entry.thumbnail is not None:
                action.setIcon(QIcon(QPixmap.fromImage(entry.thumbnail)))
            action.setCheckable(True)
            action.setChecked(i == self._position)
            out.append(action)
        return out

    def update_records(self, records: list[ImageRecord]) -> None:
        """Labels changed: refresh the rows (and what the facets let through)."""
        by_id = {r.id: r for r in records}
        self._records = [by_id.get(r.id, r) for r in self._records]
        if self.facets.current_filter().active:
            self._apply_facets()
        elif self.model is not None:
            self.model.update_records(records)

    def _apply_facets(self) -> None:
        if self.model is None:
            return
        selected = self.grid.selected_ids()
        f = self.facets.current_filter()
        keep = {r.id for r in filter_records(self._records, f)} if f.active else None
        pairs = [
            (h, r)
            for h, r in zip(self._hits, self._records, strict=True)
            if keep is None or r.id in keep
        ]
        self.model.set_hits([h for h, _ in pairs], [r for _, r in pairs])
        self.shown_label.setText(
            f"{len(pairs)} of {len(self._hits)} shown" if keep is not None else ""
        )
        ids = [i for i in selected if self.model.row_of(i) is not None]
        if ids:
            self.grid.select_ids(ids)
        elif pairs:
            self.grid.select_ids([pairs[0][0].image_id])

    def clear(self, message: str = PROMPT) -> None:
        """No results (a new library, a failed search): nothing left to export or select."""
        self.result = None
        self._hits, self._records = [], []
        self.shown_label.setText("")
        if self.model is not None:
            self.model.set_hits([], [])
        self.query_thumb.clear()
        self.summary.setText(message)
        self.summary.setToolTip("")
        self._set_export_enabled(False)

    def show_text_error(self, message: str) -> None:
        """A text filter that cannot be understood: no matches, and why (not the previous
        matches, which would read as the answer). The query stays: a corrected text
        re-ranks it."""
        self.result = None
        self._hits, self._records = [], []
        if self.model is not None:
            self.model.set_hits([], [])
        self.shown_label.setText("")
        self.summary.setText(f"No matches: the text filter is not understood ({message})")
        self.summary.setToolTip(message)
        self._set_text_error(message)
        self._set_export_enabled(False)

    def mark_text_error(self, message: str | None) -> None:
        """The text field in red with why (None: as usual)."""
        self._set_text_error(message)

    def _set_text_error(self, message: str | None) -> None:
        self.text_edit.setStyleSheet(
            "" if message is None else "QLineEdit { border: 1px solid #b00020; }"
        )
        self.text_edit.setToolTip(message or TEXT_TIP)

    def set_busy(self, name: str) -> None:
        self.summary.setText(f"Searching for fabrics like {name}…")

    def set_message(self, text: str) -> None:
        self.summary.setText(text)

    def set_query_pixmap(self, pm: QPixmap | None) -> None:
        if pm is None or pm.isNull():
            self.query_thumb.clear()
            return
        self.query_thumb.setPixmap(
            pm.scaled(
                48,
                48,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )

    def set_result(self, result: SearchResult, records: list, name: str) -> None:
        self.result = result
        assert self.model is not None
        self._hits, self._records = list(result.hits), list(records)
        self.model.set_hits([], [])
        self._apply_facets()
        total_ms = search_time_ms(result)
        # A re-rank of the kept query (no decode) says so: milliseconds, not the query's time.
        timing = (
            f"{total_ms:.0f} ms"
            if "decode" in result.elapsed_ms or not result.elapsed_ms
            else f"re-ranked in {total_ms:.1f} ms"
        )
        self.summary.setText(headline(result))
        self.summary.setToolTip(
            f"Fabrics like {name}\nModel {result.model} ({result.bits} bits)\nSearch: {timing}"
        )
        self._set_text_error(None)
        self._set_export_enabled(bool(result.hits))
        shown = self.model.hits()
        if shown:
            self.grid.select_ids([shown[0].image_id])

    def _set_export_enabled(self, on: bool) -> None:
        self.csv_button.setEnabled(on)
        self.sheet_button.setEnabled(on)
