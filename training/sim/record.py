"""Record one simulated episode: scene -> trajectory -> rendering -> rosbag2 + sidecars.

Outputs for ``out = DIR/NAME``:

* ``DIR/NAME/``                 the rosbag2 directory (``metadata.yaml`` + one ``.mcap`` or ``.db3``),
* ``DIR/NAME.urdf``             the robot description (also on ``/robot_description`` in the bag),
* ``DIR/NAME.groundtruth.npz``  exact depth, labels and poses (:mod:`.groundtruth`).

Timing, as on a real robot: ``/joint_states`` and ``/tf`` at ``joint_rate_factor`` x the image
rate from ``start_time``; the images (colour, depth, both stereo cameras, one shared stamp per
frame) start ``0.37`` joint periods later and carry a seeded jitter of up to +-5 % of a joint
period, so image stamps never coincide with joint-state stamps and readers must interpolate.
Bag (receive) times trail the header stamps by 15 ms for images, 1 ms for joint states and
1.5 ms for ``/tf``. ``/tf_static`` and ``/robot_description`` are written once, first.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import mujoco
import numpy as np

from . import bag_writer as topics
from .arm import COLOR_OPTICAL_FRAME, JOINT_NAMES, ArmSpec, default_arm
from .bag_writer import RecordingWriter
from .camera_effects import apply_camera_effects
from .camera_model import intrinsics_from_fovy, optical_pose_from_mujoco
from .depth_sensor import DepthSensorParams, sensor_depth_mm
from .groundtruth import GroundTruthWriter
from .messages import MessageFactory
from .mjcf import STEREO_LEFT_FRAME, STEREO_LINK, STEREO_RIGHT_FRAME, build_model
from .render import SceneRenderer
from .scene import SceneSpec, random_scene
from .trajectory import plan_trajectory
from .transforms import matrix_to_quat_wxyz
from .urdf import arm_to_urdf
from .variety import VARIETY_STREAM, VarietyOptions, auto_exposure_gain, draw_variety, scale_world

IMAGE_LATENCY_NS, JOINT_LATENCY_NS, TF_LATENCY_NS = 15_000_000, 1_000_000, 1_500_000


@dataclass(frozen=True)
class RecordingConfig:
    """What to record. ``n_objects=None`` lets the seed choose (1 object in ~30 % of episodes)."""

    out: Path
    frames: int = 200
    width: int = 320
    height: int = 240
    rate_hz: float = 10.0
    seed: int = 0
    n_objects: int | None = None
    objects_from: int | None = None  # an object set (scene.object_set) to draw the objects from
    distractor: bool = False
    storage: str = "mcap"
    distro: str = "kilted"
    baseline_m: float = 0.06
    joint_rate_factor: float = 2.0
    start_time_ns: int = 1_700_000_000_000_000_000
    sensor: DepthSensorParams = field(default_factory=DepthSensorParams)
    variety: VarietyOptions | None = None  # None: the classic tabletop cell (:mod:`.variety`)
    stereo: bool = True  # False: no stereo pair rendered or written (ground truth stereo depth NaN)

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        if self.frames < 2:
            raise ValueError(f"frames must be >= 2, got {self.frames}")
        if not (16 <= self.width <= 4096 and 16 <= self.height <= 4096):
            raise ValueError(f"image size must be 16..4096 pixels per side, got {self.width}x{self.height}")
        if not 0.1 <= self.rate_hz <= 120.0:
            raise ValueError(f"rate must be in [0.1, 120] Hz, got {self.rate_hz}")
        if self.joint_rate_factor < 1.0:
            raise ValueError(f"joint_rate_factor must be >= 1, got {self.joint_rate_factor}")
        if self.n_objects is not None and not 1 <= self.n_objects <= 8:
            raise ValueError(f"objects must be 1..8, got {self.n_objects}")
        if self.objects_from is not None and self.objects_from < 0:
            raise ValueError(f"object set must be >= 0, got {self.objects_from}")
        if self.storage not in topics.STORAGE:
            raise ValueError(f"storage must be one of {sorted(topics.STORAGE)}, got {self.storage!r}")
        if not 0.01 <= self.baseline_m <= 0.5:
            raise ValueError(f"baseline must be in [0.01, 0.5] m, got {self.baseline_m}")
        if self.variety is not None:
            self.variety.check()


@dataclass
class RecordingResult:
    bag_dir: Path
    urdf_path: Path
    groundtruth_path: Path
    frames: int
    topic_counts: dict[str, int]
    setup_s: float
    render_write_s: float
    total_s: float

    @property
    def fps(self) -> float:
        """Frames per second over the whole run (set-up, planning, rendering, writing)."""
        return self.frames / self.total_s


def sidecar_paths(bag_dir) -> tuple[Path, Path]:
    """``(<bag>.urdf, <bag>.groundtruth.npz)`` next to the bag directory ``bag_dir``."""
    bag_dir = Path(bag_dir)
    return bag_dir.with_name(bag_dir.name + ".urdf"), bag_dir.with_name(bag_dir.name + ".groundtruth.npz")


def episode_stamps(cfg: RecordingConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(image_stamps_ns (N,), joint_stamps_ns (M,))`` as described in the module docstring.

    Joint stamps ``t0 + j dt_j`` (``dt_j = 1 / (factor * rate)``) run one period past the last image.
    """
    dt_j = 1e9 / (cfg.rate_hz * cfg.joint_rate_factor)
    rng = np.random.default_rng([cfg.seed, 3])
    base = 0.37 * dt_j + np.arange(cfg.frames) * (1e9 / cfg.rate_hz)
    jitter = rng.uniform(-0.05, 0.05, cfg.frames) * dt_j
    images = cfg.start_time_ns + np.round(base + jitter).astype(np.int64)
    m = int(math.ceil((images[-1] - cfg.start_time_ns) / dt_j)) + 2
    joints = cfg.start_time_ns + np.round(np.arange(m) * dt_j).astype(np.int64)
    return images, joints


