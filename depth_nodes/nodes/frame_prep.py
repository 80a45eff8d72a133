"""What the mono and tracker nodes do to a frame before the network: time order and rectification.

:class:`FrameTime` keeps the frame stamp order (:class:`depth_nodes.ros.stamp_order.StampOrder`):
a small reordering skips the frame (raises the node's input error), a jump back in time (or a
``/clock`` jump back with ``use_sim_time``) logs one line and starts over. (What a node buffers by
time resets itself on the same rule: :class:`depth_nodes.pipelines.depth_pairing.DepthPairing`.)

:class:`Undistorter` applies the ``distortion`` parameter to a frame whose camera_info has
non-zero ``D``: ``rectify`` (maps cached per calibration, :mod:`depth_nodes.geometry.rectify`;
the returned camera_info has ``D = 0`` and the new ``K``/``P``) or ``refuse`` (the frame is
skipped with a line that says why). Registered depth images are rectified with the same maps
(nearest neighbour).

:func:`submit_paired` queues the images that a
:class:`~depth_nodes.pipelines.depth_pairing.DepthPairing` released, with their depth, on the
node's worker.
"""
from __future__ import annotations

from typing import Callable

from depth_nodes.geometry.rectify import RectifyCache, RectifyError, rectified_info, rectify
from depth_nodes.ros.stamp_order import StampOrder, Verdict, jump_message

__all__ = ["FrameTime", "Undistorter", "submit_paired"]


class FrameTime:
    """``error``: the node's input error type (a skipped frame); ``log``: info logger."""

    def __init__(self, node, jump_back_s: float, error: type[Exception], log: Callable[[str], None]):
        self.order = StampOrder(jump_back_s)
        self.error, self.log = error, log
        self.resets = 0
        self._jump_handle = None
        if node.get_parameter("use_sim_time").value:
            from rclpy.clock import JumpThreshold
            from rclpy.duration import Duration

            threshold = JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-int(jump_back_s * 1e9)),
                                      on_clock_change=False)
            self._jump_handle = node.get_clock().create_jump_callback(
                threshold, post_callback=lambda _jump: self.order.clock_jumped_back())

    def check(self, stamp_ns: int) -> None:
        """Accept the frame stamped ``stamp_ns``, or raise ``error`` for a reordered one."""
        verdict, back_s = self.order.check(stamp_ns)
        if verdict is Verdict.REORDERED:
            raise self.error(f"out-of-order stamp ({back_s:.3f} s older than the last frame processed; up to "
                             f"time_jump_s {self.order.jump_back_s:g} s is a reordering, more starts over)")
        if verdict in (Verdict.JUMPED_BACK, Verdict.CLOCK_JUMPED_BACK):
            self.resets += 1
            self.log(jump_message(verdict, back_s))

    def accept(self, stamp_ns: int) -> None:
        """The frame was processed (outputs published)."""
        self.order.accept(stamp_ns)


class Undistorter:
    """``mode``: ``rectify`` or ``refuse``; ``error``: the node's input error type."""

    def __init__(self, mode: str, error: type[Exception]):
        self.mode, self.error = mode, error
        self.cache = RectifyCache()

    def apply(self, image, info, depths=()):
        """``(image, info, depths)`` for a distortion-free pipeline; unchanged without distortion
        (or without camera_info). Raises ``error`` when refusing or the calibration is unusable."""
        if info is None:
            return image, info, list(depths)
        try:
            rect = self.cache.get(info)
        except RectifyError as exc:
            raise self.error(f"camera_info: {exc}") from exc
        if rect is None:
            return image, info, list(depths)
        if self.mode == "refuse":
            raise self.error(f"camera_info has lens distortion ({info.distortion_model}, D = "
                             f"{[round(float(x), 6) for x in info.d]}) and distortion is refuse: feed a rectified "
                             "image (image_rect) or set -p distortion:=rectify")
        try:
            out = rectify(image, rect)
            rect_depths = [None if d is None else rectify(d, rect, nearest=True) for d in depths]
        except RectifyError as exc:
            raise self.error(str(exc)) from exc
        return out, rectified_info(info, rect), rect_depths


def submit_paired(worker, releases) -> None:
    """Queue each released image on ``worker`` as ``(msg, depth or None, why, info, t_arrival)``; the
    pairing's items are ``(msg, info, t_arrival)`` (the image, its camera_info, its arrival time)."""
    for r in releases:
        msg, info, t_arrival = r.item
        worker.submit((msg, r.depth, r.why, info, t_arrival))
