"""stereo_depth_node: rectified stereo pair -> disparity, depth image and point cloud.

Subscribes (QoS following the publishers by default, ``input_qos: auto``; time-synchronised):
    left/image_rect, left/camera_info, right/image_rect, right/camera_info
    (``image_transport: compressed``: left/image_rect/compressed and right/image_rect/compressed,
    sensor_msgs/CompressedImage; the images must be rectified: a camera_info with non-zero
    distortion is reported once)
Publishes (reliable by default; input stamp and frame_id kept):
    disparity          stereo_msgs/DisparityImage (f, T, min/max disparity, delta_d)
    depth/image        sensor_msgs/Image 32FC1, metres, NaN = no reading (REP 118)
    depth/camera_info  the left camera_info with the depth image's header
    points2            sensor_msgs/PointCloud2, organized, x y z rgb (float32), is_dense = False

Parameters: see :data:`PARAMS` (and ``config/stereo_depth.yaml``). The matcher parameters,
the depth range and the cloud decimation can change at run time.

With ``--ros-args --log-level stereo_depth_node:=debug`` every frame logs its stage times:
``frame <sec>.<nanosec>: decode .. ms, match .. ms, depth .. ms, cloud .. ms, publish .. ms,
total .. ms, input age=.. ms`` (``total`` from the synchronised inputs' arrival to the last
publish; the age is the node clock at that arrival minus the frame's stamp). An input message that
arrives more than ``late_input_s`` after its stamp is reported (throttled) with its age.
"""
from __future__ import annotations

import sys
import time
from dataclasses import fields

import numpy as np
from rclpy.logging import LoggingSeverity
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from stereo_msgs.msg import DisparityImage

from depth_nodes.backends.base import BackendError
from depth_nodes.backends.sgbm import SGBM_MODES, SgbmMatcher, SgbmParams
from depth_nodes.geometry.camera import CameraModelCache, CameraModelError
from depth_nodes.image_encodings import COLOR_ENCODINGS, ImageConversionError, to_rgb8
from depth_nodes.pipelines.stereo import StereoFrame, StereoInputError, StereoPipeline
from depth_nodes.pipelines.worker import LatestFrameWorker
from depth_nodes.ros.cv_bridge_probe import cv_bridge_status
from depth_nodes.geometry.rectify import has_distortion
from depth_nodes.ros.image_conversion import numpy_to_image
from depth_nodes.ros.image_transport import IMAGE_TRANSPORTS, decode_input, message_type, mismatch_hint, topic_for
from depth_nodes.ros.input_age import input_age_s, late_input_message
from depth_nodes.ros.input_diagnosis import InputDiagnosis
from depth_nodes.ros.input_watchdog import InputWatchdog, silent_input_message
from depth_nodes.ros.node_cli import NodeUsage
from depth_nodes.ros.node_main import run_node
from depth_nodes.ros.messages import MessageBuffer, camera_info_for, cloud_to_msg, disparity_to_msg
from depth_nodes.nodes.common_params import QOS_PARAMS
from depth_nodes.ros.params import ParamSpec, declare_parameters, make_on_set_callback
from depth_nodes.ros.qos import make_qos
from depth_nodes.ros.qos_auto import (AUTO, PublisherQosFollower, publisher_qos_events,
                                      subscription_qos_events)
from depth_nodes.ros.sync import stamp_ns, subscribe_synchronized
from depth_nodes.ros.sync_accounting import attach_unmatched_counter
from depth_nodes.ros.throttle import ThrottledReporter

_D = SgbmParams()

