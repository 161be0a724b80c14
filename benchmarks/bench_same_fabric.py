"""Same fabric, new photo (issue 22): a library photo re-photographed must come back first.

For each dev set (dtd10, batik6 under ../shared/data; never copied into the repository) a
library is imported with the pretrained backbone (label-free automatic head), 40 library photos
are picked (seeded) and "re-photographed" by transforms; each new photo is written to a
temporary file (so it is a new file, not the library's bytes) and searched. Reported: R@1,
R@10 and the median rank of the original, for

* **old** — today's ranking before issue 22, replicated here: Hamming top 100, then
  0.5 · Hamming + 0.5 · S (plain S_C colour; predicted labels ≥ 50 % confident stand in),
* **new** — `Searcher.search` as shipped (two stages: Hamming candidates, then the feature
  cosine with the same-fabric mark, camera-tolerant colour, predicted labels by confidence),
* **cosine** — exact cosine of the cached features over the whole library (the reference),

plus what the thresholds were chosen from: the Hamming rank of the original (candidate
depth), the feature cosine of the original under each transform, and the highest cosine
between two *different* photos of one class (the same-fabric threshold must stay above it).

    .venv/bin/python benchmarks/bench_same_fabric.py [--sets dtd10 batik6] [--limit N]
        [--trained] [--reuse-trained]

`--limit N` imports a seeded subset of N photos of each set; `--trained` also trains a DVSH
model on the cached features (seconds) and repeats the queries with it (`--reuse-trained`:
the DVSH model an earlier run trained in the cached library, when there is one). Prints a table
and writes benchmarks/results/same_fabric.json. Libraries are cached in
benchmarks/results/cache.

**Candidate depth** (the feature sketch, docs/search.md): for each query the original's rank
under the Hamming code, the library's feature sketch (`fabricsearch.sketch`, written by the
encoding step) and the exact cosine, extrapolated to 100k and 1M photos distributed like the
set, and whether the original is among the candidates there: Hamming alone (R = 1 % at most
1,000, the depth without a sketch) and Hamming R = 200 with the sketch's S = 200.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "benchmarks" / "results" / "cache"
OUT = ROOT / "benchmarks" / "results" / "same_fabric.json"
N_QUERIES = 40
SEED = 22
OLD_DEPTH = 100  # RERANK_DEPTH before issue 22
OLD_MIN_CONF = 0.5  # PREDICTION_MIN_CONFIDENCE before issue 22
#: Two library photos this close are one photo stored twice (resized or recompressed copies:
#: batik6 has 32 such pairs, some across its classes); finding either is finding the fabric.
DUPLICATE_COSINE = 0.97
#: The candidate depth question of issue 22: where would the original fall among this many
#: photos distributed like the set? (rank ≈ 1 + share of others ranked at/above it × (N − 1))
EXTRAPOLATE_TO = 1_000_000
#: Library sizes the candidate depth is extrapolated to.
DEPTH_AT = (100_000, 1_000_000)


# --------------------------------------------------------------------------- transforms
def _white_balance(rgb: np.ndarray) -> np.ndarray:
    x = rgb.astype(np.float64) / 255.0
    x[..., 0] *= 1.12
    x[..., 2] *= 0.88
    x = np.clip(x, 0.0, 1.0) ** 0.85
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _rotate(rgb: np.ndarray, deg: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    return cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def _centre_crop(rgb: np.ndarray, frac: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    ch, cw = int(h * frac), int(w * frac)
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(rgb[y : y + ch, x : x + cw])


def _random_crop(rgb: np.ndarray, frac: float, rng: np.random.Generator) -> np.ndarray:
    h, w = rgb.shape[:2]
    ch, cw = int(h * frac), int(w * frac)
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return np.ascontiguousarray(rgb[y : y + ch, x : x + cw])


def _perspective(rgb: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    h, w = rgb.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    jitter = rng.uniform(-amount, amount, size=(4, 2)) * np.float32([w, h])
    m = cv2.getPerspectiveTransform(src, (src + jitter).astype(np.float32))
    return cv2.warpPerspective(
        rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
    )


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _half_jpeg(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    return _jpeg(small, 60)


def _phone(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = _centre_crop(_rotate(rgb, 8.0), 0.8)
    x = _perspective(x, 0.05, rng)
    return _jpeg(_white_balance(x), 70)


TRANSFORMS = {
    "none": lambda im, rng: im,
    "rot17+crop75": lambda im, rng: _centre_crop(_rotate(im, 17.0), 0.75),
    "crop60": lambda im, rng: _random_crop(im, 0.6, rng),
    "half+jpeg60": lambda im, rng: _half_jpeg(im),
    "white balance": lambda im, rng: _white_balance(im),
    "blur σ2": lambda im, rng: cv2.GaussianBlur(im, (0, 0), 2.0),
    "phone photo": _phone,
    "rot90": lambda im, rng: np.ascontiguousarray(np.rot90(im)),
    "perspective": lambda im, rng: _perspective(im, 0.12, rng),
}


# --------------------------------------------------------------------------- library
def build_library(name: str, limit: int | None) -> Any:
    """The cached library of a dev set (imported once; later runs reopen it)."""
    from fabricsearch.catalogue import Library
    from fabricsearch.workflows import create_library, import_and_encode

    src = DATA / name
    tag = f"{name}-{limit}" if limit else name
    folder = CACHE / f"same_fabric-{tag}-lib"
    if (folder / "catalogue.sqlite").exists() and (folder / ".complete").exists():
        return Library.open(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    only = None
    if limit:
        import csv

        with open(src / "labels.csv", newline="") as fh:
            paths = sorted(row["path"] for row in csv.DictReader(fh))
        rng = np.random.default_rng(SEED)
        only = [
            src / p for p in sorted(rng.choice(paths, size=min(limit, len(paths)), replace=False))
        ]
    t = time.perf_counter()
    lib = create_library(folder, default_model=False)
    import_and_encode(
        lib, src, labels_csv=src / "labels.csv", add_categories=True, workers=2, only=only
    )
    (folder / ".complete").write_text("ok")
    print(f"{name}: imported {lib.count()} photos in {time.perf_counter() - t:.0f} s", flush=True)
    return lib


def library_arrays(lib: Any) -> dict[str, Any]:
    from fabricsearch.hashing.backbones import DEFAULT_BACKBONE
    from fabricsearch.hashing.encode import library_features

    records = lib.images()
    feats, ok = library_features(lib, DEFAULT_BACKBONE, records)
    f = feats.astype(np.float32)
    f /= np.linalg.norm(f, axis=1, keepdims=True) + 1e-9
    return {
        "records": records,
        "ids": np.array([r.id for r in records], np.int64),
        "coarse": np.array([r.coarse or "" for r in records]),
        "feats": f,
        "ok": ok,
    }


def same_class_cosines(arr: dict[str, Any]) -> dict[str, float]:
    """Highest cosine between two different photos of one class (and of any two photos)."""
    f, coarse = arr["feats"], arr["coarse"]
    sim = f @ f.T
    np.fill_diagonal(sim, -1.0)
    same = coarse[:, None] == coarse[None, :]
    best_same = np.where(same, sim, -1.0).max(axis=1)
    off = sim[~np.eye(len(f), dtype=bool)]
    return {
        "max": float(best_same.max()),
        "p99.9": float(np.quantile(best_same, 0.999)),
        "p99": float(np.quantile(best_same, 0.99)),
        "median nearest same-class": float(np.median(best_same)),
        "median any pair": float(np.median(off)),
        "p90 any pair": float(np.quantile(off, 0.9)),
        "pairs over 0.85": int((np.triu(sim, 1) >= 0.85).sum()),
    }


# --------------------------------------------------------------------------- rankings
def old_rank(
    lib: Any, st: Any, rgb: np.ndarray, code: np.ndarray, predicted: Any, target: int
) -> int:
    """Rank (1-based; 10⁹ if not shown) of `target` under the ranking before issue 22."""
    from fabricsearch import colour
    from fabricsearch.similarity import LabelArrays, combine_components, fine_grained_components

    dist, cand = st.index.search(code, OLD_DEPTH)
    dist, cand = dist[0], cand[0]
    rows = np.searchsorted(st.ids, cand)
    q = {"coarse": None, "fine": None}
    if predicted is not None:
        for key in q:
            if float(predicted.get(f"{key}_confidence") or 0) >= OLD_MIN_CONF:
                q[key] = predicted[key]
    qlab = LabelArrays.from_records(
        lib.taxonomy, [q["coarse"]], [q["fine"]], [None], [colour.quantise(rgb)]
    )
    s = combine_components(fine_grained_components(qlab, st.labels.subset(rows)))[0]
    score = 0.5 * (1.0 - dist / st.info.bits) + 0.5 * s
    order = cand[np.lexsort((cand, dist, -score))]
    where = np.flatnonzero(order == target)
    return int(where[0]) + 1 if len(where) else 10**9


def _source_key(source: Any) -> str:
    """The replay key of a query's network input (a path or the pixels handed over)."""
    import hashlib

    if isinstance(source, np.ndarray):
        return hashlib.sha1(np.ascontiguousarray(source).tobytes()).hexdigest()
    return str(source)


