"""Per training mode: can this bag feed it, which topics would it use, and what is missing (and why).

Modes:

* ``mono`` (self-supervised video): colour images (>= 3 frames) + colour camera_info.
* ``supervised``: colour + depth registered to colour (same frame and size) + camera_info.
* ``stereo``: rectified left/right images + both camera_infos, same size, baseline > 0 from
  the right camera's ``P[0, 3] = -fx * B``.
* ``poses-tf``: the colour camera's optical frame is in the TF tree from ``/tf`` + ``/tf_static``.
* ``poses-fk``: joint states + a URDF (``--urdf`` or ``/robot_description``) containing the
  optical frame, with every actuated joint of its chain recorded.

Each check decodes the first message of the topics it needs through the same code the
training reader uses, so an unknown encoding or an uncalibrated camera shows up here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depth_nodes.geometry.camera import PinholeCamera
from depth_training.bags.decode import camera_from_info, decode_for_kind, stamp_ns_of
from depth_training.bags.errors import BagError
from depth_training.bags.reader import CAMERA_INFO_TYPE, IMAGE_TYPES, JOINT_STATE_TYPE, Bag
from depth_training.bags.summary import ModeReport, ScanResult, TopicConfig
from depth_training.kinematics.tf_buffer import TfError
from depth_training.kinematics.urdf_fk import UrdfError, UrdfKinematics

__all__ = ["check_modes"]


@dataclass(frozen=True)
class _Image:
    topic: str
    width: int
    height: int
    encoding: str
    frame_id: str
    count: int


class _Checks:
    def __init__(self, bag: Bag, config: TopicConfig, result: ScanResult):
        self.bag, self.config, self.result = bag, config, result
        self.fixed_frame: str | None = None
        self._images: dict[tuple[str, str], _Image | str] = {}
        self._cams: dict[str, PinholeCamera | str] = {}

    def image(self, role: str, kind: str) -> _Image | str:
        """The first image of the role's topic decoded as ``kind``, or the reason it is unusable."""
        key = (role, kind)
        if key not in self._images:
            topic = getattr(self.config, role)
            try:
                meta = self.bag.require_topic(topic, IMAGE_TYPES, role)
                msg = self.result.first.get(topic)
                if msg is None:
                    raise BagError(f"{self.bag.name}: {topic} ({role}): no message could be read")
                arr, enc = decode_for_kind(self.bag, topic, msg, meta.msgtype, kind, stamp_ns_of(msg))
                count = self.result.topics[topic].read or meta.count
                self._images[key] = _Image(topic, arr.shape[1], arr.shape[0], enc,
                                           msg.header.frame_id.lstrip("/"), count)
                self.result.topics[topic].detail = (f"{arr.shape[1]}x{arr.shape[0]} {enc}, "
                                                    f"frame {msg.header.frame_id or '(empty)'}")
            except BagError as exc:
                self._images[key] = str(exc)
        return self._images[key]

    def camera(self, role: str) -> PinholeCamera | str:
        if role not in self._cams:
            topic = getattr(self.config, role)
            try:
                self.bag.require_topic(topic, [CAMERA_INFO_TYPE], role)
                msg = self.result.first.get(topic)
                if msg is None:
                    raise BagError(f"{self.bag.name}: {topic} ({role}): no message could be read")
                cam = camera_from_info(msg, where=f"{self.bag.name}: {topic} ({role})")
                self._cams[role] = cam
                detail = f"{cam.width}x{cam.height} fx={cam.fx:.2f} fy={cam.fy:.2f} cx={cam.cx:.2f} cy={cam.cy:.2f}"
                if cam.baseline:
                    detail += f" baseline={cam.baseline:.4f} m"
                self.result.topics[topic].detail = detail
            except BagError as exc:
                self._cams[role] = str(exc)
        return self._cams[role]


def _size_check(img: _Image, cam: PinholeCamera, info_topic: str) -> str | None:
    if (img.width, img.height) != (cam.width, cam.height):
        return f"{img.topic} is {img.width}x{img.height} but {info_topic} says {cam.width}x{cam.height}"
    return None


