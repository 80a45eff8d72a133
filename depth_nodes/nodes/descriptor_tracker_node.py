"""descriptor_tracker_node: dense descriptors -> the reference keypoints tracked in every frame.

Subscribes (QoS of each topic's publishers by default, ``input_qos: auto``):
    image               sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8); image/compressed
                        (sensor_msgs/CompressedImage) with ``image_transport: compressed``
    depth/image         32FC1 metres or 16UC1 mm registered to ``image``   [use_depth only]
                        (depth/image/compressedDepth with ``depth_transport: compressedDepth``);
                        paired by stamp: an image waits up to ``depth_wait_s`` for its depth
    camera_info         the image's camera_info (for 3D; non-zero distortion: the image and
                        depth are rectified, ``distortion``)                 [use_depth only]
Publishes (reliable by default; input stamp and frame_id kept; built only when subscribed):
    keypoints           PointCloud2, one point per reference keypoint (index = id), fields
                        x y z u v score (float32) and id (uint32); x y z NaN without depth,
                        u v NaN and score 0 while the keypoint is lost
    keypoints/markers   visualization_msgs/MarkerArray: a sphere and an id label per keypoint with
                        depth, in the camera frame (DELETEALL first, so lost ones disappear)
    keypoints/image     rgb8 overlay of the tracked keypoints on the input
    descriptors/image   rgb8 colour view of the descriptors (first 3 principal components)

The network (``model_path``) must output descriptors (its description says ``descriptors``),
and the reference file (``reference_path``, made by ``depth-train`` from the same model) must
have been made with that model: otherwise the node refuses to start, naming both models.
Tracking (see :mod:`depth_nodes.pipelines.keypoint_tracking`): best descriptor match in a window
of ``search_radius`` network pixels around the last position, whole image when not found there,
lost above ``lost_threshold``; ids are persistent and lost keypoints are re-acquired.
"""
from __future__ import annotations

import sys
import time

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from rclpy.clock import Clock, ClockType
from rclpy.logging import LoggingSeverity
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from depth_nodes.geometry.camera import CameraModelCache, CameraModelError
from depth_nodes.geometry.rectify import DISTORTION_MODES
from depth_nodes.image_encodings import byte_array, depth_to_metres
from depth_nodes.keypoints.reference import ReferenceFileError, check_reference_model, load_reference
from depth_nodes.nodes.model_loading import MODEL_PATH_REQUIRED, load_model
from depth_nodes.shipped_models import shipped_model
from depth_nodes.nodes.frame_errors import report_frame_error
from depth_nodes.pipelines.descriptor_tracking import DescriptorTrackingPipeline, TrackerInputError, draw_keypoints
from depth_nodes.pipelines.keypoint_tracking import TrackerConfig
from depth_nodes.pipelines.depth_pairing import DepthPairing
from depth_nodes.pipelines.worker import LatestFrameWorker
from depth_nodes.nodes.frame_prep import FrameTime, Undistorter, submit_paired
from depth_nodes.ros.image_conversion import numpy_to_image
from depth_nodes.ros.image_transport import DEPTH_TRANSPORTS, IMAGE_TRANSPORTS, decode_input
from depth_nodes.image_encodings import COLOR_ENCODINGS
from depth_nodes.ros.node_cli import NodeUsage
from depth_nodes.ros.node_main import run_node
from depth_nodes.nodes.common_params import MODEL_RUNTIME_PARAMS, QOS_PARAMS, SILENT_INPUT_PARAM, TIME_JUMP_PARAM
from depth_nodes.ros.params import ParamSpec, ParameterError, declare_parameters, make_on_set_callback
from depth_nodes.nodes.plain_inputs import Input, InputSubscriptions
from depth_nodes.ros.qos import make_qos
from depth_nodes.ros.throttle import ThrottledReporter

PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("model_path", "", "Descriptor network file: .onnx, .engine/.plan (TensorRT) or .pt2 (empty: the "
              "shipped depth_nodes/models/descriptors_xfeat.onnx)."),
    *MODEL_RUNTIME_PARAMS,
    ParamSpec("reference_path", "", "Keypoint reference file (.npz) made with the same model (required)."),
    ParamSpec("lost_threshold", 0.5, "Largest descriptor distance (L2) of a tracked keypoint.", 1e-6, 1e6,
              dynamic=True),
    ParamSpec("search_radius", 16, "Half-size (network pixels) of the window searched around the last position "
              "(0 = always the whole image).", 0, 4096, dynamic=True),
    ParamSpec("use_depth", False, "Subscribe to depth/image and camera_info to give the keypoints 3D positions."),
    ParamSpec("depth_max_age_s", 0.1, "Largest stamp difference between image and depth/image (s).", 0.0, 3600.0,
              dynamic=True),
    ParamSpec("depth_wait_s", 0.1, "How long an image waits for a depth/image stamped at or after it (s); then it "
              "is tracked with the nearest depth so far, or in 2D only.", 0.0, 10.0),
    ParamSpec("image_transport", "raw", "raw: image is sensor_msgs/Image; compressed: subscribe to image/compressed "
              "(sensor_msgs/CompressedImage, jpeg/png), as image_transport does.", choices=IMAGE_TRANSPORTS),
    ParamSpec("depth_transport", "raw", "raw: depth/image is sensor_msgs/Image; compressedDepth: subscribe to "
              "depth/image/compressedDepth (compressed_depth_image_transport PNG).", choices=DEPTH_TRANSPORTS),
    ParamSpec("distortion", "rectify", "use_depth: a camera_info with non-zero distortion (plumb_bob, "
              "rational_polynomial, equidistant): rectify image and depth (keypoints then in the rectified image) "
              "or refuse the frame with a warning.", choices=DISTORTION_MODES),
    TIME_JUMP_PARAM,
    ParamSpec("marker_scale", 0.02, "Sphere diameter of keypoints/markers (metres).", 1e-4, 10.0, dynamic=True),
    *QOS_PARAMS,
    ParamSpec("report_period_s", 2.0, "At most one log line per kind of problem per this period (seconds).",
              0.0, 3600.0, dynamic=True),
    SILENT_INPUT_PARAM,
)

KEYPOINT_FIELDS = (("x", PointField.FLOAT32), ("y", PointField.FLOAT32), ("z", PointField.FLOAT32),
                   ("u", PointField.FLOAT32), ("v", PointField.FLOAT32), ("score", PointField.FLOAT32),
                   ("id", PointField.UINT32))


USAGE = NodeUsage(
    executable="descriptor_tracker_node",
    summary="Dense descriptors -> the keypoints of a reference file tracked in every frame.",
    inputs=(("image", "sensor_msgs/Image", "rgb8, bgr8, rgba8, bgra8, mono8 (image/compressed: image_transport)"),
            ("depth/image", "sensor_msgs/Image", "32FC1 m / 16UC1 mm registered to the image (use_depth; "
             "depth/image/compressedDepth: depth_transport)"),
            ("camera_info", "sensor_msgs/CameraInfo", "of the image (use_depth)")),
    outputs=(("keypoints", "sensor_msgs/PointCloud2", "x y z u v score id, one point per keypoint"),
             ("keypoints/markers", "visualization_msgs/MarkerArray", "spheres and id labels"),
             ("keypoints/image", "sensor_msgs/Image", "rgb8 overlay"),
             ("descriptors/image", "sensor_msgs/Image", "rgb8 PCA colour view")),
    params=PARAMS,
    example="descriptor_tracker_node --ros-args --params-file config/descriptor_tracker.yaml "
            "-p model_path:=descriptors.onnx -p reference_path:=keypoints.npz -r image:=/camera/color/image_raw",
)


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def keypoints_to_msg(xyz: np.ndarray, pixels: np.ndarray, scores: np.ndarray, ids: np.ndarray, header) -> PointCloud2:
    """``K`` keypoints -> unorganized PointCloud2 (height 1) with :data:`KEYPOINT_FIELDS`, 28-byte points."""
    k = len(ids)
    rec = np.zeros((k, 7), np.float32)
    rec[:, 0:3], rec[:, 3:5], rec[:, 5] = xyz, pixels, scores
    rec[:, 6] = np.asarray(ids, np.uint32).view(np.float32)
    msg = PointCloud2()
    msg.header = header
    msg.height, msg.width = 1, k
    msg.fields = [PointField(name=n, offset=4 * i, datatype=t, count=1) for i, (n, t) in enumerate(KEYPOINT_FIELDS)]
    msg.is_bigendian = False
    msg.point_step = 28
    msg.row_step = 28 * k
    msg.is_dense = False
    msg.data = byte_array(rec)
    return msg


