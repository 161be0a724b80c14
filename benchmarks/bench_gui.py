"""Drop-to-results round trip in the GUI: from a QDropEvent on the window to the results
model being populated (search in the worker thread included), on a generated library.

    python benchmarks/bench_gui.py [--count 10000] [--repeats 20] [--work DIR]

The library (generated fabrics, a tiny model) is cached in --work between runs.
Prints a table and writes benchmarks/results/bench_gui.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


def build_library(folder: Path, count: int) -> Path:
    from fabricsearch import synth
    from fabricsearch.catalogue import Library
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.train import train_library

    lib_dir = folder / f"lib-{count}"
    if (lib_dir / "catalogue.sqlite").exists():
        with Library.open(lib_dir) as lib:
            if lib.active_model() is not None and lib.count() == count:
                return lib_dir
    images = folder / f"fabrics-{count}"
    if not (images / "labels.csv").exists():
        synth.write_dataset(images, count, seed=0, size=96)
    with (
        Library.open(lib_dir)
        if (lib_dir / "catalogue.sqlite").exists()
        else Library.create(lib_dir) as lib
    ):
        import_folder(lib, images, labels_csv=images / "labels.csv")
        if lib.active_model() is None:
            train_library(
                lib,
                TrainConfig(input_size=32, epochs=1, bits=64, max_steps_per_epoch=20, device="cpu"),
            )
    return lib_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--work", type=Path, default=Path("/tmp/fabricsearch-bench-gui"))
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("FABRICSEARCH_DATA_DIR", str(args.work / "data"))
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    lib_dir = build_library(args.work, args.count)
    build_s = time.perf_counter() - t0

    from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    from fabricsearch.gui.app import create_app
    from fabricsearch.gui.main_window import MainWindow, process_events_until
    from fabricsearch.gui.settings import Settings

    app = create_app()
    QSettings.setPath(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(args.work / "settings")
    )
    window = MainWindow(Settings())
    window.interactive = False
    t1 = time.perf_counter()
    window.open_library(lib_dir)
    open_s = time.perf_counter() - t1
    window.resize(1400, 900)
    window.show()
    records = window.browser.all_records()
    done: list[float] = []
    window.searchFinished.connect(lambda _o: done.append(time.perf_counter()))
    window.searchFailed.connect(lambda msg: print(f"search failed: {msg}", file=sys.stderr))
    times = []
    for i in range(args.repeats + 1):  # the first search loads the model and index: warm-up
        rec = records[(i * 7919) % len(records)]
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(rec.path))])
        enter = QDragEnterEvent(
            QPoint(300, 300),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
        event = QDropEvent(
            QPointF(300, 300),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
        n = len(done)
        start = time.perf_counter()  # the drag-enter check is part of what the user waits for
        QApplication.sendEvent(window, enter)
        QApplication.sendEvent(window, event)
        if not process_events_until(lambda n=n: len(done) > n, 60_000):
            print("search timed out", file=sys.stderr)
            return 1
        assert window.search_panel.model.rowCount() > 0
        times.append((done[-1] - start) * 1e3)
    cold, warm = times[0], times[1:]
    result = {
        "images": len(records),
        "repeats": len(warm),
        "cold_ms": cold,
        "median_ms": statistics.median(warm),
        "p90_ms": sorted(warm)[int(0.9 * (len(warm) - 1))],
        "min_ms": min(warm),
        "open_library_s": open_s,
        "build_library_s": build_s,
        "k": window.search_panel.k_spin.value(),
        "platform": sys.platform,
        "cpus": os.cpu_count(),
    }
    window.close()
    app.processEvents()
    print(f"{'images':>8} {'cold ms':>9} {'median ms':>10} {'p90 ms':>8} {'open s':>7}")
    print(
        f"{result['images']:>8} {cold:>9.1f} {result['median_ms']:>10.1f} {result['p90_ms']:>8.1f} {open_s:>7.2f}"
    )
    out = Path(__file__).parent / "results" / "bench_gui.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