class Prepared:
    """Every query of a set under every transform, measured once (one network pass each): the
    query files, their code / predictions / feature and camera palettes, and the ranks that do
    not depend on the re-ranking constants (old ranking, exact cosine, Hamming)."""

    def __init__(self, lib: Any, arr: dict[str, Any], picks: np.ndarray, folder: Path) -> None:
        import pickle

        from fabricsearch.search import Searcher

        self.lib, self.arr, self.picks = lib, arr, picks
        self.searcher = Searcher(lib)
        self.model = self.searcher._ensure().info.version
        folder = folder / self.model
        folder.mkdir(parents=True, exist_ok=True)
        saved = folder / "prepared.pkl"
        if saved.exists():  # measured before: replay (the query files are kept beside it)
            self.encoded, self.palettes, self.queries, self.fixed = pickle.loads(saved.read_bytes())
            return
        self._prepare(folder)
        saved.write_bytes(pickle.dumps((self.encoded, self.palettes, self.queries, self.fixed)))

    def _prepare(self, folder: Path) -> None:
        import hashlib

        from fabricsearch import colour
        from fabricsearch.codes import unpack_codes
        from fabricsearch.hashing.extract import decode_for
        from fabricsearch.search import _encode_query, _load_query

        lib, arr, picks = self.lib, self.arr, self.picks
        st = self.searcher._ensure()
        ids_all, packed = lib.load_codes(st.info.version)
        codes = unpack_codes(packed, st.info.bits).astype(np.float32)
        code_row = {int(i): j for j, i in enumerate(ids_all)}
        self.encoded: dict[str, Any] = {}
        self.palettes: dict[str, np.ndarray] = {}
        self.queries: dict[str, list[tuple[Path, int, int]]] = {}
        self.fixed: dict[str, dict[str, Any]] = {}
        for tname, fn in TRANSFORMS.items():
            rng = np.random.default_rng(SEED)
            ranks: dict[str, list[float]] = {"old": [], "cosine": [], "hamming": []}
            orig_cos = []
            # share of the other photos ranked at or above the original (ties count half):
            # times (N − 1) it extrapolates the original's rank to a library of N such photos
            share: dict[str, list[float]] = {"cosine": [], "hamming": []}
            t0 = time.perf_counter()
            self.queries[tname] = []
            for i in picks:
                rec = arr["records"][i]
                target = int(rec.id)
                q = fn(decode_for(rec.path, 1 << 14), rng)  # the photo at full size, transformed
                path = folder / f"{tname.replace(' ', '_')}-{i}.png"
                Image.fromarray(q).save(path)
                self.queries[tname].append((path, int(i), target))
                loaded = _load_query(path)
                rgb, fine = loaded[0], loaded[3]  # the search measures colour on the fine decode
                source = rgb  # what Searcher.prepare hands the network
                if st.method.on_features:
                    from fabricsearch.hashing.backbones import get_spec
                    from fabricsearch.hashing.extract import net_pixels

                    source = net_pixels(fine, get_spec(st.method.backbone).input_size)
                code, predicted, qf = _encode_query(st.method, source, lib)
                self.encoded[_source_key(source)] = (code, predicted, qf)
                self.palettes[hashlib.sha1(fine.tobytes()).hexdigest()] = colour.camera_palettes(
                    fine
                )
                ranks["old"].append(old_rank(lib, st, rgb, code, predicted, target))
                qf = qf / (np.linalg.norm(qf) + 1e-9)
                cos = arr["feats"] @ qf
                orig_cos.append(float(cos[i]))
                ranks["cosine"].append(int((cos > cos[i]).sum()) + 1)
                share["cosine"].append(
                    ((cos > cos[i]).sum() + 0.5 * ((cos == cos[i]).sum() - 1)) / (len(cos) - 1)
                )
                qc = unpack_codes(code[None], st.info.bits).astype(np.float32)[0]
                hd = (st.info.bits - codes @ qc) / 2
                j = code_row[target]
                tie = ((hd == hd[j]) & (ids_all < target)).sum()
                ranks["hamming"].append(int((hd < hd[j]).sum() + tie) + 1)
                share["hamming"].append(
                    ((hd < hd[j]).sum() + 0.5 * ((hd == hd[j]).sum() - 1)) / (len(hd) - 1)
                )
            row: dict[str, Any] = {k: recall(v) for k, v in ranks.items()}
            h = np.array(ranks["hamming"])
            row["hamming rank of original"] = {
                "max": int(h.max()),
                "p95": float(np.quantile(h, 0.95)),
                "all": [int(x) for x in h],
            }
            for kind, values in share.items():
                at_1m = 1 + np.array(values) * (EXTRAPOLATE_TO - 1)
                row[f"{kind} rank of original at 1M (extrapolated)"] = {
                    "median": float(np.median(at_1m)),
                    "p95": float(np.quantile(at_1m, 0.95)),
                    "max": float(at_1m.max()),
                }
            row["original cosine"] = {
                "min": float(np.min(orig_cos)),
                "median": float(np.median(orig_cos)),
                "all": [round(float(x), 4) for x in orig_cos],
            }
            row["prepare seconds"] = time.perf_counter() - t0
            self.fixed[tname] = row
            print(
                f"  {tname:<14} old R@1 {row['old']['R@1']:.2f} | cos R@1 "
                f"{row['cosine']['R@1']:.2f} | ham max {h.max()} p95 {row['hamming rank of original']['p95']:.0f}"
                f" | cos min {min(orig_cos):.3f} med {np.median(orig_cos):.3f}"
                f" | at 1M: ham p95 {row['hamming rank of original at 1M (extrapolated)']['p95']:.0f}"
                f" cos p95 {row['cosine rank of original at 1M (extrapolated)']['p95']:.0f}",
                flush=True,
            )

    def candidate_depth(self) -> dict[str, Any]:
        """The original's rank at 100k and 1M photos by the Hamming code, the feature sketch
        and the exact cosine, and whether the candidates hold it (module docstring)."""
        from fabricsearch import search as S
        from fabricsearch import sketch as K
        from fabricsearch.codes import unpack_codes
        from fabricsearch.hashing.backbones import get_spec
        from fabricsearch.hashing.extract import net_pixels
        from fabricsearch.search import _load_query

        lib = self.lib
        st = self.searcher._ensure()
        S.update_sketch(lib, st.method)  # the encoding step's work (once per cached library)
        sk = K.open_sketch(lib.indexes_dir, K.feature_version(st.method.backbone))
        assert sk is not None, "no feature sketch"
        sk_rows, lib_rows = K.match(sk, st.ids, K.heads(S.Searcher._digests(st)))
        assert len(lib_rows) == len(st.ids), "the sketch misses library photos"
        ids_all, packed = lib.load_codes(st.info.version)
        assert np.array_equal(ids_all, st.ids)
        codes = unpack_codes(packed, st.info.bits).astype(np.float32)
        n = len(st.ids)
        size = get_spec(st.method.backbone).input_size
        out: dict[str, Any] = {
            "sketch": {"dims": sk.dim, "fitted on": sk.fitted_on, "rows": len(sk)},
            "transforms": {},
        }
        for tname, queries in self.queries.items():
            share: dict[str, list[float]] = {"hamming": [], "sketch": [], "cosine": []}
            for path, _i, target in queries:
                fine = _load_query(path)[3]
                code, _pred, qf = self.encoded[_source_key(net_pixels(fine, size))]
                row = int(np.searchsorted(st.ids, target))
                qc = unpack_codes(code[None], st.info.bits).astype(np.float32)[0]
                by = {
                    # Higher is nearer for each: minus the Hamming distance, the cosines.
                    "hamming": -(st.info.bits - codes @ qc) / 2,
                    "sketch": np.empty(n, np.float32),
                    "cosine": self.arr["feats"] @ (qf / (np.linalg.norm(qf) + 1e-9)),
                }
                by["sketch"][lib_rows] = sk.scores(qf)[sk_rows]
                for kind, v in by.items():
                    t = v[row]
                    share[kind].append(((v > t).sum() + 0.5 * ((v == t).sum() - 1)) / (n - 1))
            row_out: dict[str, Any] = {}
            for at in DEPTH_AT:
                ranks = {k: 1 + np.array(v) * (at - 1) for k, v in share.items()}
                tag = f"{at // 1000}k" if at < 1_000_000 else "1M"
                row_out[tag] = {
                    **{
                        f"{k} rank": {
                            "median": float(np.median(r)),
                            "p95": float(np.quantile(r, 0.95)),
                        }
                        for k, r in ranks.items()
                    },
                    "in candidates, Hamming alone (R = depth without a sketch)": float(
                        (ranks["hamming"] <= S.rerank_depth(at)).mean()
                    ),
                    "in candidates, sketch alone (S)": float(
                        (ranks["sketch"] <= S.SKETCH_DEPTH).mean()
                    ),
                    "in candidates, Hamming R + sketch S": float(
                        (
                            (ranks["hamming"] <= S.rerank_depth(at, sketch=True))
                            | (ranks["sketch"] <= S.SKETCH_DEPTH)
                        ).mean()
                    ),
                    "in the exact cosine first S (reference)": float(
                        (ranks["cosine"] <= S.SKETCH_DEPTH).mean()
                    ),
                }
            out["transforms"][tname] = row_out
            r = row_out["1M"]
            print(
                f"  depth {tname:<14} at 1M: sketch med {r['sketch rank']['median']:.0f} p95 "
                f"{r['sketch rank']['p95']:.0f} | held: Hamming alone "
                f"{r['in candidates, Hamming alone (R = depth without a sketch)']:.2f}, R+S "
                f"{r['in candidates, Hamming R + sketch S']:.2f} (cosine "
                f"{r['in the exact cosine first S (reference)']:.2f})",
                flush=True,
            )
        return out

    def rank_new(self, settings: dict[str, float] | None = None) -> dict[str, Any]:
        """R@1/R@10/median rank through `Searcher.search` (with the measured network outputs
        and palettes replayed, so only the re-ranking runs), under `settings` (constants of
        fabricsearch.search, e.g. {"SAME_FABRIC_COSINE": 0.9})."""
        import hashlib

        from fabricsearch import colour
        from fabricsearch import search as S

        saved = {k: getattr(S, k) for k in (settings or {})}
        enc, cam = S._encode_query, colour.camera_palettes
        S._encode_query = lambda method, source, library: self.encoded[_source_key(source)]
        colour.camera_palettes = lambda rgb, *a: self.palettes[
            hashlib.sha1(rgb.tobytes()).hexdigest()
        ]
        for k, v in (settings or {}).items():
            setattr(S, k, v)
        out: dict[str, Any] = {}
        f, all_ids = self.arr["feats"], self.arr["ids"]
        try:
            for tname, queries in self.queries.items():
                ranks, dup_ranks, marked, wrong = [], [], 0, 0
                for path, i, target in queries:
                    res = self.searcher.search(path, k=50)
                    ids = [h.image_id for h in res.hits]
                    ranks.append(ids.index(target) + 1 if target in ids else 10**9)
                    same = set(all_ids[f @ f[i] >= DUPLICATE_COSINE].tolist()) | {target}
                    found = [r for r, h in enumerate(ids, start=1) if h in same]
                    dup_ranks.append(found[0] if found else 10**9)
                    first = res.hits[0]
                    marked += first.image_id == target and first.same_fabric
                    wrong += first.image_id != target and first.same_fabric
                row = recall(ranks)
                row["R@1, a duplicate of the original counts"] = recall(dup_ranks)["R@1"]
                row["first is original, marked same fabric"] = marked / len(queries)
                row["first marked same fabric but another photo"] = wrong / len(queries)
                out[tname] = row
        finally:
            S._encode_query, colour.camera_palettes = enc, cam
            for k, v in saved.items():
                setattr(S, k, v)
        return out


