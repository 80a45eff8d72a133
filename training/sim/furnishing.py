"""What fills a varied room (:mod:`.variety`): surfaces, furniture, wall items, rugs, desk items, clutter.

Everything is drawn from the generator it is given, in the planning world (table top ``z = 0``,
floor ``z = floor_z``, walls at ``|x| = hx``, ``|y| = hy``; metres before the episode's scale).
Furniture is made of boxes (:class:`Box`) in the furniture's frame (x along its width, y its depth,
z up, origin on the floor under its centre, facing -y).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scene import ObjectSpec, random_object
from .texture_families import family_texture
from .transforms import make_transform, rot_z

FURNITURE = ("cabinet", "table", "shelf", "chair", "sofa")


@dataclass(eq=False)
class Surface:
    """How a surface looks: texture (S,S,3) uint8 of ``family``, repeats per planning-world metre
    (``texrepeat``, 0 = once per face), MuJoCo material ``specular``, ``shininess``, ``reflectance``
    and ``emission`` (a window's glow)."""

    texture: np.ndarray
    family: str
    texrepeat: float
    specular: float
    shininess: float
    reflectance: float = 0.0
    emission: float = 0.0


@dataclass(eq=False)
class Box:
    """A box part: half extents ``size`` (3,), ``pose`` ``T_world_box`` (4,4), its surface; ``group`` names the
    piece it belongs to (its parts share one material)."""

    name: str
    group: str
    size: tuple[float, float, float]
    pose: np.ndarray
    surface: Surface


def random_surface(rng: np.random.Generator, families, size: int, texrepeat: float, plane: bool = False,
                   prefer: tuple[str, ...] = ()) -> Surface:
    """A surface of a family from ``families`` (``prefer`` ones twice as likely), dark in 15 %, specular in
    25 %, and (``plane``) mirror-like reflectance in 15 % of draws."""
    fams = list(families) + [f for f in prefer if f in families]
    family = fams[int(rng.integers(len(fams)))]
    texture = family_texture(rng, family, size, dark=bool(rng.uniform() < 0.15))
    shiny = rng.uniform() < 0.25
    specular = rng.uniform(0.5, 1.0) if shiny else rng.uniform(0.0, 0.2)
    shininess = rng.uniform(0.5, 1.0) if shiny else rng.uniform(0.0, 0.3)
    reflectance = rng.uniform(0.1, 0.35) if plane and rng.uniform() < 0.15 else 0.0
    return Surface(texture, family, texrepeat, float(specular), float(shininess), float(reflectance))


def _parts(name: str, T: np.ndarray, parts, surface: Surface) -> list[Box]:
    """Boxes from ``[(centre (3,), half size (3,))]`` in the frame ``T`` (4,4)."""
    return [Box(f"{name}_part{k}", name, tuple(float(s) for s in half), T @ make_transform(None, c), surface)
            for k, (c, half) in enumerate(parts)]


def _legs(w: float, d: float, h: float, r: float = 0.02) -> list:
    return [((sx * (w - r), sy * (d - r), h / 2), (r, r, h / 2)) for sx in (-1, 1) for sy in (-1, 1)]


def furniture_piece(rng: np.random.Generator, families, name: str, x: float, y: float, yaw: float,
                    floor_z: float) -> list[Box]:
    """One piece of :data:`FURNITURE` standing on the floor at ``(x, y)``, turned by ``yaw`` about z:
    cabinet (one box), table (top + legs), shelf (sides + boards), chair (seat, back, legs) or sofa
    (base, back, arms); 0.3-1.6 m tall."""
    kind = FURNITURE[int(rng.integers(len(FURNITURE)))]
    surface = random_surface(rng, families, 128, texrepeat=2.0, prefer=("wood", "flat", "marble", "noise"))
    T = make_transform(rot_z(yaw), (x, y, floor_z))
    w, d = rng.uniform(0.2, 0.6), rng.uniform(0.15, 0.35)
    if kind == "cabinet":
        h = rng.uniform(0.3, 1.6)
        parts = [((0, 0, h / 2), (w, d, h / 2))]
    elif kind == "table":
        h, t = rng.uniform(0.4, 0.8), 0.02
        parts = [((0, 0, h - t), (w, d, t))] + _legs(w - 0.01, d - 0.01, h - 2 * t)
    elif kind == "shelf":
        h, t = rng.uniform(0.5, 1.6), 0.015
        parts = [((sx * (w - t), 0, h / 2), (t, d, h / 2)) for sx in (-1, 1)]
        parts += [((0, 0, z), (w - 2 * t, d, t)) for z in np.linspace(t, h - t, int(rng.integers(3, 6)))]
    elif kind == "chair":
        w = d = rng.uniform(0.18, 0.25)
        seat, t = rng.uniform(0.4, 0.5), 0.02
        parts = [((0, 0, seat), (w, d, t)), ((0, d - t, seat + 0.25), (w, t, 0.25))] + _legs(w, d, seat - t, 0.015)
    else:  # sofa
        w, d, seat = rng.uniform(0.6, 1.0), rng.uniform(0.35, 0.45), rng.uniform(0.35, 0.45)
        parts = [((0, 0, seat / 2), (w, d, seat / 2)), ((0, d - 0.08, seat + 0.2), (w, 0.08, 0.2))]
        parts += [((sx * (w - 0.08), 0, seat + 0.1), (0.08, d, 0.1)) for sx in (-1, 1)]
    return _parts(name, T, parts, surface)


def wall_items(rng: np.random.Generator, families, room_half, floor_z: float, wall_top: float,
               count: int) -> list[Box]:
    """``count`` flat items on the walls: posters and pictures (any family), doors (from the floor) and
    windows (bright, glowing): texture edges without depth edges, 1 cm proud of the wall."""
    hx, hy = room_half
    items: list[Box] = []
    for k in range(count):
        side = int(rng.integers(4))
        along = rng.uniform(-0.75, 0.75)
        what = ("poster", "poster", "door", "window")[int(rng.integers(4))]
        if what == "door":  # w: half width, h: height, zc: centre height
            w, h = rng.uniform(0.17, 0.25), rng.uniform(0.75, 0.95)
            zc = floor_z + h / 2
            surface = random_surface(rng, families, 128, texrepeat=0.0, prefer=("wood", "flat", "flat"))
        elif what == "window":
            w, h = rng.uniform(0.15, 0.35), rng.uniform(0.2, 0.45)
            zc = rng.uniform(0.2, max(0.25, wall_top - 0.3))
            surface = random_surface(rng, ("flat", "noise", "stripes"), 64, texrepeat=0.0)
            surface.texture = np.clip(surface.texture.astype(np.int32) // 3 + 170, 0, 255).astype(np.uint8)
            surface.emission = float(rng.uniform(0.3, 0.8))
        else:
            w, h = rng.uniform(0.05, 0.25), rng.uniform(0.1, 0.4)
            zc = rng.uniform(0.05, max(0.1, wall_top - 0.25))
            surface = random_surface(rng, families, 128, texrepeat=0.0, prefer=("text", "text", "noise"))
        x, y, yaw = [(hx, along * hy, np.pi / 2), (-hx, along * hy, -np.pi / 2),
                     (along * hx, hy, 0.0), (along * hx, -hy, np.pi)][side]
        items += _parts(f"wall_{what}{k}", make_transform(rot_z(yaw), (x, y, 0.0)), [((0, 0, zc), (w, 0.01, h / 2))],
                        surface)
    return items


def rug(rng: np.random.Generator, families, x: float, y: float, floor_z: float) -> list[Box]:
    """A rug 5 mm thick on the floor at ``(x, y)``, 0.4-1.2 m on a side, stripes/noise/tiles preferred."""
    surface = random_surface(rng, families, 128, texrepeat=0.0, prefer=("stripes", "noise", "tiles", "grid"))
    half = (rng.uniform(0.2, 0.6), rng.uniform(0.2, 0.6), 0.0025)
    T = make_transform(rot_z(rng.uniform(0, np.pi)), (x, y, floor_z + 0.0025))
    return _parts("rug", T, [((0, 0, 0), half)], surface)


def monitor(rng: np.random.Generator, families, name: str, x: float, y: float, yaw: float) -> list[Box]:
    """A screen on a stand on the table top (z = 0) at ``(x, y)`` facing ``yaw``: foot, post, panel."""
    surface = random_surface(rng, families, 64, texrepeat=0.0, prefer=("flat", "text", "noise"))
    w, h = rng.uniform(0.15, 0.3), rng.uniform(0.1, 0.18)
    post = rng.uniform(0.08, 0.15)
    parts = [((0, 0, 0.005), (0.06, 0.05, 0.005)), ((0, 0.01, post / 2), (0.015, 0.01, post / 2)),
             ((0, -0.01, post + h), (w, 0.012, h))]
    return _parts(name, make_transform(rot_z(yaw), (x, y, 0.0)), parts, surface)


def clutter_object(rng: np.random.Generator, families, name: str, pos: np.ndarray,
                   scale: float) -> tuple[ObjectSpec, Surface]:
    """An unlabelled (label 0) random object of :func:`.scene.random_object` times ``scale``, standing at
    ``pos`` (3,) with a random yaw."""
    obj = random_object(rng, 0)
    obj.name = name + "_" + obj.shape
    obj.size = tuple(float(s) * scale for s in obj.size)
    obj.pose[:3, 3] = pos + np.array([0.0, 0.0, obj.pose[2, 3] * scale])
    obj.pose[:3, :3] = rot_z(rng.uniform(-np.pi, np.pi)) @ obj.pose[:3, :3]
    return obj, random_surface(rng, families, 64, texrepeat=0.0)
