"""Procedural woven-fabric "photographs" with exact labels in all four dimensions.

A fabric is warp threads (vertical, index ``i``) and weft threads (horizontal, index ``j``)
on a square grid of period ``period`` (reference pixels, i.e. pixels of a 256 px image).
A weave matrix ``W[j % n, i % m]`` says which thread lies on top at each crossing (1 = warp).
Every output pixel is mapped to fabric coordinates ``(u, v)`` and evaluated analytically
(vectorised numpy), so a photo with crop, zoom and rotation is rendered directly rather
than resampled, and thread edges are anti-aliased by a linear ramp one pixel wide.

Tightness is the fabric cover factor in percent (Peirce): with ``c1 = d1 / p1`` and
``c2 = d2 / p2`` the fractional covers of warp and weft (yarn width over thread spacing),
``K = c1 + c2 - c1 * c2`` is the fraction of the area covered by yarn; the rest is gap,
which shows the shadow colour. See docs/synthetic.md.

Colour is not stored as a label: it is measured from the image (``colour.quantise``).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from fabricsearch.jobs import CancelToken, ProgressFn, check, report

REFERENCE_SIZE = 256  # `period`, `motif_spacing` are in pixels of an image this size

SUPPORTED_COARSE: tuple[str, ...] = (
    "solid/plain-dyed",
    "solid/melange",
    "solid/two-tone",
    "stripe/pin-stripe",
    "stripe/bold-stripe",
    "stripe/inlaid-stripe",
    "stripe/multi-stripe",
    "plaid/gingham",
    "plaid/window-pane",
    "plaid/tartan",
    "plaid/houndstooth",
    "pattern/printed-dots",
    "pattern/printed-floral",
    "pattern/jacquard-figure",
    "pattern/dobby-figure",
)
SUPPORTED_FINE: tuple[str, ...] = ("plain", "twill", "satin", "basket", "dobby", "jacquard")
GROUND_WEAVES: tuple[str, ...] = ("plain", "twill", "satin", "basket")

# Fine label forced by a coarse class (the render would contradict any other label).
_FORCED_FINE = {
    "plaid/houndstooth": "twill",
    "pattern/jacquard-figure": "jacquard",
    "pattern/dobby-figure": "dobby",
}

RGB = tuple[int, int, int]
Weave = tuple[tuple[int, ...], ...]


# --------------------------------------------------------------------------------------
# weaves
# --------------------------------------------------------------------------------------
def weave_matrix(kind: str, variant: int = 0) -> Weave:
    """A weave repeat as rows of weft picks ``j`` over columns of warp ends ``i`` (1 = warp up).

    `variant` picks among the common forms of each kind (deterministically)."""
    if kind in ("plain", "dobby"):
        m = _plain()
    elif kind == "twill":
        # (up, down, direction): 2/2, 2/1, 3/1, 1/3 in Z or S
        ups, downs = [(2, 2), (2, 1), (3, 1), (1, 2)][variant % 4]
        m = _twill(ups, downs, 1 if (variant // 4) % 2 == 0 else -1)
    elif kind == "satin":
        n, step = [(5, 2), (8, 3), (5, 3), (8, 5)][variant % 4]
        m = _satin(n, step, warp_faced=(variant // 4) % 2 == 0)
    elif kind == "basket":
        m = _basket(2 + variant % 2)
    elif kind == "jacquard":
        m = _satin(8 if variant % 2 == 0 else 5, 3, warp_faced=False)
    else:
        raise ValueError(f"unknown weave {kind!r}")
    return tuple(tuple(int(x) for x in row) for row in m)


def _plain() -> np.ndarray:
    i, j = np.meshgrid(np.arange(2), np.arange(2))
    return (i + j) % 2 == 0


def _twill(ups: int, downs: int, direction: int) -> np.ndarray:
    n = ups + downs
    i, j = np.meshgrid(np.arange(n), np.arange(n))
    return (i - direction * j) % n < ups


def _satin(n: int, step: int, warp_faced: bool) -> np.ndarray:
    i, j = np.meshgrid(np.arange(n), np.arange(n))
    stitch = i == (step * j) % n
    return ~stitch if warp_faced else stitch


def _basket(k: int) -> np.ndarray:
    i, j = np.meshgrid(np.arange(2 * k), np.arange(2 * k))
    return (i // k + j // k) % 2 == 0


def _invert(weave: Weave) -> Weave:
    return tuple(tuple(1 - x for x in row) for row in weave)


# --------------------------------------------------------------------------------------
# spec
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FabricSpec:
    """Everything needed to render one fabric, plus its labels (coarse, fine, tightness).

    Colour orders give, per thread of the repeat, an index into the colour tuple. Photos of
    one spec differ only by camera (crop, zoom, rotation, light, noise, blur); `seed` fixes
    the fabric's own irregularities (thread shades, fibre noise, motif jitter)."""

    coarse: str
    fine: str
    tightness: float  # cover factor, percent
    seed: int = 0
    period: float = 6.0  # thread spacing, reference px
    cover_ratio: float = 1.0  # warp cover / weft cover
    weave: Weave | None = None  # None: the standard weave of `fine`
    warp_colours: tuple[RGB, ...] = ((128, 128, 128),)
    warp_order: tuple[int, ...] = (0,)
    weft_colours: tuple[RGB, ...] | None = None  # None: as warp
    weft_order: tuple[int, ...] | None = None  # None: as warp
    gap_colour: RGB = (20, 18, 16)
    melange: float = 0.0  # share of `melange_colour` fibres in every yarn
    melange_colour: RGB = (235, 235, 235)
    figure: str = "none"  # none | stripe | dobby | jacquard: where `figure_weave` replaces `weave`
    figure_weave: Weave | None = None
    figure_warp_mask: tuple[int, ...] = ()  # stripe: 1 per warp thread of the order repeat
    figure_tile: tuple[tuple[int, ...], ...] = ()  # dobby: cell mask tiled over the cloth
    motif_shape: str = "floral"  # jacquard figure: floral | diamond | medallion
    print_kind: str = "none"  # none | dots | floral
    print_colours: tuple[RGB, ...] = ()  # floral: petals..., centre, leaf
    motif_spacing: float = 48.0  # reference px between motif centres
    motif_size: float = 0.25  # dot / flower radius as a fraction of the spacing
    motif_petals: int = 5
    motif_halfdrop: bool = True
    orientation: int = 0  # 0: warp vertical; 90: warp horizontal

    def __post_init__(self) -> None:
        if self.coarse not in SUPPORTED_COARSE:
            raise ValueError(f"unsupported coarse category {self.coarse!r}")
        if self.fine not in SUPPORTED_FINE:
            raise ValueError(f"unsupported fine texture {self.fine!r}")
        if not 0.0 < self.tightness < 100.0:
            raise ValueError(f"tightness must be in (0, 100), not {self.tightness}")
        if self.weave is None:
            object.__setattr__(self, "weave", weave_matrix(self.fine))
        if self.weft_colours is None:
            object.__setattr__(self, "weft_colours", self.warp_colours)
        if self.weft_order is None:
            object.__setattr__(self, "weft_order", self.warp_order)
        if self.figure != "none" and self.figure_weave is None:
            object.__setattr__(self, "figure_weave", _invert(self.weave))
        if self.figure == "stripe" and len(self.figure_warp_mask) != len(self.warp_order):
            raise ValueError("figure_warp_mask must have one entry per warp_order thread")

    def yarn_cover(self) -> tuple[float, float]:
        """Fractional covers (c_warp, c_weft) with c_warp/c_weft = cover_ratio and
        c_warp + c_weft - c_warp*c_weft = tightness/100."""
        k = self.tightness / 100.0
        r = self.cover_ratio
        # r c^2 - (1 + r) c + k = 0, smaller root (the one in [0, 1])
        c = ((1 + r) - math.sqrt((1 + r) ** 2 - 4 * r * k)) / (2 * r)
        return min(r * c, 1.0), c


