"""Texture families for varied scenes (``depth-train sim --variety``): seeded, procedural, uint8 RGB (S, S, 3).

Every family draws only from the ``numpy.random.Generator`` it is given (and cv2's deterministic
line and glyph drawing), so a seed fixes the pixels. None of them reads an image file: the
evaluation photographs can never leak into training through a texture.

Families (:data:`FAMILIES`):

* ``noise``   fractal value noise between two colours, random base frequency;
* ``stripes`` parallel bands of 2-4 colours, random angle, period and duty, soft or hard edges;
* ``wood``    warped growth rings ``sin(2 pi k (x + a n(x, y)))`` plus fine grain, in natural or painted tints;
* ``tiles``   square tiles or offset bricks with grout lines and per-tile colour variation;
* ``marble``  veins ``|sin(2 pi f (x cos t + y sin t) + a turbulence)|^p`` on a pale or dark ground;
* ``text``    lines of random glyphs (cv2 Hershey fonts) on paper, as on books, posters and labels;
* ``checker``, ``dots``, ``grid``  the pattern set of the classic scene (:func:`.textures.pattern_texture`);
* ``flat``    one colour with a faint grain: a textureless surface.
"""
from __future__ import annotations

import cv2
import numpy as np

from .textures import _grid, _mix, fractal_noise, pattern_texture, random_colour

FAMILIES = ("noise", "stripes", "wood", "tiles", "marble", "text", "checker", "dots", "grid", "flat")
_GLYPHS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789      .,-"
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
          cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_PLAIN)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def _palette(rng: np.random.Generator, dark: bool) -> tuple[np.ndarray, np.ndarray]:
    """Two contrasting colours in [0, 1] (3,); ``dark`` keeps both below value 0.3."""
    if dark:
        c1 = random_colour(rng, saturation=(0.0, 0.7), value=(0.04, 0.3))
        return c1, c1 * rng.uniform(0.3, 0.8) + rng.uniform(0.0, 0.05)
    c1 = random_colour(rng, saturation=(0.0, 0.9), value=(0.3, 1.0))
    c2 = random_colour(rng, value=(0.1, 0.7)) if rng.uniform() < 0.5 else c1 * rng.uniform(0.35, 0.8)
    return c1, c2


def stripes(rng: np.random.Generator, size: int, dark: bool) -> np.ndarray:
    """Bands along ``s = x cos t + y sin t`` with period ``1/f`` (f integer-ish so most tiles repeat),
    colour index ``floor(f s) mod n`` of ``n`` in 2..4 colours; a soft variant blends neighbours."""
    u, v = _grid(size)
    ang = rng.choice([0.0, np.pi / 2, rng.uniform(0.0, np.pi)])
    f = float(rng.integers(2, 16))
    s = f * (u * np.cos(ang) + v * np.sin(ang))
    n = int(rng.integers(2, 5))
    cols = np.stack([_palette(rng, dark)[k % 2] * rng.uniform(0.7, 1.0) for k in range(n)])
    idx = np.floor(s).astype(int) % n
    img = cols[idx]
    if rng.uniform() < 0.4:  # soft edges
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=size / f * 0.08)
    grain = fractal_noise(rng, size, base_cells=16, octaves=2)[..., None]
    return _to_uint8(img * (0.9 + 0.2 * grain))


def wood(rng: np.random.Generator, size: int, dark: bool) -> np.ndarray:
    """Rings ``r = 0.5 + 0.5 sin(2 pi k (x + a warp))`` and grain mixed ``0.6 r + 0.4 grain`` between a light
    and a dark tint (natural browns, or a painted/stained colour)."""
    u, v = _grid(size)
    if rng.uniform() < 0.5:
        u, v = v, u  # rings along either axis
    warp = fractal_noise(rng, size, base_cells=int(rng.integers(2, 5)), octaves=3)
    k = float(rng.integers(3, 12))
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * k * (u + rng.uniform(0.08, 0.25) * warp))
    grain = fractal_noise(rng, size, base_cells=32, octaves=3)
    if rng.uniform() < 0.7:
        light = np.array([0.72, 0.55, 0.36]) * rng.uniform(0.6, 1.25)
        dark_c = np.array([0.45, 0.30, 0.17]) * rng.uniform(0.5, 1.1)
    else:
        light, dark_c = _palette(rng, False)
    if dark:
        light, dark_c = light * 0.3, dark_c * 0.3
    return _mix(np.clip(light, 0, 1), np.clip(dark_c, 0, 1), np.clip(0.6 * rings + 0.4 * grain, 0.0, 1.0))


def tiles(rng: np.random.Generator, size: int, dark: bool) -> np.ndarray:
    """``n x m`` tiles (bricks: every other row offset by half a tile) with grout of width ``g``; each tile
    gets its own brightness ``U(0.8, 1.2)`` times the base colour and a speckle."""
    u, v = _grid(size)
    n = int(rng.integers(2, 9))
    m = n if rng.uniform() < 0.6 else int(rng.integers(n, 2 * n + 1))  # rectangular tiles or bricks
    rows = np.floor(v * m)
    offset = 0.5 * (rows % 2) if m != n else 0.0
    cols_ = np.floor(u * n + offset) % n
    g = rng.uniform(0.02, 0.08)
    grout = ((u * n + offset) % 1.0 < g) | ((v * m) % 1.0 < g * n / m)
    base, grout_c = _palette(rng, dark)
    shade = rng.uniform(0.8, 1.2, size=(m, n))[rows.astype(int) % m, cols_.astype(int)]
    speckle = fractal_noise(rng, size, base_cells=16, octaves=3)
    img = base * (shade * (0.85 + 0.3 * speckle))[..., None]
    img[grout] = grout_c
    return _to_uint8(img)


