"""ROS 2 messages of a recording, built with a ``rosbags`` typestore (no rclpy needed).

Images are filled with :func:`depth_nodes.image_encodings.encode_image`, the same codec the nodes
and the bag readers use. ``CameraInfo`` follows the rectified stereo convention of
``image_pipeline``: ``P = [[fx, 0, cx, Tx], [0, fy, cy, 0], [0, 0, 1, 0]]`` with ``Tx = -fx * B``
for the right camera of a pair with baseline ``B`` and ``Tx = 0`` otherwise; ``R = I``; no
distortion (``plumb_bob``, five zeros).
"""
from __future__ import annotations

import numpy as np
from rosbags.typesys import Stores, get_typestore

from depth_nodes.image_encodings import encode_image

from .transforms import matrix_to_quat_wxyz

STORES = {"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY, "kilted": Stores.ROS2_KILTED}


class MessageFactory:
    """Builds message objects of one ROS 2 distro's typestore and serialises them to CDR."""

    def __init__(self, distro: str = "kilted") -> None:
        if distro not in STORES:
            raise ValueError(f"MessageFactory: unknown distro {distro!r}; expected one of {sorted(STORES)}")
        self.distro = distro
        self.typestore = get_typestore(STORES[distro])
        t = self.typestore.types
        self._Time = t["builtin_interfaces/msg/Time"]
        self._Header = t["std_msgs/msg/Header"]
        self._Image = t["sensor_msgs/msg/Image"]
        self._CameraInfo = t["sensor_msgs/msg/CameraInfo"]
        self._RegionOfInterest = t["sensor_msgs/msg/RegionOfInterest"]
        self._JointState = t["sensor_msgs/msg/JointState"]
        self._TFMessage = t["tf2_msgs/msg/TFMessage"]
        self._TransformStamped = t["geometry_msgs/msg/TransformStamped"]
        self._Transform = t["geometry_msgs/msg/Transform"]
        self._Vector3 = t["geometry_msgs/msg/Vector3"]
        self._Quaternion = t["geometry_msgs/msg/Quaternion"]
        self._String = t["std_msgs/msg/String"]

    def serialize(self, msg, msgtype: str) -> bytes:
        """CDR (little-endian) bytes of ``msg``."""
        return bytes(self.typestore.serialize_cdr(msg, msgtype))

    def header(self, stamp_ns: int, frame_id: str):
        """``std_msgs/Header`` with ``stamp = (ns // 1e9, ns % 1e9)``."""
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return self._Header(stamp=self._Time(sec=sec, nanosec=nanosec), frame_id=frame_id)

    def image(self, stamp_ns: int, frame_id: str, array: np.ndarray, encoding: str):
        """``sensor_msgs/Image`` of ``array`` ((H,W) or (H,W,C)) in ``encoding``."""
        enc = encode_image(array, encoding)
        return self._Image(
            header=self.header(stamp_ns, frame_id), height=enc.height, width=enc.width, encoding=enc.encoding,
            is_bigendian=enc.is_bigendian, step=enc.step, data=np.frombuffer(enc.data, dtype=np.uint8),
        )

    def camera_info(self, stamp_ns: int, frame_id: str, width: int, height: int, K: np.ndarray, Tx: float = 0.0):
        """Rectified ``sensor_msgs/CameraInfo``: ``k = K``, ``r = I``, ``p = [K | (Tx, 0, 0)^T]``, d = 0."""
        K = np.asarray(K, dtype=np.float64)
        P = np.zeros((3, 4))
        P[:, :3] = K
        P[0, 3] = Tx
        roi = self._RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        return self._CameraInfo(
            header=self.header(stamp_ns, frame_id), height=height, width=width, distortion_model="plumb_bob",
            d=np.zeros(5), k=K.reshape(-1).copy(), r=np.eye(3).reshape(-1), p=P.reshape(-1),
            binning_x=0, binning_y=0, roi=roi,
        )

    def transform_stamped(self, stamp_ns: int, parent: str, child: str, T: np.ndarray):
        """``geometry_msgs/TransformStamped`` of ``T_parent_child`` (4,4) (quaternion as x, y, z, w)."""
        w, x, y, z = matrix_to_quat_wxyz(T[:3, :3])
        t = T[:3, 3]
        return self._TransformStamped(
            header=self.header(stamp_ns, parent), child_frame_id=child,
            transform=self._Transform(
                translation=self._Vector3(x=float(t[0]), y=float(t[1]), z=float(t[2])),
                rotation=self._Quaternion(x=float(x), y=float(y), z=float(z), w=float(w)),
            ),
        )

    def tf_message(self, stamp_ns: int, edges: list[tuple[str, str, np.ndarray]]):
        """``tf2_msgs/TFMessage`` with one transform per ``(parent, child, T_parent_child)``."""
        return self._TFMessage(transforms=[self.transform_stamped(stamp_ns, p, c, T) for p, c, T in edges])

    def joint_state(self, stamp_ns: int, names, positions, velocities):
        """``sensor_msgs/JointState`` (no efforts)."""
        return self._JointState(
            header=self.header(stamp_ns, ""), name=list(names),
            position=np.asarray(positions, dtype=np.float64).copy(),
            velocity=np.asarray(velocities, dtype=np.float64).copy(), effort=np.zeros(0),
        )

    def string(self, text: str):
        """``std_msgs/String``."""
        return self._String(data=text)