def recall(ranks: list[float]) -> dict[str, float]:
    a = np.array(ranks, dtype=np.float64)
    return {
        "R@1": float((a <= 1).mean()),
        "R@10": float((a <= 10).mean()),
        "median rank": float(np.median(a)),
    }


SWEEP = [
    {
        "SAME_FABRIC_COSINE": t,
        "SAME_FABRIC_COLOUR": c,
        "FEATURE_WEIGHT": w,
        "FEATURE_HAMMING_WEIGHT": h,
    }
    for t in (0.8, 0.85, 0.9)
    for c in (0.6, 0.7, 0.8)
    for w in (1.0, 2.0)
    for h in (0.5, 0.2)
]


def evaluate(
    lib: Any, arr: dict[str, Any], picks: np.ndarray, folder: Path, label: str, sweep: bool
) -> dict[str, Any]:
    prep = Prepared(lib, arr, picks, folder)
    out: dict[str, Any] = {"model": prep.model, "transforms": {}}
    out["candidate depth"] = prep.candidate_depth()
    new = prep.rank_new()
    for tname, row in prep.fixed.items():
        out["transforms"][tname] = {**row, "new": new[tname]}
        n, o = new[tname], row["old"]
        print(
            f"  {label:<10} {tname:<14} old R@1 {o['R@1']:.2f} R@10 {o['R@10']:.2f} med {o['median rank']:g} | "
            f"new R@1 {n['R@1']:.2f} R@10 {n['R@10']:.2f} med {n['median rank']:g} | "
            f"cos R@1 {row['cosine']['R@1']:.2f} | marked {n['first is original, marked same fabric']:.2f} "
            f"wrong {n['first marked same fabric but another photo']:.2f}",
            flush=True,
        )
    if sweep:
        out["sweep"] = []
        for settings in SWEEP:
            res = prep.rank_new(settings)
            r1 = {t: round(v["R@1"], 3) for t, v in res.items()}
            wrong = {t: v["first marked same fabric but another photo"] for t, v in res.items()}
            out["sweep"].append({"settings": settings, "R@1": r1, "wrong same-fabric": wrong})
            print(f"  sweep {settings}: mean R@1 {np.mean(list(r1.values())):.3f} {r1}", flush=True)
    return out


