"""Large libraries open fast in the window (issue 23): from `open_library` to the first
screen's records, to the count shown and to the filters ready, and RSS, at 100k / 1M images.

Uses the padded libraries of `bench_large.py` (cached under /tmp/fabricsearch-bench-large;
made there when missing). Each figure comes from a fresh process (offscreen Qt, a 1400×900
window shown) that opens the library and records, polling the event loop every millisecond:

* ``first_s``: the grid's first row has its record (its thumbnail can load)
* ``count_s``: the browser's count label shows the library's size
* ``ready_s``: `libraryOpened` (old: every record loaded; new: the filter columns loaded)
* ``rss_ready_mb``, ``rss_peak_ready_mb``: RSS when ready, and the process's peak until then
* ``filter_s``: the "Unlabelled" filter applied; ``sort_colour_s``, ``sort_name_s``: the grid
  sorted by colour, by name (new: the paths are read then, once)
* ``scroll_s``: scroll to the middle row and paint the viewport (new: a page of records read)

Label suggestions (a model run over the unlabelled images once a library has loaded) are off
in the probe, so that the timings after ``ready`` share the CPUs with nothing.

With ``--old SRC`` (a copy of the older package: ``git archive HEAD fabricsearch | tar -x -C
/tmp/fs-old``) the same probe runs against it, interleaved, under the same machine load.

    .venv/bin/python benchmarks/bench_window_open.py [--n 100000 1000000] [--old /tmp/fs-old]
        [--screenshot PNG]

Prints a table and writes benchmarks/results/window_open.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "window_open.json"


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def probe(lib_dir: Path, n: int, work: Path, screenshot: str | None) -> dict:
    """Runs inside a fresh process whose sys.path starts with the code under test."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("FABRICSEARCH_DATA_DIR", str(work / "data"))
    from PySide6.QtCore import QSettings

    from fabricsearch.gui.app import create_app
    from fabricsearch.gui.main_window import MainWindow
    from fabricsearch.gui.models import RecordRole
    from fabricsearch.gui.settings import Settings

    app = create_app()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "s"))
    window = MainWindow(Settings())
    # Label suggestions run a model over the unlabelled images once a library is loaded:
    # off here, so that the timings after `ready` share the CPUs with nothing.
    window.libraries.recordsLoaded.disconnect(window.suggesting.refresh)
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    out: dict = {"rss_start_mb": _rss_mb()}
    opened: list[float] = []
    window.libraryOpened.connect(lambda _p: opened.append(time.perf_counter()))
    browser = window.browser
    want = f"of {n:,}"
    t0 = time.perf_counter()
    assert window.open_library(lib_dir)
    out["open_return_s"] = time.perf_counter() - t0
    first = count = None
    deadline = t0 + 600
    while time.perf_counter() < deadline:
        now = time.perf_counter()
        model = browser.model
        ready = model is not None and model.rowCount() > 0
        if first is None and ready and model.index(0).data(RecordRole) is not None:
            first = now - t0
        if count is None and want in browser.count_label.text():
            count = now - t0
        if opened and first is not None and count is not None:
            break
        app.processEvents()
        time.sleep(0.001)
    out.update(first_s=first, count_s=count, ready_s=opened[0] - t0 if opened else None)
    out["rss_ready_mb"] = _rss_mb()
    out["rss_peak_ready_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def timed(fn: Callable[[], object]) -> float:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    out["filter_s"] = timed(lambda: browser.labelled_box.setCurrentIndex(2))  # unlabelled
    out["shown_unlabelled"] = browser.model.rowCount()
    browser.labelled_box.setCurrentIndex(0)
    out["sort_colour_s"] = timed(lambda: browser.set_sort("colour"))
    out["sort_name_s"] = timed(lambda: browser.set_sort("name"))
    browser.set_sort("imported")
    model = browser.model
    out["scroll_s"] = timed(
        lambda: (
            browser.grid.scrollTo(model.index(model.rowCount() // 2)),
            browser.grid.viewport().grab(),
        )
    )
    out["rss_end_mb"] = _rss_mb()
    out["count_label"] = window.count_label.text()
    if screenshot:
        browser.grid.scrollToTop()
        until = time.perf_counter() + 20
        while window.cache is not None and window.cache.is_pending():
            app.processEvents()
            time.sleep(0.01)
            if time.perf_counter() > until:
                break
        app.processEvents()
        window.grab().save(screenshot)
    window.libraries.close_library()
    return out


def warm(lib_dir: Path) -> None:
    """Read the catalogue once: every probe starts with it in the OS page cache."""
    with open(lib_dir / "catalogue.sqlite", "rb") as f:
        while f.read(1 << 24):
            pass


def run_probe(src: Path, lib_dir: Path, n: int, screenshot: str | None = None) -> dict:
    warm(lib_dir)
    with tempfile.TemporaryDirectory() as work:
        code = (
            "import json, sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2]);"
            " from bench_window_open import probe; from pathlib import Path;"
            " r = probe(Path(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]), sys.argv[6] or None);"
            " print('RESULT ' + json.dumps(r))"
        )
        p = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                str(src),
                str(ROOT / "benchmarks"),
                str(lib_dir),
                str(n),
                work,
                screenshot or "",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        )
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"probe failed:\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")


def first_screen_thumbnails(lib_dir: Path, count: int = 60) -> None:
    """Padded rows name photos that do not exist: for a screenshot, the first screen gets
    cached thumbnails of generated fabrics (search and the timings never read them)."""
    import numpy as np

    from fabricsearch import imaging, synth
    from fabricsearch.catalogue import Library

    rng = np.random.default_rng(1)
    with Library.open(lib_dir) as lib:
        for rec in lib.first_images(count):
            if not lib.thumb_path(rec.sha256, 512).is_file():
                rgb = synth.render(synth.random_spec(rng), rng, size=256)
                lib.write_thumbnail(rec.sha256, 512, imaging.thumbnail_jpeg(rgb, 512))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, nargs="+", default=[100_000])
    parser.add_argument("--old", type=Path, help="a copy of the older package's parent folder")
    parser.add_argument("--screenshot", type=Path, help="save the new window (first --n)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--repeats", type=int, default=1, help="per version; the best kept")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_large import CACHE, pad_library

    rows = []
    for n in args.n:
        lib_dir, _queries = pad_library(CACHE / f"n{n}", n)
        versions = [("new", ROOT)] + ([("old", args.old)] if args.old else [])
        for name, src in versions:
            shot = str(args.screenshot) if args.screenshot and name == "new" else None
            if shot and n == args.n[0]:
                first_screen_thumbnails(lib_dir)
            runs = [
                run_probe(src, lib_dir, n, shot if n == args.n[0] and i == 0 else None)
                for i in range(args.repeats)
            ]
            r = min(runs, key=lambda x: x["ready_s"] or 1e9)
            rows.append({"n": n, "code": name, "repeats": args.repeats, **r})
            print(json.dumps(rows[-1]), flush=True)

    def fmt(v: object) -> str:
        return "—" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)

    cols = ["n", "code", "first_s", "count_s", "ready_s", "rss_ready_mb", "rss_peak_ready_mb"]
    cols += ["filter_s", "sort_colour_s", "sort_name_s", "scroll_s"]
    print("\n" + " | ".join(f"{c:>12}" for c in cols))
    for r in rows:
        print(" | ".join(f"{fmt(r.get(c)):>12}" for c in cols))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": os.uname().nodename, "cpus": os.cpu_count(), "rows": rows}
    args.out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
