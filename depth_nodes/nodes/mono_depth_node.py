"""mono_depth_node: one camera image -> learned depth image, point cloud and colour preview.

Subscribes (QoS of each topic's publishers by default, ``input_qos: auto``):
    image               sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8); with
                        ``image_transport: compressed`` image/compressed (sensor_msgs/CompressedImage)
    camera_info         sensor_msgs/CameraInfo of the image (latest one is used; needed for the cloud);
                        non-zero distortion: the image is rectified (``distortion``)
    sparse_depth        sensor_msgs/Image 32FC1 metres or 16UC1 mm registered to the image
                        (scale_mode ``align`` only: depth camera, projected lidar); with
                        ``depth_transport: compressedDepth`` sparse_depth/compressedDepth;
                        paired by stamp: an image waits up to ``align_wait_s`` for a sparse
                        depth stamped at or after it, then takes the nearest within
                        ``align_max_age_s`` (:mod:`depth_nodes.pipelines.depth_pairing`)
Publishes (reliable by default; input stamp and frame_id kept; built only when subscribed):
    depth/image         32FC1 metres, NaN = no reading (REP 118)           [not in relative mode]
    depth/camera_info   the camera_info with the depth image's header      [not in relative mode]
    depth/points        PointCloud2, organized, x y z rgb, is_dense false  [not in relative mode]
    depth/colorized     bgr8 preview (turbo colormap, near = warm; fixed or automatic range)
    depth/relative_inverse  32FC1 relative inverse depth (unitless)      [relative mode only]

The network (``model_path``: ``.onnx``, ``.engine``/``.plan``, ``.pt2``) runs through
:func:`depth_nodes.backends.inference.load_backend`; its description (the export sidecar next to
it, or ``description_path``) says what it outputs, and ``scale_mode`` how that becomes metres
(see :mod:`depth_nodes.pipelines.mono_scale`): a relative model is refused as ``metric``.
In ``align`` mode every frame's fit (scale, shift, residual, inliers) is logged once per
``report_period_s``.

With ``--ros-args --log-level mono_depth_node:=debug`` every frame logs its stage times.
"""
from __future__ import annotations

import sys
import time

from rclpy.clock import Clock, ClockType
from rclpy.logging import LoggingSeverity
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_nodes.geometry.camera import CameraModelCache, CameraModelError
from depth_nodes.image_encodings import depth_to_metres
from depth_nodes.pipelines.depth_pairing import DepthPairing
from depth_nodes.pipelines.mono_depth import MonoDepthPipeline, MonoFrame, MonoInputError
from depth_nodes.pipelines.mono_scale import SCALE_MODES, ScaleModeError
from depth_nodes.pipelines.worker import LatestFrameWorker
from depth_nodes.geometry.rectify import DISTORTION_MODES
from depth_nodes.nodes.frame_prep import FrameTime, Undistorter, submit_paired
from depth_nodes.ros.image_conversion import numpy_to_image
from depth_nodes.ros.image_transport import DEPTH_TRANSPORTS, IMAGE_TRANSPORTS, decode_input
from depth_nodes.image_encodings import COLOR_ENCODINGS
from depth_nodes.ros.messages import MessageBuffer, camera_info_for, cloud_to_msg
from depth_nodes.ros.node_cli import NodeUsage
from depth_nodes.ros.node_main import run_node
from depth_nodes.nodes.model_loading import load_model
from depth_nodes.nodes.frame_errors import report_frame_error
from depth_nodes.nodes.common_params import MODEL_RUNTIME_PARAMS, QOS_PARAMS, SILENT_INPUT_PARAM, TIME_JUMP_PARAM
from depth_nodes.ros.params import ParamSpec, ParameterError, declare_parameters, make_on_set_callback
from depth_nodes.nodes.plain_inputs import Input, InputSubscriptions
from depth_nodes.ros.qos import make_qos
from depth_nodes.ros.throttle import ThrottledReporter