def train_dvsh(lib: Any) -> None:
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.backbones import DEFAULT_BACKBONE
    from fabricsearch.hashing.train import train_library

    cfg = TrainConfig(backbone=DEFAULT_BACKBONE, bits=64, epochs=30)
    train_library(lib, cfg, activate=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sets", nargs="+", default=["dtd10", "batik6"])
    ap.add_argument("--limit", type=int, default=None, help="import a seeded subset of N photos")
    ap.add_argument("--trained", action="store_true", help="also with a trained DVSH model")
    ap.add_argument("--sweep", action="store_true", help="also try the SWEEP re-ranking constants")
    ap.add_argument(
        "--reuse-trained", action="store_true", help="with --trained: an earlier run's model"
    )
    args = ap.parse_args()
    torch.set_num_threads(2)
    results: dict[str, Any] = json.loads(OUT.read_text()) if OUT.exists() else {}
    for name in args.sets:
        lib = build_library(name, args.limit)
        try:
            arr = library_arrays(lib)
            stats = same_class_cosines(arr)
            print(
                f"{name}: {len(arr['ids'])} photos; cosines of different photos: {stats}",
                flush=True,
            )
            rng = np.random.default_rng(SEED)
            picks = np.sort(rng.choice(len(arr["ids"]), size=N_QUERIES, replace=False))
            f = arr["feats"]
            dups = int(((f[picks] @ f.T) >= DUPLICATE_COSINE).sum(axis=1).__gt__(1).sum())
            entry: dict[str, Any] = {
                "photos": len(arr["ids"]),
                "queries with a duplicate photo in the set": dups,
                "subset": args.limit,
                "queries": N_QUERIES,
                "different photos": stats,
            }
            tag = f"{name}-{args.limit}" if args.limit else name
            tmp = CACHE / f"same_fabric-{tag}-queries"
            if True:
                active = lib.active_model()
                entry["label-free"] = evaluate(lib, arr, picks, Path(tmp), "label-free", args.sweep)
                if args.trained:
                    earlier = [m for m in lib.models() if m.method == "dvsh"]
                    if args.reuse_trained and earlier:
                        lib.set_active_model(max(earlier, key=lambda m: m.created).version)
                    else:
                        train_dvsh(lib)
                    entry["trained"] = evaluate(lib, arr, picks, Path(tmp), "trained", args.sweep)
                    if active is not None:
                        lib.set_active_model(active.version)
            for model in ("label-free", "trained"):  # keep an earlier sweep not repeated now
                earlier = results.get(name, {}).get(model, {})
                if model in entry and "sweep" not in entry[model] and "sweep" in earlier:
                    entry[model]["sweep"] = earlier["sweep"]
            results[name] = entry
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(results, indent=1, ensure_ascii=False))
        finally:
            lib.close()
    print(markdown(results))
    print(depth_markdown(results))
    return 0