def cover_factor(c_warp: float, c_weft: float) -> float:
    """Fabric cover factor in percent from the fractional warp and weft covers."""
    return 100.0 * (c_warp + c_weft - c_warp * c_weft)


# --------------------------------------------------------------------------------------
# colours
# --------------------------------------------------------------------------------------
_NAMED: tuple[RGB, ...] = (
    (22, 30, 58),  # navy
    (20, 20, 22),  # black
    (58, 60, 64),  # charcoal
    (128, 128, 126),  # mid grey
    (196, 196, 192),  # light grey
    (242, 240, 234),  # white
    (236, 228, 206),  # ivory / cream
    (206, 186, 150),  # beige
    (190, 146, 92),  # camel
    (160, 150, 108),  # khaki
    (92, 96, 52),  # olive
    (30, 70, 44),  # forest green
    (140, 160, 130),  # sage
    (110, 24, 38),  # burgundy
    (190, 28, 36),  # red
    (236, 120, 100),  # coral
    (232, 170, 180),  # pink
    (170, 70, 36),  # rust
    (226, 120, 30),  # orange
    (214, 170, 40),  # mustard
    (240, 214, 70),  # yellow
    (20, 110, 110),  # teal
    (130, 180, 220),  # sky blue
    (40, 70, 160),  # royal blue
    (70, 96, 130),  # denim
    (160, 140, 200),  # lavender
    (90, 40, 110),  # purple
    (90, 56, 36),  # brown
    (150, 134, 120),  # taupe
)


def _hsv_to_rgb(h: float, s: float, v: float) -> RGB:
    # float HSV in OpenCV: H in degrees, S and V in [0, 1]
    hsv = np.array([[[h * 360.0, s, v]]], dtype=np.float32)
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0] * 255.0
    return (int(round(r)), int(round(g)), int(round(b)))


def random_colour(rng: np.random.Generator, kind: str | None = None) -> RGB:
    """A realistic textile colour: named dye shades (jittered), darks, lights, greys,
    saturated and muted tones."""
    kinds = ("named", "dark", "light", "grey", "saturated", "muted")
    if kind is None:
        kind = str(rng.choice(kinds, p=[0.35, 0.15, 0.12, 0.12, 0.13, 0.13]))
    h = float(rng.uniform(0.0, 1.0))
    if kind == "named":
        base = np.array(_NAMED[int(rng.integers(len(_NAMED)))], dtype=np.float64)
        base = base * rng.uniform(0.9, 1.08) + rng.normal(0.0, 6.0, 3)
        r, g, b = np.clip(np.round(base), 0, 255).astype(int)
        return (int(r), int(g), int(b))
    if kind == "dark":
        s, v = rng.uniform(0.25, 0.9), rng.uniform(0.12, 0.35)
    elif kind == "light":
        s, v = rng.uniform(0.03, 0.25), rng.uniform(0.82, 0.97)
    elif kind == "grey":
        s, v = rng.uniform(0.0, 0.05), rng.uniform(0.15, 0.9)
    elif kind == "saturated":
        s, v = rng.uniform(0.7, 1.0), rng.uniform(0.55, 0.95)
    elif kind == "muted":
        s, v = rng.uniform(0.2, 0.5), rng.uniform(0.35, 0.7)
    else:
        raise ValueError(f"unknown colour kind {kind!r}")
    return _hsv_to_rgb(h, float(s), float(v))


def _distance(a: RGB, b: RGB) -> float:
    return float(np.linalg.norm(np.subtract(a, b, dtype=np.float64)))


def _contrasting(
    rng: np.random.Generator, others: list[RGB], min_dist: float = 90.0, kind: str | None = None
) -> RGB:
    best, best_d = random_colour(rng, kind), -1.0
    for _ in range(30):  # a few tries; keep the most distinct if none is far enough
        c = random_colour(rng, kind)
        d = min((_distance(c, o) for o in others), default=1e9)
        if d >= min_dist:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def _shade(c: RGB, factor: float) -> RGB:
    r, g, b = np.clip(np.round(np.array(c, dtype=np.float64) * factor), 0, 255).astype(int)
    return (int(r), int(g), int(b))