def _mono(c: _Checks) -> ModeReport:
    rep = ModeReport("mono", False, {"color": c.config.color, "color_info": c.config.color_info})
    img, cam = c.image("color", "color"), c.camera("color_info")
    rep.missing += [x for x in (img, cam) if isinstance(x, str)]
    if isinstance(img, _Image) and img.count < 3:
        rep.missing.append(f"{img.topic}: self-supervised video needs at least 3 frames, the bag has {img.count}")
    if isinstance(img, _Image) and isinstance(cam, PinholeCamera):
        if err := _size_check(img, cam, c.config.color_info):
            rep.missing.append(err)
    rep.usable = not rep.missing
    return rep


def _supervised(c: _Checks) -> ModeReport:
    rep = ModeReport("supervised", False, {"color": c.config.color, "depth": c.config.depth,
                                           "color_info": c.config.color_info})
    img, depth, cam = c.image("color", "color"), c.image("depth", "depth"), c.camera("color_info")
    rep.missing += [x for x in (img, depth, cam) if isinstance(x, str)]
    if isinstance(img, _Image) and isinstance(depth, _Image):
        if (img.width, img.height) != (depth.width, depth.height):
            rep.missing.append(f"depth {depth.topic} is {depth.width}x{depth.height} but colour is "
                               f"{img.width}x{img.height}: depth must be registered to colour")
        if img.frame_id != depth.frame_id:
            rep.missing.append(f"depth {depth.topic} is in frame {depth.frame_id!r} but colour in {img.frame_id!r}: "
                               f"depth must be registered to colour (e.g. an aligned_depth_to_color topic)")
        rc, rd = c.result.topics[img.topic].rate_hz, c.result.topics[depth.topic].rate_hz
        if rc and rd and abs(rc - rd) > 0.2 * max(rc, rd):
            rep.notes.append(f"colour at {rc:.1f} Hz, depth at {rd:.1f} Hz: only nearest pairs within the "
                             f"tolerance are used")
    if isinstance(img, _Image) and isinstance(cam, PinholeCamera):
        if err := _size_check(img, cam, c.config.color_info):
            rep.missing.append(err)
    rep.usable = not rep.missing
    return rep


def _stereo(c: _Checks) -> ModeReport:
    cfg = c.config
    rep = ModeReport("stereo", False, {"left": cfg.left, "right": cfg.right, "left_info": cfg.left_info,
                                       "right_info": cfg.right_info})
    left, right = c.image("left", "color"), c.image("right", "color")
    cl, cr = c.camera("left_info"), c.camera("right_info")
    rep.missing += [x for x in (left, right, cl, cr) if isinstance(x, str)]
    if isinstance(left, _Image) and isinstance(right, _Image) and \
            (left.width, left.height) != (right.width, right.height):
        rep.missing.append(f"left is {left.width}x{left.height} but right is {right.width}x{right.height}")
    for img, cam, topic in ((left, cl, cfg.left_info), (right, cr, cfg.right_info)):
        if isinstance(img, _Image) and isinstance(cam, PinholeCamera) and (err := _size_check(img, cam, topic)):
            rep.missing.append(err)
    if isinstance(cr, PinholeCamera):
        if not cr.baseline > 0:
            rep.missing.append(f"{cfg.right_info}: P[0,3] = {cr.Tx} gives baseline {cr.baseline} m; a rectified "
                               f"right camera needs P[0,3] = -fx*B < 0")
        else:
            rep.notes.append(f"baseline {cr.baseline:.4f} m (from {cfg.right_info} P[0,3] = {cr.Tx:.4f})")
        if isinstance(cl, PinholeCamera) and not np.isclose(cl.fx, cr.fx, rtol=1e-6):
            rep.missing.append(f"left fx {cl.fx} != right fx {cr.fx}: the images are not a rectified pair")
    rep.usable = not rep.missing
    return rep


