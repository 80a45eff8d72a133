"""Which topics of a recording a mode reads, checked before anything is decoded or trained.

A training run first *plans* every recording it was given (training and validation bags): it
opens each one, checks that the topics the mode needs exist with the right types, that their
camera_info is usable and, for a depth topic, that it is registered to the colour image (same
``frame_id``). Any problem is a :class:`~depth_training.cli.UserError` naming the bag and the
topic, raised before the first frame is decoded, so a run over ten bags does not fail on the
tenth after decoding nine. The result, a :class:`Recording`, knows how to decode itself into
cache rows (:mod:`.bag_frames`) later, including the pose source (TF or joint states + URDF)
for modes that use recorded camera motion.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from depth_training.bags import BagWarning, StreamSpec, TopicConfig, open_bag
from depth_training.bags.reader import IMAGE_TYPES, JOINT_STATE_TYPE, STRING_TYPE, TF_TYPES, Bag
from depth_training.cli import UserError
from depth_training.kinematics.camera_poses import (
    FkPoseSource,
    TfPoseSource,
    load_joint_states,
    load_tf_buffer,
    load_urdf,
)
from depth_training.kinematics.tf_buffer import TfError
from depth_training.kinematics.urdf_fk import UrdfError

from .bag_frames import FrameLayout, frames_from_bag

__all__ = ["POSE_SOURCES", "Recording", "DecodeOptions", "first_frame_id", "registered_depth", "plan_recording",
           "plan_rgbd_recording", "make_pose_source"]

LOG = logging.getLogger("depth_training.modes")
POSE_SOURCES = ("net", "tf", "fk")


@dataclass(frozen=True)
class DecodeOptions:
    """How frames are decoded (all of it goes into the cache key)."""

    width: int
    height: int
    tolerance_s: float = 0.015
    max_gap_s: float = 0.5
    on_error: str = "raise"

    def params(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "tolerance_s": self.tolerance_s,
                "max_gap_s": self.max_gap_s, "on_error": self.on_error}


@dataclass(frozen=True)
class Recording:
    """A checked recording: what to read from it and how to get camera poses.

    Attributes:
        path: the bag.
        layout: streams and stored fields (:class:`FrameLayout`).
        pose: ``"net"`` (no recorded poses), ``"tf"`` or ``"fk"``.
        topics: the topic names (TF, joint states, robot description are read for poses).
        urdf: URDF file for ``"fk"`` (``None``: the bag's robot description).
        notes: what was decided while planning (e.g. "no registered depth: no AbsRel").
    """

    path: Path
    layout: FrameLayout
    pose: str = "net"
    topics: TopicConfig = field(default_factory=TopicConfig)
    urdf: Path | None = None
    notes: tuple[str, ...] = ()
    fixed_frame: str | None = None  # poses are expressed in this frame (None: the TF root / URDF root)

    def cache_params(self, options: DecodeOptions) -> dict[str, Any]:
        """Everything that changes the decoded rows (the cache key hashes it with the bag path)."""
        params = {"format": "depth_training.modes/1", **options.params(), "camera": self.layout.camera_role,
                  "baseline": self.layout.baseline_role, "pose": self.pose,
                  "streams": [[s.role, s.topic, s.kind, s.camera_info] for s in self.layout.streams]}
        if self.pose == "tf":
            params["tf"] = [self.topics.tf, self.topics.tf_static]
        if self.pose != "net" and self.fixed_frame is not None:
            params["fixed_frame"] = self.fixed_frame
        if self.pose == "fk":
            params["joint_states"] = self.topics.joint_states
            if self.urdf is not None:
                st = Path(self.urdf).stat()
                params["urdf"] = [str(Path(self.urdf).resolve()), st.st_size, st.st_mtime_ns]
            else:
                params["urdf"] = self.topics.robot_description
        return params

    def rows(self, options: DecodeOptions) -> Iterator[dict[str, np.ndarray]]:
        """Decode the recording into cache rows; bag warnings go to the log as they come."""
        others: list = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", BagWarning)
                try:
                    with open_bag(self.path) as bag:
                        camera = next(s for s in self.layout.streams if s.role == self.layout.camera_role)
                        source = make_pose_source(bag, self.pose, self.topics, self.urdf,
                                                  first_frame_id(bag, camera.topic), fixed_frame=self.fixed_frame)
                        for row in frames_from_bag(bag, self.layout, width=options.width, height=options.height,
                                                   pose_source=source, tolerance_s=options.tolerance_s,
                                                   max_gap_s=options.max_gap_s, on_error=options.on_error):
                            _log_bag_warnings(caught, others)
                            yield row
                finally:
                    _log_bag_warnings(caught, others)
        finally:
            for w in others:  # not ours to turn into log lines: issued again as they were
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


#: ends the note of a training recording without registered depth (not shown when --val-bag validates)
NO_DEPTH_NOTE = ": frames held out from this recording are validated without depth metrics"


def _log_bag_warnings(caught: list, others: list) -> None:
    """Move recorded warnings out of ``caught``: bag warnings become log lines, the rest go to ``others``."""
    for w in caught:
        if issubclass(w.category, BagWarning):
            LOG.warning("%s", w.message)
        else:
            others.append(w)
    caught.clear()


def first_frame_id(bag: Bag, topic: str) -> str:
    """``header.frame_id`` (without a leading ``/``) of the topic's first message."""
    msg = bag.first_message(topic)
    return "" if msg is None else msg.header.frame_id.lstrip("/")


def registered_depth(bag: Bag, depth_topic: str, image_topic: str) -> tuple[StreamSpec | None, str]:
    """The depth stream registered to ``image_topic``, or ``None`` and the reason there is none.

    Registered means: the depth topic exists, is an image topic, and its frames carry the image's
    optical ``frame_id`` (e.g. RealSense ``aligned_depth_to_color``).
    """
    meta = bag.topics.get(depth_topic)
    if meta is None:
        return None, f"{bag.name}: {depth_topic}: no depth topic in the bag"
    bag.require_topic(depth_topic, IMAGE_TYPES, "depth")
    depth_frame, image_frame = first_frame_id(bag, depth_topic), first_frame_id(bag, image_topic)
    if depth_frame != image_frame:
        return None, (f"{bag.name}: {depth_topic}: depth is in frame {depth_frame!r}, not registered to "
                      f"{image_topic} (frame {image_frame!r})")
    return StreamSpec("depth", depth_topic, "depth"), ""


def _check_pose_topics(bag: Bag, pose: str, topics: TopicConfig, urdf: Path | None) -> None:
    if pose == "tf":
        present = [t for t in (topics.tf, topics.tf_static) if t in bag.topics]
        if not present:
            raise UserError(f"{bag.name}: {topics.tf}: --pose-source tf needs TF, but neither {topics.tf} nor "
                            f"{topics.tf_static} is in the bag")
        for t in present:
            bag.require_topic(t, TF_TYPES, "tf")
    elif pose == "fk":
        bag.require_topic(topics.joint_states, [JOINT_STATE_TYPE], "joint_states")
        if urdf is None:
            if topics.robot_description not in bag.topics:
                raise UserError(f"{bag.name}: {topics.robot_description}: --pose-source fk needs the robot "
                                f"description; it is not in the bag, pass --urdf FILE")
            bag.require_topic(topics.robot_description, [STRING_TYPE], "robot_description")
        elif not Path(urdf).is_file():
            raise UserError(f"{urdf}: no such URDF file")


def make_pose_source(bag: Bag, pose: str, topics: TopicConfig, urdf: Path | None, frame: str, *,
                     fixed_frame: str | None = None):
    """The camera pose source of ``bag`` (``None`` for ``pose="net"``).

    ``tf``: poses of ``frame`` in ``fixed_frame`` (default: the root of its TF tree). ``fk``: poses
    in ``fixed_frame`` (default: the URDF root) from the recorded joint states, plus TF from the
    fixed frame to the URDF root when they differ. Problems (frame not in the tree / URDF,
    unparsable URDF, fixed frame not connected) become a :class:`UserError` naming the bag.
    """
    if pose == "net":
        return None
    try:
        if pose == "tf":
            tf = load_tf_buffer(bag, topics.tf, topics.tf_static)
            chain = tf.ancestors(frame)
            if len(chain) == 1 and fixed_frame is None:
                raise UserError(f"{bag.name}: camera frame {frame!r} has no parent in the TF tree")
            if fixed_frame is not None and fixed_frame == frame:
                raise UserError(f"--fixed-frame {fixed_frame}: is the camera frame itself; poses in it never move")
            if fixed_frame is not None and fixed_frame not in tf.frames:
                raise UserError(f"{bag.name}: --fixed-frame {fixed_frame}: not in the TF tree "
                                f"(frames: {', '.join(sorted(tf.frames))})")
            if fixed_frame is not None and tf.ancestors(fixed_frame)[-1] != chain[-1]:
                raise UserError(f"{bag.name}: --fixed-frame {fixed_frame}: not connected to the camera frame "
                                f"{frame!r} in the TF tree (their roots: {tf.ancestors(fixed_frame)[-1]!r}, "
                                f"{chain[-1]!r})")
            return TfPoseSource(tf, fixed_frame or chain[-1])
        if pose == "fk":
            kinematics = load_urdf(bag, urdf, topics.robot_description)
            kinematics.required_joints(frame)  # the camera frame must be a link of the URDF
            tf = None
            if fixed_frame is not None and fixed_frame != kinematics.root:
                if topics.tf not in bag.topics and topics.tf_static not in bag.topics:
                    raise UserError(f"{bag.name}: --fixed-frame {fixed_frame}: is not the URDF root "
                                    f"{kinematics.root!r}, and the bag has no TF to relate the two")
                tf = load_tf_buffer(bag, topics.tf, topics.tf_static)
            return FkPoseSource(kinematics, load_joint_states(bag, topics.joint_states), fixed_frame=fixed_frame,
                                tf=tf)
    except (TfError, UrdfError) as exc:
        raise UserError(f"{bag.name}: camera poses from {pose}: {exc}") from None
    raise ValueError(f"pose: expected one of {POSE_SOURCES}, got {pose!r}")


def plan_recording(path: Path, streams: list[StreamSpec], *, camera_role: str, baseline_role: str | None = None,
                   optional_depth: tuple[str, str] | None = None, pose: str = "net",
                   topics: TopicConfig = TopicConfig(), urdf: Path | None = None,
                   check: Any = None, fixed_frame: str | None = None) -> Recording:
    """Open ``path`` and check it for a mode (see module docstring).

    Args:
        streams: required streams, reference first (topic types and camera_info are checked).
        optional_depth: ``(depth_topic, image_topic)``: add the depth stream when the bag has it
            registered to the image (validation only); otherwise a note says why not.
        check: optional ``check(bag) -> None`` with mode-specific tests (e.g. the stereo baseline).
        fixed_frame: the frame recorded poses are expressed in (``pose`` tf/fk; default the tree's root).

    With recorded poses, the camera must translate over the recording
    (:func:`~depth_training.kinematics.motion.motion_problem`); otherwise a :class:`UserError`
    gives the numbers and the frames.
    """
    from depth_training.bags.decode import CameraInfoTrack, check_image_kind_types

    if pose not in POSE_SOURCES:
        raise ValueError(f"pose: expected one of {POSE_SOURCES}, got {pose!r}")
    seen: dict[str, str] = {}
    for spec in streams:  # e.g. --topics depth=<the colour topic>: one line, not the reader's ValueError
        if spec.topic in seen:
            raise UserError(f"{path}: {spec.topic} is given as both the {seen[spec.topic]} and the {spec.role} "
                            f"topic (--topics): each needs its own topic")
        seen[spec.topic] = spec.role
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BagWarning)  # reported when the bag is decoded
        with open_bag(path) as bag:
            for spec in streams:
                check_image_kind_types(bag, spec.topic, spec.kind, "color" if spec.role == "image" else spec.role)
                if spec.camera_info:
                    CameraInfoTrack.first_of(bag, spec.camera_info)
            streams = list(streams)
            if optional_depth is not None:
                depth, why = registered_depth(bag, *optional_depth)
                if depth is not None:
                    streams.append(depth)
                else:
                    notes.append(f"{why}{NO_DEPTH_NOTE}")
            _check_pose_topics(bag, pose, topics, urdf)
            if pose != "net":
                notes.append(check_camera_motion(bag, pose, topics, urdf, streams[0].topic, fixed_frame))
            if check is not None:
                check(bag)
    layout = FrameLayout(tuple(streams), camera_role, baseline_role)
    return Recording(Path(path), layout, pose, topics, Path(urdf) if urdf is not None else None, tuple(notes),
                     fixed_frame)