def depth_markdown(results: dict[str, Any]) -> str:
    """The candidate depth at 1M: ranks and the share of originals the candidates hold."""
    lines = [
        "| set | model | transform | Hamming median / p95 | sketch median / p95 "
        "| cosine median / p95 | held: Hamming alone (R = 1,000) | held: R 200 + sketch S 200 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in results.items():
        for model in ("label-free", "trained"):
            depth = entry.get(model, {}).get("candidate depth")
            if not depth:
                continue
            for tname, row in depth["transforms"].items():
                r = row["1M"]
                h, sk, c = r["hamming rank"], r["sketch rank"], r["cosine rank"]
                lines.append(
                    f"| {name} | {model} | {tname} | {h['median']:,.0f} / {h['p95']:,.0f} "
                    f"| {sk['median']:,.0f} / {sk['p95']:,.0f} | {c['median']:,.0f} / {c['p95']:,.0f} "
                    f"| {r['in candidates, Hamming alone (R = depth without a sketch)']:.2f} "
                    f"| **{r['in candidates, Hamming R + sketch S']:.2f}** |"
                )
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| set | model | transform | old R@1 | old R@10 | old median | new R@1 | new R@10 | new median "
        "| new R@1, duplicates count | cosine R@1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in results.items():
        for model in ("label-free", "trained"):
            if model not in entry:
                continue
            for tname, row in entry[model]["transforms"].items():
                o, n, c = row["old"], row["new"], row["cosine"]
                lines.append(
                    f"| {name} | {model} | {tname} | {o['R@1']:.2f} | {o['R@10']:.2f} | {o['median rank']:g} "
                    f"| **{n['R@1']:.2f}** | {n['R@10']:.2f} | {n['median rank']:g} "
                    f"| {n.get('R@1, a duplicate of the original counts', float('nan')):.2f} | {c['R@1']:.2f} |"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    raise SystemExit(main())
