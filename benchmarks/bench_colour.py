"""Benchmark colour quantisation and the similarity batch forms.

    python benchmarks/bench_colour.py [--repeats 20] [--photos 20]

Quantisation is timed on one core (OpenCV limited to 1 thread) for 1024×1024 photos: a
synthetic woven-looking image and, when /work/shared/data is present, real photos scaled to
1024×1024. Prints a table and writes benchmarks/results/colour.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fabricsearch import colour, similarity

RESULTS = Path(__file__).resolve().parent / "results" / "colour.json"
DATA = Path("/work/shared/data")


def timed(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {
        "median_ms": statistics.median(ms),
        "p90_ms": ms[min(len(ms) - 1, int(0.9 * len(ms)))],
        "min_ms": ms[0],
    }


def synthetic_photo(rng: np.random.Generator, size: int = 1024) -> np.ndarray:
    """Two-colour twill-like weave with lighting gradient and sensor noise."""
    y, x = np.mgrid[0:size, 0:size]
    warp = ((x + y) // 6) % 2 == 0
    img = np.where(warp[..., None], [150, 30, 40], [30, 50, 140]).astype(np.float64)
    img *= (0.6 + 0.4 * x / size)[..., None]
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def real_photos(n: int) -> list[tuple[str, np.ndarray]]:
    files = sorted(DATA.glob("dtd10/*/*.jpg"))[::60] + sorted(DATA.glob("batik6/*/*.jpg"))[::30]
    out = []
    for f in files[:n]:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        out.append((f.name, cv2.resize(rgb, (1024, 1024), interpolation=cv2.INTER_CUBIC)))
    return out


def random_labels(rng: np.random.Generator, n: int) -> similarity.LabelArrays:
    pal = np.zeros((n, 10, 4), np.float32)
    for i in range(n):
        k = rng.integers(2, 6)
        rows = rng.choice(10, k, replace=False)
        pal[i, rows, 0] = rng.uniform(0, 180, k)
        pal[i, rows, 1:3] = rng.uniform(0, 255, (k, 2))
        pal[i, rows, 3] = rng.dirichlet(np.ones(k))
    return similarity.LabelArrays(
        major=rng.integers(0, 4, n),
        minor=rng.integers(0, 15, n),
        fine=rng.integers(0, 7, n),
        tightness=rng.uniform(40, 100, n),
        palette=pal,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--photos", type=int, default=20)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []

    def add(name: str, ms: list[float], **extra: Any) -> None:
        rows.append({"name": name, **summary(ms), **extra})

    synth = synthetic_photo(rng)
    add("quantise 1024² synthetic (sampled)", timed(lambda: colour.quantise(synth), args.repeats))
    add(
        "quantise 1024² synthetic (every pixel)",
        timed(lambda: colour.quantise(synth, max_pixels=None), args.repeats),
    )
    photos = real_photos(args.photos) if DATA.is_dir() else []
    if photos:
        per_photo = []
        for _, img in photos:
            per_photo.extend(timed(lambda img=img: colour.quantise(img), 3, warmup=1))
        add(f"quantise 1024² real photos ×{len(photos)} (sampled)", per_photo)
        drift = [
            float(np.abs(colour.quantise(img)[:, 3] - colour.quantise(img, None)[:, 3]).max())
            for _, img in photos
        ]
        rows[-1]["max_proportion_drift_vs_every_pixel"] = max(drift)

    lib = random_labels(rng, 10_000)
    q = lib[0]
    add(
        "colour_similarity_matrix 1×10k",
        timed(lambda: colour.colour_similarity_matrix(q.palette, lib.palette), 5, 1),
    )
    add("fine_grained_matrix 1×10k", timed(lambda: similarity.fine_grained_matrix(q, lib), 5, 1))

    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(1)  # comparable across shared machines; GPU is the real target
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        for device in devices:
            for n in (64, 256):
                t = lib[:n].to_torch(device)

                def run(t: tuple = t, device: str = device) -> None:
                    similarity.fine_grained_torch(*t)
                    if device == "cuda":
                        torch.cuda.synchronize()

                add(f"fine_grained_torch {n}×{n} {device}", timed(run, 10, 2))

    width = max(len(r["name"]) for r in rows)
    print(f"{'benchmark':<{width}}  {'median ms':>10}  {'p90 ms':>8}  {'min ms':>8}")
    for r in rows:
        print(
            f"{r['name']:<{width}}  {r['median_ms']:10.2f}  {r['p90_ms']:8.2f}  {r['min_ms']:8.2f}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "opencv_threads": cv2.getNumThreads(),
        "working_pixels": colour.WORKING_PIXELS,
        "cpu_count": os.cpu_count(),
    }
    RESULTS.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