def marble(rng: np.random.Generator, size: int, dark: bool) -> np.ndarray:
    """Veins ``t = |sin(2 pi f (x cos a + y sin a) + b T)|^p`` with turbulence ``T`` (fractal noise): the ground
    colour where ``t`` is high, the vein colour in the narrow troughs (``p`` in 0.2..0.5)."""
    u, v = _grid(size)
    a = rng.uniform(0.0, np.pi)
    f = float(rng.integers(1, 4))
    turb = fractal_noise(rng, size, base_cells=int(rng.integers(2, 5)), octaves=5)
    t = np.abs(np.sin(2 * np.pi * f * (u * np.cos(a) + v * np.sin(a)) + rng.uniform(3.0, 8.0) * turb))
    t = t ** rng.uniform(0.2, 0.5)
    if dark:
        ground = random_colour(rng, saturation=(0.0, 0.4), value=(0.05, 0.25))
        vein = np.clip(ground + rng.uniform(0.3, 0.6), 0, 1)
    else:
        ground = random_colour(rng, saturation=(0.0, 0.25), value=(0.75, 0.97))
        vein = ground * rng.uniform(0.25, 0.6)
    return _mix(vein, ground, t)


def text(rng: np.random.Generator, size: int, dark: bool) -> np.ndarray:
    """Lines of random glyphs drawn with a random Hershey font, scale and colour on a paper ground,
    sometimes in columns and with a heading: the look of printed pages, labels and posters."""
    paper = random_colour(rng, saturation=(0.0, 0.15), value=(0.8, 1.0))
    ink = random_colour(rng, saturation=(0.0, 0.8), value=(0.0, 0.35))
    if dark:
        paper, ink = ink * 0.5, paper * 0.8
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = _to_uint8(paper)
    ink_c = tuple(int(c) for c in _to_uint8(ink))
    font = _FONTS[int(rng.integers(len(_FONTS)))]
    scale = size / 256 * rng.uniform(0.3, 0.9)
    (_, th), _ = cv2.getTextSize("Hg", font, scale, 1)
    line_h = max(4, int(th * rng.uniform(1.5, 2.2)))
    ncols = int(rng.integers(1, 3))
    colw = size // ncols
    thick = 1 if scale < 0.8 else int(rng.integers(1, 3))
    y = int(rng.integers(line_h, 2 * line_h))
    if rng.uniform() < 0.5:  # heading
        cv2.putText(img, "".join(rng.choice(list(_GLYPHS[:26]), size=int(rng.integers(3, 9)))), (4, y), font,
                    scale * 2, ink_c, thick + 1, cv2.LINE_AA)
        y += 2 * line_h
    while y < size - 2:
        for c in range(ncols):
            line = "".join(rng.choice(list(_GLYPHS), size=int(rng.integers(4, 40))))
            cv2.putText(img, line, (c * colw + 3, y), font, scale, ink_c, thick, cv2.LINE_AA)
        y += line_h
    grain = fractal_noise(rng, size, base_cells=8, octaves=2)[..., None]
    return _to_uint8(img / 255.0 * (0.93 + 0.1 * grain))


def flat(rng: np.random.Generator, size: int, dark: bool) -> np.ndarray:
    """One colour ``c`` times ``1 + 0.03 (n - 0.5)`` of a low-frequency noise ``n``: textureless to a matcher."""
    c = _palette(rng, dark)[0]
    n = fractal_noise(rng, size, base_cells=2, octaves=2)
    return _to_uint8(c * (1.0 + 0.03 * (n - 0.5))[..., None])


def noise(rng: np.random.Generator, size: int, dark: bool) -> np.ndarray:
    """Fractal noise between two colours, base frequency 2..12 cells per tile."""
    c1, c2 = _palette(rng, dark)
    return _mix(c1, c2, fractal_noise(rng, size, base_cells=int(rng.integers(2, 13)), octaves=int(rng.integers(3, 6))))


def family_texture(rng: np.random.Generator, family: str, size: int = 128, dark: bool = False) -> np.ndarray:
    """A texture of ``family`` (one of :data:`FAMILIES`), uint8 (size, size, 3); ``dark`` draws dark colours."""
    if family in ("checker", "dots", "grid"):
        c1, c2 = _palette(rng, dark)
        return pattern_texture(rng, family, size, c1, c2)
    makers = {"noise": noise, "stripes": stripes, "wood": wood, "tiles": tiles, "marble": marble, "text": text,
              "flat": flat}
    if family not in makers:
        raise ValueError(f"family_texture: unknown family {family!r}; expected one of {FAMILIES}")
    return makers[family](rng, size, dark)
