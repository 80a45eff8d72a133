"""Driving real nodes from another process: used by the tests, the demo and the benchmarks.

:class:`NodeProcess` runs a node's console script in a subprocess (its log in a file);
:class:`RosIO` is an in-process rclpy node spun in a background thread with helpers to publish
and collect messages; :func:`stereo_messages` turns a synthetic scene into the four input
messages of ``stereo_depth_node``. Set ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a
``ROS_DOMAIN_ID`` of your own before using them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo

from depth_nodes.geometry.camera import PinholeCamera
from depth_nodes.ros.image_conversion import numpy_to_image

VENV_BIN = Path(sys.executable).parent


class NodeProcess:
    """Run a console-script node in a subprocess; its log goes to a file we can read."""

    def __init__(self, executable: str, *ros_args: str, log_path: Path, env: dict | None = None,
                 before_ros_args: tuple[str, ...] = ()):
        self.log_path = log_path
        exe = VENV_BIN / executable
        cmd = [str(exe) if exe.exists() else executable, *before_ros_args, "--ros-args", *ros_args]
        env = dict(os.environ if env is None else env, RCUTILS_LOGGING_BUFFERED_STREAM="0", PYTHONUNBUFFERED="1")
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for_log(self, text: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            if self.proc.poll() is not None:
                return text in self.log()
            time.sleep(0.05)
        return False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class RosIO:
    """An in-process rclpy node spun in a background thread, with helpers to publish and collect."""

    def __init__(self, name: str = "test_io"):
        if not rclpy.ok():
            rclpy.init()
        self.node = rclpy.create_node(name)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._stop = False
        self._lock = threading.Lock()
        self.received: dict[str, list] = {}
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while not self._stop and rclpy.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def publisher(self, msg_type, topic: str, depth: int = 5):
        return self.node.create_publisher(msg_type, topic, QoSProfile(depth=depth))

    def collect(self, msg_type, topic: str, depth: int = 5, best_effort: bool = False, raw: bool = False):
        """Keep every message on ``topic`` in ``received[topic]``.

        ``raw=True``: take the messages serialized (no conversion to Python objects) and keep only a
        :class:`RawSample` (stamp and size) of each; for benchmarks, where decoding megabytes per
        frame in this process would compete with the node for the CPU, and keeping them would grow
        the memory by as much.
        """
        self.received[topic] = []
        qos = QoSProfile(depth=depth)
        if best_effort:
            qos.reliability = ReliabilityPolicy.BEST_EFFORT
        if raw:
            offset = raw_stamp_offset(msg_type)

            def cb_raw(data: bytes, topic=topic):
                sample = RawSample(raw_stamp(data, offset), len(data))
                with self._lock:
                    self.received[topic].append(sample)

            return self.node.create_subscription(msg_type, topic, cb_raw, qos, raw=True)

        def cb(msg, topic=topic):
            with self._lock:
                self.received[topic].append(msg)

        return self.node.create_subscription(msg_type, topic, cb, qos)

    def messages(self, topic: str) -> list:
        with self._lock:
            return list(self.received[topic])

    def wait_for(self, predicate, timeout: float = 10.0, poll: float = 0.02) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate():
                    return True
            time.sleep(poll)
        return False

    def set_parameter(self, node_name: str, name: str, value):
        """Set one parameter of another node through its ``set_parameters`` service.

        ``node_name`` is the node's fully qualified name (``/ns/node``); ``value`` a bool, int,
        float or str (typed accordingly). Returns the ``SetParametersResult`` (``successful``,
        ``reason``).
        """
        from rcl_interfaces.msg import Parameter as ParameterMsg
        from rcl_interfaces.msg import ParameterType, ParameterValue
        from rcl_interfaces.srv import SetParameters

        if isinstance(value, bool):
            pv = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
        elif isinstance(value, int):
            pv = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
        elif isinstance(value, float):
            pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
        else:
            pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(value))
        client = self.node.create_client(SetParameters, f"{node_name}/set_parameters")
        try:
            if not client.wait_for_service(timeout_sec=10):
                raise TimeoutError(f"{node_name}/set_parameters is not available")
            future = client.call_async(SetParameters.Request(parameters=[ParameterMsg(name=name, value=pv)]))
            deadline = time.monotonic() + 10
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.02)
            if not future.done():
                raise TimeoutError(f"{node_name}/set_parameters did not answer within 10 s")
            return future.result().results[0]
        finally:
            self.node.destroy_client(client)

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.executor.remove_node(self.node)
        self.node.destroy_node()


def camera_info_msg(cam: PinholeCamera, header) -> CameraInfo:
    msg = CameraInfo()
    msg.header = header
    msg.width, msg.height = cam.width, cam.height
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = cam.K.reshape(-1).tolist()
    msg.r = np.eye(3).reshape(-1).tolist()
    msg.p = cam.P.reshape(-1).tolist()
    return msg


def stereo_messages(scene, stamp_ns: int, frame_id: str = "left_optical_frame", encoding: str = "rgb8"):
    """(left Image, left CameraInfo, right Image, right CameraInfo) for a synthetic scene."""
    from std_msgs.msg import Header
    from builtin_interfaces.msg import Time

    header = Header(stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000), frame_id=frame_id)
    rheader = Header(stamp=header.stamp, frame_id="right_optical_frame")
    left, right = scene.left, scene.right
    if encoding == "mono8":
        import cv2
        left, right = cv2.cvtColor(left, cv2.COLOR_RGB2GRAY), cv2.cvtColor(right, cv2.COLOR_RGB2GRAY)
    elif encoding == "bgr8":
        left, right = left[:, :, ::-1].copy(), right[:, :, ::-1].copy()
    return (numpy_to_image(left, encoding, header), camera_info_msg(scene.left_camera, header),
            numpy_to_image(right, encoding, rheader), camera_info_msg(scene.right_camera, rheader))


class RawSample:
    """What :meth:`RosIO.collect` keeps of a raw message: its header stamp (ns) and its size (bytes)."""

    __slots__ = ("stamp_ns", "nbytes")

    def __init__(self, stamp_ns: int, nbytes: int):
        self.stamp_ns, self.nbytes = stamp_ns, nbytes


def raw_stamp_offset(msg_type) -> int:
    """Byte offset of the header stamp in a serialized ``msg_type``: after the 4-byte CDR
    encapsulation for types whose first field is a ``std_msgs/Header``; after the sequence length
    too for ``visualization_msgs/MarkerArray`` (its first marker's stamp)."""
    fields = list(msg_type.get_fields_and_field_types().items())
    if fields and fields[0] == ("header", "std_msgs/Header"):
        return 4
    if fields and fields[0][0] == "markers":
        return 8
    raise ValueError(f"{msg_type.__name__}: no header stamp at a fixed place")


def raw_stamp(data: bytes, offset: int) -> int:
    """``sec * 1e9 + nanosec`` read at ``offset`` of a CDR message (-1 when the message is too short,
    e.g. an empty MarkerArray). The encapsulation's second byte says the byte order (1: little)."""
    if len(data) < offset + 8:
        return -1
    order = "little" if data[1] & 1 else "big"
    sec = int.from_bytes(data[offset:offset + 4], order, signed=True)
    nanosec = int.from_bytes(data[offset + 4:offset + 8], order)
    return sec * 1_000_000_000 + nanosec


def stamp_of(msg) -> int:
    if isinstance(msg, RawSample):
        return msg.stamp_ns
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
