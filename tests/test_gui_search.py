# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""GUI: search by dropping a file, dragging from a browser, pasting; detail panel; export."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication
from test_gui_support import (  # noqa: F401 - fixtures
    fabric_folder,
    gui_env,
    library_template,
    open_library,
    trained_library_path,
    trained_template,
    window,
)

from fabricsearch.gui.dropping import OFFLINE_MESSAGE, query_from_mime

pytestmark = [
    pytest.mark.gui,
    # Qt marks the QPoint constructor of QDragEnterEvent deprecated but offers no other one.
    pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning"),
]


def drop(window, mime: QMimeData) -> None:
    """Deliver a real drag-enter + drop to the window, as the file manager would."""
    pos = QPoint(window.width() // 3, window.height() // 2)
    enter = QDragEnterEvent(
        pos,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    event = QDropEvent(
        QPointF(pos),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, event)


def file_mime(path: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    return mime


def test_query_from_mime_choices(tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    assert query_from_mime(file_mime(photo)).path == photo
    web = QMimeData()
    web.setUrls([QUrl("https://example.com/fabric.jpg")])
    q = query_from_mime(web)
    assert not q.ok
    assert q.error == OFFLINE_MESSAGE
    img = QImage(8, 6, QImage.Format.Format_RGB32)
    img.fill(Qt.GlobalColor.red)
    web.setImageData(img)  # browsers send the pixels with the URL: use them
    q = query_from_mime(web)
    assert q.ok
    assert q.image.shape == (6, 8, 3)
    assert q.name == "fabric.jpg"
    assert tuple(q.image[0, 0]) == (255, 0, 0)
    text = QMimeData()
    text.setText("hello")
    assert not query_from_mime(text).ok


def test_drop_file_gives_explained_results(
    window, trained_library_path: Path, qtbot, tmp_path: Path
) -> None:
    open_library(window, trained_library_path)
    query = window.browser.all_records()[4]
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        drop(window, file_mime(query.path))
    outcome = blocker.args[0]
    model = window.search_panel.model
    assert model.rowCount() == len(outcome.result.hits) > 0
    assert window.tabs.currentWidget() is window.search_panel
    hits = model.hits()
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert hits[0].image_id == query.id  # the photo itself is in the library
    assert "similar fabric" in window.search_panel.summary.text()
    assert "Fabrics like" in window.search_panel.summary.toolTip()  # details in the tooltip
    # Detail panel: the query and the selected (first) result side by side, with palettes.
    assert window.detail.query.isVisible()
    assert window.detail.query.palette_bar.entries()
    assert window.detail.record.id == query.id
    assert window.detail.selected.palette_bar.entries()
    assert "score" in window.detail.selected.extra.text()
    # Export: CSV with one row per hit in rank order, and a contact sheet in PNG and PDF.
    out = window.searching.export_csv(tmp_path / "r.csv")
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [int(r["rank"]) for r in rows] == [h.rank for h in hits]
    assert int(rows[0]["image_id"]) == query.id
    # The sheet is written in a worker; the status bar says when it is saved.
    worker = window.searching.export_sheet(tmp_path / "sheet.png")
    qtbot.waitUntil(lambda: worker.state == "finished", timeout=30_000)
    sheet = QImage(str(worker.result))
    assert sheet.width() > 500
    assert sheet.height() > 300
    worker = window.searching.export_sheet(tmp_path / "sheet.pdf")
    saved = f"Saved {tmp_path / 'sheet.pdf'}"
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == saved, timeout=30_000)
    assert worker.result.read_bytes()[:5] == b"%PDF-"


def test_paste_image_and_web_drop(window, trained_library_path: Path, qtbot) -> None:
    open_library(window, trained_library_path)
    rec = window.browser.all_records()[0]
    web = QMimeData()
    web.setUrls([QUrl("http://shop.example/fabric.png")])
    drop(window, web)
    assert "offline" in window.search_panel.summary.text()
    assert window.search_worker is None

    image = QImage(str(rec.path))
    assert not image.isNull()
    QGuiApplication.clipboard().setImage(image)
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        window.paste_action.trigger()
    assert blocker.args[0].query.image is not None
    assert window.search_panel.model.rowCount() > 0
    assert isinstance(blocker.args[0].result.palette, np.ndarray)


def test_search_without_model_explains(window, tmp_path: Path, qtbot, fabric_folder: Path) -> None:
    from fabricsearch.catalogue import Library

    Library.create(tmp_path / "empty").close()  # a library without any model
    open_library(window, tmp_path / "empty")
    photo = next(fabric_folder.rglob("*.jpg"))
    with qtbot.waitSignal(window.searchFailed, timeout=60_000) as blocker:
        drop(window, file_mime(photo))
    assert blocker.args[0]
    assert "failed" in window.search_panel.summary.text().lower()


def test_find_similar_uses_the_image_labels(window, trained_library_path: Path, qtbot) -> None:
    from fabricsearch.gui.widgets.search_panel import explanation

    open_library(window, trained_library_path)
    rec = window.browser.all_records()[7]
    window.browser.grid.select_ids([rec.id])
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        window.similar_action.trigger()
    outcome = blocker.args[0]
    assert outcome.query.coarse == rec.coarse
    top = outcome.result.hits[0]
    assert top.image_id == rec.id
    assert top.breakdown["coarse"] == pytest.approx(1.0)
    text = explanation(top)
    assert "colour" in text
    assert "texture 100" in text
    assert "tight" in text
    assert window.detail.query.fine.text() != "—"
    scores = [h.score for h in outcome.result.hits]
    assert scores == sorted(scores, reverse=True)


def test_new_library_gets_the_shipped_model_and_advice(window, tmp_path: Path) -> None:
    from fabricsearch.pretrain import shipped_model_path

    if not shipped_model_path().exists():
        pytest.skip("no shipped model in fabricsearch/resources/models")
    assert open_library(window, tmp_path / "fresh", create=True)
    active = window.library.active_model()
    assert active is not None
    assert active.version.startswith("pretrained-")
    # Empty: the advice is to import photos, not to label and retrain what is not there.
    assert "import" in window.advice_label.text().lower()
    assert "retrain" not in window.advice_label.text().lower()


def test_balance_top_n_and_text_rerank_without_the_network(
    window, trained_library_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 22: slider, top N and text filter re-rank the kept candidates of the shown query
    (no decode, no network) and show exactly what a full search with those settings shows."""
    from PySide6.QtCore import Qt

    from fabricsearch import search as search_mod
    from fabricsearch.search import Searcher, SearchFilters

    open_library(window, trained_library_path)
    panel = window.search_panel
    query = window.browser.all_records()[3]
    with qtbot.waitSignal(window.searchFinished, timeout=60_000):
        drop(window, file_mime(query.path))
    before = [h.image_id for h in panel.model.hits()]
    k = panel.k_spin.value()
    lib = window.library
    full = Searcher(lib)
    expected_colour = full.search(query.path, k=k, balance=1.0)
    expected_five = full.search(query.path, k=5, balance=1.0)
    text = query.path.stem[:4]
    ids = frozenset(lib.text_search(text))
    expected_text = full.search(query.path, k=5, balance=1.0, filters=SearchFilters(image_ids=ids))
    panel.grab().save(str(tmp_path / "before.png"))

    def forbidden(*_a: object, **_k: object) -> None:
        raise AssertionError("a re-rank must not decode or run the network")

    monkeypatch.setattr(search_mod, "_load_query", forbidden)
    monkeypatch.setattr(search_mod, "_encode_query", forbidden)

    slider = panel.balance_slider
    with qtbot.waitSignal(window.searchFinished, timeout=10_000) as blocker:
        slider.setFocus()
        qtbot.keyClick(slider, Qt.Key.Key_End)  # all the way to "colour"
    outcome = blocker.args[0]
    assert outcome.request.balance == 1.0
    got = [(h.image_id, h.score) for h in panel.model.hits()]
    assert got == [(h.image_id, h.score) for h in expected_colour.hits]
    assert got != [(i, None) for i in before]
    assert "re-ranked in" in panel.summary.toolTip()
    assert window.detail.query.isVisible()  # the query's preview stays
    assert len(window.session.history) == 1  # the same search, not a new entry
    panel.grab().save(str(tmp_path / "after.png"))

    with qtbot.waitSignal(window.searchFinished, timeout=10_000):
        panel.k_spin.setValue(5)
    assert [(h.image_id, h.score) for h in panel.model.hits()] == [
        (h.image_id, h.score) for h in expected_five.hits
    ]
    with qtbot.waitSignal(window.searchFinished, timeout=10_000):
        panel.text_edit.setText(text)
        panel.text_edit.returnPressed.emit()
    assert [(h.image_id, h.score) for h in panel.model.hits()] == [
        (h.image_id, h.score) for h in expected_text.hits
    ]
    # Dragging the slider follows the drag (debounced), not only the release.
    with qtbot.waitSignal(window.searchFinished, timeout=10_000) as blocker:
        slider.setSliderDown(True)
        slider.setValue(20)
    assert blocker.args[0].request.balance == 0.2
    slider.setSliderDown(False)
