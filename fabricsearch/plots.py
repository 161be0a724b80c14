"""Small PNG line plots drawn with Pillow (no matplotlib dependency)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

_COLOURS = [
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
]


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    out, v = [], first
    while v <= hi + 1e-9 * step:
        out.append(round(v, 10))
        v += step
    return out


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


def line_plot(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    size: tuple[int, int] = (640, 440),
) -> Path:
    """Draw each (xs, ys) series as a line with markers and a legend; write PNG to `path`."""
    w, h = size
    left, right, top, bottom = 64, 16, 36, 52
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    pts = [
        (float(x), float(y))
        for xs, ys in series.values()
        for x, y in zip(xs, ys, strict=True)
        if math.isfinite(float(x)) and math.isfinite(float(y))
    ]
    x0, x1 = xlim or ((min(p[0] for p in pts), max(p[0] for p in pts)) if pts else (0.0, 1.0))
    y0, y1 = ylim or ((min(p[1] for p in pts), max(p[1] for p in pts)) if pts else (0.0, 1.0))
    if x1 <= x0:
        x1 = x0 + 1.0
    if y1 <= y0:
        y1 = y0 + 1.0
    pw, ph = w - left - right, h - top - bottom

    def to_px(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * pw, top + (1 - (y - y0) / (y1 - y0)) * ph

    draw.rectangle([left, top, left + pw, top + ph], outline=(0, 0, 0))
    for tx in _ticks(x0, x1):
        px, _ = to_px(tx, y0)
        draw.line([px, top + ph, px, top + ph + 4], fill=(0, 0, 0))
        draw.line([px, top, px, top + ph], fill=(230, 230, 230))
        draw.text((px, top + ph + 6), _fmt(tx), fill=(0, 0, 0), font=font, anchor="ma")
    for ty in _ticks(y0, y1):
        _, py = to_px(x0, ty)
        draw.line([left - 4, py, left, py], fill=(0, 0, 0))
        draw.line([left, py, left + pw, py], fill=(230, 230, 230))
        draw.text((left - 6, py), _fmt(ty), fill=(0, 0, 0), font=font, anchor="rm")
    draw.rectangle([left, top, left + pw, top + ph], outline=(0, 0, 0))
    for i, (name, (xs, ys)) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        line = [
            to_px(float(x), float(y))
            for x, y in zip(xs, ys, strict=True)
            if math.isfinite(float(x)) and math.isfinite(float(y))
        ]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        for px, py in line:
            draw.ellipse([px - 2.5, py - 2.5, px + 2.5, py + 2.5], fill=colour)
        ly = top + 8 + 14 * i
        draw.line([left + pw - 120, ly, left + pw - 100, ly], fill=colour, width=2)
        draw.text((left + pw - 96, ly), name, fill=(0, 0, 0), font=font, anchor="lm")
    draw.text((w / 2, 10), title, fill=(0, 0, 0), font=font, anchor="ma")
    draw.text((left + pw / 2, h - 16), xlabel, fill=(0, 0, 0), font=font, anchor="ma")
    draw.text((10, top + ph / 2), ylabel, fill=(0, 0, 0), font=font, anchor="lm")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path