PARAMS: tuple[ParamSpec, ...] = (
    # --- model
    ParamSpec("model_path", "", "Depth network file: .onnx, .engine/.plan (TensorRT) or .pt2 (empty: the shipped "
              "relative-depth model depth_nodes/models/mono_depth_xfeat.onnx)."),
    *MODEL_RUNTIME_PARAMS,
    # --- scale
    ParamSpec("scale_mode", "auto",
              "auto: metric for a metric-depth model, relative for a relative one (the shipped model); "
              "metric: the model outputs metres; fixed: multiply by scale_factor; align: fit scale+shift of "
              "inverse depth to sparse_depth every frame; relative: publish relative inverse depth only.",
              choices=SCALE_MODES),
    ParamSpec("scale_factor", 1.0, "fixed mode: depth = scale_factor * output (depth outputs only; an "
              "inverse-depth model has an unknown shift too: use align).", 1e-6, 1e6, dynamic=True),
    ParamSpec("align_with_shift", True, "align mode: fit a shift as well as a scale (MiDaS-style models).",
              dynamic=True),
    ParamSpec("align_min_samples", 20, "align mode: fewest valid sparse depths (and inliers) for a fit.",
              3, 1000000, dynamic=True),
    ParamSpec("align_max_age_s", 0.5, "align mode: largest stamp difference between image and sparse_depth (s).",
              0.0, 3600.0, dynamic=True),
    ParamSpec("align_wait_s", 0.1, "align mode: how long an image waits for a sparse_depth stamped at or after it "
              "(s); then the nearest one within align_max_age_s received so far is used (0: no wait).", 0.0, 10.0),
    # --- outputs
    ParamSpec("min_depth", 0.0, "Depth below this is published as NaN (metres).", 0.0, 1e4, dynamic=True),
    ParamSpec("max_depth", 100.0, "Depth above this is published as NaN (metres).", 0.0, 1e6, dynamic=True),
    ParamSpec("point_decimation", 1, "Keep every n-th row and column in depth/points.", 1, 16, dynamic=True),
    ParamSpec("colorize_points", True, "Add the image's colour to depth/points (rgb field).", dynamic=True),
    ParamSpec("colorize_min", 0.0, "depth/colorized: value shown coldest..", 0.0, 1e6, dynamic=True),
    ParamSpec("colorize_max", 0.0, "..and warmest end of the colormap (both 0 = 2nd/98th percentile per frame).",
              0.0, 1e6, dynamic=True),
    # --- inputs
    ParamSpec("image_transport", "raw", "raw: image is sensor_msgs/Image; compressed: subscribe to image/compressed "
              "(sensor_msgs/CompressedImage, jpeg/png), as image_transport does.", choices=IMAGE_TRANSPORTS),
    ParamSpec("depth_transport", "raw", "raw: sparse_depth is sensor_msgs/Image; compressedDepth: subscribe to "
              "sparse_depth/compressedDepth (compressed_depth_image_transport PNG).", choices=DEPTH_TRANSPORTS),
    ParamSpec("distortion", "rectify", "A camera_info with non-zero distortion (plumb_bob, rational_polynomial, "
              "equidistant): rectify the image (outputs then have D = 0 and the rectified K/P) or refuse the frame "
              "with a warning.", choices=DISTORTION_MODES),
    TIME_JUMP_PARAM,
    # --- QoS
    *QOS_PARAMS,
    ParamSpec("report_period_s", 2.0, "At most one log line per kind of problem per this period (seconds).",
              0.0, 3600.0, dynamic=True),
    ParamSpec("camera_info_timeout_s", 3.0,
              "Warn when images arrive but no camera_info has been received for this long (seconds).", 0.1, 3600.0),
    SILENT_INPUT_PARAM,
)