PARAMS: tuple[ParamSpec, ...] = (
    # --- matcher (names as in stereo_image_proc's disparity_node)
    ParamSpec("stereo_algorithm", _D.stereo_algorithm, "Matcher: 0 = block matching (StereoBM), 1 = semi-global (StereoSGBM).",
              choices=(0, 1), dynamic=True),
    ParamSpec("min_disparity", _D.min_disparity, "Smallest disparity searched (pixels).", -256, 256, dynamic=True),
    ParamSpec("disparity_range", _D.disparity_range, "Number of disparities searched (positive multiple of 16).",
              16, 512, dynamic=True),
    ParamSpec("correlation_window_size", _D.correlation_window_size,
              "Matching block size in pixels (odd; 5..255 for block matching).", 1, 255, dynamic=True),
    ParamSpec("uniqueness_ratio", _D.uniqueness_ratio, "Margin (%) by which the best match must beat the second best.",
              0.0, 100.0, dynamic=True),
    ParamSpec("texture_threshold", _D.texture_threshold, "Block matching only: minimum texture for a match.",
              0, 10000, dynamic=True),
    ParamSpec("prefilter_size", _D.prefilter_size, "Block matching only: prefilter window (odd, 5..255).", 5, 255, dynamic=True),
    ParamSpec("prefilter_cap", _D.prefilter_cap, "Clip value of the prefiltered image (1..63).", 1, 63, dynamic=True),
    ParamSpec("speckle_size", _D.speckle_size, "Largest disparity blob treated as speckle and removed (0 = off).",
              0, 10000, dynamic=True),
    ParamSpec("speckle_range", _D.speckle_range, "Largest disparity variation within a connected blob.", 0, 64, dynamic=True),
    ParamSpec("disp12_max_diff", _D.disp12_max_diff, "Largest left-right check difference in pixels (-1 = off).",
              -1, 512, dynamic=True),
    ParamSpec("P1", _D.P1, "SGBM penalty for disparity changes of 1 between neighbours (0 = 8*w^2).", 0.0, 1e6, dynamic=True),
    ParamSpec("P2", _D.P2, "SGBM penalty for larger disparity changes (> P1; 0 = 32*w^2).", 0.0, 1e6, dynamic=True),
    ParamSpec("full_dp", _D.full_dp, "SGBM: full 8-direction dynamic programming (MODE_HH; true overrides sgbm_mode).",
              dynamic=True),
    ParamSpec("sgbm_mode", _D.sgbm_mode, "SGBM variant: sgbm (5 directions), 3way (fastest), hh (8 directions, "
              "full DP), hh4 (4 directions, full DP).", choices=tuple(SGBM_MODES), dynamic=True),
    ParamSpec("downscale", _D.downscale, "Match on the pair shrunk by this factor (1 = full resolution); "
              "disparity and depth stay at full resolution.", 1, 8, dynamic=True),
    ParamSpec("fill_left_band", _D.fill_left_band, "Pad both images on the left by the search range "
              "(min_disparity + disparity_range) before matching and crop back, so the left band gets disparities "
              "(false: it stays empty, as in stereo_image_proc).", dynamic=True),
    # --- synchronisation
    ParamSpec("approximate_sync", True, "Match left/right by nearest stamps (true) or require equal stamps (false)."),
    ParamSpec("approximate_sync_tolerance_seconds", 0.01,
              "Largest stamp difference within a matched set (approximate sync).", 0.0, 10.0),
    ParamSpec("queue_size", 5, "Messages kept per input while waiting for partners.", 1, 100),
    ParamSpec("image_transport", "raw", "raw: left/right image_rect are sensor_msgs/Image; compressed: subscribe to "
              "left/image_rect/compressed and right/image_rect/compressed (sensor_msgs/CompressedImage, jpeg/png).",
              choices=IMAGE_TRANSPORTS),
    # --- outputs
    ParamSpec("min_depth", 0.0, "Depth below this is published as NaN (metres; min_depth itself is kept).",
              0.0, 1e4, dynamic=True),
    ParamSpec("max_depth", 100.0, "Depth above this is published as NaN (metres; max_depth itself is kept).",
              0.0, 1e6, dynamic=True),
    ParamSpec("point_decimation", 1, "Keep every n-th row and column in points2.", 1, 16, dynamic=True),
    ParamSpec("colorize_points", True, "Add the left image's colour to points2 (rgb field).", dynamic=True),
    # --- QoS
    *QOS_PARAMS,
    ParamSpec("report_period_s", 2.0, "At most one log line per kind of problem per this period (seconds); "
              "an input silent this long (at least 1 s) is reported.", 0.0, 3600.0, dynamic=True),
    ParamSpec("late_input_s", 0.5, "Report an input message that arrives more than this long after its stamp "
              "(seconds, node clock; 0 = off).", 0.0, 3600.0, dynamic=True),
    ParamSpec("camera_info_timeout_s", 3.0,
              "Warn when images arrive but a camera_info has not been received for this long (seconds).",
              0.1, 3600.0),
)

