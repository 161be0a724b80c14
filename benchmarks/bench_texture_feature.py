"""Texture-aware pooling of EfficientNet-Lite0 (issue 22): which feature to cache.

    .venv/bin/python benchmarks/bench_texture_feature.py ../shared/data/dtd10 ../shared/data/batik6

One forward pass per photo and input size gives every pooling variant (the variants differ
only in what is pooled from the same feature maps), so the encode cost of a variant is the
cost of its input size. For each data set and variant:

* ``cos`` — label-free class mAP of exact cosine (queries = a seeded stratified 30 %,
  database = the other 70 %), the quality of the "same fabric / similar fabric" stage;
* ``head`` — class mAP at 64 bits of a two-layer supervised head trained on the 70 %
  (sign codes, Hamming ranking), the quality a labelled library reaches.

Variants: ``last`` (global average of the last layer, today's feature), ``gem`` (GeM p=3 of
the last layer), ``ms`` (global averages of stages 5–7 and the last layer, each part
L2-normalised then concatenated: 1904 values). Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "texture_feature.json"

from fabricsearch.hashing.backbones import (  # noqa: E402
    LITE_MEAN,
    LITE_STD,
    load_backbone,
)
from fabricsearch.hashing.data import prepare_image, to_tensor  # noqa: E402
from fabricsearch.imaging import load_rgb  # noqa: E402

STAGE_ENDS = (11, 15, 16)  # block indices (exclusive) closing stages 5, 6, 7 of Lite0


def read_set(folder: Path) -> tuple[list[Path], np.ndarray]:
    rows = list(csv.DictReader((folder / "labels.csv").open()))
    paths = [folder / r["path"] for r in rows]
    names = sorted({r["coarse"] for r in rows})
    return paths, np.array([names.index(r["coarse"]) for r in rows])


CACHE = ROOT / "benchmarks" / "results" / "cache"

#: variant → the pooled parts it concatenates (each part L2-normalised first)
VARIANTS = {
    "last": ("last",),
    "gem": ("gem",),
    "ms": ("s5", "s6", "s7", "last"),
    "s67+last": ("s6", "s7", "last"),
    "s7+last": ("s7", "last"),
}


def cached_parts(folder: Path, paths: list[Path], size: int) -> tuple[dict[str, np.ndarray], float]:
    """The pooled parts of every photo at `size`, from the gitignored cache when present."""
    cache = CACHE / f"texture_{folder.name}_{size}.npz"
    if cache.is_file():
        z = np.load(cache)
        return {k: z[k] for k in z.files if k != "ms_per_image"}, float(z["ms_per_image"])
    parts, per_img = features(paths, size)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cache, ms_per_image=per_img, **parts)
    return parts, per_img


def compose(parts: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    if len(names) == 1:
        return parts[names[0]]
    normed = [parts[n] / np.linalg.norm(parts[n], axis=1, keepdims=True).clip(1e-9) for n in names]
    return np.concatenate(normed, axis=1)


@torch.inference_mode()
def features(paths: list[Path], size: int) -> tuple[dict[str, np.ndarray], float]:
    net = load_backbone("efficientnet-lite0", torch.device("cpu"), fused=True)
    out: dict[str, list[np.ndarray]] = {"last": [], "gem": [], "s5": [], "s6": [], "s7": []}
    t_net = 0.0
    batch = 16
    for s in range(0, len(paths), batch):
        sq = np.stack(
            [prepare_image(load_rgb(p, max_side=2 * size), size) for p in paths[s : s + batch]]
        )
        x = to_tensor(sq, LITE_MEAN, LITE_STD)
        t0 = time.perf_counter()
        h = net.stem(x)
        pooled = []
        for i, blk in enumerate(net.blocks):
            h = blk(h)
            if i + 1 in STAGE_ENDS:
                pooled.append(h.float().mean(dim=(2, 3)))
        m = net.head(h).float()
        t_net += time.perf_counter() - t0
        last = m.mean(dim=(2, 3))
        gem = m.clamp(min=1e-6).pow(3).mean(dim=(2, 3)).pow(1 / 3)
        out["last"].append(last.numpy())
        out["gem"].append(gem.numpy())
        for name, p in zip(("s5", "s6", "s7"), pooled, strict=True):
            out[name].append(p.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}, t_net / len(paths)


def split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(0.3 * len(idx)))
        test += list(idx[:k])
        train += list(idx[k:])
    return np.array(sorted(train)), np.array(sorted(test))


def mean_ap(sim: np.ndarray, relevant: np.ndarray) -> float:
    order = np.argsort(-sim, axis=1, kind="stable")
    rel = np.take_along_axis(relevant, order, axis=1)
    hits = np.cumsum(rel, axis=1)
    prec = hits / np.arange(1, rel.shape[1] + 1)
    ap = (prec * rel).sum(1) / np.maximum(rel.sum(1), 1)
    return float(ap.mean())


def cosine_map(f: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray) -> float:
    g = f / np.linalg.norm(f, axis=1, keepdims=True)
    return mean_ap(g[te] @ g[tr].T, y[te][:, None] == y[tr][None])


def head_map(f: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, bits: int = 64) -> float:
    torch.manual_seed(0)
    x = torch.from_numpy(np.sqrt(np.abs(f)) * np.sign(f)).float()
    x = torch.nn.functional.normalize(x, dim=1)
    n_cls = int(y.max()) + 1
    net = torch.nn.Sequential(
        torch.nn.Dropout(0.2),
        torch.nn.Linear(x.shape[1], 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, bits),
    )
    cls = torch.nn.Linear(bits, n_cls)
    opt = torch.optim.AdamW([*net.parameters(), *cls.parameters()], lr=1e-3, weight_decay=1e-4)
    yt = torch.from_numpy(y[tr])
    xt = x[tr]
    for _epoch in range(60):
        perm = torch.randperm(len(tr))
        for s in range(0, len(tr), 64):
            b = perm[s : s + 64]
            z = torch.tanh(net(xt[b]))
            loss = (
                torch.nn.functional.cross_entropy(cls(z), yt[b]) + 0.1 * (z.abs() - 1).pow(2).mean()
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        codes = torch.sign(net(x)).numpy()
    sim = codes[te] @ codes[tr].T  # = bits − 2·Hamming
    return mean_ap(sim, y[te][:, None] == y[tr][None])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sets", nargs="+", type=Path)
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 320])
    ap.add_argument("--splits", type=int, default=3, help="seeded 70/30 splits averaged")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for folder in args.sets:
        paths, y = read_set(folder)
        splits = [split(y, seed) for seed in range(args.splits)]
        for size in args.sizes:
            parts, per_img = cached_parts(folder, paths, size)
            for name, names in VARIANTS.items():
                f = compose(parts, names)
                cos = [cosine_map(f, y, tr, te) for tr, te in splits]
                head = [head_map(f, y, tr, te) for tr, te in splits]
                row = {
                    "set": folder.name,
                    "size": size,
                    "variant": name,
                    "dims": int(f.shape[1]),
                    "cos_mAP": round(float(np.mean(cos)), 3),
                    "head_mAP": round(float(np.mean(head)), 3),
                    "head_sd": round(float(np.std(head)), 3),
                    "net_ms_per_image": round(per_img * 1000, 1),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(
        f"\n{'set':8} {'size':>4} {'variant':9} {'dims':>5} {'cos':>6} {'head':>6} {'±':>5} {'ms/img':>7}"
    )
    for r in rows:
        print(
            f"{r['set']:8} {r['size']:>4} {r['variant']:9} {r['dims']:>5} {r['cos_mAP']:>6.3f} "
            f"{r['head_mAP']:>6.3f} {r['head_sd']:>5.3f} {r['net_ms_per_image']:>7.1f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main()