def plan_rgbd_recording(path: Path, topics: TopicConfig, mode: str, *, pose: str = "net",
                        urdf: Path | None = None) -> Recording:
    """:func:`plan_recording` for a colour image (with camera_info) and a depth image registered to it,
    the reference being the image (``supervised`` and ``descriptors``); a bag without registered
    depth is refused naming ``mode`` and the ``--topics depth=TOPIC`` that would fix it."""
    def check_depth(bag) -> None:
        depth, why = registered_depth(bag, topics.depth, topics.color)
        if depth is None:
            raise UserError(f"{why}; {mode} training needs depth registered to the colour image "
                            f"(--topics depth=TOPIC)")

    return plan_recording(path, [StreamSpec("image", topics.color, "color", topics.color_info),
                                 StreamSpec("depth", topics.depth, "depth")],
                          camera_role="image", pose=pose, topics=topics, urdf=urdf, check=check_depth)


def sample_stamps(bag: Bag, topic: str, count: int = 64) -> list[int]:
    """Header stamps of up to ``count`` messages of ``topic`` spread evenly over the recording.

    Reads one message per window of log time (the bag's index seeks to it), not the whole topic, so
    the check costs the same for a 10 GB recording as for a small one.
    """
    start, end = bag.start_ns, bag.end_ns + 1
    edges = np.linspace(start, end, count + 1).astype(np.int64)
    stamps = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        for raw in bag.raw_messages([topic], start_ns=int(lo), stop_ns=int(max(hi, lo + 1))):
            stamps.append(bag.header_stamp_ns(raw))
            break
    return stamps


