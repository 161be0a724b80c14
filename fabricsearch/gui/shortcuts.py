"""Help ▸ Labelling shortcuts: the keys the window really has, read from its actions.

The labelling keys come from the label panel (with the library's category names); every other
key is read from the menus' actions, so a shortcut added to a menu is listed without editing a
help text (the hand-written list had fallen behind: Enter, Shift+Enter, Shift+N, Ctrl+L,
Alt+←/→ and Delete were missing)."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar

#: Key names as people say them.
_KEY_WORDS = {"Return": "Enter", "Left": "←", "Right": "→", "Up": "↑", "Down": "↓", "Del": "Delete"}


def key_text(sequence: QKeySequence) -> str:
    """ "Alt+←", "Shift+Enter", "Ctrl+L" for one key sequence."""
    text = sequence.toString(QKeySequence.SequenceFormat.PortableText)
    return "+".join(_KEY_WORDS.get(part, part) for part in text.split("+"))


def action_keys(action: QAction) -> list[str]:
    """The action's shortcuts in words, each once (Return and Enter both read "Enter")."""
    keys = [key_text(k) for k in action.shortcuts() if not k.isEmpty()]
    return list(dict.fromkeys(keys))


def menu_actions(bar: QMenuBar) -> Iterable[tuple[str, QAction]]:
    """(menu title, action) for every action of the menu bar, submenus included, in order."""

    def walk(menu: QMenu, title: str) -> Iterable[tuple[str, QAction]]:
        for action in menu.actions():
            sub = action.menu()
            if isinstance(sub, QMenu):
                yield from walk(sub, title)
            elif not action.isSeparator():
                yield title, action

    for top in bar.actions():
        menu = top.menu()
        if isinstance(menu, QMenu):
            yield from walk(menu, top.text().replace("&", ""))


def shortcut_lines(bar: QMenuBar) -> list[str]:
    """One line per menu action with a shortcut: "  Ctrl+L: Loupe … (View)"."""
    lines = []
    for title, action in menu_actions(bar):
        keys = action_keys(action)
        if not keys:
            continue
        name = action.text().replace("&", "").rstrip("…").strip()
        where = (
            ", on a grid"
            if action.shortcutContext() == Qt.ShortcutContext.WidgetWithChildrenShortcut
            else ""
        )
        lines.append(f"  {' / '.join(keys)}: {name} ({title}{where})")
    return lines


def shortcut_help(labelling: str, bar: QMenuBar) -> str:
    """The labelling keys (`LabelPanel.shortcut_help`) and every menu shortcut."""
    return "\n".join([labelling, "", "Other keys:", *shortcut_lines(bar)])
