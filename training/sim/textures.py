"""Seeded procedural textures (uint8 RGB, shape (S, S, 3)) for objects, table and floor.

Every function draws only from the ``numpy.random.Generator`` it is given, so a seed fixes the
pixels. Texture is what gives stereo matching and photometric losses something to lock on to, so
every pattern has structure at several scales.
"""
from __future__ import annotations

import numpy as np

PATTERNS = ("checker", "stripes", "noise", "dots", "grid")


def random_colour(rng: np.random.Generator, saturation=(0.4, 1.0), value=(0.35, 1.0)) -> np.ndarray:
    """A random RGB colour in [0, 1] (3,) from HSV with hue ~ U(0, 1) and the given S, V ranges."""
    h = rng.uniform(0.0, 1.0)
    s = rng.uniform(*saturation)
    v = rng.uniform(*value)
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1): ``u = (j + 0.5)/S``, ``v = (i + 0.5)/S`` (S,S) each."""
    c = (np.arange(size) + 0.5) / size
    return np.meshgrid(c, c, indexing="xy")


def _mix(c1: np.ndarray, c2: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``(1 - t) c1 + t c2`` per pixel: t (S,S) in [0,1], colours (3,) -> uint8 (S,S,3)."""
    img = (1.0 - t[..., None]) * c1 + t[..., None] * c2
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth, tileable noise in [0, 1] (S,S): a periodic (cells+1)^2 lattice of U(0,1) values
    (last row/column = first), blended with the smoothstep ``s = 3f^2 - 2f^3``."""
    lattice = rng.uniform(0.0, 1.0, size=(cells + 1, cells + 1))
    lattice[-1, :] = lattice[0, :]
    lattice[:, -1] = lattice[:, 0]
    u, v = _grid(size)
    x, y = u * cells, v * cells
    i, j = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = y - i, x - j
    sy, sx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    top = lattice[i, j] * (1 - sx) + lattice[i, j + 1] * sx
    bottom = lattice[i + 1, j] * (1 - sx) + lattice[i + 1, j + 1] * sx
    return top * (1 - sy) + bottom * sy


def fractal_noise(rng: np.random.Generator, size: int, base_cells: int = 4, octaves: int = 4) -> np.ndarray:
    """Sum of :func:`value_noise` octaves, cells doubling and amplitude halving, rescaled to [0, 1] (S,S)."""
    total = np.zeros((size, size))
    amp = 1.0
    for k in range(octaves):
        total += amp * value_noise(rng, size, base_cells * 2**k)
        amp *= 0.5
    lo, hi = total.min(), total.max()
    return (total - lo) / max(hi - lo, 1e-12)


def pattern_texture(rng: np.random.Generator, pattern: str, size: int, c1, c2) -> np.ndarray:
    """One of :data:`PATTERNS` in colours ``c1``/``c2`` with a seeded scale/orientation, uint8 (S,S,3).

    A little fractal noise is mixed into every pattern so that no two patches look the same.
    """
    u, v = _grid(size)
    if pattern == "checker":
        n = rng.integers(3, 9)
        t = ((np.floor(u * n) + np.floor(v * n)) % 2).astype(np.float64)
    elif pattern == "stripes":
        ang = rng.uniform(0.0, np.pi)
        freq = rng.uniform(3.0, 10.0)
        t = (np.sin(2 * np.pi * freq * (u * np.cos(ang) + v * np.sin(ang))) > 0).astype(np.float64)
    elif pattern == "noise":
        t = fractal_noise(rng, size, base_cells=int(rng.integers(2, 6)))
    elif pattern == "dots":
        n = rng.integers(3, 8)
        r = rng.uniform(0.2, 0.4)
        du, dv = (u * n) % 1.0 - 0.5, (v * n) % 1.0 - 0.5
        t = (np.hypot(du, dv) < r).astype(np.float64)
    elif pattern == "grid":
        n = rng.integers(3, 9)
        w = rng.uniform(0.08, 0.2)
        t = (((u * n) % 1.0 < w) | ((v * n) % 1.0 < w)).astype(np.float64)
    else:
        raise ValueError(f"pattern_texture: unknown pattern {pattern!r}; expected one of {PATTERNS}")
    grain = fractal_noise(rng, size, base_cells=8, octaves=3)
    return _mix(np.asarray(c1), np.asarray(c2), np.clip(0.8 * t + 0.2 * grain, 0.0, 1.0))


def random_object_texture(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, str]:
    """A random pattern in two random, contrasting colours; returns (uint8 (S,S,3), pattern name)."""
    pattern = PATTERNS[int(rng.integers(len(PATTERNS)))]
    c1 = random_colour(rng)
    c2 = random_colour(rng, value=(0.1, 0.6)) if rng.uniform() < 0.5 else 1.0 - c1 * rng.uniform(0.3, 0.9)
    return pattern_texture(rng, pattern, size, c1, c2), pattern


def wood_texture(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """Table top: smooth warped rings ``0.5 + 0.5 sin(2 pi k (x + 0.15 noise))`` plus fine grain, in
    two browns, uint8 (S,S,3). Meant to tile a few times per metre (``texuniform``)."""
    u, v = _grid(size)
    warp = fractal_noise(rng, size, base_cells=3, octaves=3)
    k = float(rng.integers(3, 7))  # integer ring count keeps the tile seamless along x
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * k * (u + 0.15 * warp))
    grain = fractal_noise(rng, size, base_cells=32, octaves=3)
    light = np.array([0.72, 0.55, 0.36]) * rng.uniform(0.85, 1.1)
    dark = np.array([0.45, 0.30, 0.17]) * rng.uniform(0.85, 1.1)
    return _mix(light, dark, np.clip(0.6 * rings + 0.4 * grain, 0.0, 1.0))


def wall_texture(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """Walls: mottled plaster in two random pale colours, uint8 (S,S,3)."""
    c1 = random_colour(rng, saturation=(0.05, 0.3), value=(0.7, 0.95))
    c2 = c1 * rng.uniform(0.5, 0.8)
    return _mix(c1, c2, fractal_noise(rng, size, base_cells=4, octaves=5))


def floor_texture(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """Floor: grey tiles with noisy grout and speckle, uint8 (S,S,3)."""
    u, v = _grid(size)
    n = 4
    grout = ((u * n) % 1.0 < 0.04) | ((v * n) % 1.0 < 0.04)
    speckle = fractal_noise(rng, size, base_cells=16, octaves=3)
    base = rng.uniform(0.45, 0.7)
    t = np.where(grout, 1.0, 0.6 * speckle)
    return _mix(np.full(3, base), np.full(3, base * 0.35), t)
