"""rosbag2 writer for simulated recordings (``rosbags``; MCAP or sqlite3 storage, bag format 9).

Topics are those of a real arm with a wrist RGB-D camera and a fixed stereo pair (see
:data:`TOPICS`). ``/tf_static`` and ``/robot_description`` get the transient-local ("latched")
offered QoS profile in the bag metadata, as ``ros2 bag record`` stores them; all others are
reliable/volatile.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer

from .messages import MessageFactory

COLOR_IMAGE = "/camera/color/image_raw"
COLOR_INFO = "/camera/color/camera_info"
DEPTH_IMAGE = "/camera/depth/image_rect_raw"
DEPTH_INFO = "/camera/depth/camera_info"
LEFT_IMAGE = "/stereo/left/image_rect"
LEFT_INFO = "/stereo/left/camera_info"
RIGHT_IMAGE = "/stereo/right/image_rect"
RIGHT_INFO = "/stereo/right/camera_info"
TF = "/tf"
TF_STATIC = "/tf_static"
JOINT_STATES = "/joint_states"
ROBOT_DESCRIPTION = "/robot_description"

_IMAGE, _INFO = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"
# topic -> (message type, latched)
TOPICS: dict[str, tuple[str, bool]] = {
    COLOR_IMAGE: (_IMAGE, False), COLOR_INFO: (_INFO, False),
    DEPTH_IMAGE: (_IMAGE, False), DEPTH_INFO: (_INFO, False),
    LEFT_IMAGE: (_IMAGE, False), LEFT_INFO: (_INFO, False),
    RIGHT_IMAGE: (_IMAGE, False), RIGHT_INFO: (_INFO, False),
    TF: ("tf2_msgs/msg/TFMessage", False), TF_STATIC: ("tf2_msgs/msg/TFMessage", True),
    JOINT_STATES: ("sensor_msgs/msg/JointState", False), ROBOT_DESCRIPTION: ("std_msgs/msg/String", True),
}
STORAGE = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
_INFINITE = QosTime(sec=9223372036, nsec=854775807)  # RMW_DURATION_INFINITE as rosbag2 stores it


def offered_qos(latched: bool) -> Qos:
    """Reliable keep-last QoS; transient-local with depth 1 when ``latched``, else volatile depth 10."""
    return Qos(
        history=QosHistory.KEEP_LAST, depth=1 if latched else 10, reliability=QosReliability.RELIABLE,
        durability=QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
        deadline=_INFINITE, lifespan=_INFINITE, liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=_INFINITE, avoid_ros_namespace_conventions=False,
    )


STEREO_TOPICS = (LEFT_IMAGE, LEFT_INFO, RIGHT_IMAGE, RIGHT_INFO)


class RecordingWriter:
    """Opens a new bag directory with :data:`TOPICS` (all, or those in ``topics``, in :data:`TOPICS` order);
    :meth:`write` serialises and stores one message.

    Use as a context manager: on an exception the partly written bag directory is removed.
    """

    def __init__(self, path, storage: str, factory: MessageFactory, topics=None) -> None:
        if storage not in STORAGE:
            raise ValueError(f"RecordingWriter: storage must be one of {sorted(STORAGE)}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path}: already exists, not overwriting")
        self.factory = factory
        self.topics = {t: v for t, v in TOPICS.items() if topics is None or t in topics}
        self.counts = {topic: 0 for topic in self.topics}
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGE[storage])
        self._connections = {}

    def __enter__(self) -> "RecordingWriter":
        self._writer.open()
        try:
            for topic, (msgtype, latched) in self.topics.items():
                self._connections[topic] = self._writer.add_connection(
                    topic, msgtype, typestore=self.factory.typestore, offered_qos_profiles=[offered_qos(latched)]
                )
        except BaseException:
            self._discard()
            raise
        return self

    def write(self, topic: str, log_time_ns: int, msg) -> None:
        """Store ``msg`` on ``topic`` with bag (receive) time ``log_time_ns``."""
        conn = self._connections[topic]
        self._writer.write(conn, int(log_time_ns), self.factory.serialize(msg, conn.msgtype))
        self.counts[topic] += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._writer.close()
        else:
            self._discard()

    def _discard(self) -> None:
        try:
            self._writer.abort()
        finally:
            shutil.rmtree(self.path, ignore_errors=True)