def _tint(c: RGB, amount: float) -> RGB:
    r, g, b = np.round(np.array(c, dtype=np.float64) * (1 - amount) + 255 * amount).astype(int)
    return (int(r), int(g), int(b))


def _shadow(colours: tuple[RGB, ...]) -> RGB:
    mean = np.mean(np.array(colours, dtype=np.float64), axis=0)
    r, g, b = np.round(mean * 0.22 + 6).astype(int)
    return (int(r), int(g), int(b))


# --------------------------------------------------------------------------------------
# random specs
# --------------------------------------------------------------------------------------
def random_spec(
    rng: np.random.Generator, coarse: str | None = None, fine: str | None = None
) -> FabricSpec:
    """A random fabric over the supported classes. `coarse` may be a full id, a major
    (``"plaid"``) or None; `fine` must be compatible with it (houndstooth is twill,
    jacquard/dobby figures are jacquard/dobby), else ValueError."""
    if fine is not None and fine not in SUPPORTED_FINE:
        raise ValueError(f"unsupported fine texture {fine!r}")
    candidates = [c for c in SUPPORTED_COARSE if _compatible(c, fine)]
    if coarse is not None:
        candidates = [c for c in candidates if c == coarse or c.split("/", 1)[0] == coarse]
        if not candidates:
            raise ValueError(f"no supported fabric for coarse={coarse!r}, fine={fine!r}")
    coarse = candidates[int(rng.integers(len(candidates)))]
    if fine is None:
        fine = (
            _FORCED_FINE.get(coarse) or GROUND_WEAVES[int(rng.choice(4, p=[0.4, 0.3, 0.15, 0.15]))]
        )
    params: dict = {
        "coarse": coarse,
        "fine": fine,
        "tightness": round(float(rng.uniform(40.0, 95.0)), 1),
        "seed": int(rng.integers(2**31 - 1)),
        "period": float(rng.uniform(3.5, 8.5)),
        "cover_ratio": float(rng.uniform(0.85, 1.15)),
        "weave": weave_matrix(fine, int(rng.integers(8))),
        "orientation": 90 if rng.random() < 0.25 else 0,
    }
    params.update(_BUILDERS[coarse.split("/", 1)[1]](rng, fine))
    colours = params["warp_colours"] + params.get("weft_colours", ())
    params.setdefault("gap_colour", _shadow(colours))
    return FabricSpec(**params)


def _compatible(coarse: str, fine: str | None) -> bool:
    if fine is None:
        return True
    forced = _FORCED_FINE.get(coarse)
    return fine == forced if forced else fine in GROUND_WEAVES


def _b_plain_dyed(rng: np.random.Generator, fine: str) -> dict:
    a = random_colour(rng)
    weft = _shade(a, rng.uniform(0.9, 1.1)) if rng.random() < 0.5 else a
    return {"warp_colours": (a,), "weft_colours": (weft,)}


def _b_melange(rng: np.random.Generator, fine: str) -> dict:
    if rng.random() < 0.5:  # grey heather
        a = random_colour(rng, "grey")
        b = _shade(a, 0.45) if sum(a) > 380 else _shade((230, 230, 228), rng.uniform(0.9, 1.05))
    else:
        a = random_colour(rng, str(rng.choice(["muted", "dark", "named"])))
        b = random_colour(rng, str(rng.choice(["light", "grey", "dark"])))
    return {"warp_colours": (a,), "melange": float(rng.uniform(0.25, 0.5)), "melange_colour": b}


def _b_two_tone(rng: np.random.Generator, fine: str) -> dict:
    a = random_colour(rng, str(rng.choice(["saturated", "named", "dark"])))
    b = _contrasting(rng, [a], 110.0, str(rng.choice(["saturated", "named", "muted"])))
    return {"warp_colours": (a,), "weft_colours": (b,), "period": float(rng.uniform(3.5, 6.0))}


def _b_pin_stripe(rng: np.random.Generator, fine: str) -> dict:
    g = random_colour(rng, str(rng.choice(["dark", "named", "grey", "light"])))
    p = _contrasting(rng, [g], 120.0)
    ground, pin = int(rng.integers(8, 25)), int(rng.integers(1, 3))
    return {
        "warp_colours": (g, p),
        "warp_order": (0,) * ground + (1,) * pin,
        "weft_colours": (g,),
        "weft_order": (0,),
    }


def _b_bold_stripe(rng: np.random.Generator, fine: str) -> dict:
    a = random_colour(rng)
    b = _contrasting(rng, [a], 110.0)
    wa, wb = int(rng.integers(6, 25)), int(rng.integers(6, 25))
    weft = a if rng.random() < 0.7 else b
    return {
        "warp_colours": (a, b),
        "warp_order": (0,) * wa + (1,) * wb,
        "weft_colours": (weft,),
        "weft_order": (0,),
    }


def _b_inlaid_stripe(rng: np.random.Generator, fine: str) -> dict:
    # A stripe made by a change of weave (warp-faced floats) in warp of the same or a
    # close colour, sometimes a lustrous contrast yarn: the figure is structural.
    g = random_colour(rng)
    s = _shade(g, rng.uniform(1.15, 1.4) if sum(g) < 450 else rng.uniform(0.7, 0.85))
    if rng.random() < 0.3:
        s = _contrasting(rng, [g], 80.0, "light")
    ground, stripe = int(rng.integers(8, 21)), int(rng.integers(3, 9))
    ground_weave = weave_matrix(fine, int(rng.integers(8)))
    if fine == "satin":  # weft-faced ground so that the warp-faced stripe shows
        ground_weave = weave_matrix("satin", 4 + int(rng.integers(4)))
    return {
        "warp_colours": (g, s),
        "warp_order": (0,) * ground + (1,) * stripe,
        "weft_colours": (g,),
        "weft_order": (0,),
        "weave": ground_weave,
        "figure": "stripe",
        "figure_weave": weave_matrix("satin", int(rng.integers(4))),  # warp-faced
        "figure_warp_mask": (0,) * ground + (1,) * stripe,
    }


