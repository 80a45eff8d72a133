"""Random tabletop scene per episode: objects, optional moving distractor, robot base, stereo rig.

World frame (``world``): z up, the table top is the plane ``z = 0``, the objects stand around the
origin, the robot base is on the table at ``x = -0.45`` facing +x, and the fixed stereo rig looks at
the objects from the opposite side. Everything random is drawn from ``numpy.random.default_rng(seed)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .textures import floor_texture, random_object_texture, wall_texture, wood_texture
from .transforms import look_at_optical, make_transform, rot_x, rot_z

SHAPES = ("box", "cylinder", "sphere", "capsule", "ellipsoid")
TABLE_X = (-0.65, 0.55)
TABLE_Y = (-0.5, 0.5)
TABLE_THICKNESS = 0.04
FLOOR_Z = -0.75
ROOM_HALF = 2.5  # walls at |x|, |y| = ROOM_HALF, from the floor to 1.5 m above the table
WALL_TOP = 1.5
OBJECT_AREA_RADIUS = 0.17
OBJECT_SET_SIZE = 8          # objects in an object set (random_scene(objects_from=S))
OBJECT_SET_STREAM = 0x0B5E7  # second seed word of the object sets' generator (apart from episode seeds)
# Optical frame -> body frame of a camera "link" (x forward, y left, z up): columns are the
# optical x, y, z axes expressed in the link frame (x_opt = -y_link, y_opt = -z_link, z_opt = x_link).
R_LINK_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass(eq=False)
class ObjectSpec:
    """A textured rigid object. ``size`` follows MuJoCo's geom ``size`` for ``shape``:
    box (hx, hy, hz) half extents; cylinder/capsule (radius, half-length); sphere (r,);
    ellipsoid (a, b, c). ``pose`` is ``T_world_object`` (4,4) (for the distractor: at t = 0)."""

    name: str
    label: int
    shape: str
    size: tuple[float, ...]
    pose: np.ndarray
    rgba: tuple[float, float, float, float]
    texture: np.ndarray
    pattern: str


@dataclass(eq=False)
class DistractorPath:
    """Lissajous flight over the table: ``p(t) = centre + A * sin(2 pi f t + phi)`` (per axis),
    yaw ``psi(t) = w t``. Arrays are (3,)."""

    centre: np.ndarray
    amplitude: np.ndarray
    freq_hz: np.ndarray
    phase: np.ndarray
    yaw_rate: float

    def pose_at(self, t: float) -> np.ndarray:
        """``T_world_distractor`` (4,4) at time ``t`` seconds after the episode start."""
        pos = self.centre + self.amplitude * np.sin(2 * np.pi * self.freq_hz * t + self.phase)
        return make_transform(rot_z(self.yaw_rate * t), pos)


@dataclass(eq=False)
class StereoRig:
    """Two rectified cameras: right = left + ``baseline`` along the left optical x axis.

    ``T_world_link`` is ``stereo_link`` (x forward, y left, z up); the left optical frame sits at
    ``+baseline/2`` along link y, the right one at ``-baseline/2``, both with ``R_LINK_OPTICAL``.
    """

    T_world_link: np.ndarray
    baseline: float
    fovy_deg: float

    @property
    def T_link_left(self) -> np.ndarray:
        return make_transform(R_LINK_OPTICAL, (0.0, self.baseline / 2, 0.0))

    @property
    def T_link_right(self) -> np.ndarray:
        return make_transform(R_LINK_OPTICAL, (0.0, -self.baseline / 2, 0.0))

    @property
    def T_world_left(self) -> np.ndarray:
        return self.T_world_link @ self.T_link_left

    @property
    def T_world_right(self) -> np.ndarray:
        return self.T_world_link @ self.T_link_right


@dataclass(eq=False)
class SceneSpec:
    """Everything random about one episode, plus the fixed cell layout."""

    seed: int
    objects: list[ObjectSpec]
    distractor: ObjectSpec | None
    distractor_path: DistractorPath | None
    T_world_base: np.ndarray
    stereo: StereoRig
    color_fovy_deg: float
    table_texture: np.ndarray
    floor_texture: np.ndarray
    wall_texture: np.ndarray
    look_target: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 0.03]))

    @property
    def all_objects(self) -> list[ObjectSpec]:
        return self.objects + ([self.distractor] if self.distractor is not None else [])


def footprint_radius(shape: str, size: tuple[float, ...]) -> float:
    """Radius (m) of a circle around the object's footprint on the table, as placed by :func:`random_object`."""
    if shape == "box":
        return float(np.hypot(size[0], size[1]))
    if shape == "capsule":  # lying on its side along x
        return size[1] + size[0]
    return float(max(size[:2]) if shape == "ellipsoid" else size[0])


def random_object(rng: np.random.Generator, label: int, shape: str | None = None) -> ObjectSpec:
    """A random shape, size (3-7 cm footprint radius) and texture; pose is set later by placement."""
    shape = shape or SHAPES[int(rng.integers(len(SHAPES)))]
    if shape == "box":
        size = (rng.uniform(0.02, 0.05), rng.uniform(0.02, 0.05), rng.uniform(0.015, 0.06))
        height = size[2]
    elif shape == "cylinder":
        size = (rng.uniform(0.02, 0.045), rng.uniform(0.02, 0.07))
        height = size[1]
    elif shape == "sphere":
        size = (rng.uniform(0.025, 0.05),)
        height = size[0]
    elif shape == "capsule":
        size = (rng.uniform(0.015, 0.03), rng.uniform(0.02, 0.05))
        height = size[0]
    else:
        size = (rng.uniform(0.025, 0.05), rng.uniform(0.02, 0.045), rng.uniform(0.015, 0.04))
        height = size[2]
    size = tuple(float(s) for s in size)
    texture, pattern = random_object_texture(rng)
    upright = rot_x(np.pi / 2) if shape == "capsule" else np.eye(3)  # capsules lie along x
    pose = make_transform(upright, (0.0, 0.0, height))
    return ObjectSpec(f"object{label}_{shape}", label, shape, size, pose, (1.0, 1.0, 1.0, 1.0), texture, pattern)