def check_camera_motion(bag: Bag, pose: str, topics: TopicConfig, urdf: Path | None, image_topic: str,
                        fixed_frame: str | None = None) -> str:
    """Refuse recorded poses without camera translation (:class:`UserError` with the numbers and frames).

    Returns a note with the measured motion for the log.
    """
    from depth_training.kinematics.motion import camera_motion, motion_problem

    frame = first_frame_id(bag, image_topic)
    source = make_pose_source(bag, pose, topics, urdf, frame, fixed_frame=fixed_frame)
    poses = []
    for stamp in sample_stamps(bag, image_topic):
        try:
            poses.append(source.lookup(frame, stamp))
        except (LookupError, TfError, UrdfError):
            continue  # no pose there (gap, outside TF): the decoder reports such frames
    motion = camera_motion(np.asarray(poses).reshape(-1, 4, 4))
    problem = motion_problem(motion, frame, source.fixed_frame, pose, fixed_frame_given=fixed_frame is not None)
    if problem is not None:
        raise UserError(f"{bag.name}: --pose-source {pose}: {problem}")
    return (f"{bag.name}: camera {frame!r} moves up to {motion.max_translation_m:.3f} m and "
            f"{motion.max_rotation_deg:.1f} deg in {source.fixed_frame!r} ({pose} poses of {motion.poses} images)")