def markers_for(xyz: np.ndarray, ids: np.ndarray, names: list[str], header, scale: float) -> MarkerArray:
    """DELETEALL, then a sphere and a text label per keypoint with a finite 3D position."""
    out = MarkerArray()
    out.markers.append(Marker(header=header, ns="keypoints", action=Marker.DELETEALL))
    for p, kid, name in zip(xyz, ids, names):
        if not np.isfinite(p).all():
            continue
        hue = int(kid) * 47 % 180 / 180.0
        r, g, b = _hsv(hue)
        m = Marker(header=header, ns="keypoints", id=int(kid), type=Marker.SPHERE, action=Marker.ADD)
        m.pose.position = Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
        m.pose.orientation.w = 1.0
        m.scale.x = m.scale.y = m.scale.z = float(scale)
        m.color = ColorRGBA(r=r, g=g, b=b, a=1.0)
        m.lifetime = Duration(sec=1)
        t = Marker(header=header, ns="keypoint_labels", id=int(kid), type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
        t.pose.position = Point(x=float(p[0]), y=float(p[1]) - 1.5 * float(scale), z=float(p[2]))
        t.pose.orientation.w = 1.0
        t.scale.z = 1.5 * float(scale)
        t.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
        t.text = f"{int(kid)} {name}"
        t.lifetime = Duration(sec=1)
        out.markers += [m, t]
    return out


def _hsv(h: float) -> tuple[float, float, float]:
    import colorsys

    return colorsys.hsv_to_rgb(h, 1.0, 1.0)


class DescriptorTrackerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("descriptor_tracker_node", **kwargs)
        self.values = v = declare_parameters(self, PARAMS)
        no_model = not v["model_path"] and shipped_model("descriptors") is None  # empty: the shipped one
        missing = ([MODEL_PATH_REQUIRED] if no_model else []) + (
            ["reference_path: required (a keypoint reference .npz file)"] if not v["reference_path"] else [])
        if missing:  # every missing one at once
            raise ParameterError("invalid parameters:\n" + "\n".join(f"  {m}" for m in missing))
        try:
            ref = load_reference(v["reference_path"])
        except ReferenceFileError as exc:
            raise ParameterError(f"invalid parameters:\n  reference_path: {exc}") from exc
        backend, desc = load_model(v["model_path"], v["description_path"], v["backend"], v["device"],
                                   shipped="descriptors", log=self.get_logger().info)
        try:
            if desc.output_kind != "descriptors":
                raise ParameterError(f"invalid parameters:\n  model_path: {desc.source or v['model_path']} outputs "
                                     f"{desc.output_kind}, not descriptors")
            try:
                check_reference_model(ref, desc.source_model_sha256 or "", int(desc.descriptor_dim or 0),
                                      str(v["reference_path"]))
            except ReferenceFileError as exc:
                raise ParameterError(f"invalid parameters:\n  reference_path: {exc}") from exc
            self.pipeline = DescriptorTrackingPipeline(
                backend, desc, ref.descriptors, TrackerConfig(v["lost_threshold"], v["search_radius"]))
        except BaseException:
            backend.close()
            raise
        self.backend, self.reference = backend, ref
        self.reporter = ThrottledReporter(self.get_logger().warning, v["report_period_s"])
        out_qos = make_qos(v["output_qos"], v["output_qos_depth"])
        self.pub_keypoints = self.create_publisher(PointCloud2, "keypoints", out_qos)
        self.pub_markers = self.create_publisher(MarkerArray, "keypoints/markers", out_qos)
        self.pub_overlay = self.create_publisher(Image, "keypoints/image", out_qos)
        self.pub_descriptors = self.create_publisher(Image, "descriptors/image", out_qos)
        self.cameras = CameraModelCache()
        self._info: CameraInfo | None = None
        self._dropped_seen = 0
        self._lost_seen = np.zeros(ref.num_keypoints, bool)
        # colour and depth paired by stamp (a late same-stamp depth is waited for, briefly)
        self.pairing = DepthPairing(v["depth_wait_s"], v["depth_max_age_s"], v["time_jump_s"])
        self.time = FrameTime(self, v["time_jump_s"], TrackerInputError, lambda text: self.get_logger().info(text))
        self.undistorter = Undistorter(v["distortion"], TrackerInputError)
        self.worker = LatestFrameWorker(self._process, self._on_worker_error, name="descriptor-tracker")
        inputs = [Input("image", self._on_image, transport=v["image_transport"], param="image_transport",
                        choices=IMAGE_TRANSPORTS)]
        if v["use_depth"]:
            inputs += [Input("depth/image", self._on_depth, transport=v["depth_transport"], param="depth_transport",
                             choices=DEPTH_TRANSPORTS),
                       Input("camera_info", self._on_info, CameraInfo)]
            self.create_timer(max(0.005, v["depth_wait_s"] / 4),
                              lambda: submit_paired(self.worker, self.pairing.expire()),
                              clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.inputs = InputSubscriptions(self, inputs, v["input_qos"], v["input_qos_depth"], self.reporter.report,
                                         silent_s=v["silent_input_s"])
        self.create_timer(1.0, self._check_inputs)
        self.add_on_set_parameters_callback(make_on_set_callback(PARAMS, self.values, self._apply_params))
        self.get_logger().info(
            f"tracking {ref.num_keypoints} keypoints ({', '.join(ref.names[:8])}{'...' if ref.num_keypoints > 8 else ''}) "
            f"with {desc.name or v['model_path']} (D={desc.descriptor_dim}, input {desc.height}x{desc.width}) on "
            f"{v['device']}; 3D from depth: {'yes' if v['use_depth'] else 'no'}")

    def _apply_params(self, proposed: dict) -> str | None:
        self.pipeline.tracker.config = TrackerConfig(proposed["lost_threshold"], proposed["search_radius"])
        self.reporter.period_s = proposed["report_period_s"]
        self.pairing.max_age_s = proposed["depth_max_age_s"]
        return None

    def _on_image(self, msg) -> None:
        if not self.values["use_depth"]:
            self.worker.submit((msg, None, "", None, time.perf_counter()))
            return
        submit_paired(self.worker, self.pairing.add_image(_stamp_ns(msg), (msg, self._info, time.perf_counter())))

    def _on_depth(self, msg) -> None:
        submit_paired(self.worker, self.pairing.add_depth(_stamp_ns(msg), msg))

    def _on_info(self, msg: CameraInfo) -> None:
        self._info = msg

    def _check_inputs(self) -> None:
        dropped = self.worker.dropped + self.pairing.dropped
        if dropped > self._dropped_seen:
            self.reporter.report("dropped", f"{dropped - self._dropped_seen} frames dropped (the model is slower than "
                                 "the camera; only the newest frame is processed)")
            self._dropped_seen = dropped

    def _process(self, item) -> None:
        msg, depth_msg, why, info, t_arrival = item
        t_start = time.perf_counter()
        stamp = _stamp_ns(msg)
        self.time.check(stamp)
        image, encoding = decode_input(msg, COLOR_ENCODINGS)
        depth = camera = None
        if self.values["use_depth"]:
            if info is None:
                self.reporter.report("no_depth", f"no {self.resolve_topic_name('camera_info')} yet: keypoints "
                                     "without 3D")
            elif depth_msg is None:
                self.reporter.report("no_depth", f"no depth image for this frame ({why}): keypoints without 3D")
            else:
                depth = depth_to_metres(*decode_input(depth_msg))
                if depth.shape != image.shape[:2]:
                    raise TrackerInputError(f"depth/image is {depth.shape[1]}x{depth.shape[0]}, the image "
                                            f"{image.shape[1]}x{image.shape[0]} (it must be registered to the image)")
            if info is not None:  # lens distortion: rectify image and depth (maps cached) or refuse
                image, info, (depth,) = self.undistorter.apply(image, info, (depth,))
            if depth is not None:
                try:
                    camera = self.cameras.get(info)
                except CameraModelError as exc:  # tracking needs no intrinsics: serve 2D keypoints
                    self.reporter.report("camera_info", f"bad camera_info: {exc}: keypoints without 3D")
                    depth = camera = None
        t_decoded = time.perf_counter() - t_start
        result = self.pipeline.process(image, encoding, depth=depth, camera=camera)
        self.time.accept(stamp)
        t_processed = time.perf_counter()
        header, tr = msg.header, result.track
        newly_lost = ~tr.tracked & ~self._lost_seen
        if newly_lost.any():
            lost = [self.reference.names[i] for i in np.flatnonzero(newly_lost)]
            self.reporter.report("lost", f"lost {', '.join(lost)} (best distance above lost_threshold "
                                 f"{self.pipeline.config.lost_threshold:g})")
        self._lost_seen = ~tr.tracked
        if self.pub_keypoints.get_subscription_count() > 0:
            self.pub_keypoints.publish(keypoints_to_msg(result.xyz, result.pixels, tr.scores, tr.ids, header))
        if self.pub_markers.get_subscription_count() > 0:
            self.pub_markers.publish(markers_for(result.xyz, tr.ids, self.reference.names, header,
                                                 self.values["marker_scale"]))
        if self.pub_overlay.get_subscription_count() > 0:
            rgb = DescriptorTrackingPipeline.rgb_of(image, encoding)
            self.pub_overlay.publish(numpy_to_image(draw_keypoints(rgb, result.pixels, tr.ids, None), "rgb8", header))
        if self.pub_descriptors.get_subscription_count() > 0:
            view = self.pipeline.descriptor_view(result, image.shape[0], image.shape[1])
            self.pub_descriptors.publish(numpy_to_image(view, "rgb8", header))
        if self.get_logger().is_enabled_for(LoggingSeverity.DEBUG):
            t = result.timings
            self.get_logger().debug(
                f"frame {header.stamp.sec}.{header.stamp.nanosec:09d}: wait {1e3 * (t_start - t_arrival):.2f} ms, "
                f"decode {1e3 * t_decoded:.2f} ms, preprocess {1e3 * t['preprocess']:.2f} ms, "
                f"inference {1e3 * t['inference']:.2f} ms, tracking {1e3 * t['tracking']:.2f} ms, "
                f"publish {1e3 * (time.perf_counter() - t_processed):.2f} ms, "
                f"total {1e3 * (time.perf_counter() - t_arrival):.2f} ms; tracked {int(tr.tracked.sum())}/{len(tr.ids)}")

    def _on_worker_error(self, exc: BaseException, item) -> None:
        report_frame_error(self.reporter, exc, item[0].header.stamp, (TrackerInputError,))

    def destroy_node(self):
        worker = getattr(self, "worker", None)
        if worker is not None:
            worker.stop()
        backend = getattr(self, "backend", None)
        if backend is not None:
            backend.close()
        return super().destroy_node()


def main(args=None) -> int:
    return run_node("descriptor_tracker_node", DescriptorTrackerNode, USAGE, args)


if __name__ == "__main__":
    sys.exit(main())