def place_objects(rng: np.random.Generator, objects: list[ObjectSpec], radius: float = OBJECT_AREA_RADIUS) -> None:
    """Random yaw and a non-overlapping position (footprint circles 1 cm apart) within ``radius`` of the
    origin, by rejection sampling; raises ``RuntimeError`` if the objects do not fit."""
    placed: list[tuple[np.ndarray, float]] = []
    for obj in objects:
        r = footprint_radius(obj.shape, obj.size)
        for _ in range(500):
            xy = rng.uniform(-radius, radius, size=2)
            if np.linalg.norm(xy) > radius:
                continue
            if all(np.linalg.norm(xy - c) > r + rc + 0.01 for c, rc in placed):
                break
        else:
            raise RuntimeError(f"place_objects: could not place {obj.name} without overlap")
        placed.append((xy, r))
        yaw = make_transform(rot_z(rng.uniform(-np.pi, np.pi)))
        pose = yaw @ obj.pose
        pose[:2, 3] = xy
        obj.pose = pose


def object_set(set_seed: int) -> list[ObjectSpec]:
    """The :data:`OBJECT_SET_SIZE` objects of object set ``set_seed`` (shape, size, texture drawn from
    their own generator, independent of any episode), named ``set<S>_obj<k>_<shape>``, poses unplaced."""
    rng = np.random.default_rng([int(set_seed), OBJECT_SET_STREAM])
    objects = [random_object(rng, k + 1) for k in range(OBJECT_SET_SIZE)]
    for k, obj in enumerate(objects):
        obj.name = f"set{set_seed}_obj{k}_{obj.shape}"
    return objects


def random_scene(seed: int, n_objects: int | None = None, distractor: bool = False, baseline: float = 0.06,
                 objects_from: int | None = None) -> SceneSpec:
    """The scene of episode ``seed``. ``n_objects=None`` draws the count: 1 object with probability
    0.3, else 2-5. ``baseline`` is the stereo baseline in metres.

    ``objects_from=S``: the objects are ``n_objects`` of the fixed :func:`object_set` ``S``, chosen by
    the episode seed, instead of new ones; their placement, the textures of the room and table and
    the camera path still come from ``seed``. Several episodes then show the same objects in new
    arrangements (the protocol of Dense Object Nets: train on some scenes of the objects, test on
    new scenes of them)."""
    if n_objects is not None and not 1 <= n_objects <= 8:
        raise ValueError(f"random_scene: n_objects must be in 1..8, got {n_objects}")
    if not 0.01 <= baseline <= 0.5:
        raise ValueError(f"random_scene: baseline must be in [0.01, 0.5] m, got {baseline}")
    if objects_from is not None and objects_from < 0:
        raise ValueError(f"random_scene: object set must be >= 0, got {objects_from}")
    rng = np.random.default_rng(seed)
    if n_objects is None:
        n_objects = 1 if rng.uniform() < 0.3 else int(rng.integers(2, 6))
    if objects_from is None:
        objects = [random_object(rng, label) for label in range(1, n_objects + 1)]
    else:
        pool = object_set(objects_from)
        objects = [pool[int(k)] for k in rng.choice(len(pool), size=n_objects, replace=False)]
        for label, obj in enumerate(objects, start=1):
            obj.label = label
    place_objects(rng, objects)
    dis = path = None
    if distractor:
        label = n_objects + 1
        dis = random_object(rng, label, shape=("sphere", "box")[int(rng.integers(2))])
        dis.name = f"distractor{label}_{dis.shape}"
        path = DistractorPath(
            centre=np.array([0.0, 0.0, rng.uniform(0.14, 0.2)]),
            amplitude=np.array([rng.uniform(0.1, 0.18), rng.uniform(0.1, 0.18), 0.04]),
            freq_hz=rng.uniform(0.05, 0.15, size=3),
            phase=rng.uniform(0.0, 2 * np.pi, size=3),
            yaw_rate=float(rng.uniform(-1.0, 1.0)),
        )
        dis.pose = path.pose_at(0.0)
    eye, target = np.array([0.62, -0.18, 0.42]), np.array([0.0, 0.0, 0.02])
    T_world_left = look_at_optical(eye, target)
    T_world_link = T_world_left @ np.linalg.inv(make_transform(R_LINK_OPTICAL, (0.0, baseline / 2, 0.0)))
    return SceneSpec(
        seed=seed,
        objects=objects,
        distractor=dis,
        distractor_path=path,
        T_world_base=make_transform(None, (-0.45, 0.0, 0.0)),
        stereo=StereoRig(T_world_link, baseline, fovy_deg=50.0),
        color_fovy_deg=45.0,
        table_texture=wood_texture(rng),
        floor_texture=floor_texture(rng),
        wall_texture=wall_texture(rng),
    )