def _camera_frame(c: _Checks) -> tuple[str | None, str]:
    """``(optical frame, image topic)`` of the colour camera, whose poses the pose modes give (``mono
    --pose-source``, ``descriptors``); ``(None, why)`` when its image topic is not usable. Never the
    left stereo camera instead: its (usually fixed) frame would blame TF for the missing colour topic."""
    img = c.image("color", "color")
    if isinstance(img, _Image):
        return img.frame_id, img.topic
    return None, f"no camera frame to look up: {img}"


_MOTION_SAMPLES = 64  # image stamps (evenly spaced over the topic's span) whose camera pose is measured


def _motion_check(rep: ModeReport, c: _Checks, topic: str, frame: str, source, kind: str) -> None:
    """Add the camera-motion verdict of ``source`` over the image topic's span to ``rep``."""
    from depth_training.kinematics.motion import camera_motion, motion_problem

    ts = c.result.topics.get(topic)
    if ts is None or ts.stamp_first_ns is None:
        return
    poses = []
    for t in np.linspace(ts.stamp_first_ns, ts.stamp_last_ns, _MOTION_SAMPLES).astype(np.int64):
        try:
            poses.append(source.lookup(frame, int(t)))
        except (LookupError, UrdfError, TfError):
            continue
    motion = camera_motion(np.asarray(poses).reshape(-1, 4, 4))
    problem = motion_problem(motion, frame, source.fixed_frame, kind, fixed_frame_given=c.fixed_frame is not None)
    if problem is not None:
        rep.missing.append(problem)
    else:
        rep.notes.append(f"camera moves up to {motion.max_translation_m:.3f} m and {motion.max_rotation_deg:.1f} deg "
                         f"in {source.fixed_frame!r} (sampled at {motion.poses} image stamps)")


def _poses_tf(c: _Checks) -> ModeReport:
    cfg, tf = c.config, c.result.tf
    rep = ModeReport("poses-tf", False, {"tf": cfg.tf, "tf_static": cfg.tf_static})
    frame, topic = _camera_frame(c)
    if frame is None:
        rep.missing.append(topic)
    if tf is None:
        rep.missing.append(f"{c.bag.name}: neither {cfg.tf} nor {cfg.tf_static} (tf2_msgs/msg/TFMessage) is in the bag")
    rep.missing += c.result.tf_errors
    if frame is not None and tf is not None and not rep.missing:
        if frame not in tf.frames:
            rep.missing.append(f"frame {frame!r} of {topic} is not in the TF tree "
                               f"(frames: {', '.join(sorted(tf.frames))})")
        else:
            chain = tf.ancestors(frame)
            fixed = c.fixed_frame or chain[-1]
            rep.uses["fixed_frame"] = fixed
            if len(chain) == 1:
                rep.missing.append(f"frame {frame!r} of {topic} has no parent in the TF tree")
            dynamic = [f for f in chain[:-1] if not tf.is_static(f)]
            rep.notes.append(f"{frame!r} in {chain[-1]!r} through {len(chain) - 1} edge(s), {len(dynamic)} moving")
            span = tf.time_range(chain[-1], frame)
            ts = c.result.topics[topic]
            if span and ts.stamp_first_ns is not None and (ts.stamp_first_ns < span[0] or ts.stamp_last_ns > span[1]):
                rep.notes.append(f"images of {topic} span {ts.stamp_first_ns / 1e9:.3f}.."
                                 f"{ts.stamp_last_ns / 1e9:.3f} s "
                                 f"but moving TF covers {span[0] / 1e9:.3f}..{span[1] / 1e9:.3f} s: frames outside "
                                 f"have no pose")
            gaps = [e for e in tf.edge_stats() if e.child in dynamic and e.max_gap_ns > tf.max_gap_ns]
            rep.notes += [f"gap of {e.max_gap_ns / 1e9:.3f} s on {e.parent!r} -> {e.child!r}: frames inside it "
                          f"have no pose" for e in gaps]
            if fixed not in tf.frames or tf.ancestors(fixed)[-1] != chain[-1]:
                rep.missing.append(f"--fixed-frame {fixed}: not connected to {frame!r} in the TF tree")
            elif not rep.missing:
                from depth_training.kinematics.camera_poses import TfPoseSource

                _motion_check(rep, c, topic, frame, TfPoseSource(tf, fixed), "tf")
    rep.usable = not rep.missing
    return rep