_SGBM_NAMES = set(SgbmParams.names())

INPUTS = (("left/image_rect", "sensor_msgs/Image", "rectified; rgb8, bgr8, rgba8, bgra8, mono8, mono16"),
          ("left/camera_info", "sensor_msgs/CameraInfo", ""),
          ("right/image_rect", "sensor_msgs/Image", ""),
          ("right/camera_info", "sensor_msgs/CameraInfo", "baseline from P[0,3] = -fx*B"))
OUTPUTS = (("disparity", "stereo_msgs/DisparityImage", ""),
           ("depth/image", "sensor_msgs/Image", "32FC1 metres, NaN = no reading"),
           ("depth/camera_info", "sensor_msgs/CameraInfo", ""),
           ("points2", "sensor_msgs/PointCloud2", "organized x y z rgb"))
USAGE = NodeUsage(
    "stereo_depth_node", "Rectified stereo pair -> disparity, depth image and point cloud (OpenCV SGBM).",
    INPUTS, OUTPUTS, PARAMS,
    example="stereo_depth_node --ros-args --params-file config/stereo_depth.yaml -r left/image_rect:=/cam/left/image_rect")
SILENT_MIN_S = 1.0  # the silent-input report waits at least this long, whatever report_period_s is


def sgbm_params_from(values: dict) -> SgbmParams:
    return SgbmParams(**{f.name: values[f.name] for f in fields(SgbmParams)})


def parameter_problems(values: dict) -> list[str]:
    """The node's own rules on top of each parameter's range: every matcher problem and the depth range."""
    problems = sgbm_params_from(values).problems()
    if values["max_depth"] <= values["min_depth"]:
        problems.append(f"max_depth: ({values['max_depth']}) must exceed min_depth ({values['min_depth']})")
    return problems