def static_edges(arm: ArmSpec, scene: SceneSpec) -> list[tuple[str, str, np.ndarray]]:
    """Fixed transforms for ``/tf_static``: world->base_link, the camera mount, the stereo rig."""
    edges = [("world", arm.links[0], scene.T_world_base)]
    edges += [(j.parent, j.child, j.transform()) for j in arm.joints if j.is_fixed]
    rig = scene.stereo
    edges += [("world", STEREO_LINK, rig.T_world_link), (STEREO_LINK, STEREO_LEFT_FRAME, rig.T_link_left),
              (STEREO_LINK, STEREO_RIGHT_FRAME, rig.T_link_right)]
    return edges


def joint_edges(arm: ArmSpec, q: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """Moving transforms for ``/tf`` (robot_state_publisher style): ``parent -> child`` per revolute joint."""
    return [(j.parent, j.child, j.transform(float(v))) for j, v in zip(arm.revolute, q)]


def _set_state(model, data, index, scene: SceneSpec, q: np.ndarray, tau: float) -> None:
    data.qpos[index.qpos_adr] = q
    if scene.distractor_path is not None:
        T = scene.distractor_path.pose_at(tau)
        data.mocap_pos[index.distractor_mocap] = T[:3, 3]
        data.mocap_quat[index.distractor_mocap] = matrix_to_quat_wxyz(T[:3, :3])
    mujoco.mj_forward(model, data)


def _object_poses(data, index) -> np.ndarray:
    poses = np.tile(np.eye(4), (len(index.object_bodies), 1, 1))
    poses[:, :3, :3] = data.xmat[index.object_bodies].reshape(-1, 3, 3)
    poses[:, :3, 3] = data.xpos[index.object_bodies]
    return poses


def record_episode(cfg: RecordingConfig, progress: Callable[[int, int], None] | None = None) -> RecordingResult:
    """Record the episode described by ``cfg``; see the module docstring for outputs and timing.

    Raises ``FileExistsError`` if the bag or a sidecar exists, ``ValueError`` for bad settings.
    Nothing is left behind on failure.
    """
    t_start = time.perf_counter()
    cfg.check()
    out = Path(cfg.out)
    urdf_path, gt_path = sidecar_paths(out)
    for p in (out, urdf_path, gt_path):
        if p.exists():
            raise FileExistsError(f"{p}: already exists, not overwriting")
    out.parent.mkdir(parents=True, exist_ok=True)

    arm = default_arm()
    scene = random_scene(cfg.seed, cfg.n_objects, cfg.distractor, cfg.baseline_m, cfg.objects_from)
    img_stamps, joint_stamps = episode_stamps(cfg)
    t0 = cfg.start_time_ns
    variety, sensor, color_fovy = None, cfg.sensor, scene.color_fovy_deg
    if cfg.variety is None:
        traj = plan_trajectory(arm, scene, (joint_stamps[-1] - t0) / 1e9, cfg.seed)
    else:  # planned in the classic world with the variety's view, rendered in the varied, scaled world
        variety = draw_variety(cfg.seed, scene, cfg.variety)
        plan_scene = dataclasses.replace(scene, objects=scene.objects + variety.obstacles,
                                         look_target=np.array(variety.look_target))
        traj = plan_trajectory(arm, plan_scene, (joint_stamps[-1] - t0) / 1e9, cfg.seed,
                               elevation_deg=variety.elevation_deg, aim_offset_m=variety.aim_offset_m)
        arm, scene, variety = scale_world(arm, scene, variety)
        sensor, color_fovy = variety.sensor, variety.fovy_deg(cfg.width, cfg.height)
        # One noise generator per camera, so the colour images do not depend on whether stereo is recorded.
        effects_rngs = [np.random.default_rng([cfg.seed, VARIETY_STREAM, 1, k]) for k in range(3)]
    model, index, _ = build_model(arm, scene, cfg.width, cfg.height, variety)
    data, kin = mujoco.MjData(model), mujoco.MjData(model)
    K_color = intrinsics_from_fovy(color_fovy, cfg.width, cfg.height)
    K_stereo = intrinsics_from_fovy(scene.stereo.fovy_deg, cfg.width, cfg.height)
    urdf = arm_to_urdf(arm)
    factory = MessageFactory(cfg.distro)
    sensor_rng = np.random.default_rng([cfg.seed, 11])

    # Joint-state samples: positions, velocities, and the simulator's camera pose at each stamp.
    taus_j = (joint_stamps - t0) / 1e9
    q_j, v_j = traj.positions(taus_j), traj.velocities(taus_j)
    T_cam_j = np.zeros((len(joint_stamps), 4, 4))
    for j, q in enumerate(q_j):
        kin.qpos[index.qpos_adr] = q
        mujoco.mj_kinematics(model, kin)
        mujoco.mj_camlight(model, kin)  # cam_xpos/cam_xmat are computed here, not in mj_kinematics
        T_cam_j[j] = optical_pose_from_mujoco(kin.cam_xpos[index.wrist_camera], kin.cam_xmat[index.wrist_camera])

    gt = GroundTruthWriter(gt_path, cfg.frames, cfg.height, cfg.width, len(scene.all_objects))
    setup_s = time.perf_counter() - t_start
    t_loop = time.perf_counter()
    bag_created = False  # never delete a directory this call did not create
    try:
        wanted = None if cfg.stereo else [t for t in topics.TOPICS if t not in topics.STEREO_TOPICS]
        with RecordingWriter(out, cfg.storage, factory, wanted) as bag, SceneRenderer(model, index, cfg.width, cfg.height) as ren:
            bag_created = True
            bag.write(topics.TF_STATIC, t0, factory.tf_message(t0, static_edges(arm, scene)))
            bag.write(topics.ROBOT_DESCRIPTION, t0, factory.string(urdf))
            next_j = 0
            W, H, right_Tx = cfg.width, cfg.height, -K_stereo[0, 0] * scene.stereo.baseline  # P[0,3] = -fx B

            def flush_joints(until_ns: int) -> None:
                nonlocal next_j
                while next_j < len(joint_stamps) and joint_stamps[next_j] + TF_LATENCY_NS <= until_ns:
                    s = int(joint_stamps[next_j])
                    bag.write(topics.JOINT_STATES, s + JOINT_LATENCY_NS,
                              factory.joint_state(s, JOINT_NAMES, q_j[next_j], v_j[next_j]))
                    bag.write(topics.TF, s + TF_LATENCY_NS, factory.tf_message(s, joint_edges(arm, q_j[next_j])))
                    next_j += 1

            for i, stamp in enumerate(int(s) for s in img_stamps):
                tau = (stamp - t0) / 1e9
                q = traj.positions(tau)
                _set_state(model, data, index, scene, q, tau)
                rgb = ren.rgb(data, index.wrist_camera)
                depth = ren.depth(data, index.wrist_camera)
                labels = ren.labels(data, index.wrist_camera)
                if cfg.stereo:
                    left = ren.rgb(data, index.stereo_left_camera)
                    left_depth = ren.depth(data, index.stereo_left_camera)
                    right = ren.rgb(data, index.stereo_right_camera)
                else:
                    left = right = None
                    left_depth = np.full(depth.shape, np.nan, np.float32)
                depth_mm = sensor_depth_mm(depth, sensor_rng, sensor)
                if variety is not None:
                    gain = gain if i else auto_exposure_gain(rgb, variety.exposure)
                    rgb, left, right = (None if im is None else apply_camera_effects(
                        im, r, gain, variety.gamma, variety.blur_sigma, variety.noise_sigma, variety.shot_noise,
                        variety.vignette, variety.jpeg_quality) for im, r in zip((rgb, left, right), effects_rngs))

                log = stamp + IMAGE_LATENCY_NS
                flush_joints(log)
                bag.write(topics.COLOR_IMAGE, log, factory.image(stamp, COLOR_OPTICAL_FRAME, rgb, "rgb8"))
                bag.write(topics.COLOR_INFO, log, factory.camera_info(stamp, COLOR_OPTICAL_FRAME, W, H, K_color))
                bag.write(topics.DEPTH_IMAGE, log, factory.image(stamp, COLOR_OPTICAL_FRAME, depth_mm, "16UC1"))
                bag.write(topics.DEPTH_INFO, log, factory.camera_info(stamp, COLOR_OPTICAL_FRAME, W, H, K_color))
                if cfg.stereo:
                    bag.write(topics.LEFT_IMAGE, log, factory.image(stamp, STEREO_LEFT_FRAME, left, "rgb8"))
                    bag.write(topics.LEFT_INFO, log, factory.camera_info(stamp, STEREO_LEFT_FRAME, W, H, K_stereo))
                    bag.write(topics.RIGHT_IMAGE, log, factory.image(stamp, STEREO_RIGHT_FRAME, right, "rgb8"))
                    bag.write(topics.RIGHT_INFO, log, factory.camera_info(stamp, STEREO_RIGHT_FRAME, W, H, K_stereo,
                                                                          right_Tx))

                cam = index.wrist_camera
                gt.set_frame(
                    i, stamp_ns=stamp, T_world_color_optical=optical_pose_from_mujoco(data.cam_xpos[cam], data.cam_xmat[cam]),
                    depth_m=depth, stereo_left_depth_m=left_depth, object_ids=labels, joint_positions=q,
                    object_poses=_object_poses(data, index),
                )
                if progress is not None:
                    progress(i + 1, cfg.frames)
            flush_joints(np.iinfo(np.int64).max)
            counts = dict(bag.counts)
        gt.finish(**_static_groundtruth(cfg, scene, K_color, K_stereo, joint_stamps, q_j, T_cam_j, sensor, variety))
        tmp = urdf_path.with_name(urdf_path.name + ".part")
        tmp.write_text(urdf)
        os.replace(tmp, urdf_path)
    except BaseException:
        gt.abort()
        if bag_created:
            shutil.rmtree(out, ignore_errors=True)
            gt_path.unlink(missing_ok=True)
        raise
    loop_s = time.perf_counter() - t_loop
    return RecordingResult(out, urdf_path, gt_path, cfg.frames, counts, setup_s, loop_s, time.perf_counter() - t_start)


def _static_groundtruth(cfg, scene: SceneSpec, K_color, K_stereo, joint_stamps, q_j, T_cam_j, s: DepthSensorParams,
                        variety) -> dict:
    objs = scene.all_objects
    sizes = np.full((len(objs), 3), np.nan)
    for k, o in enumerate(objs):
        sizes[k, : len(o.size)] = o.size
    extra = {} if variety is None else {"variety_json": np.array(json.dumps(variety.summary()))}
    return dict(**extra,
        seed=np.int64(cfg.seed), T_world_stereo_left_optical=scene.stereo.T_world_left,
        T_world_stereo_right_optical=scene.stereo.T_world_right, T_world_base=scene.T_world_base,
        joint_names=np.array(JOINT_NAMES), joint_stamps_ns=joint_stamps, joint_state_positions=q_j,
        T_world_color_optical_at_joint_stamps=T_cam_j, K_color=K_color, K_stereo=K_stereo,
        baseline_m=np.float64(scene.stereo.baseline), width=np.int64(cfg.width), height=np.int64(cfg.height),
        object_labels=np.array([o.label for o in objs], dtype=np.int16), object_names=np.array([o.name for o in objs]),
        object_shapes=np.array([o.shape for o in objs]), object_sizes=sizes,
        object_is_distractor=np.array([o is scene.distractor for o in objs], dtype=bool),
        depth_sensor=np.array([s.min_range_m, s.max_range_m, s.edge_rel_threshold, s.edge_dilate_px, s.dropout]),
    )