def _poses_fk(c: _Checks, urdf_path: str | Path | None) -> ModeReport:
    cfg = c.config
    rep = ModeReport("poses-fk", False, {"joint_states": cfg.joint_states})
    frame, topic = _camera_frame(c)
    if frame is None:
        rep.missing.append(topic)
    try:
        c.bag.require_topic(cfg.joint_states, [JOINT_STATE_TYPE], "joint_states")
    except BagError as exc:
        rep.missing.append(str(exc))
    kin = None
    try:
        if urdf_path is not None:
            kin = UrdfKinematics.from_file(urdf_path)
            rep.uses["urdf"] = str(urdf_path)
        elif c.result.robot_description is not None:
            kin = UrdfKinematics(c.result.robot_description, source=f"{c.bag.name}: {cfg.robot_description}")
            rep.uses["urdf"] = cfg.robot_description
        else:
            rep.missing.append(f"no URDF: pass --urdf FILE or record {cfg.robot_description} (std_msgs/msg/String)")
    except UrdfError as exc:
        rep.missing.append(str(exc))
    if kin is not None and frame is not None:
        rep.uses["fixed_frame"] = kin.root
        try:
            needed = kin.required_joints(frame)
            absent = [j for j in needed if j not in c.result.joint_names]
            if absent and cfg.joint_states in c.bag.topics:
                rep.missing.append(f"{cfg.joint_states}: joint(s) {', '.join(absent)} of the chain "
                                   f"{kin.root!r} -> {frame!r} are never recorded")
            rep.notes.append(f"{frame!r} in {kin.root!r} through {len(kin.chain(frame))} joint(s), "
                             f"{len(needed)} actuated")
        except UrdfError as exc:
            rep.missing.append(str(exc))
        if not rep.missing:
            from depth_training.kinematics.camera_poses import FkPoseSource, load_joint_states

            try:
                fixed = c.fixed_frame
                tf = c.result.tf if fixed not in (None, kin.root) else None
                if fixed not in (None, kin.root) and tf is None:
                    raise UrdfError(f"--fixed-frame {fixed}: not the URDF root {kin.root!r}, and the bag has no TF")
                source = FkPoseSource(kin, load_joint_states(c.bag, cfg.joint_states), fixed_frame=fixed, tf=tf)
                rep.uses["fixed_frame"] = source.fixed_frame
                _motion_check(rep, c, topic, frame, source, "fk")
            except (UrdfError, TfError, BagError) as exc:
                rep.missing.append(str(exc))
    rep.usable = not rep.missing
    return rep


def check_modes(bag: Bag, config: TopicConfig, result: ScanResult, *,
                urdf_path: str | Path | None = None, fixed_frame: str | None = None) -> list[ModeReport]:
    """The reports of all modes, in the order mono, stereo, supervised, poses-tf, poses-fk.

    The pose modes also measure the camera's motion in ``fixed_frame`` (default: the TF tree's /
    URDF's root) and are not usable when it does not translate
    (:func:`~depth_training.kinematics.motion.motion_problem`).
    """
    checks = _Checks(bag, config, result)
    checks.fixed_frame = fixed_frame
    try:
        reports = [_mono(checks), _stereo(checks), _supervised(checks), _poses_tf(checks), _poses_fk(checks, urdf_path)]
    except TfError as exc:  # a broken tree found while walking it
        raise BagError(str(exc)) from None
    for role in ("depth_info",):  # describe configured topics not used by a mode check
        if getattr(config, role) in bag.topics:
            checks.camera(role)
    return reports
