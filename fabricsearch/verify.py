"""Same-fabric verification by local features: is a candidate the query's very fabric, cropped,
rotated, seen at an angle or under another camera's colour? (issue 22; docs/search.md)

The global backbone feature of a crop is a weak signature on repeating motifs (batik6: the
exact feature cosine puts the original first for only 0.82 of phone photos), while the fabric's
own details survive a crop. So the first few candidates of the re-ranked list are checked the
way a person would: ORB keypoints on grey images (colour-blind, so a camera's white balance
does not matter), Lowe's ratio test, one match per candidate keypoint, and one RANSAC homography
(a flat swatch cropped, rotated, scaled or photographed at an angle is a homography away from
its library photo). A candidate is the same fabric when at least `MIN_INLIERS` distinct
keypoints agree on that homography *and* they span at least `MIN_SPREAD` of the query image: a
watermark or a shop's logo printed on different fabrics agrees too, but only on a small patch.

The query side is its 512-px decode, which the search has anyway; the candidate side is the
library's stored 512-px thumbnail, so nothing new is stored at import. A candidate without a
thumbnail on disk is simply not checked. Constants chosen on both dev sets
(`benchmarks/bench_verify.py`, docs/benchmarks.md "Same fabric by local features").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fabricsearch.imaging import resize_max_side

#: Longest side of both images compared: the query's decode and the library's thumbnails.
SIDE = 512
#: ORB keypoints per image (OpenCV's default; fewer lost batik6's heavy crops).
N_FEATURES = 500
#: Lowe's ratio test: the best match must be clearly better than the second best.
RATIO = 0.8
#: RANSAC reprojection tolerance, pixels at `SIDE`.
REPROJ_PX = 4.0
#: Agreeing keypoints closer than this (px) count once: ORB's pyramid finds one corner at
#: several scales, and a degenerate fit can pile many matches onto one spot.
CELL_PX = 4.0
#: At least this many distinct agreeing keypoints ... (different photos on the dev sets: at
#: most 7 on dtd10's nearest neighbours; more only for photos of one cloth or one image)
MIN_INLIERS = 15
#: ... spread over at least this share of the query image (their convex hull): a shop's
#: watermark on two different batik6 fabrics gave 37 agreeing keypoints on 1 % of the image,
#: its logo printed on two others 16 on 11 %; new photos of the fabric itself span 28–53 %
#: (10th percentile per transform, batik6).
MIN_SPREAD = 0.15
#: Candidates checked per query: the first few of the re-ranked list (each costs a thumbnail
#: decode and its keypoints; 3 found the original a little less often on batik6's crops).
VERIFY_TOP = 5


@dataclass(frozen=True)
class LocalFeatures:
    """ORB keypoints of one grey image: positions (N, 2) float32, descriptors (N, 32) uint8
    (None when the image has no corners: a plain colour), and the image's area in px²."""

    points: np.ndarray
    descriptors: np.ndarray | None
    area: float


@dataclass(frozen=True)
class Match:
    """The outcome of one check: distinct keypoints agreeing on one homography, and the share
    of the query image they span."""

    inliers: int
    spread: float

    @property
    def same_fabric(self) -> bool:
        return self.inliers >= MIN_INLIERS and self.spread >= MIN_SPREAD


NO_MATCH = Match(0, 0.0)


def grey(rgb: np.ndarray) -> np.ndarray:
    """The grey image compared: `rgb` (uint8, H×W×3) shrunk to `SIDE` px on its longest side
    the way the library's thumbnails were (`imaging.resize_max_side`)."""
    small = resize_max_side(rgb, SIDE)
    return cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2GRAY)


def read_grey(path: Path) -> np.ndarray | None:
    """A stored thumbnail as a grey image; None when it is missing or unreadable."""
    if not path.is_file():
        return None
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return img if img is not None and img.size else None


def local_features(image: np.ndarray) -> LocalFeatures:
    """ORB keypoints and descriptors of a grey uint8 image."""
    orb = cv2.ORB_create(nfeatures=N_FEATURES)
    keypoints, desc = orb.detectAndCompute(image, None)
    points = np.array([k.pt for k in keypoints], np.float32).reshape(-1, 2)
    area = float(image.shape[0] * image.shape[1])
    return LocalFeatures(points, desc if desc is not None and len(desc) else None, area)


def _distinct(points: np.ndarray) -> int:
    return len(np.unique(np.round(points / CELL_PX).astype(np.int64), axis=0))


def match(query: LocalFeatures, candidate: LocalFeatures) -> Match:
    """Check whether `candidate` shows the fabric of `query` (see the module's docstring)."""
    qd, cd = query.descriptors, candidate.descriptors
    if qd is None or cd is None or len(qd) < 2 or len(cd) < 2:
        return NO_MATCH
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(qd, cd, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < MIN_INLIERS:
        return NO_MATCH
    # One match per candidate keypoint, the closest: repeats of a motif otherwise pile up.
    good.sort(key=lambda m: (m.distance, m.queryIdx))
    seen: set[int] = set()
    unique = []
    for m in good:
        if m.trainIdx not in seen:
            seen.add(m.trainIdx)
            unique.append(m)
    if len(unique) < MIN_INLIERS:
        return NO_MATCH
    src = query.points[[m.queryIdx for m in unique]]
    dst = candidate.points[[m.trainIdx for m in unique]]
    # USAC (OpenCV's newer RANSAC, seeded, so a pair always gets the same answer) stops as
    # soon as a fit is certain: 0.25 ms a pair instead of classic RANSAC's 3 ms, whose 2,000
    # rounds on pairs that do not match took up to 200 ms (batik6, same inlier counts).
    h, mask = cv2.findHomography(src, dst, cv2.USAC_ACCURATE, REPROJ_PX)
    if h is None or mask is None:
        return NO_MATCH
    keep = mask.ravel().astype(bool)
    inliers = min(_distinct(src[keep]), _distinct(dst[keep]))
    if inliers < 3:
        return Match(inliers, 0.0)
    hull = cv2.contourArea(cv2.convexHull(src[keep].astype(np.float32)))
    return Match(inliers, float(hull) / max(query.area, 1.0))


@dataclass(eq=False)
class Verification:
    """One query's side of the checks, kept with the query (`search.QueryState`): its grey
    image, its keypoints (computed at the first check) and every candidate checked so far, so
    re-ranking for another balance or filter never repeats a check."""

    image: np.ndarray
    checked: dict[int, Match] = field(default_factory=dict)
    _features: LocalFeatures | None = None

    def check(self, image_id: int, thumbnail: Path) -> Match | None:
        """The outcome for library image `image_id` whose stored thumbnail is `thumbnail`;
        None when the thumbnail is missing (nothing known; checked again next time)."""
        done = self.checked.get(image_id)
        if done is not None:
            return done
        other = read_grey(thumbnail)
        if other is None:
            return None
        if self._features is None:
            self._features = local_features(self.image)
        result = match(self._features, local_features(other))
        self.checked[image_id] = result
        return result
