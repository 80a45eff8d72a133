"""Writing small recordings from numpy data (rosbag2 MCAP / sqlite3, ROS 1), with ``rosbags``.

Used by the tests and the benchmark to produce real bag files, and handy for turning other
data into bags. Messages are built from the typestore of the target format, so ROS 1 bags get
ROS 1 field names (``CameraInfo.K``, ``Header.seq``). The log (receive) time defaults to the
header stamp; pass ``log_ns`` to record a latency or out-of-order arrival.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from depth_nodes.geometry.camera import PinholeCamera
from depth_nodes.image_encodings import encode_image
from depth_training.kinematics.transforms import matrix_to_quat

__all__ = ["BagWriter"]

FORMATS = ("mcap", "sqlite3", "ros1")


class BagWriter:
    """Context manager writing one recording.

    Args:
        path: rosbag2 directory (``mcap``/``sqlite3``) or ``.bag`` file (``ros1``); must not exist.
        fmt: ``"mcap"``, ``"sqlite3"`` or ``"ros1"``.
    """

    def __init__(self, path: str | Path, fmt: str = "mcap"):
        from rosbags.typesys import Stores, get_typestore

        if fmt not in FORMATS:
            raise ValueError(f"fmt: expected one of {FORMATS}, got {fmt!r}")
        self.path, self.fmt = Path(path), fmt
        self.ros1 = fmt == "ros1"
        self.typestore = get_typestore(Stores.ROS1_NOETIC if self.ros1 else Stores.ROS2_KILTED)
        if "tf2_msgs/msg/TFMessage" not in self.typestore.types:  # rosbags' noetic store lacks tf2_msgs
            from rosbags.typesys import get_types_from_msg

            self.typestore.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms",
                                                       "tf2_msgs/msg/TFMessage"))
        self._conns: dict[str, object] = {}
        self._seq: dict[str, int] = {}
        if self.ros1:
            from rosbags.rosbag1 import Writer

            self._writer = Writer(self.path)
        else:
            from rosbags.rosbag2 import StoragePlugin, Writer

            plugin = StoragePlugin.MCAP if fmt == "mcap" else StoragePlugin.SQLITE3
            self._writer = Writer(self.path, version=9, storage_plugin=plugin)

    def __enter__(self) -> "BagWriter":
        self._writer.open()
        return self

    def __exit__(self, *exc) -> None:
        self._writer.close()

    # ------------------------------------------------------------------ basics
    def _t(self, name: str):
        return self.typestore.types[name]

    def _time(self, stamp_ns: int):
        sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
        return self._t("builtin_interfaces/msg/Time")(sec=sec, nanosec=nsec)

    def header(self, topic: str, stamp_ns: int, frame_id: str):
        Header = self._t("std_msgs/msg/Header")
        if self.ros1:
            seq = self._seq[topic] = self._seq.get(topic, -1) + 1
            return Header(seq=seq, stamp=self._time(stamp_ns), frame_id=frame_id)
        return Header(stamp=self._time(stamp_ns), frame_id=frame_id)

    def write(self, topic: str, msg, log_ns: int) -> None:
        """Serialise ``msg`` (a typestore object) on ``topic`` with log time ``log_ns``."""
        msgtype = msg.__msgtype__
        conn = self._conns.get(topic)
        if conn is None:
            kw = {}
            if self.ros1 and topic in ("/tf_static", "/robot_description"):
                kw["latching"] = 1
            conn = self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=self.typestore, **kw)
        data = (self.typestore.serialize_ros1 if self.ros1 else self.typestore.serialize_cdr)(msg, msgtype)
        self._writer.write(conn, int(log_ns), data)

    # ------------------------------------------------------------------ messages
    def image(self, topic: str, stamp_ns: int, array: np.ndarray, encoding: str, frame_id: str,
              log_ns: int | None = None) -> None:
        """sensor_msgs/Image through :func:`depth_nodes.image_encodings.encode_image`."""
        enc = encode_image(array, encoding)
        msg = self._t("sensor_msgs/msg/Image")(
            header=self.header(topic, stamp_ns, frame_id), height=enc.height, width=enc.width,
            encoding=enc.encoding, is_bigendian=enc.is_bigendian, step=enc.step,
            data=np.frombuffer(enc.data, dtype=np.uint8))
        self.write(topic, msg, stamp_ns if log_ns is None else log_ns)

    def raw_image(self, topic: str, stamp_ns: int, *, height: int, width: int, encoding: str, step: int,
                  data: bytes, frame_id: str, is_bigendian: int = 0, log_ns: int | None = None) -> None:
        """sensor_msgs/Image with arbitrary fields (for recordings with unusual or broken images)."""
        msg = self._t("sensor_msgs/msg/Image")(
            header=self.header(topic, stamp_ns, frame_id), height=height, width=width, encoding=encoding,
            is_bigendian=is_bigendian, step=step, data=np.frombuffer(data, dtype=np.uint8))
        self.write(topic, msg, stamp_ns if log_ns is None else log_ns)

    def compressed_image(self, topic: str, stamp_ns: int, array_bgr: np.ndarray, frame_id: str,
                         fmt: str = "jpeg", log_ns: int | None = None) -> None:
        """sensor_msgs/CompressedImage (OpenCV ``imencode``; colour arrays in BGR order)."""
        import cv2

        ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", array_bgr)
        if not ok:
            raise ValueError(f"cannot encode image as {fmt}")
        fmt_str = f"bgr8; {fmt} compressed bgr8" if array_bgr.ndim == 3 else fmt
        msg = self._t("sensor_msgs/msg/CompressedImage")(
            header=self.header(topic, stamp_ns, frame_id), format=fmt_str, data=buf.reshape(-1))
        self.write(topic, msg, stamp_ns if log_ns is None else log_ns)

    def camera_info(self, topic: str, stamp_ns: int, camera: PinholeCamera, frame_id: str,
                    log_ns: int | None = None) -> None:
        """sensor_msgs/CameraInfo of ``camera`` (its K, D, R, P; ROS 1 field names for ROS 1 bags)."""
        Roi = self._t("sensor_msgs/msg/RegionOfInterest")
        arrays = {"d": np.asarray(camera.D, dtype=np.float64), "k": camera.K.reshape(-1).copy(),
                  "r": camera.R.reshape(-1).copy(), "p": camera.P.reshape(-1).copy()}
        if self.ros1:
            arrays = {k.upper(): v for k, v in arrays.items()}
        msg = self._t("sensor_msgs/msg/CameraInfo")(
            header=self.header(topic, stamp_ns, frame_id), height=camera.height, width=camera.width,
            distortion_model=camera.distortion_model, binning_x=0, binning_y=0,
            roi=Roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False), **arrays)
        self.write(topic, msg, stamp_ns if log_ns is None else log_ns)

    def tf(self, topic: str, transforms: list[tuple[str, str, int, np.ndarray]], log_ns: int | None = None) -> None:
        """tf2_msgs/TFMessage of ``(parent, child, stamp_ns, T_parent_child (4, 4))`` entries."""
        Vector3, Quaternion = self._t("geometry_msgs/msg/Vector3"), self._t("geometry_msgs/msg/Quaternion")
        Transform, TS = self._t("geometry_msgs/msg/Transform"), self._t("geometry_msgs/msg/TransformStamped")
        out = []
        for parent, child, stamp, T in transforms:
            T = np.asarray(T, dtype=np.float64)
            q = matrix_to_quat(T[:3, :3])
            out.append(TS(header=self.header(topic, stamp, parent), child_frame_id=child,
                          transform=Transform(translation=Vector3(x=T[0, 3], y=T[1, 3], z=T[2, 3]),
                                              rotation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]))))
        msg = self._t("tf2_msgs/msg/TFMessage")(transforms=out)
        self.write(topic, msg, max(t[2] for t in transforms) if log_ns is None else log_ns)

    def joint_state(self, topic: str, stamp_ns: int, names: list[str], positions, log_ns: int | None = None) -> None:
        """sensor_msgs/JointState with positions only."""
        msg = self._t("sensor_msgs/msg/JointState")(
            header=self.header(topic, stamp_ns, ""), name=list(names),
            position=np.asarray(positions, dtype=np.float64), velocity=np.zeros(0), effort=np.zeros(0))
        self.write(topic, msg, stamp_ns if log_ns is None else log_ns)

    def string(self, topic: str, text: str, log_ns: int) -> None:
        """std_msgs/String (e.g. ``/robot_description``)."""
        self.write(topic, self._t("std_msgs/msg/String")(data=text), log_ns)