def _b_multi_stripe(rng: np.random.Generator, fine: str) -> dict:
    n = int(rng.integers(3, 6))
    colours: list[RGB] = [random_colour(rng)]
    for _ in range(n - 1):
        colours.append(_contrasting(rng, colours, 60.0))
    order: list[int] = []
    last = -1
    for _ in range(int(rng.integers(4, 9))):
        c = int(rng.integers(n))
        if c == last:
            c = (c + 1) % n
        order += [c] * int(rng.integers(2, 15))
        last = c
    if order[0] == order[-1]:
        order.append((order[0] + 1) % n)
    return {
        "warp_colours": tuple(colours),
        "warp_order": tuple(order),
        "weft_colours": (colours[0],),
        "weft_order": (0,),
    }


def _b_gingham(rng: np.random.Generator, fine: str) -> dict:
    light = random_colour(rng, "light") if rng.random() < 0.7 else (240, 240, 236)
    dark = _contrasting(rng, [light], 120.0, str(rng.choice(["saturated", "named", "dark"])))
    n = int(rng.integers(3, 11))
    order = (0,) * n + (1,) * n
    return {"warp_colours": (light, dark), "warp_order": order}


def _b_window_pane(rng: np.random.Generator, fine: str) -> dict:
    g = random_colour(rng)
    line = _contrasting(rng, [g], 110.0)
    gw, lw = int(rng.integers(16, 41)), int(rng.integers(1, 4))
    gf = max(12, gw + int(rng.integers(-4, 5)))
    return {
        "warp_colours": (g, line),
        "warp_order": (0,) * gw + (1,) * lw,
        "weft_order": (0,) * gf + (1,) * lw,
    }


def _b_tartan(rng: np.random.Generator, fine: str) -> dict:
    n = int(rng.integers(3, 7))
    colours: list[RGB] = [random_colour(rng, str(rng.choice(["dark", "named"])))]
    for _ in range(n - 1):
        colours.append(_contrasting(rng, colours, 70.0))
    counts = [2, 2, 4, 4, 6, 8, 10, 12, 16, 20, 24, 32]
    half: list[tuple[int, int]] = []
    last = -1
    for _ in range(int(rng.integers(n, n + 3))):
        c = int(rng.integers(n))
        if c == last:
            c = (c + 1) % n
        half.append((c, counts[int(rng.integers(len(counts)))]))
        last = c
    # symmetric sett: pivots at the first and the last stripe
    sett = half + half[-2:0:-1]
    order = tuple(c for c, k in sett for _ in range(k))
    return {
        "warp_colours": tuple(colours),
        "warp_order": order,
        "period": float(rng.uniform(3.5, 6.5)),
    }


def _b_houndstooth(rng: np.random.Generator, fine: str) -> dict:
    dark = random_colour(rng, str(rng.choice(["dark", "named"])))
    light = _contrasting(rng, [dark], 140.0, str(rng.choice(["light", "light", "saturated"])))
    order = (0, 0, 0, 0, 1, 1, 1, 1)
    return {
        "warp_colours": (dark, light),
        "warp_order": order,
        "weave": weave_matrix("twill", 0 if rng.random() < 0.5 else 4),  # 2/2, Z or S
        "period": float(rng.uniform(3.5, 6.0)),
        # an open houndstooth reads as a check: the cloth is a dense wool twill
        "tightness": round(float(rng.uniform(60.0, 95.0)), 1),
    }


def _b_printed_dots(rng: np.random.Generator, fine: str) -> dict:
    g = random_colour(rng)
    dots = [_contrasting(rng, [g], 120.0)]
    if rng.random() < 0.3:
        dots.append(_contrasting(rng, [g, dots[0]], 90.0))
    period, spacing = float(rng.uniform(3.0, 6.0)), float(rng.uniform(16.0, 56.0))
    # a dot narrower than ~1.5 threads is lost in the weave
    size = min(max(float(rng.uniform(0.1, 0.3)), 1.6 * period / spacing), 0.35)
    return {
        "warp_colours": (g,),
        "print_kind": "dots",
        "print_colours": tuple(dots),
        "motif_spacing": spacing,
        "motif_size": size,
        "motif_halfdrop": bool(rng.random() < 0.6),
        "period": period,
    }


def _b_printed_floral(rng: np.random.Generator, fine: str) -> dict:
    g = random_colour(rng)
    petals = [_contrasting(rng, [g], 110.0, str(rng.choice(["saturated", "named", "light"])))]
    if rng.random() < 0.6:
        petals.append(_contrasting(rng, [g, petals[0]], 80.0))
    centre = _contrasting(rng, [petals[0]], 90.0, str(rng.choice(["saturated", "dark", "light"])))
    leaf = _hsv_to_rgb(rng.uniform(0.22, 0.42), rng.uniform(0.35, 0.8), rng.uniform(0.3, 0.65))
    return {
        "warp_colours": (g,),
        "print_kind": "floral",
        "print_colours": (*petals, centre, leaf),
        "motif_spacing": float(rng.uniform(44.0, 110.0)),
        "motif_size": float(rng.uniform(0.18, 0.23)),
        "motif_petals": int(rng.integers(4, 9)),
        "period": float(rng.uniform(3.0, 5.5)),
    }


