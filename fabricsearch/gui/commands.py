"""Undoable label changes (QUndoStack): each command keeps every image's previous labels."""

from __future__ import annotations

import getpass
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtGui import QUndoCommand

LABEL_KEYS = ("coarse", "fine", "tightness")


def _who() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is fine
        return None


class SetLabelsCommand(QUndoCommand):
    """Set some of coarse / fine / tightness on a set of images.

    Build it with `apply_labels`, which writes the change first so that a refused label (an
    unknown category) raises before anything reaches the undo stack."""

    def __init__(
        self,
        library: Any,
        ids: Sequence[int],
        changes: dict[str, Any],
        old: dict[int, tuple[Any, Any, Any]],
        on_changed: Callable[[list[int]], None],
        groups: Sequence[tuple[list[int], dict[str, Any]]] | None = None,
        text: str | None = None,
    ) -> None:
        taxonomy = getattr(library, "taxonomy", None)
        super().__init__(text or _describe(changes, len(ids), taxonomy))
        self.library = library
        self.ids = list(ids)
        self.changes = dict(changes)  # the fields changed (values of the first group)
        # (ids, changes) written together; one group unless each image got its own value.
        self.groups = [(list(g), dict(c)) for g, c in groups] if groups else [(self.ids, changes)]
        self.old = old
        self.on_changed = on_changed
        self._applied = True  # apply_labels already wrote it; push() calls redo() once

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        if len(self.groups) == 1:
            self.library.set_labels(self.ids, **self.groups[0][1], who=_who())
        else:
            with self.library.atomic():  # all images or none
                for ids, changes in self.groups:
                    self.library.set_labels(ids, **changes, who=_who())
        self.on_changed(self.ids)

    def undo(self) -> None:
        groups: dict[tuple[Any, Any, Any], list[int]] = defaultdict(list)
        for image_id in self.ids:
            groups[self.old[image_id]].append(image_id)
        for (coarse, fine, tightness), ids in groups.items():
            values = dict(zip(LABEL_KEYS, (coarse, fine, tightness), strict=True))
            self.library.set_labels(ids, **{k: values[k] for k in self.changes}, who=_who())
        self.on_changed(self.ids)


def apply_labels(
    library: Any,
    ids: Sequence[int],
    changes: dict[str, Any],
    on_changed: Callable[[list[int]], None],
) -> SetLabelsCommand:
    """Write `changes` to `ids` now and return the command to push on the undo stack."""
    unknown = set(changes) - set(LABEL_KEYS)
    if unknown:
        raise ValueError(f"unknown label fields {sorted(unknown)}")
    old = {r.id: (r.coarse, r.fine, r.tightness) for r in library.images(list(ids))}
    library.set_labels(list(ids), **changes, who=_who())
    on_changed(list(ids))
    return SetLabelsCommand(library, ids, changes, old, on_changed)


def apply_suggestions(
    library: Any,
    suggestions: Sequence[Any],
    on_changed: Callable[[list[int]], None],
) -> SetLabelsCommand:
    """Write the suggested coarse (and fine, where suggested) labels now, as one undoable
    command. Every group sets both coarse and fine (fine kept where none is suggested), so
    undo restores both for every image."""
    ids = [s.image_id for s in suggestions]
    records = {r.id: r for r in library.images(ids)}
    old = {i: (r.coarse, r.fine, r.tightness) for i, r in records.items()}
    by_value: dict[tuple[Any, Any], list[int]] = defaultdict(list)
    for s in suggestions:
        by_value[(s.coarse, s.fine or records[s.image_id].fine)].append(s.image_id)
    groups = [(g, {"coarse": c, "fine": f}) for (c, f), g in by_value.items()]
    with library.atomic():
        for group, changes in groups:
            library.set_labels(group, **changes, who="suggestion")
    on_changed(ids)
    n = len(ids)
    text = f"accept suggestions on {n} image{'s' if n != 1 else ''}"
    return SetLabelsCommand(library, ids, groups[0][1], old, on_changed, groups, text)


def apply_tightness_step(
    library: Any,
    ids: Sequence[int],
    delta: float,
    on_changed: Callable[[list[int]], None],
    unknown: float = 50.0,
) -> SetLabelsCommand:
    """Move each image's tightness by `delta` from its own value (`unknown` where it has
    none), clamped to 0–100; written now, returned as one undoable command."""
    records = library.images(list(ids))
    old = {r.id: (r.coarse, r.fine, r.tightness) for r in records}
    by_value: dict[float, list[int]] = defaultdict(list)
    for r in records:
        start = unknown if r.tightness is None else float(r.tightness)
        by_value[float(max(0.0, min(100.0, start + delta)))].append(r.id)
    groups = [(group, {"tightness": value}) for value, group in by_value.items()]
    with library.atomic():
        for group, changes in groups:
            library.set_labels(group, **changes, who=_who())
    on_changed(list(ids))
    n = len(records)
    text = f"tightness {delta:+.0f} % on {n} image{'s' if n != 1 else ''}"
    return SetLabelsCommand(
        library, [r.id for r in records], groups[0][1], old, on_changed, groups, text
    )


def _describe(changes: dict[str, Any], n: int, taxonomy: Any = None) -> str:
    """The undo step's name, in the category names the user sees (not internal ids)."""
    parts = []
    for key in LABEL_KEYS:
        if key in changes:
            value = changes[key]
            if value is None:
                parts.append(f"clear {key}")
            elif key == "tightness":
                parts.append(f"tightness {value:.0f} %")
            elif taxonomy is not None and key == "coarse":
                parts.append(f"coarse {taxonomy.display_coarse(value)}")
            elif taxonomy is not None and key == "fine":
                parts.append(f"fine {taxonomy.fine_names.get(value, value)}")
            else:
                parts.append(f"{key} {value}")
    return f"{', '.join(parts)} on {n} image{'s' if n != 1 else ''}"
