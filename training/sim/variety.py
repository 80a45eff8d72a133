"""Varied scenes for depth training that should transfer to real images (``depth-train sim --variety``).

An episode with a variety is planned exactly like a classic one (same scene seed, objects,
arm trajectory and joint states, in the classic *planning world* with the table top at ``z = 0``),
then everything the camera sees is redrawn from a separate generator
``default_rng([seed, VARIETY_STREAM])`` (classic episodes never touch it, so they stay
byte-for-byte the same):

* a room: floor, four walls and a ceiling at a random size, furniture-like boxes (cabinets,
  tables, shelves) along the walls and clutter on the floor, the furniture and the table;
* a texture family (:mod:`.texture_families`) per surface and object, some dark, some
  textureless, some specular (MuJoCo ``specular``/``shininess``) or reflective (floor, table);
* 1-4 lights of random colour temperature and strength, some casting shadows, and ambient light;
* the wrist camera's horizontal field of view, 45-100 degrees (``K`` follows it exactly);
* a global scale ``s``: arm, table, room, objects and light positions are multiplied by ``s``
  (joint angles are scale-free, so the planned trajectory stays valid and the URDF, TF and
  depth all describe the scaled world). ``tabletop``: ``s`` in 0.5-1.5, object area 0.17-0.5 m;
  ``room``: ``s`` in 1.8-3.2, walls 2-8 m away;
* camera effects on the colour images only: auto-exposure to a random mean brightness (gain fixed
  from the first frame), gamma, defocus blur, read and
  shot noise. Depth stays exact ground truth (with the usual sensor holes, range scaled by ``s``).

Geometry drawn here is in the planning world; :func:`scale_world` produces what is rendered.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .arm import ArmSpec, Visual
from .depth_sensor import DepthSensorParams
from .scene import FLOOR_Z, TABLE_THICKNESS, TABLE_X, TABLE_Y, DistractorPath, ObjectSpec, SceneSpec, StereoRig, \
    random_object
from .texture_families import FAMILIES, family_texture
from .transforms import make_transform, rot_z

KINDS = ("tabletop", "room", "mixed")
VARIETY_STREAM = 0x5A7E  # second seed word of the variety generator (apart from every classic stream)
SCALE = {"tabletop": (0.5, 1.5), "room": (1.8, 3.2)}


@dataclass(frozen=True)
class VarietyOptions:
    """What to vary (the CLI's ``--variety`` and finer options). Ranges are ``(lo, hi)``, drawn uniformly."""

    kind: str = "mixed"
    hfov_deg: tuple[float, float] = (45.0, 100.0)
    scale: tuple[float, float] | None = None  # None: SCALE[kind]
    families: tuple[str, ...] = FAMILIES
    lights: tuple[int, int] = (1, 4)
    noise: float = 0.03  # largest read-noise sigma, fraction of full scale
    blur: float = 1.5  # largest defocus sigma, pixels

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad option."""
        if self.kind not in KINDS:
            raise ValueError(f"variety must be one of {KINDS}, got {self.kind!r}")
        lo, hi = self.hfov_deg
        if not 20.0 <= lo <= hi <= 150.0:
            raise ValueError(f"fov must be within [20, 150] degrees with min <= max, got {lo}:{hi}")
        if self.scale is not None and not 0.1 <= self.scale[0] <= self.scale[1] <= 10.0:
            raise ValueError(f"scale must be within [0.1, 10] with min <= max, got {self.scale[0]}:{self.scale[1]}")
        bad = [f for f in self.families if f not in FAMILIES]
        if bad or not self.families:
            raise ValueError(f"texture families must be a non-empty subset of {','.join(FAMILIES)}, got {bad or '[]'}")
        if not 1 <= self.lights[0] <= self.lights[1] <= 8:
            raise ValueError(f"lights must be within 1..8 with min <= max, got {self.lights[0]}:{self.lights[1]}")
        if not (0.0 <= self.noise <= 0.2 and 0.0 <= self.blur <= 5.0):
            raise ValueError(f"noise must be in [0, 0.2] and blur in [0, 5] px, got {self.noise}, {self.blur}")


@dataclass(eq=False)
class Surface:
    """How a surface looks: texture (S,S,3) uint8 of ``family``, repeats per planning-world metre
    (``texrepeat``, 0 = once per face), MuJoCo material ``specular``, ``shininess``, ``reflectance``."""

    texture: np.ndarray
    family: str
    texrepeat: float
    specular: float
    shininess: float
    reflectance: float = 0.0


@dataclass(eq=False)
class Box:
    """A furniture part: half extents ``size`` (3,), ``pose`` ``T_world_box`` (4,4), its surface."""

    name: str
    size: tuple[float, float, float]
    pose: np.ndarray
    surface: Surface


@dataclass(frozen=True)
class Light:
    """A spot light at ``pos`` (3,) aimed along ``dir`` (3,) with ``diffuse`` RGB (3,)."""

    pos: tuple[float, float, float]
    dir: tuple[float, float, float]
    diffuse: tuple[float, float, float]
    castshadow: bool


@dataclass(eq=False)
class Variety:
    """One episode's variety (see the module docstring). Lengths are in the world it belongs to
    (planning world from :func:`draw_variety`, rendered world after :func:`scale_world`)."""

    kind: str
    scale: float
    hfov_deg: float
    look_target: tuple[float, float, float]  # what the viewpoint walk circles (planning world)
    elevation_deg: tuple[float, float, float]  # its elevation range (min, max) and first value
    room_half: tuple[float, float]
    wall_top: float
    floor_z: float
    table_x: tuple[float, float]
    table_y: tuple[float, float]
    table_thickness: float
    lights: list[Light]
    ambient: float
    floor: Surface
    wall: Surface
    ceiling: Surface
    table: Surface
    objects: list[Surface]  # one per scene.all_objects, in order
    boxes: list[Box]
    clutter: list[ObjectSpec]  # unlabelled objects (label 0) on the floor, furniture and table
    clutter_surfaces: list[Surface]
    exposure: float  # target mean brightness in [0, 1] of the auto-exposure (:func:`auto_exposure_gain`)
    gamma: float
    noise_sigma: float
    shot_noise: float
    blur_sigma: float
    sensor: DepthSensorParams = field(default_factory=DepthSensorParams)

    def fovy_deg(self, width: int, height: int) -> float:
        """Vertical FOV of the horizontal ``hfov_deg`` at ``width x height``: ``2 atan(tan(hfov/2) H/W)``."""
        return float(np.rad2deg(2.0 * np.arctan(np.tan(np.deg2rad(self.hfov_deg) / 2.0) * height / width)))

    def summary(self) -> dict:
        """JSON-able description (stored in the ground-truth sidecar as ``variety_json``)."""
        return dict(kind=self.kind, scale=self.scale, hfov_deg=self.hfov_deg, look_target=list(self.look_target),
                    elevation_deg=list(self.elevation_deg), room_half=list(self.room_half),
                    wall_top=self.wall_top, lights=len(self.lights), shadows=sum(l.castshadow for l in self.lights),
                    ambient=self.ambient, floor=self.floor.family, wall=self.wall.family, table=self.table.family,
                    objects=[s.family for s in self.objects], furniture_parts=len(self.boxes),
                    clutter=len(self.clutter), exposure=self.exposure, gamma=self.gamma,
                    noise_sigma=self.noise_sigma, blur_sigma=self.blur_sigma)


def _surface(rng: np.random.Generator, opts: VarietyOptions, size: int, texrepeat: float, plane: bool = False,
             prefer: tuple[str, ...] = ()) -> Surface:
    """A random surface: family from ``opts.families`` (``prefer`` ones twice as likely), dark in 15 %,
    specular in 25 %, and (``plane``) mirror-like reflectance in 15 % of draws."""
    fams = list(opts.families) + [f for f in prefer if f in opts.families]
    family = fams[int(rng.integers(len(fams)))]
    texture = family_texture(rng, family, size, dark=bool(rng.uniform() < 0.15))
    shiny = rng.uniform() < 0.25
    specular = rng.uniform(0.5, 1.0) if shiny else rng.uniform(0.0, 0.2)
    shininess = rng.uniform(0.5, 1.0) if shiny else rng.uniform(0.0, 0.3)
    reflectance = rng.uniform(0.1, 0.35) if plane and rng.uniform() < 0.15 else 0.0
    return Surface(texture, family, texrepeat, float(specular), float(shininess), float(reflectance))


def _furniture(rng, opts, name: str, x: float, y: float, yaw: float, floor_z: float) -> list[Box]:
    """One piece standing on the floor at ``(x, y)``: a cabinet (1 box), a table (top + 4 legs) or a shelf
    (2 sides + 3-5 boards), 0.3-1.6 m tall in the planning world."""
    kind = ("cabinet", "table", "shelf")[int(rng.integers(3))]
    w, d = rng.uniform(0.2, 0.6), rng.uniform(0.15, 0.35)
    h = rng.uniform(0.3, 1.6) if kind != "table" else rng.uniform(0.4, 0.8)
    surf = _surface(rng, opts, 128, texrepeat=2.0, prefer=("wood", "flat", "marble"))
    T = make_transform(rot_z(yaw), (x, y, floor_z))
    parts: list[tuple[tuple[float, float, float], tuple[float, float, float]]] = []  # (centre, half size)
    if kind == "cabinet":
        parts.append(((0, 0, h / 2), (w, d, h / 2)))
    elif kind == "table":
        t = 0.02
        parts.append(((0, 0, h - t), (w, d, t)))
        for sx in (-1, 1):
            for sy in (-1, 1):
                parts.append(((sx * (w - 0.03), sy * (d - 0.03), (h - t) / 2), (0.02, 0.02, (h - t) / 2)))
    else:
        t = 0.015
        for sx in (-1, 1):
            parts.append(((sx * (w - t), 0, h / 2), (t, d, h / 2)))
        for z in np.linspace(t, h - t, int(rng.integers(3, 6))):
            parts.append(((0, 0, z), (w - 2 * t, d, t)))
    return [Box(f"{name}_part{k}", tuple(float(s) for s in half), T @ make_transform(None, c), surf)
            for k, (c, half) in enumerate(parts)]


def _clutter_object(rng, opts, k: int, pos: np.ndarray, scale: float) -> tuple[ObjectSpec, Surface]:
    obj = random_object(rng, 0)
    obj.name = f"clutter{k}_{obj.shape}"
    obj.size = tuple(float(s) * scale for s in obj.size)
    obj.pose[:3, 3] = pos + np.array([0.0, 0.0, obj.pose[2, 3] * scale])
    obj.pose[:3, :3] = rot_z(rng.uniform(-np.pi, np.pi)) @ obj.pose[:3, :3]
    return obj, _surface(rng, opts, 64, texrepeat=0.0)


def draw_variety(seed: int, scene: SceneSpec, opts: VarietyOptions) -> Variety:
    """The variety of episode ``seed`` for ``scene`` (planning world), from ``default_rng([seed, VARIETY_STREAM])``."""
    opts.check()
    rng = np.random.default_rng([int(seed), VARIETY_STREAM])
    kind = opts.kind if opts.kind != "mixed" else ("tabletop", "room")[int(rng.integers(2))]
    s = float(rng.uniform(*(opts.scale or SCALE[kind])))
    if kind == "room":  # look across the room: a raised target, low elevations
        look = (rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), rng.uniform(0.12, 0.3))
        elevation = (5.0, 40.0, 20.0)
    else:
        look = (rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), rng.uniform(0.0, 0.08))
        elevation = (20.0, 72.0, 45.0)
    hx, hy = (float(v) for v in rng.uniform(1.0, 2.6, size=2))
    wall_top = float(rng.uniform(0.9, 2.0))
    n_lights = int(rng.integers(opts.lights[0], opts.lights[1] + 1))
    lights = []
    for k in range(n_lights):
        pos = (rng.uniform(-0.8 * hx, 0.8 * hx), rng.uniform(-0.8 * hy, 0.8 * hy), rng.uniform(0.6, wall_top - 0.05))
        aim = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(FLOOR_Z, 0.0)])
        warm = rng.uniform(-1.0, 1.0)  # colour temperature: -1 cool blue-white .. +1 warm tungsten
        tint = np.array([1.0 + 0.15 * warm, 1.0, 1.0 - 0.3 * warm]) / (1.0 + 0.15 * max(warm, 0.0))
        strength = rng.uniform(0.5, 1.2) / np.sqrt(n_lights)
        lights.append(Light(tuple(pos), tuple(aim - np.array(pos)), tuple(np.clip(tint * strength, 0, 1)),
                            bool(rng.uniform() < (0.8 if k == 0 else 0.3))))
    floor = _surface(rng, opts, 256, texrepeat=float(rng.uniform(0.3, 2.0)), plane=True,
                     prefer=("wood", "tiles", "marble", "noise"))
    wall = _surface(rng, opts, 256, texrepeat=float(rng.uniform(0.3, 1.5)), prefer=("flat", "noise", "tiles"))
    ceiling = _surface(rng, opts, 128, texrepeat=1.0, prefer=("flat", "flat", "noise"))
    table = _surface(rng, opts, 256, texrepeat=float(rng.uniform(1.0, 4.0)), plane=True,
                     prefer=("wood", "marble", "flat"))
    objects = [_surface(rng, opts, 64, texrepeat=0.0) for _ in scene.all_objects]
    # Furniture along the walls, clear of the table and the arm's workspace (>= 0.3 m from the table edge).
    boxes: list[Box] = []
    n_furn = int(rng.integers(5, 13)) if kind == "room" else int(rng.integers(1, 5))
    for k in range(n_furn):
        side = int(rng.integers(4))
        along = rng.uniform(-0.8, 0.8)
        x, y, yaw = [(hx - 0.4, along * hy, np.pi / 2), (-hx + 0.4, along * hy, -np.pi / 2),
                     (along * hx, hy - 0.4, 0.0), (along * hx, -hy + 0.4, np.pi)][side]
        if TABLE_X[0] - 0.35 < x < TABLE_X[1] + 0.35 and TABLE_Y[0] - 0.35 < y < TABLE_Y[1] + 0.35:
            continue
        boxes += _furniture(rng, opts, f"furniture{k}", x, y, yaw, FLOOR_Z)
    clutter, clutter_surfaces = [], []
    tops = [b for b in boxes if b.size[2] < 0.03 and b.size[0] > 0.1]  # table tops and shelf boards
    for k in range(int(rng.integers(2, 10))):
        where = rng.uniform()
        if where < 0.35 and tops:
            b = tops[int(rng.integers(len(tops)))]
            pos = b.pose[:3, 3] + b.pose[:3, :2] @ (rng.uniform(-0.6, 0.6, 2) * np.array(b.size[:2]))
            pos[2] = b.pose[2, 3] + b.size[2]
            scale = 1.0
        elif where < 0.6:  # on the table, outside the object area and away from the arm's base
            r, a = rng.uniform(0.3, 0.5), rng.uniform(-np.pi / 2, np.pi / 2)
            pos, scale = np.array([r * np.cos(a), 0.9 * r * np.sin(a), 0.0]), 0.6
        else:  # on the floor, off the table
            pos = np.array([rng.uniform(-hx + 0.2, hx - 0.2), rng.uniform(-hy + 0.2, hy - 0.2), FLOOR_Z])
            if TABLE_X[0] - 0.3 < pos[0] < TABLE_X[1] + 0.3 and TABLE_Y[0] - 0.3 < pos[1] < TABLE_Y[1] + 0.3:
                continue
            scale = float(rng.uniform(1.5, 4.0))
        obj, surf = _clutter_object(rng, opts, k, pos, scale)
        clutter.append(obj)
        clutter_surfaces.append(surf)
    return Variety(
        kind=kind, scale=s, hfov_deg=float(rng.uniform(*opts.hfov_deg)),
        look_target=tuple(float(v) for v in look), elevation_deg=elevation, room_half=(hx, hy), wall_top=wall_top,
        floor_z=FLOOR_Z, table_x=TABLE_X, table_y=TABLE_Y, table_thickness=TABLE_THICKNESS, lights=lights,
        ambient=float(rng.uniform(0.1, 0.45)), floor=floor, wall=wall, ceiling=ceiling, table=table,
        objects=objects, boxes=boxes, clutter=clutter, clutter_surfaces=clutter_surfaces,
        exposure=float(rng.uniform(0.25, 0.6)), gamma=float(rng.uniform(0.8, 1.25)),
        noise_sigma=float(rng.uniform(0.0, opts.noise)), shot_noise=float(rng.uniform(0.0, opts.noise)),
        blur_sigma=float(rng.uniform(0.0, opts.blur)) if rng.uniform() < 0.6 else 0.0,
    )


def auto_exposure_gain(rgb: np.ndarray, target: float) -> float:
    """Gain ``g = target / mean(rgb / 255)``, clipped to [0.3, 6], that brings an image's mean brightness to
    ``target`` (an episode's exposure is fixed from its first frame, as a camera's auto-exposure settles)."""
    mean = float(np.mean(rgb, dtype=np.float64)) / 255.0
    return float(np.clip(target / max(mean, 1e-3), 0.3, 6.0))


def _scaled_T(T: np.ndarray, s: float) -> np.ndarray:
    out = np.array(T, dtype=np.float64, copy=True)
    out[:3, 3] *= s
    return out


def _scaled_object(obj: ObjectSpec, s: float) -> ObjectSpec:
    return dataclasses.replace(obj, size=tuple(v * s for v in obj.size), pose=_scaled_T(obj.pose, s))


def scale_arm(arm: ArmSpec, s: float) -> ArmSpec:
    """The arm with every length multiplied by ``s`` (joint origins, visual sizes and offsets); angles,
    axes and limits unchanged, so ``FK_scaled(q)`` is ``FK(q)`` with translations times ``s``."""
    joints = tuple(dataclasses.replace(j, xyz=tuple(v * s for v in j.xyz)) for j in arm.joints)
    visuals = tuple(dataclasses.replace(v, size=tuple(x * s for x in v.size), xyz=tuple(x * s for x in v.xyz))
                    for v in arm.visuals)
    return dataclasses.replace(arm, joints=joints, visuals=visuals)


def scale_world(arm: ArmSpec, scene: SceneSpec, variety: Variety) -> tuple[ArmSpec, SceneSpec, Variety]:
    """``(arm, scene, variety)`` of the planning world multiplied by ``variety.scale`` about the world origin.

    Every position and length is multiplied by ``s``; rotations, joint angles, textures per face and
    colours are unchanged. The depth sensor's range becomes ``[0.1 s, 20]`` m.
    """
    s = variety.scale
    path = scene.distractor_path
    if path is not None:
        path = DistractorPath(path.centre * s, path.amplitude * s, path.freq_hz, path.phase, path.yaw_rate)
    objects = [_scaled_object(o, s) for o in scene.objects]
    dis = _scaled_object(scene.distractor, s) if scene.distractor is not None else None
    rig = scene.stereo
    scene_s = dataclasses.replace(
        scene, objects=objects, distractor=dis, distractor_path=path, T_world_base=_scaled_T(scene.T_world_base, s),
        stereo=StereoRig(_scaled_T(rig.T_world_link, s), rig.baseline * s, rig.fovy_deg),
        look_target=scene.look_target * s)
    boxes = [dataclasses.replace(b, size=tuple(v * s for v in b.size), pose=_scaled_T(b.pose, s)) for b in variety.boxes]
    lights = [dataclasses.replace(l, pos=tuple(v * s for v in l.pos)) for l in variety.lights]
    variety_s = dataclasses.replace(
        variety, room_half=tuple(v * s for v in variety.room_half), wall_top=variety.wall_top * s,
        floor_z=variety.floor_z * s, table_x=tuple(v * s for v in variety.table_x),
        table_y=tuple(v * s for v in variety.table_y), table_thickness=variety.table_thickness * s, lights=lights,
        boxes=boxes, clutter=[_scaled_object(o, s) for o in variety.clutter],
        sensor=dataclasses.replace(variety.sensor, min_range_m=0.1 * s, max_range_m=20.0))
    return scale_arm(arm, s), scene_s, variety_s