class StereoDepthNode(Node):
    def __init__(self, **kwargs):
        super().__init__("stereo_depth_node", **kwargs)
        self._stopping = False
        self.values = declare_parameters(self, PARAMS, check=parameter_problems)
        matcher = SgbmMatcher(sgbm_params_from(self.values))
        self.pipeline = StereoPipeline(matcher)
        self._configure_pipeline(self.values)
        self.reporter = ThrottledReporter(self.get_logger().warning, self.values["report_period_s"])

        out_qos = make_qos(self.values["output_qos"], self.values["output_qos_depth"])
        def out_events(topic):  # a subscriber asking for more than we offer is reported with both sides
            return publisher_qos_events(self, topic, out_qos, "output_qos", self.reporter.report)

        self.pub_disparity = self.create_publisher(DisparityImage, "disparity", out_qos,
                                                   event_callbacks=out_events("disparity"))
        self.pub_depth = self.create_publisher(Image, "depth/image", out_qos, event_callbacks=out_events("depth/image"))
        self.pub_depth_info = self.create_publisher(CameraInfo, "depth/camera_info", out_qos,
                                                    event_callbacks=out_events("depth/camera_info"))
        self.pub_points = self.create_publisher(PointCloud2, "points2", out_qos, event_callbacks=out_events("points2"))

        self.cameras = CameraModelCache()  # used by the worker thread only
        self.cloud_buffer = MessageBuffer()  # reused for every points2 message (worker thread)
        self.worker = LatestFrameWorker(self._process, self._on_worker_error, name="stereo-depth")
        transport = self.values["image_transport"]
        image_type = message_type(transport)
        in_topics = [topic_for(self, "left/image_rect", transport), "left/camera_info",
                     topic_for(self, "right/image_rect", transport), "right/camera_info"]
        self._distortion_reported: set[str] = set()
        self.qos_follower = None
        if self.values["input_qos"] == AUTO:  # follow each topic's publishers (see depth_nodes.ros.qos_auto)
            self.qos_follower = PublisherQosFollower(self, in_topics, self.values["input_qos_depth"],
                                                     log=self.get_logger().info)
            in_qos = self.qos_follower.profiles
        else:
            in_qos = make_qos(self.values["input_qos"], self.values["input_qos_depth"])
        slop = self.values["approximate_sync_tolerance_seconds"] if self.values["approximate_sync"] else None
        self.inputs = subscribe_synchronized(
            self,
            [(image_type, in_topics[0]), (CameraInfo, "left/camera_info"),
             (image_type, in_topics[2]), (CameraInfo, "right/camera_info")],
            in_qos, self._on_synchronized, queue_size=self.values["queue_size"], slop_s=slop,
            event_callbacks=lambda i: subscription_qos_events(
                self, in_topics[i], lambda: self.inputs.qos[i], "input_qos",
                lambda kind, message: self.diagnosis.note_incompatible(kind, message)))
        # message_filters does not count unmatched messages: count them the same way ourselves
        self._unmatched_counter = (attach_unmatched_counter(self.inputs, self.values["queue_size"])
                                   if self.inputs.unmatched is None else None)
        self.diagnosis = InputDiagnosis(  # tells lost images, missing camera_info, bad stamps and QoS apart
            self, self.inputs, [(0, 1), (2, 3)], self.values["camera_info_timeout_s"], self.reporter.report,
            tolerance_s=slop, unmatched=lambda: (self.inputs.unmatched if self._unmatched_counter is None
                                                 else list(self._unmatched_counter.unmatched)))
        if self.qos_follower is not None:
            def resubscribe(profiles):
                self.inputs.resubscribe(profiles)
                self.diagnosis.resubscribed()

            self.qos_follower.on_change = resubscribe
            self.create_timer(0.25, self.qos_follower.update)  # 4 graph queries: cheap
        self.watchdog = InputWatchdog(self.inputs.topics, max(SILENT_MIN_S, self.values["report_period_s"]))
        mark = self.inputs.mark

        def watched_mark(index, msg=None):
            self.watchdog.mark(index)
            if msg is not None:
                self._check_age(index, msg)
            return mark(index, msg) if msg is not None else mark(index)

        self.inputs.mark = watched_mark  # looked up per message by the subscription callbacks
        self.create_timer(1.0, self._check_inputs)
        self.create_timer(0.25, self._check_silent_inputs)
        self.add_on_set_parameters_callback(make_on_set_callback(PARAMS, self.values, self._apply_params))
        self.get_logger().info(
            f"matching with {matcher.name} (disparities {matcher.disparity_bounds[0]:.0f}.."
            f"{matcher.disparity_bounds[1]:.0f}); sync: "
            f"{'approximate, slop %.3f s' % slop if slop is not None else 'exact'}"
            f"{' (message_filters)' if self.inputs.using_message_filters else ''}")
        self.get_logger().info(
            "inputs: " + ", ".join(self.resolve_topic_name(t) for t in in_topics)
            + "; outputs: " + ", ".join(self.resolve_topic_name(t) for t, _, _ in OUTPUTS))
        self.get_logger().info(cv_bridge_status().message)

    # ---------------------------------------------------------------- parameters
    def _configure_pipeline(self, values: dict) -> None:
        self.pipeline.min_depth = values["min_depth"]
        self.pipeline.max_depth = values["max_depth"]
        self.pipeline.decimation = values["point_decimation"]
        self.pipeline.colorize_cloud = values["colorize_points"]

    def _apply_params(self, proposed: dict) -> str | None:
        problems = parameter_problems(proposed)
        if problems:
            return "; ".join(problems)
        try:
            matcher = self.pipeline.matcher
            if any(proposed[n] != self.values[n] for n in _SGBM_NAMES):
                matcher = SgbmMatcher(sgbm_params_from(proposed))
        except BackendError as exc:
            return str(exc)
        self.pipeline.matcher = matcher  # swapped atomically; the worker picks it up on the next frame
        self._configure_pipeline(proposed)
        self.reporter.period_s = proposed["report_period_s"]
        self.watchdog.period_s = max(SILENT_MIN_S, proposed["report_period_s"])
        return None

    # ---------------------------------------------------------------- inputs
    def _on_synchronized(self, left_img, left_info, right_img, right_info) -> None:
        if self._unmatched_counter is not None:
            self._unmatched_counter.emitted([stamp_ns(m) for m in (left_img, left_info, right_img, right_info)])
        age = input_age_s(self.get_clock().now().nanoseconds, stamp_ns(left_img))  # for the debug line
        self.worker.submit((left_img, left_info, right_img, right_info, time.perf_counter(), age))

    def _check_inputs(self) -> None:
        """Report why inputs do not pair up (see :mod:`depth_nodes.ros.input_diagnosis`)."""
        self.diagnosis.check()

    def _check_age(self, index: int, msg) -> None:
        """Report (throttled) an input that arrived more than ``late_input_s`` after its stamp."""
        limit = self.values["late_input_s"]
        if limit <= 0:
            return
        age = input_age_s(self.get_clock().now().nanoseconds, stamp_ns(msg))
        if age > limit:
            topic = self.resolve_topic_name(self.inputs.topics[index])
            self.reporter.report(f"late:{index}", late_input_message(topic, age, limit, len(getattr(msg, "data", b""))))

    def _check_silent_inputs(self) -> None:
        """Name each input on which nothing arrived for ``max(1 s, report_period_s)``; an image
        input whose images are on the other transport is named with ``image_transport`` while it lasts."""
        newly_silent = {s.index for s in self.watchdog.silent()}
        for silence in self.watchdog.quiet():
            topic = self.resolve_topic_name(silence.topic)
            hint = None
            if silence.index in (0, 2):
                base = self.resolve_topic_name(("left/image_rect", "", "right/image_rect")[silence.index])
                hint = mismatch_hint(base, "image_transport", self.values["image_transport"], IMAGE_TRANSPORTS,
                                     lambda t: {i.topic_type for i in self.get_publishers_info_by_topic(t)})
            if hint is not None:
                self.reporter.report(f"mismatch:{topic}", hint)
            elif silence.index in newly_silent:
                self.reporter.report(f"silent:{silence.topic}",
                                     silent_input_message(topic, silence, self.count_publishers(topic)))

    # ---------------------------------------------------------------- processing
    def _process(self, msgs) -> None:
        left_msg, left_info, right_msg, right_info, t_arrival, age = msgs
        t_start = time.perf_counter()
        debug = self.get_logger().is_enabled_for(LoggingSeverity.DEBUG)
        if debug:
            self.get_logger().debug(f"frame {left_msg.header.stamp.sec}.{left_msg.header.stamp.nanosec:09d}: started")
        for side, info in (("left", left_info), ("right", right_info)):
            if side not in self._distortion_reported and has_distortion(info):
                self._distortion_reported.add(side)  # inputs are rectified by contract: said once, then trusted
                self.get_logger().warning(
                    f"{self.resolve_topic_name(side + '/camera_info')} has non-zero distortion ({info.distortion_model}, "
                    f"D = {[round(float(x), 6) for x in info.d]}): this node expects rectified images (image_rect) "
                    "and matches them as they are; rectify upstream (image_proc) if they are raw")
        left, left_encoding = decode_input(left_msg, STEREO_ENCODINGS)
        right, right_encoding = decode_input(right_msg, STEREO_ENCODINGS)
        left = _matchable(left, left_encoding)
        right = _matchable(right, right_encoding)
        frame = StereoFrame(left, right, self.cameras.get(left_info), self.cameras.get(right_info))
        # Lazy outputs: a message nobody subscribes to is not built (the point cloud is the
        # costliest); the disparity and depth are always computed.
        want_points = self.pub_points.get_subscription_count() > 0
        cloud_out = self.cloud_buffer.view(self.pipeline.cloud_shape(frame)) if want_points else None
        t_decoded = time.perf_counter()
        result = self.pipeline.process(frame, with_cloud=want_points, cloud_out=cloud_out)
        t_processed = time.perf_counter()
        header = left_msg.header
        if result.cloud is not None:  # published first: the costliest message, often the one used
            self.pub_points.publish(cloud_to_msg(result.cloud, header, self.cloud_buffer))
        if self.pub_depth.get_subscription_count() > 0:
            self.pub_depth.publish(numpy_to_image(result.depth, "32FC1", header))
        if self.pub_depth_info.get_subscription_count() > 0:
            self.pub_depth_info.publish(camera_info_for(left_info, header))
        if self.pub_disparity.get_subscription_count() > 0:
            self.pub_disparity.publish(disparity_to_msg(
                result.disparity, header, f=result.fx, baseline=result.baseline, doffs=result.doffs,
                min_disparity=result.min_disparity, max_disparity=result.max_disparity, delta_d=1.0 / 16.0))
        if debug:
            t = result.timings
            self.get_logger().debug(
                f"frame {header.stamp.sec}.{header.stamp.nanosec:09d}: decode {1e3 * (t_decoded - t_start):.2f} ms, "
                f"match {1e3 * t['match']:.2f} ms, depth {1e3 * t['depth']:.2f} ms, cloud {1e3 * t['cloud']:.2f} ms, "
                f"publish {1e3 * (time.perf_counter() - t_processed):.2f} ms, "
                f"total {1e3 * (time.perf_counter() - t_arrival):.2f} ms, input age={1e3 * age:.1f} ms")

    def _on_worker_error(self, exc: BaseException, msgs) -> None:
        if self._stopping or not self.context.ok():
            return  # shutting down (Ctrl-C mid-frame): publishers are gone, nothing to report
        stamp = msgs[0].header.stamp
        when = f"frame {stamp.sec}.{stamp.nanosec:09d}"
        if isinstance(exc, ImageConversionError):
            self.reporter.report("image", f"skipping {when}: bad image: {exc}")
        elif isinstance(exc, CameraModelError):
            self.reporter.report("camera_info", f"skipping {when}: bad camera_info: {exc}")
        elif isinstance(exc, (StereoInputError, BackendError)):
            self.reporter.report("stereo", f"skipping {when}: {exc}")
        else:
            self.reporter.report("internal", f"skipping {when}: unexpected {type(exc).__name__}: {exc}")

    def destroy_node(self):
        self._stopping = True
        worker = getattr(self, "worker", None)  # absent if the constructor failed
        if worker is not None:
            worker.stop()
        return super().destroy_node()


STEREO_ENCODINGS = COLOR_ENCODINGS + ("mono16",)  # grey images are matched as they are


def _matchable(image: np.ndarray, encoding: str) -> np.ndarray:
    """Grey images stay grey (uint8/uint16); colour becomes RGB uint8."""
    if image.ndim == 2:
        return image
    return to_rgb8(image, encoding)


def main(args=None) -> int:
    return run_node("stereo_depth_node", StereoDepthNode, USAGE, args)


if __name__ == "__main__":
    sys.exit(main())