USAGE = NodeUsage(
    executable="mono_depth_node",
    summary="One camera image -> learned depth image, point cloud and colour preview.",
    inputs=(("image", "sensor_msgs/Image", "rgb8, bgr8, rgba8, bgra8, mono8 (image/compressed: image_transport)"),
            ("camera_info", "sensor_msgs/CameraInfo", "of the image; needed for depth/points"),
            ("sparse_depth", "sensor_msgs/Image", "32FC1 m / 16UC1 mm registered to the image (scale_mode align; "
             "sparse_depth/compressedDepth: depth_transport)")),
    outputs=(("depth/image", "sensor_msgs/Image", "32FC1 metres, NaN = no depth (REP 118)"),
             ("depth/camera_info", "sensor_msgs/CameraInfo", "camera_info with the depth image's header"),
             ("depth/points", "sensor_msgs/PointCloud2", "organized x y z rgb"),
             ("depth/colorized", "sensor_msgs/Image", "bgr8 preview, near = warm"),
             ("depth/relative_inverse", "sensor_msgs/Image", "32FC1, scale_mode relative only")),
    params=PARAMS,
    example="mono_depth_node --ros-args --params-file config/mono_depth.yaml -p model_path:=depth.onnx "
            "-r image:=/camera/color/image_raw -r camera_info:=/camera/color/camera_info",
)


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


