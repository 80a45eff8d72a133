"""MJCF of a varied episode (:mod:`.variety`): room with ceiling, furniture, clutter, lights and materials.

The arm, the labelled objects, the distractor and the stereo rig are the classic ones
(:func:`.mjcf.moving_parts`); only what surrounds them, the lights, the surfaces and the wrist
camera's field of view change. Textures are flat placeholders filled after compiling, as in
:mod:`.mjcf`.
"""
from __future__ import annotations

import numpy as np

from .arm import ArmSpec
from .mjcf import _f, _pose_attrs, mjcf_document, moving_parts
from .scene import SceneSpec
from .variety import Surface, Variety


def _material(name: str, surf: Surface, scale: float, uniform: bool) -> list[str]:
    """Texture placeholder + material. ``uniform``: ``texrepeat`` per metre (divided by ``scale`` so the
    pattern keeps its size relative to the scene), else the texture spans each face once."""
    h, w = surf.texture.shape[:2]
    rep = max(surf.texrepeat / scale, 1e-3) if uniform else 1.0
    return [
        f'<texture name="tex_{name}" type="2d" builtin="flat" width="{w}" height="{h}" rgb1="1 1 1"/>',
        f'<material name="mat_{name}" texture="tex_{name}" texrepeat="{rep:.6g} {rep:.6g}" '
        f'texuniform="{"true" if uniform else "false"}" specular="{surf.specular:.4g}" '
        f'shininess="{surf.shininess:.4g}" reflectance="{surf.reflectance:.4g}" emission="{surf.emission:.4g}"/>',
    ]


def _box(name: str, centre, half, material: str) -> str:
    return f'<geom name="{name}" type="box" pos="{_f(centre)}" size="{_f(half)}" material="{material}"/>'


def variety_to_mjcf(arm: ArmSpec, scene: SceneSpec, v: Variety, max_width: int,
                    max_height: int) -> tuple[str, dict[str, np.ndarray]]:
    """``(MJCF text, {texture name: uint8 (S,S,3) pixels})`` of the varied scene, all in ``v``'s world."""
    s = v.scale
    textures: dict[str, np.ndarray] = {}
    assets: list[str] = []

    def add(name: str, surf: Surface, uniform: bool = True) -> str:
        if f"tex_{name}" not in textures:
            assets.extend(_material(name, surf, s, uniform))
            textures[f"tex_{name}"] = surf.texture
        return f"mat_{name}"

    hx, hy = v.room_half
    z0, top, t = v.floor_z, v.wall_top, 0.05 * s
    (tx0, tx1), (ty0, ty1) = v.table_x, v.table_y
    world = [
        f'<light name="light{k}" pos="{_f(l.pos)}" dir="{_f(l.dir)}" diffuse="{_f(l.diffuse)}" '
        f'specular="{_f(np.asarray(l.diffuse) * 0.3)}" castshadow="{"true" if l.castshadow else "false"}" '
        f'cutoff="75" exponent="2"/>'
        for k, l in enumerate(v.lights)
    ]
    world.append(f'<geom name="floor" type="plane" pos="0 0 {z0:.12g}" size="{hx:.12g} {hy:.12g} 0.1" '
                 f'material="{add("floor", v.floor)}"/>')
    world.append(_box("ceiling", (0, 0, top + t), (hx, hy, t), add("ceiling", v.ceiling)))
    wall_mat, half_h = add("wall", v.wall), (top - z0) / 2
    for k, (x, y, wx, wy) in enumerate([(hx + t, 0, t, hy), (-hx - t, 0, t, hy), (0, hy + t, hx, t), (0, -hy - t, hx, t)]):
        world.append(_box(f"wall{k}", (x, y, z0 + half_h), (wx, wy, half_h), wall_mat))
    world.append(_box("table", ((tx0 + tx1) / 2, (ty0 + ty1) / 2, -v.table_thickness / 2),
                      ((tx1 - tx0) / 2, (ty1 - ty0) / 2, v.table_thickness / 2), add("table", v.table)))
    # Table legs, so the table reads as furniture from the room.
    for k, (x, y) in enumerate([(tx0, ty0), (tx0, ty1), (tx1, ty0), (tx1, ty1)]):
        leg = 0.03 * s
        lx, ly = x + (leg if x == tx0 else -leg), y + (leg if y == ty0 else -leg)
        world.append(_box(f"table_leg{k}", (lx, ly, (z0 - v.table_thickness) / 2),
                          (leg, leg, (-v.table_thickness - z0) / 2), f"mat_table"))
    for b in v.boxes:
        world.append(f'<body name="{b.name}" {_pose_attrs(b.pose)}><geom name="{b.name}" type="box" '
                     f'size="{_f(b.size)}" material="{add(b.group, b.surface, uniform=b.surface.texrepeat > 0)}"/></body>')
    for obj, surf in zip(v.clutter, v.clutter_surfaces):
        world.append(f'<body name="{obj.name}" {_pose_attrs(obj.pose)}><geom name="{obj.name}" type="{obj.shape}" '
                     f'size="{_f(obj.size)}" material="{add(obj.name, surf, uniform=False)}"/></body>')
    for obj, surf in zip(scene.all_objects, v.objects):
        add(obj.name, surf, uniform=False)
    world += moving_parts(arm, scene, v.fovy_deg(max_width, max_height))
    amb = f"{v.ambient:.4g} {v.ambient:.4g} {v.ambient:.4g}"
    return mjcf_document(assets, world, max_width, max_height, amb, "0.08 0.08 0.08"), textures