def _b_jacquard(rng: np.random.Generator, fine: str) -> dict:
    a = random_colour(rng)
    if rng.random() < 0.25:  # damask: tone on tone, the float direction does the rest
        # a dark cloth is lightened towards white: scaling would keep it dark
        light = sum(a) > 300
        b = _shade(a, rng.uniform(0.55, 0.7)) if light else _tint(a, rng.uniform(0.25, 0.4))
    else:
        b = _contrasting(rng, [a], 110.0)
    ground = weave_matrix("jacquard", int(rng.integers(2)))
    shape = str(rng.choice(["floral", "diamond", "medallion"]))
    return {
        "warp_colours": (a,),
        "weft_colours": (b,),
        "weave": ground,
        "figure": "jacquard",
        "figure_weave": _invert(ground),
        "motif_shape": shape,
        "motif_spacing": float(rng.uniform(64.0, 140.0)),
        "motif_size": float(
            rng.uniform(0.2, 0.23) if shape == "floral" else rng.uniform(0.3, 0.42)
        ),
        "motif_petals": int(rng.integers(4, 9)),
        "period": float(rng.uniform(2.6, 4.0)),
        "tightness": round(float(rng.uniform(65.0, 95.0)), 1),  # figured cloth is dense
    }


def _b_dobby(rng: np.random.Generator, fine: str) -> dict:
    a = random_colour(rng)
    b = _contrasting(rng, [a], 100.0)
    r = int(rng.choice([6, 8, 10, 12]))
    i, j = np.meshgrid(np.arange(r) - (r - 1) / 2, np.arange(r) - (r - 1) / 2)
    shape = int(rng.integers(3))
    if shape == 0:  # diamond
        tile = np.abs(i) + np.abs(j) <= r / 2 - 1
    elif shape == 1:  # small square / bird's eye
        tile = np.maximum(np.abs(i), np.abs(j)) <= r / 4
    else:  # cross
        tile = (np.minimum(np.abs(i), np.abs(j)) <= 0.5) & (
            np.maximum(np.abs(i), np.abs(j)) < r / 2 - 1
        )
    return {
        "warp_colours": (a,),
        "weft_colours": (b,),
        "weave": weave_matrix("plain"),
        "figure": "dobby",
        "figure_weave": weave_matrix("satin", int(rng.integers(4))),  # warp-faced floats
        "figure_tile": tuple(tuple(int(x) for x in row) for row in tile),
        "period": float(rng.uniform(3.5, 6.0)),
        "tightness": round(float(rng.uniform(65.0, 95.0)), 1),
    }


_BUILDERS = {
    "plain-dyed": _b_plain_dyed,
    "melange": _b_melange,
    "two-tone": _b_two_tone,
    "pin-stripe": _b_pin_stripe,
    "bold-stripe": _b_bold_stripe,
    "inlaid-stripe": _b_inlaid_stripe,
    "multi-stripe": _b_multi_stripe,
    "gingham": _b_gingham,
    "window-pane": _b_window_pane,
    "tartan": _b_tartan,
    "houndstooth": _b_houndstooth,
    "printed-dots": _b_printed_dots,
    "printed-floral": _b_printed_floral,
    "jacquard-figure": _b_jacquard,
    "dobby-figure": _b_dobby,
}


# --------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------
_PAD = 10  # cells around the visible area, so floats near the border have their true length
_TILE = 64  # fibre-noise tile size
_SUPERSAMPLE_BELOW = 1.8  # px per thread: finer weaves alias into moiré, render at 2x
_TABLE = 1024  # per-fabric tables of thread shades / motif jitter, indexed modulo this