class MonoDepthNode(Node):
    def __init__(self, **kwargs):
        super().__init__("mono_depth_node", **kwargs)
        self.values = v = declare_parameters(self, PARAMS)
        self._check_ranges(v)
        backend, desc = load_model(v["model_path"], v["description_path"], v["backend"], v["device"],
                                   shipped="mono_depth", log=self.get_logger().info)
        try:
            self.pipeline = MonoDepthPipeline(backend, desc, v["scale_mode"])
        except ScaleModeError as exc:
            backend.close()
            raise ParameterError(f"invalid parameters:\n  scale_mode: {exc}") from exc
        self.backend = backend
        self._configure(v)
        self.reporter = ThrottledReporter(self.get_logger().warning, v["report_period_s"])
        # (a lambda: rclpy fixes one severity per call site, and the reporter's call site logs warnings)
        self.fit_reporter = ThrottledReporter(lambda text: self.get_logger().info(text), v["report_period_s"])
        self.scale_mode = self.pipeline.scale_mode  # auto resolved by the model's output kind
        self.relative = self.scale_mode == "relative"

        out_qos = make_qos(v["output_qos"], v["output_qos_depth"])
        if self.relative:
            self.pub_relative = self.create_publisher(Image, "depth/relative_inverse", out_qos)
            self.pub_depth = self.pub_info = self.pub_points = None
        else:
            self.pub_relative = None
            self.pub_depth = self.create_publisher(Image, "depth/image", out_qos)
            self.pub_info = self.create_publisher(CameraInfo, "depth/camera_info", out_qos)
            self.pub_points = self.create_publisher(PointCloud2, "depth/points", out_qos)
        self.pub_colorized = self.create_publisher(Image, "depth/colorized", out_qos)

        self.cameras = CameraModelCache()  # worker thread only
        self.cloud_buffer = MessageBuffer()  # worker thread only
        self._info: CameraInfo | None = None
        self._info_time: float | None = None
        self._image_time: float | None = None
        # align: image and sparse depth paired by stamp (a late same-stamp depth is waited for, briefly)
        self.pairing = DepthPairing(v["align_wait_s"], v["align_max_age_s"], v["time_jump_s"]) \
            if self.scale_mode == "align" else None
        self.time = FrameTime(self, v["time_jump_s"], MonoInputError, lambda text: self.get_logger().info(text))
        self.undistorter = Undistorter(v["distortion"], MonoInputError)
        self._dropped_seen = 0
        self.worker = LatestFrameWorker(self._process, self._on_worker_error, name="mono-depth")
        inputs = [Input("image", self._on_image, transport=v["image_transport"], param="image_transport",
                        choices=IMAGE_TRANSPORTS),
                  Input("camera_info", self._on_info, CameraInfo)]
        if self.pairing is not None:
            inputs.append(Input("sparse_depth", self._on_sparse, transport=v["depth_transport"],
                                param="depth_transport", choices=DEPTH_TRANSPORTS))
            self.create_timer(max(0.005, v["align_wait_s"] / 4),
                              lambda: submit_paired(self.worker, self.pairing.expire()),
                              clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.inputs = InputSubscriptions(self, inputs, v["input_qos"], v["input_qos_depth"], self.reporter.report,
                                         silent_s=v["silent_input_s"])
        self.create_timer(1.0, self._check_inputs)
        self.add_on_set_parameters_callback(make_on_set_callback(PARAMS, self.values, self._apply_params))
        self.get_logger().info(
            f"running {desc.name or v['model_path']} ({desc.output_kind}, input {desc.height}x{desc.width}) with "
            f"{getattr(backend, 'name', v['backend'])} on {v['device']}; scale_mode {self.scale_mode}"
            + (" (auto)" if v["scale_mode"] == "auto" else ""))

    # ---------------------------------------------------------------- parameters
    @staticmethod
    def _check_ranges(v: dict) -> None:
        if v["max_depth"] <= v["min_depth"]:
            raise ParameterError(f"invalid parameters:\n  max_depth ({v['max_depth']}) must exceed min_depth "
                                 f"({v['min_depth']})")
        if v["colorize_max"] < v["colorize_min"]:
            raise ParameterError(f"invalid parameters:\n  colorize_max ({v['colorize_max']}) is below colorize_min "
                                 f"({v['colorize_min']})")

    def _configure(self, v: dict) -> None:
        p = self.pipeline
        p.scale_factor, p.align_with_shift, p.align_min_samples = v["scale_factor"], v["align_with_shift"], \
            v["align_min_samples"]
        p.min_depth, p.max_depth = v["min_depth"], v["max_depth"]
        p.decimation, p.colorize_points = v["point_decimation"], v["colorize_points"]
        p.colorize_min, p.colorize_max = v["colorize_min"], v["colorize_max"]

    def _apply_params(self, proposed: dict) -> str | None:
        try:
            self._check_ranges(proposed)
        except ParameterError as exc:
            return str(exc).replace("invalid parameters:\n  ", "")
        self._configure(proposed)
        self.reporter.period_s = self.fit_reporter.period_s = proposed["report_period_s"]
        if self.pairing is not None:
            self.pairing.max_age_s = proposed["align_max_age_s"]
        return None

    # ---------------------------------------------------------------- inputs
    def _on_image(self, msg) -> None:
        self._image_time = time.monotonic()
        if self.pairing is None:
            self.worker.submit((msg, None, "", self._info, time.perf_counter()))
        else:
            submit_paired(self.worker, self.pairing.add_image(_stamp_ns(msg), (msg, self._info, time.perf_counter())))

    def _on_info(self, msg: CameraInfo) -> None:
        self._info, self._info_time = msg, time.monotonic()

    def _on_sparse(self, msg) -> None:
        submit_paired(self.worker, self.pairing.add_depth(_stamp_ns(msg), msg))

    def _check_inputs(self) -> None:
        now = time.monotonic()
        timeout = self.values["camera_info_timeout_s"]
        if self._image_time is not None and now - self._image_time < timeout and not self.relative:
            if self._info_time is None:
                self.reporter.report("missing:camera_info",
                                     f"images arrive but no {self.resolve_topic_name('camera_info')} for "
                                     f"{timeout:.1f} s: publishing depth without depth/points and depth/camera_info")
            elif now - self._info_time > timeout:
                self.reporter.report("missing:camera_info",
                                     f"images arrive but no {self.resolve_topic_name('camera_info')} for "
                                     f"{timeout:.1f} s: using the last one, received {now - self._info_time:.1f} s ago")
        dropped = self.worker.dropped + (self.pairing.dropped if self.pairing is not None else 0)
        if dropped > self._dropped_seen:
            self.reporter.report("dropped", f"{dropped - self._dropped_seen} frames dropped (the model is slower than "
                                 "the camera; only the newest frame is processed)")
            self._dropped_seen = dropped

    # ---------------------------------------------------------------- processing
    def _process(self, item) -> None:
        msg, sparse, why, info, t_arrival = item
        t_start = time.perf_counter()
        stamp = _stamp_ns(msg)
        self.time.check(stamp)
        image, encoding = decode_input(msg, COLOR_ENCODINGS)
        height, width = image.shape[:2]
        camera = None
        if info is not None and not self.relative:
            try:
                camera = self.cameras.get(info)
            except CameraModelError as exc:  # depth needs no intrinsics: serve it, without cloud and info
                self.reporter.report("camera_info", f"bad camera_info: {exc}: no depth/points or depth/camera_info")
                camera, info = None, None
            if camera is not None and not camera.matches(width, height):
                self.reporter.report("camera_info_size", f"camera_info is {camera.width}x{camera.height} but the "
                                     f"image {width}x{height}: no depth/points or depth/camera_info")
                camera, info = None, None
        ref = None
        if self.scale_mode == "align":
            if sparse is None:  # paired by stamp (DepthPairing): none within align_max_age_s
                raise MonoInputError(f"align: no {self.resolve_topic_name('sparse_depth')} for this frame: "
                                     + why.replace("depth image", "sparse_depth"))
            ref = depth_to_metres(*decode_input(sparse))
            if ref.shape != image.shape[:2]:
                raise MonoInputError(f"align: sparse_depth is {ref.shape[1]}x{ref.shape[0]}, the image "
                                     f"{width}x{height} (it must be registered to the image)")
        if info is not None and (camera is not None or self.relative):  # lens distortion: rectify or refuse
            image, info, (ref,) = self.undistorter.apply(image, info, (ref,))
            camera = self.cameras.get(info) if camera is not None else None
        want_points = self.pub_points is not None and camera is not None and \
            self.pub_points.get_subscription_count() > 0
        want_colour = self.pub_colorized.get_subscription_count() > 0
        frame = MonoFrame(image, encoding, camera, ref)
        cloud_out = self.cloud_buffer.view(self.pipeline.cloud_shape(height, width)) if want_points else None
        t_decoded = time.perf_counter()
        result = self.pipeline.process(frame, with_cloud=want_points, with_colorized=want_colour, cloud_out=cloud_out)
        t_processed = time.perf_counter()
        self.time.accept(stamp)
        header = msg.header
        if result.cloud is not None:
            self.pub_points.publish(cloud_to_msg(result.cloud, header, self.cloud_buffer))
        if result.depth is not None and self.pub_depth.get_subscription_count() > 0:
            self.pub_depth.publish(numpy_to_image(result.depth, "32FC1", header))
        if info is not None and self.pub_info is not None and self.pub_info.get_subscription_count() > 0:
            self.pub_info.publish(camera_info_for(info, header))
        if result.relative_inverse is not None and self.pub_relative.get_subscription_count() > 0:
            self.pub_relative.publish(numpy_to_image(result.relative_inverse, "32FC1", header))
        if result.colorized is not None:
            self.pub_colorized.publish(numpy_to_image(result.colorized, "bgr8", header))
        if result.fit is not None:
            f = result.fit
            self.fit_reporter.report("fit", f"align: scale {f.scale:.6g} shift {f.shift:.6g} residual "
                                     f"{f.residual:.3g} 1/m inliers {f.inliers}/{f.samples}")
        if self.get_logger().is_enabled_for(LoggingSeverity.DEBUG):
            t = result.timings
            self.get_logger().debug(
                f"frame {header.stamp.sec}.{header.stamp.nanosec:09d}: wait {1e3 * (t_start - t_arrival):.2f} ms, "
                f"decode {1e3 * (t_decoded - t_start):.2f} ms, "
                f"preprocess {1e3 * t['preprocess']:.2f} ms, inference {1e3 * t['inference']:.2f} ms, "
                f"postprocess {1e3 * t['postprocess']:.2f} ms, cloud {1e3 * t['cloud']:.2f} ms, "
                f"colorize {1e3 * t['colorize']:.2f} ms, publish {1e3 * (time.perf_counter() - t_processed):.2f} ms, "
                f"total {1e3 * (time.perf_counter() - t_arrival):.2f} ms")

    def _on_worker_error(self, exc: BaseException, item) -> None:
        report_frame_error(self.reporter, exc, item[0].header.stamp, (MonoInputError,))

    def destroy_node(self):
        worker = getattr(self, "worker", None)
        if worker is not None:
            worker.stop()
        backend = getattr(self, "backend", None)
        if backend is not None:
            backend.close()
        return super().destroy_node()


def main(args=None) -> int:
    return run_node("mono_depth_node", MonoDepthNode, USAGE, args)


if __name__ == "__main__":
    sys.exit(main())
