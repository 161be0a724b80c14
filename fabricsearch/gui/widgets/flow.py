"""Layouts and labels that let the window fit a small screen (1280×800, or 2560×1600 at
200 %): a row of controls that wraps onto more lines when narrow, and a one-line label that
elides its text instead of forcing its width on the window."""

from __future__ import annotations

from PySide6.QtCore import QMargins, QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLabel, QLayout, QLayoutItem, QSizePolicy, QWidget


class FlowLayout(QLayout):
    """Items left to right, wrapping onto the next line when the width runs out (Qt's flow
    layout example). Its minimum width is its widest item, not their sum; its size hint is
    one line. Items whose horizontal policy expands share what is left of their line."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self.setContentsMargins(0, 0, 0, 0)
        self.setSpacing(spacing)

    # --- QLayout's item protocol --------------------------------------------------------------
    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802
        return Qt.Orientation(0)

    # --- sizes --------------------------------------------------------------------------------
    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._do_layout(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._do_layout(rect, apply=True)

    def sizeHint(self) -> QSize:  # noqa: N802
        """Everything on one line."""
        shown = self._shown()
        width = sum(i.sizeHint().width() for i in shown) + self.spacing() * max(0, len(shown) - 1)
        height = max((i.sizeHint().height() for i in shown), default=0)
        return QSize(width, height).grownBy(self.contentsMargins())

    def minimumSize(self) -> QSize:  # noqa: N802
        """The widest item: narrower than that, nothing can wrap any more."""
        size = QSize()
        for item in self._shown():
            size = size.expandedTo(item.minimumSize())
        return size.grownBy(self.contentsMargins())

    def _shown(self) -> list[QLayoutItem]:
        return [i for i in self._items if not i.isEmpty()]

    def _do_layout(self, rect: QRect, apply: bool) -> int:
        m: QMargins = self.contentsMargins()
        area = rect.marginsRemoved(m)
        space = self.spacing()
        lines: list[list[QLayoutItem]] = [[]]
        x = area.x()
        for item in self._shown():
            w = min(item.sizeHint().width(), area.width())
            if lines[-1] and x + w > area.right() + 1:
                lines.append([])
                x = area.x()
            lines[-1].append(item)
            x += w + space
        y = area.y()
        for line in lines:
            if not line:
                continue
            height = max(i.sizeHint().height() for i in line)
            widths = [min(i.sizeHint().width(), area.width()) for i in line]
            spare = area.width() - sum(widths) - space * (len(line) - 1)
            growing = [
                k for k, i in enumerate(line) if i.expandingDirections() & Qt.Orientation.Horizontal
            ]
            for k in growing:
                widths[k] += max(0, spare) // len(growing)
            if apply:
                x = area.x()
                for item, w in zip(line, widths, strict=True):
                    h = item.sizeHint().height()
                    item.setGeometry(QRect(QPoint(x, y + (height - h) // 2), QSize(w, h)))
                    x += w + space
            y += height + space
        return y - space - area.y() + m.top() + m.bottom()


def row_widget(*widgets: QWidget, spacing: int = 4) -> QWidget:
    """Widgets that belong together (a label and its field) as one item of a flow: they wrap
    as a whole, never split between two lines."""
    from PySide6.QtWidgets import QHBoxLayout

    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(spacing)
    for w in widgets:
        layout.addWidget(w)
    return box


class ElidedLabel(QLabel):
    """One line of plain text, elided at the right when narrow ("24 similar fabrics · sa…");
    the whole text is its tooltip then (unless a tooltip was set). Its minimum width is a few
    characters, so a long text never widens the window."""

    def __init__(self, text: str = "", parent: QWidget | None = None, min_chars: int = 6) -> None:
        super().__init__(parent)
        self._full = ""
        self._tip = ""
        self._min_chars = min_chars
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802
        self._full = text or ""
        self._elide()
        self.updateGeometry()

    def text(self) -> str:
        return self._full

    def setToolTip(self, tip: str) -> None:  # noqa: N802
        self._tip = tip or ""
        self._elide()

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        fm = self.fontMetrics()
        return QSize(fm.horizontalAdvance("x" * self._min_chars), fm.height())

    def sizeHint(self) -> QSize:  # noqa: N802
        fm = self.fontMetrics()
        m = self.contentsMargins()
        return QSize(fm.horizontalAdvance(self._full) + m.left() + m.right() + 2, fm.height())

    def resizeEvent(self, event: object) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def is_elided(self) -> bool:
        return super().text() != self._full

    def _elide(self) -> None:
        width = max(0, self.contentsRect().width())
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, width)
        super().setText(shown)
        tip = self._tip or (self._full if shown != self._full else "")
        super().setToolTip(tip)