@lru_cache(maxsize=256)
def _fabric_tables(seed: int) -> dict[str, np.ndarray]:
    """Per-fabric irregularities, fixed by the spec's seed (cached: thousands of photos)."""
    r = np.random.default_rng(seed)
    noise = r.standard_normal((_TILE, _TILE)).astype(np.float32)
    # periodic 3x3 smoothing keeps the tile seamless under BORDER_WRAP
    smooth = sum(np.roll(np.roll(noise, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    smooth = (smooth / smooth.std()).astype(np.float32)
    return {
        "fibre": smooth,
        "fine": (noise / noise.std()).astype(np.float32),
        "warp_jit": r.normal(0.0, 0.02, _TABLE).astype(np.float32),
        "weft_jit": r.normal(0.0, 0.02, _TABLE).astype(np.float32),
        "motif_xy": r.uniform(-1.0, 1.0, (_TABLE, 2)).astype(np.float32),
        "motif_angle": r.uniform(0.0, 2 * np.pi, _TABLE).astype(np.float32),
        "motif_pick": r.integers(0, 1 << 20, _TABLE),
    }


def _sample(tile: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # BORDER_WRAP tiles the noise. remap keeps coordinates as int16 fixed point: callers
    # stay under ~(2048 + 460) ref px / 2.6 px period * 9 ≈ 7100, ≈ 8700 with the view, inside ±32767
    return cv2.remap(
        tile,
        np.asarray(x, dtype=np.float32),
        np.asarray(y, dtype=np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_WRAP,
    )


def _ramp(inside: np.ndarray, width: float) -> np.ndarray:
    """Coverage of a pixel by a shape whose signed distance (positive inside) is `inside`."""
    return np.clip(inside / width + 0.5, 0.0, 1.0)


def _cell_hash(col: np.ndarray, row: np.ndarray) -> np.ndarray:
    return ((col * 73856093) ^ (row * 19349663)) % _TABLE


def _motif_local(
    spec: FabricSpec, u: np.ndarray, v: np.ndarray, jitter: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position relative to the nearest motif centre, in units of `motif_spacing`, and the
    motif cell's hash (for per-motif colour, jitter and rotation)."""
    s = spec.motif_spacing
    gy = v / s
    row = np.floor(gy)
    gx = u / s + (0.5 * np.mod(row, 2) if spec.motif_halfdrop else 0.0)
    col = np.floor(gx)
    h = _cell_hash(col.astype(np.int64), row.astype(np.int64))
    x = gx - col - 0.5
    y = gy - row - 0.5
    if jitter:
        xy = _fabric_tables(spec.seed)["motif_xy"][h]
        x = x - jitter * xy[..., 0]
        y = y - jitter * xy[..., 1]
    return x, y, h


def _floral_layers(
    spec: FabricSpec, u: np.ndarray, v: np.ndarray, edge: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(coverage, per-pixel colour index into print_colours) of leaves, petals, centre."""
    x, y, h = _motif_local(spec, u, v, jitter=0.08)
    tables = _fabric_tables(spec.seed)
    ang = tables["motif_angle"][h]
    c, s = np.cos(ang), np.sin(ang)
    xr, yr = c * x + s * y, -s * x + c * y
    r = np.hypot(xr, yr)
    phi = np.arctan2(yr, xr)
    rad = spec.motif_size
    k = spec.motif_petals
    n_petal = max(1, len(spec.print_colours) - 2)
    petal_edge = rad * (0.35 + 0.65 * np.abs(np.cos(0.5 * k * phi)) ** 0.5)
    petal = _ramp(petal_edge - r, edge)
    centre = _ramp(0.28 * rad - r, edge)
    # two pointed leaves (lens shapes) poking out between petals
    leaves = np.zeros_like(r)
    for a0 in (0.5 * np.pi / k, np.pi + 1.5 * np.pi / k):
        lx = np.cos(a0) * xr + np.sin(a0) * yr - 1.15 * rad
        ly = -np.sin(a0) * xr + np.cos(a0) * yr
        length, width = 0.55 * rad, 0.22 * rad
        inside = width * (1.0 - (lx / length) ** 2) - np.abs(ly)
        leaves = np.maximum(leaves, _ramp(inside, edge))
    pick = tables["motif_pick"][h]
    n = len(spec.print_colours)
    petal_idx = pick % n_petal
    return [
        (leaves, np.full(r.shape, n - 1)),
        (petal, petal_idx),
        (centre, np.full(r.shape, n - 2)),
    ]


def _figure_shape(spec: FabricSpec, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean jacquard figure at fabric positions (evaluated at crossing centres)."""
    if spec.motif_shape == "floral":
        layers = _floral_layers(spec, u, v, 1e-3)
        cover = np.maximum(np.maximum(layers[0][0], layers[1][0]), 0.0)
        return (cover > 0.5) & (layers[2][0] < 0.5)  # centre back in ground weave: an eye
    x, y, _ = _motif_local(spec, u, v, jitter=0.0)
    d = np.abs(x) + np.abs(y)
    rad = spec.motif_size
    if spec.motif_shape == "diamond":
        return d < rad
    if spec.motif_shape == "medallion":
        ring = (np.hypot(x, y) < rad) & (np.hypot(x, y) > 0.75 * rad)
        return ring | (d < 0.4 * rad)
    raise ValueError(f"unknown motif shape {spec.motif_shape!r}")


def _cell_grid(spec: FabricSpec, ci: np.ndarray, cj: np.ndarray) -> np.ndarray:
    """Warp-up booleans (len(cj), len(ci)) for warp ends `ci` and weft picks `cj`."""
    w = np.asarray(spec.weave, dtype=bool)
    up = w[np.ix_(cj % w.shape[0], ci % w.shape[1])]
    if spec.figure == "none":
        return up
    f = np.asarray(spec.figure_weave, dtype=bool)
    fup = f[np.ix_(cj % f.shape[0], ci % f.shape[1])]
    if spec.figure == "stripe":
        m = np.asarray(spec.figure_warp_mask, dtype=bool)
        mask = np.broadcast_to(m[ci % len(m)][None, :], up.shape)
    elif spec.figure == "dobby":
        t = np.asarray(spec.figure_tile, dtype=bool)
        mask = t[np.ix_(cj % t.shape[0], ci % t.shape[1])]
    elif spec.figure == "jacquard":
        x, y = np.meshgrid((ci + 0.5) * spec.period, (cj + 0.5) * spec.period)
        mask = _figure_shape(spec, x, y)
    else:
        raise ValueError(f"unknown figure {spec.figure!r}")
    return np.where(mask, fup, up)


def _runs(mask: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """For every True cell: its position within its run of Trues along `axis`, and the
    run's length (a float's position and length)."""
    m = np.moveaxis(mask, axis, 0)
    n = m.shape[0]
    idx = np.broadcast_to(np.arange(n)[:, None], m.shape)
    prev = np.zeros_like(m)
    prev[1:] = m[:-1]
    nxt = np.zeros_like(m)
    nxt[:-1] = m[1:]
    start = np.maximum.accumulate(np.where(m & ~prev, idx, 0), axis=0)
    end = np.minimum.accumulate(np.where(m & ~nxt, idx, n - 1)[::-1], axis=0)[::-1]
    pos = idx - start
    length = end - start + 1
    return np.moveaxis(pos, 0, axis), np.moveaxis(length, 0, axis)


def _thread_colours(
    colours: tuple[RGB, ...], order: tuple[int, ...], idx: np.ndarray, jit: np.ndarray
) -> np.ndarray:
    table = np.asarray(colours, dtype=np.float32)[np.asarray(order)] / 255.0
    shade = 1.0 + jit[idx % _TABLE]
    return table[idx % len(order)] * shade[:, None]


def _canvas(
    spec: FabricSpec, u: np.ndarray, v: np.ndarray, px: float, sheen: float = 0.12
) -> np.ndarray:
    """The fabric at fabric coordinates (u, v) (reference px); `px` is the footprint of
    one pixel there; `sheen` the extra brightness of warp floats (light direction).
    Returns float32 RGB in [0, ~1.3]."""
    tables = _fabric_tables(spec.seed)
    p = spec.period
    fu, fv = u / p, v / p
    fi, fj = np.floor(fu), np.floor(fv)
    du, dv = fu - fi - 0.5, fv - fj - 0.5  # position across the warp / weft, [-0.5, 0.5)
    i, j = fi.astype(np.int64), fj.astype(np.int64)
    i0, j0 = int(i.min()) - _PAD, int(j.min()) - _PAD
    ci = np.arange(i0, int(i.max()) + _PAD + 1)
    cj = np.arange(j0, int(j.max()) + _PAD + 1)
    up = _cell_grid(spec, ci, cj)
    pos_w, len_w = _runs(up, axis=0)  # warp floats run along picks
    pos_f, len_f = _runs(~up, axis=1)  # weft floats run along ends
    flat = (j - j0) * len(ci) + (i - i0)
    cell_up = up.ravel()[flat]
    t_w = (pos_w.ravel()[flat] + dv + 0.5) / len_w.ravel()[flat]
    t_f = (pos_f.ravel()[flat] + du + 0.5) / len_f.ravel()[flat]

    warp_rgb = _thread_colours(spec.warp_colours, spec.warp_order, ci, tables["warp_jit"])
    weft_rgb = _thread_colours(spec.weft_colours, spec.weft_order, cj, tables["weft_jit"])
    base_w = warp_rgb[i - i0]
    base_f = weft_rgb[j - j0]

    # fibres: noise stretched along each yarn, slanted a little for the twist
    fib_w = _sample(tables["fibre"], fu * 7.0, fv * 1.3 + fu * 2.0)
    fib_f = _sample(tables["fibre"], fu * 1.3 + fv * 2.0 + 17.0, fv * 7.0 + 29.0)
    if spec.melange > 0:
        # each pixel of yarn is a fibre of one of the two colours
        fine_w = _sample(tables["fine"], fu * 9.0 + 5.0, fv * 2.5)
        fine_f = _sample(tables["fine"], fu * 2.5 + 11.0, fv * 9.0)
        thr = float(-np.sqrt(2.0) * _erfinv(2.0 * spec.melange - 1.0))
        mc = np.asarray(spec.melange_colour, dtype=np.float32) / 255.0
        for base, noise in ((base_w, fib_w + fine_w), (base_f, fib_f + fine_f)):
            mix = _ramp(noise / np.sqrt(2.0) - thr, 0.6)[..., None]
            base *= 1.0 - mix
            base += mix * mc

    if spec.print_kind != "none":
        cover, colour = _print_layer(spec, u, v, px)
        for base in (base_w, base_f):
            base *= 1.0 - cover
            base += cover * colour

    c_warp, c_weft = spec.yarn_cover()
    edge = max(px / p, 1e-3)
    a_w = _ramp(c_warp / 2 - np.abs(du), edge)
    a_f = _ramp(c_weft / 2 - np.abs(dv), edge)
    prof_w = np.sqrt(np.clip(1.0 - (2.0 * du / c_warp) ** 2, 0.0, 1.0))
    prof_f = np.sqrt(np.clip(1.0 - (2.0 * dv / c_weft) ** 2, 0.0, 1.0))
    along_w = np.sqrt(np.clip(1.0 - (2.0 * t_w - 1.0) ** 2, 0.0, 1.0))
    along_f = np.sqrt(np.clip(1.0 - (2.0 * t_f - 1.0) ** 2, 0.0, 1.0))
    # a yarn is brightest on the crown of a float, darker where it bends under
    s_w = (0.62 + 0.38 * prof_w) * np.where(cell_up, 0.68 + 0.32 * along_w, 0.68)
    s_f = (0.62 + 0.38 * prof_f) * np.where(cell_up, 0.68, 0.68 + 0.32 * along_f)
    # lustre: long floats catch the light (what makes satin, damask and dobby figures show)
    lustre_w = np.minimum(len_w.ravel()[flat] - 1, 3) * np.float32(sheen / 3.0)
    lustre_f = np.minimum(len_f.ravel()[flat] - 1, 3) * np.float32(sheen / 3.0)
    s_w = s_w * (1.0 + 0.07 * fib_w + np.where(cell_up, lustre_w, 0.0)) * 1.2
    s_f = s_f * (1.0 + 0.07 * fib_f - np.where(cell_up, 0.0, lustre_f) * 0.5) * 1.2
    # Layers, top to bottom: the yarn on top at this crossing, the other yarn, the gap.
    # Gaps are shadow, partly filled by stray fibres of the neighbouring yarns.
    w_gap = (1.0 - a_w) * (1.0 - a_f)
    w_warp = np.where(cell_up, a_w, (1.0 - a_f) * a_w) * s_w + 0.075 * w_gap
    w_weft = np.where(cell_up, (1.0 - a_w) * a_f, a_f) * s_f + 0.075 * w_gap
    gap = np.asarray(spec.gap_colour, dtype=np.float32) * np.float32(0.7 / 255.0)
    out = base_w * w_warp[..., None]
    out += base_f * w_weft[..., None]
    out += w_gap[..., None] * gap
    return out


def _print_layer(
    spec: FabricSpec, u: np.ndarray, v: np.ndarray, px: float
) -> tuple[np.ndarray, np.ndarray]:
    """(coverage (H,W,1), colour (H,W,3)) of the print; ink edges a little soft."""
    palette = np.asarray(spec.print_colours, dtype=np.float32) / 255.0
    edge = 1.5 * px / spec.motif_spacing
    if spec.print_kind == "dots":
        x, y, h = _motif_local(spec, u, v, jitter=0.0)
        cover = _ramp(spec.motif_size - np.hypot(x, y), edge)
        colour = palette[h % len(palette)]
        return cover[..., None], colour
    if spec.print_kind == "floral":
        cover = np.zeros(u.shape, dtype=np.float32)
        colour = np.zeros((*u.shape, 3), dtype=np.float32)
        for a, idx in _floral_layers(spec, u, v, edge):
            a3 = a[..., None]
            colour = colour * (1.0 - a3) + palette[idx] * a3
            cover = cover * (1.0 - a) + a
        return cover[..., None], colour / np.maximum(cover[..., None], 1e-6)
    raise ValueError(f"unknown print {spec.print_kind!r}")


def _erfinv(y: float) -> float:
    # Winitzki's approximation (plenty for a fibre-share threshold)
    y = min(max(y, -0.999), 0.999)
    a = 0.147
    ln = math.log(1.0 - y * y)
    t = 2.0 / (math.pi * a) + ln / 2.0
    return math.copysign(math.sqrt(math.sqrt(t * t - ln / a) - t), y)


def _view(
    spec: FabricSpec, size: int, rng: np.random.Generator | None, supersample: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Fabric coordinates of every pixel; random crop/zoom/rotation when `rng` is given."""
    n = size * supersample
    scale = REFERENCE_SIZE / n
    c = (np.arange(n, dtype=np.float32) + 0.5) * np.float32(scale)
    if rng is None:
        u, v = np.meshgrid(c, c)
        px = scale
    else:
        zoom = rng.uniform(0.85, 1.15)
        theta = np.deg2rad(rng.uniform(-4.0, 4.0))
        ox, oy = rng.uniform(0.0, 2048.0, 2)  # anywhere on a large piece of cloth
        c = (c - np.float32(REFERENCE_SIZE / 2)) / np.float32(zoom)
        x, y = np.meshgrid(c, c)
        cs, sn = np.float32(np.cos(theta)), np.float32(np.sin(theta))
        u = cs * x - sn * y + np.float32(ox)
        v = sn * x + cs * y + np.float32(oy)
        px = scale / zoom
    if spec.orientation == 90:
        u, v = v, u
    return u, v, px


def render(
    spec: FabricSpec, rng: np.random.Generator, size: int = 256, photo: bool = True
) -> np.ndarray:
    """One (size, size, 3) uint8 RGB image of the fabric. `photo=True`: a random camera
    (crop, zoom ±15 %, rotation ±4°, light gradient, white balance, blur, noise) drawn from
    `rng`; `photo=False`: the canonical flat view (fabric origin at the top left)."""
    px_per_thread = spec.period * size / REFERENCE_SIZE
    ss = 2 if px_per_thread < _SUPERSAMPLE_BELOW else 1
    u, v, px = _view(spec, size, rng if photo else None, ss)
    sheen = 0.12 * rng.uniform(0.5, 1.5) if photo else 0.12
    img = _canvas(spec, u, v, px, sheen)
    if ss > 1:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    if photo:
        img = _camera(img, rng)
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


@lru_cache(maxsize=8)
def _unit_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    x, y = np.meshgrid(c, c)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def _camera(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = img.shape[0]
    sigma = rng.uniform(0.0, 0.9)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    x, y = _unit_grid(size)
    angle = rng.uniform(0.0, 2 * np.pi)
    grad = np.float32(rng.uniform(0.0, 0.25))
    vignette = np.float32(rng.uniform(0.0, 0.2))
    exposure = np.float32(rng.uniform(0.88, 1.1))
    light = exposure * (
        1.0
        + grad * (np.float32(np.cos(angle)) * x + np.float32(np.sin(angle)) * y)
        - vignette * 0.5 * (x * x + y * y)
    )
    balance = rng.normal(1.0, 0.03, 3).astype(np.float32)
    img = img * light[..., None] * balance
    noise_sigma = np.float32(rng.uniform(0.004, 0.02))
    img += noise_sigma * rng.standard_normal(img.shape, dtype=np.float32)
    return img


# --------------------------------------------------------------------------------------
# batches and datasets
# --------------------------------------------------------------------------------------
def generate_batch(
    rng: np.random.Generator, n_fabrics: int, photos_per_fabric: int, size: int
) -> tuple[np.ndarray, list[FabricSpec], np.ndarray]:
    """`n_fabrics` random fabrics, `photos_per_fabric` photos each, grouped by fabric:
    images uint8 (N, size, size, 3), one spec per image, fabric ids int64 (N,)."""
    n = n_fabrics * photos_per_fabric
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    specs: list[FabricSpec] = []
    for f in range(n_fabrics):
        spec = random_spec(rng)
        for k in range(photos_per_fabric):
            images[f * photos_per_fabric + k] = render(spec, rng, size, photo=True)
            specs.append(spec)
    ids = np.repeat(np.arange(n_fabrics, dtype=np.int64), photos_per_fabric)
    return images, specs, ids


def write_dataset(
    out_dir: str | Path,
    count: int,
    seed: int,
    size: int = 256,
    photos_per_fabric: int = 2,
    fmt: str = "jpg",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Write `count` photos (classes balanced by cycling the coarse categories) into
    ``out_dir/<major>/`` and ``out_dir/labels.csv`` (path,coarse,fine,tightness; paths
    relative, '/'-separated). Fabric ``f`` depends only on (seed, f), so a larger count
    extends a smaller one. Returns the CSV path."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in ("jpg", "jpeg", "png"):
        raise ValueError(f"unsupported image format {fmt!r} (jpg or png)")
    if count < 0 or photos_per_fabric < 1 or size < 8:
        raise ValueError("count >= 0, photos_per_fabric >= 1 and size >= 8 are required")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if fmt != "png" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    rows: list[tuple[str, str, str, str]] = []
    n_fabrics = -(-count // photos_per_fabric)
    report(progress, "synth", 0, count, "images")
    for f in range(n_fabrics):
        rng = np.random.default_rng([seed, f])
        spec = random_spec(rng, SUPPORTED_COARSE[f % len(SUPPORTED_COARSE)])
        major = spec.coarse.split("/", 1)[0]
        (out / major).mkdir(exist_ok=True)
        for k in range(min(photos_per_fabric, count - f * photos_per_fabric)):
            check(cancel)
            img = render(spec, rng, size, photo=True)
            rel = f"{major}/{major}-{f:05d}-{k}.{fmt}"
            if not cv2.imwrite(str(out / rel), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params):
                raise OSError(f"could not write {out / rel}")
            rows.append((rel, spec.coarse, spec.fine, f"{spec.tightness:.1f}"))
            report(progress, "synth", len(rows), count, "images")
    csv_path = out / "labels.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(("path", "coarse", "fine", "tightness"))
        writer.writerows(rows)
    return csv_path
