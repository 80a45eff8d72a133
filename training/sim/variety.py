"""Varied scenes for depth training that should transfer to real images (``depth-train sim --variety``).

An episode with a variety uses the classic scene of its seed (objects, distractor, stereo rig) and
the classic trajectory planner, in the classic *planning world* (table top at ``z = 0``), with the
variety's look target and elevation range and its table-top items as obstacles; everything else the
camera sees is drawn from a separate generator ``default_rng([seed, VARIETY_STREAM])`` (classic
episodes never touch it, so they stay byte-for-byte the same):

* a room: floor, four walls and a ceiling at a random size, furniture, wall items, a rug, screens
  and clutter (:mod:`.furnishing`);
* a texture family (:mod:`.texture_families`) per surface and object, some dark, some
  textureless, some specular (MuJoCo ``specular``/``shininess``) or reflective (floor, table);
* 1-4 lights of random colour temperature and strength, some casting shadows, and ambient light;
* the wrist camera's horizontal field of view, 45-100 degrees (``K`` follows it exactly);
* a view: ``room`` looks across the room from low elevations (5-40 degrees above a raised target),
  ``tabletop`` down at the table (20-72 degrees);
* a global scale ``s``: arm, table, room, objects and light positions are multiplied by ``s``
  (joint angles are scale-free, so the planned trajectory stays valid and the URDF, TF and
  depth all describe the scaled world). ``tabletop``: ``s`` in 0.5-1.5; ``room``: ``s`` in
  1.8-3.2, walls up to ~8 m away;
* camera effects on the colour images only (:mod:`.camera_effects`): auto-exposure to a random mean
  brightness (gain fixed from the first frame), vignetting (50 %, not with ``blur=0``), gamma, defocus blur, read and shot
  noise, JPEG at quality 60-95 (40 %, not with ``noise=0``). Depth stays
  exact ground truth (with the usual sensor holes, range ``[0.1 s, 20]`` m).

Geometry drawn here is in the planning world; :func:`scale_world` produces what is rendered.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .arm import ArmSpec
from .depth_sensor import DepthSensorParams
from .furnishing import Box, Surface, clutter_object, furniture_piece, monitor, random_surface, rug, wall_items
from .scene import FLOOR_Z, TABLE_THICKNESS, TABLE_X, TABLE_Y, DistractorPath, ObjectSpec, SceneSpec, StereoRig, \
    footprint_radius
from .texture_families import FAMILIES
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
    aim_offset_m: float  # viewpoints look up to this far (per axis) beside the target: varied framing
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
    obstacles: list[ObjectSpec]  # table-top clutter and screens, kept clear of the camera when planning
    exposure: float  # target mean brightness in [0, 1] of the auto-exposure (:func:`auto_exposure_gain`)
    gamma: float
    noise_sigma: float
    shot_noise: float
    blur_sigma: float
    vignette: float
    jpeg_quality: int  # 0 = none
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
                    objects=[s.family for s in self.objects], pieces=sorted({b.group for b in self.boxes}),
                    clutter=len(self.clutter), exposure=self.exposure, gamma=self.gamma,
                    noise_sigma=self.noise_sigma, blur_sigma=self.blur_sigma, vignette=self.vignette,
                    jpeg_quality=self.jpeg_quality)


def _table_clutter(rng, families, scene: SceneSpec, count: int) -> list[tuple[ObjectSpec, Surface]]:
    """Up to ``count`` small objects on the table around the labelled ones (0.2-0.55 m from the centre, clear
    of them, of each other and of the robot's base by 1 cm / 0.2 m)."""
    placed = [(o.pose[:2, 3], footprint_radius(o.shape, o.size)) for o in scene.objects]
    base = scene.T_world_base[:2, 3]
    out = []
    for k in range(count):
        r, a = rng.uniform(0.2, 0.55), rng.uniform(-np.pi, np.pi)
        xy = np.array([r * np.cos(a), 0.85 * r * np.sin(a)])
        obj, surf = clutter_object(rng, families, f"table_clutter{k}", np.array([*xy, 0.0]), 1.0)
        rad = footprint_radius(obj.shape, obj.size)
        if np.linalg.norm(xy - base) < 0.2 + rad or any(np.linalg.norm(xy - c) < rad + rc + 0.01 for c, rc in placed):
            continue
        placed.append((xy, rad))
        out.append((obj, surf))
    return out


def draw_variety(seed: int, scene: SceneSpec, opts: VarietyOptions) -> Variety:
    """The variety of episode ``seed`` for ``scene`` (planning world), from ``default_rng([seed, VARIETY_STREAM])``."""
    opts.check()
    rng = np.random.default_rng([int(seed), VARIETY_STREAM])
    fams = opts.families
    kind = opts.kind if opts.kind != "mixed" else ("tabletop", "room")[int(rng.integers(2))]
    s = float(rng.uniform(*(opts.scale or SCALE[kind])))
    if kind == "room":  # look across the room: a raised target, low elevations
        look = (rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), rng.uniform(0.12, 0.3))
        elevation, aim_offset = (5.0, 40.0, 20.0), 0.12
    else:
        look = (rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), rng.uniform(0.0, 0.08))
        elevation, aim_offset = (20.0, 72.0, 45.0), 0.06
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
    floor = random_surface(rng, fams, 256, float(rng.uniform(0.3, 2.0)), plane=True,
                           prefer=("wood", "tiles", "marble", "noise"))
    wall = random_surface(rng, fams, 256, float(rng.uniform(0.3, 1.5)), prefer=("flat", "noise", "tiles"))
    ceiling = random_surface(rng, fams, 128, 1.0, prefer=("flat", "flat", "noise"))
    table = random_surface(rng, fams, 256, float(rng.uniform(1.0, 4.0)), plane=True, prefer=("wood", "marble", "flat"))
    objects = [random_surface(rng, fams, 64, 0.0) for _ in scene.all_objects]
    # Furniture along the walls, clear of the table and the arm's workspace (>= 0.35 m from the table edge).
    boxes: list[Box] = []
    for k in range(int(rng.integers(5, 13)) if kind == "room" else int(rng.integers(1, 5))):
        side, along = int(rng.integers(4)), rng.uniform(-0.8, 0.8)
        x, y, yaw = [(hx - 0.4, along * hy, np.pi / 2), (-hx + 0.4, along * hy, -np.pi / 2),
                     (along * hx, hy - 0.4, 0.0), (along * hx, -hy + 0.4, np.pi)][side]
        if not (TABLE_X[0] - 0.35 < x < TABLE_X[1] + 0.35 and TABLE_Y[0] - 0.35 < y < TABLE_Y[1] + 0.35):
            boxes += furniture_piece(rng, fams, f"furniture{k}", x, y, yaw, FLOOR_Z)
    boxes += wall_items(rng, fams, (hx, hy), FLOOR_Z, wall_top, int(rng.integers(2, 9)))
    if rng.uniform() < 0.6:
        boxes += rug(rng, fams, rng.uniform(-0.5, 0.5) * hx, rng.uniform(-0.5, 0.5) * hy, FLOOR_Z)
    obstacles: list[ObjectSpec] = []
    for k in range(int(rng.integers(0, 3))):  # screens at the far end of the table, facing the robot
        y = rng.uniform(-0.35, 0.35)
        if all(abs(y - o.pose[1, 3]) > 0.35 for o in obstacles):
            boxes += monitor(rng, fams, f"monitor{k}", TABLE_X[1] - 0.08, y, np.pi / 2)
            obstacles.append(ObjectSpec(f"monitor{k}", 0, "box", (0.3, 0.05, 0.2), make_transform(
                None, (TABLE_X[1] - 0.08, y, 0.2)), (1, 1, 1, 1), np.zeros((1, 1, 3), np.uint8), "proxy"))
    on_table = _table_clutter(rng, fams, scene, int(rng.integers(0, 7) if kind == "room" else rng.integers(2, 9)))
    obstacles += [o for o, _ in on_table]
    clutter = list(on_table)
    tops = [b for b in boxes if b.size[2] < 0.03 and b.size[0] > 0.1 and b.pose[2, 3] > FLOOR_Z + 0.05]
    for k in range(int(rng.integers(2, 10))):
        if rng.uniform() < 0.5 and tops:  # on a table top or shelf board
            b = tops[int(rng.integers(len(tops)))]
            pos = b.pose[:3, 3] + b.pose[:3, :2] @ (rng.uniform(-0.6, 0.6, 2) * np.array(b.size[:2]))
            pos[2] = b.pose[2, 3] + b.size[2]
            clutter.append(clutter_object(rng, fams, f"clutter{k}", pos, 1.0))
        else:  # on the floor, off the table
            pos = np.array([rng.uniform(-hx + 0.2, hx - 0.2), rng.uniform(-hy + 0.2, hy - 0.2), FLOOR_Z])
            if not (TABLE_X[0] - 0.3 < pos[0] < TABLE_X[1] + 0.3 and TABLE_Y[0] - 0.3 < pos[1] < TABLE_Y[1] + 0.3):
                clutter.append(clutter_object(rng, fams, f"clutter{k}", pos, float(rng.uniform(1.5, 4.0))))
    return Variety(
        kind=kind, scale=s, hfov_deg=float(rng.uniform(*opts.hfov_deg)),
        look_target=tuple(float(v) for v in look), elevation_deg=elevation, aim_offset_m=aim_offset,
        room_half=(hx, hy), wall_top=wall_top,
        floor_z=FLOOR_Z, table_x=TABLE_X, table_y=TABLE_Y, table_thickness=TABLE_THICKNESS, lights=lights,
        ambient=float(rng.uniform(0.1, 0.45)), floor=floor, wall=wall, ceiling=ceiling, table=table,
        objects=objects, boxes=boxes, clutter=[o for o, _ in clutter], clutter_surfaces=[c for _, c in clutter],
        obstacles=obstacles, exposure=float(rng.uniform(0.25, 0.6)), gamma=float(rng.uniform(0.8, 1.25)),
        noise_sigma=float(rng.uniform(0.0, opts.noise)), shot_noise=float(rng.uniform(0.0, opts.noise)),
        blur_sigma=float(rng.uniform(0.0, opts.blur)) if rng.uniform() < 0.6 else 0.0,
        vignette=float(rng.uniform(0.0, 0.4)) if rng.uniform() < 0.5 and opts.blur > 0 else 0.0,
        jpeg_quality=int(rng.integers(60, 96)) if rng.uniform() < 0.4 and opts.noise > 0 else 0,
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
    obstacles = [_scaled_object(o, s) for o in variety.obstacles]
    variety_s = dataclasses.replace(
        variety, room_half=tuple(v * s for v in variety.room_half), wall_top=variety.wall_top * s,
        floor_z=variety.floor_z * s, table_x=tuple(v * s for v in variety.table_x),
        table_y=tuple(v * s for v in variety.table_y), table_thickness=variety.table_thickness * s, lights=lights,
        boxes=boxes, clutter=[_scaled_object(o, s) for o in variety.clutter], obstacles=obstacles,
        look_target=tuple(v * s for v in variety.look_target), aim_offset_m=variety.aim_offset_m * s,
        sensor=dataclasses.replace(variety.sensor, min_range_m=0.1 * s, max_range_m=20.0))
    return scale_arm(arm, s), scene_s, variety_s
