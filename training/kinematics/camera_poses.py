"""Camera poses for the images of a bag, from the recorded TF tree or from joint states + URDF.

Two pose sources with the same interface (``fixed_frame``, ``lookup(frame, stamp_ns) -> T``):

* :class:`TfPoseSource`: ``T_fixed_frame = TfBuffer.lookup(fixed_frame, frame, t)``.
* :class:`FkPoseSource`: ``T_fixed_frame = T_fixed_root(t) @ FK_root_frame(q(t))`` where
  ``q(t)`` are the joint positions interpolated at ``t`` and ``T_fixed_root`` comes from TF
  (static or dynamic, e.g. a mobile base) when the fixed frame is not the URDF root.

The loaders read the needed topics of a bag (``/tf``, ``/tf_static``, ``/joint_states``,
``/robot_description``: names are arguments) and :func:`camera_poses` gives the pose of an
image topic's frame at every image stamp.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depth_training.bags.errors import BagDecodeError, BagTopicError, BagWarning, format_stamp
from depth_training.bags.reader import IMAGE_TYPES, JOINT_STATE_TYPE, STRING_TYPE, TF_TYPES, Bag
from depth_training.kinematics.tf_buffer import TfBuffer, TfError
from depth_training.kinematics.urdf_fk import JointStateTrack, UrdfError, UrdfKinematics

__all__ = [
    "TfPoseSource",
    "FkPoseSource",
    "CameraPoses",
    "load_tf_buffer",
    "load_joint_states",
    "load_urdf",
    "image_stamps",
    "camera_poses",
]

_S = 1_000_000_000


class TfPoseSource:
    """Poses from a :class:`TfBuffer`: ``lookup(frame, t) = T_fixed_frame``."""

    def __init__(self, tf: TfBuffer, fixed_frame: str):
        self.tf, self.fixed_frame = tf, fixed_frame

    def lookup(self, frame: str, stamp_ns: int) -> np.ndarray:
        return self.tf.lookup(self.fixed_frame, frame, stamp_ns)


class FkPoseSource:
    """Poses from URDF forward kinematics at interpolated joint positions.

    Args:
        kinematics: the robot model.
        joints: recorded joint positions.
        fixed_frame: frame the poses are expressed in; defaults to the URDF root.
        tf: needed when ``fixed_frame`` is not the URDF root: gives ``T_fixed_root(t)``.
    """

    def __init__(self, kinematics: UrdfKinematics, joints: JointStateTrack, *, fixed_frame: str | None = None,
                 tf: TfBuffer | None = None):
        self.kinematics, self.joints, self.tf = kinematics, joints, tf
        self.fixed_frame = fixed_frame or kinematics.root
        if self.fixed_frame != kinematics.root and tf is None:
            raise UrdfError(f"{kinematics.source}: poses in {self.fixed_frame!r} need TF from there to the URDF "
                            f"root {kinematics.root!r}; pass tf= or use fixed_frame={kinematics.root!r}")
        self._continuous = {j for j in kinematics.actuated_joint_names if kinematics.joint_type(j) == "continuous"}

    def lookup(self, frame: str, stamp_ns: int) -> np.ndarray:
        needed = self.kinematics.required_joints(frame)
        q = self.joints.positions_at(stamp_ns, needed, self._continuous)
        T_root_frame = self.kinematics.link_pose(frame, q)
        if self.fixed_frame == self.kinematics.root:
            return T_root_frame
        return self.tf.lookup(self.fixed_frame, self.kinematics.root, stamp_ns) @ T_root_frame


def load_tf_buffer(bag: Bag, tf_topic: str | None = "/tf", tf_static_topic: str | None = "/tf_static", *,
                   tolerance_s: float = 0.0, max_gap_s: float | None = 0.5) -> TfBuffer:
    """A :class:`TfBuffer` with every transform of the two topics (either may be absent, not both).

    Raises:
        BagTopicError: neither topic in the bag, or one has the wrong type.
    """
    present = [t for t in (tf_topic, tf_static_topic) if t and t in bag.topics]
    if not present:
        raise BagTopicError(f"{bag.name}: no TF: neither {tf_topic} nor {tf_static_topic} is in the bag")
    for topic in present:
        bag.require_topic(topic, TF_TYPES, "tf")
    buf = TfBuffer(tolerance_ns=int(round(tolerance_s * _S)),
                   max_gap_ns=None if max_gap_s is None else int(round(max_gap_s * _S)),
                   source=f"{bag.name}: TF")
    for raw, msg in bag.messages(present):
        try:
            buf.add_tf_message(msg, static=raw.topic == tf_static_topic, origin=raw.topic)
        except TfError as exc:
            raise BagDecodeError(f"{exc} (message logged at {format_stamp(raw.log_ns)})") from None
    return buf


def load_joint_states(bag: Bag, topic: str = "/joint_states", *, tolerance_s: float = 0.0,
                      max_gap_s: float | None = 0.5) -> JointStateTrack:
    """Every joint position of ``topic`` as a :class:`JointStateTrack`."""
    bag.require_topic(topic, [JOINT_STATE_TYPE], "joint states")
    track = JointStateTrack(tolerance_ns=int(round(tolerance_s * _S)),
                            max_gap_ns=None if max_gap_s is None else int(round(max_gap_s * _S)),
                            source=f"{bag.name}: {topic}")
    for raw, msg in bag.messages([topic]):
        try:
            track.add_message(msg)
        except UrdfError as exc:
            raise BagDecodeError(f"{exc} (logged at {format_stamp(raw.log_ns)})") from None
    if track.without_positions:
        warnings.warn(BagWarning(f"{bag.name}: {topic}: {track.without_positions} message(s) without positions "
                                 f"(velocity/effort only) were ignored"), stacklevel=2)
    return track


def load_urdf(bag: Bag | None, urdf_path: str | Path | None = None,
              topic: str = "/robot_description") -> UrdfKinematics:
    """The robot model from ``urdf_path`` if given, else from the last String on ``topic``.

    Raises:
        BagTopicError: no file given and no description in the bag. UrdfError: unparsable URDF.
    """
    if urdf_path is not None:
        return UrdfKinematics.from_file(urdf_path)
    if bag is None:
        raise UrdfError("no URDF: give a URDF file or a bag with a robot_description topic")
    if topic not in bag.topics:
        raise BagTopicError(f"{bag.name}: {topic}: no robot description in the bag; pass --urdf FILE")
    bag.require_topic(topic, [STRING_TYPE], "robot_description")
    text = None
    for _, msg in bag.messages([topic]):
        text = msg.data
    return UrdfKinematics(text or "", source=f"{bag.name}: {topic}")


def image_stamps(bag: Bag, topic: str) -> tuple[np.ndarray, str]:
    """``(stamps_ns (N,) int64 sorted, frame_id)`` of an image topic (pixels are not decoded).

    Repeated stamps are kept and warned about (:class:`BagWarning`).
    """
    bag.require_topic(topic, IMAGE_TYPES, "image")
    stamps, frame_id = [], None
    for raw in bag.raw_messages([topic]):
        stamps.append(bag.header_stamp_ns(raw))
        if frame_id is None:
            frame_id = bag.deserialize(raw).header.frame_id.lstrip("/")
    arr = np.sort(np.asarray(stamps, dtype=np.int64))
    if len(arr) > 1 and np.any(np.diff(arr) == 0):
        dup = arr[1:][np.diff(arr) == 0]
        warnings.warn(BagWarning(f"{bag.name}: {topic}: {len(dup)} image(s) repeat an earlier stamp, first at "
                                 f"{format_stamp(int(dup[0]))}"), stacklevel=2)
    return arr, frame_id or ""


@dataclass(frozen=True)
class CameraPoses:
    """``T_fixed_camera[i]`` ``(4, 4)`` is the pose of ``frame_id`` in ``fixed_frame`` at ``stamps_ns[i]``."""

    topic: str
    frame_id: str
    fixed_frame: str
    stamps_ns: np.ndarray  # (N,) int64
    T_fixed_camera: np.ndarray  # (N, 4, 4) float64


def camera_poses(bag: Bag, image_topic: str, source: TfPoseSource | FkPoseSource, *,
                 frame_id: str | None = None, skip_missing: bool = False) -> CameraPoses:
    """Poses of the image topic's optical frame (or ``frame_id``) at every image stamp.

    Args:
        skip_missing: drop images without a pose (extrapolation, gap) instead of raising;
            the returned stamps say which were kept.

    Raises:
        BagDecodeError: naming file, topic, time and the TF/FK problem.
    """
    stamps, header_frame = image_stamps(bag, image_topic)
    frame = frame_id or header_frame
    kept, poses = [], []
    for t in stamps:
        try:
            poses.append(source.lookup(frame, int(t)))
            kept.append(t)
        except (LookupError, UrdfError) as exc:
            if not skip_missing:
                raise BagDecodeError(f"{bag.name}: {image_topic}: no pose for {frame!r} at {format_stamp(t)}: "
                                     f"{exc}") from None
    return CameraPoses(image_topic, frame, source.fixed_frame, np.asarray(kept, dtype=np.int64),
                       np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4))
