"""Unsynchronised input subscriptions with the nodes' ``input_qos`` and image transport parameters.

``mono_depth_node`` and ``descriptor_tracker_node`` take each input on its own (the latest
camera_info / depth is paired with each image), so they need plain subscriptions rather than
:func:`depth_nodes.ros.sync.subscribe_synchronized`. With ``input_qos: auto`` a
:class:`~depth_nodes.ros.qos_auto.PublisherQosFollower` chooses each topic's reliability from its
publishers and, when that changes, the subscriptions are replaced (same callbacks).

Image inputs follow an image_transport parameter (:mod:`depth_nodes.ros.image_transport`):
``raw`` subscribes to the topic, ``compressed``/``compressedDepth`` to its sub-topic with
sensor_msgs/CompressedImage. Every input is watched: one quiet for ``silent_s`` is reported once
per silence with the publishers seen, or, when the graph shows the image on another transport
(a mistyped remap or transport), with the parameter that fixes it (throttled, while it lasts).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from depth_nodes.ros.image_transport import message_type, mismatch_hint, topic_for
from depth_nodes.ros.input_watchdog import InputWatchdog, silent_input_message
from depth_nodes.ros.qos import make_qos
from depth_nodes.ros.qos_auto import AUTO, PublisherQosFollower

__all__ = ["Input", "InputSubscriptions"]

SILENT_MIN_S = 1.0  # the silent-input report waits at least this long, whatever report_period_s is


@dataclass(frozen=True)
class Input:
    """One input. ``msg_type`` is used for ``transport=None`` (camera_info); image inputs give
    their ``transport``, the parameter that sets it (``param``) and its ``choices``."""

    topic: str
    callback: Callable
    msg_type: type | None = None
    transport: str | None = None
    param: str = ""
    choices: tuple[str, ...] = ()


class InputSubscriptions:
    """``inputs``: :class:`Input` rows; ``kind``: an ``input_qos`` value; ``report(kind, message)``
    a throttled reporter; ``silent_s``: how long an input may stay quiet before it is reported."""

    def __init__(self, node, inputs: Sequence[Input], kind: str, depth: int, report: Callable[[str, str], object],
                 silent_s: float = 2.0, follow_period_s: float = 0.25):
        from rclpy.clock import Clock, ClockType

        self.node = node
        self.inputs = list(inputs)
        self.report = report
        self.topics = [topic_for(node, i.topic, i.transport) if i.transport else i.topic for i in self.inputs]
        self.types = [message_type(i.transport) if i.transport else i.msg_type for i in self.inputs]
        self.subscriptions: list = []
        self.watchdog = InputWatchdog(self.topics, max(SILENT_MIN_S, silent_s))
        self.follower = None
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # diagnostics run on wall time, even with sim time
        if kind == AUTO:
            self.follower = PublisherQosFollower(node, self.topics, depth, on_change=self._subscribe,
                                                 log=node.get_logger().info)
            profiles = self.follower.profiles
            node.create_timer(follow_period_s, self.follower.update, clock=steady)
        else:
            profiles = [make_qos(kind, depth)] * len(self.inputs)
        self._subscribe(profiles)
        node.create_timer(0.5, self.check, clock=steady)

    def set_silent_s(self, silent_s: float) -> None:
        self.watchdog.period_s = max(SILENT_MIN_S, silent_s)

    def _subscribe(self, profiles) -> None:
        for sub in self.subscriptions:
            self.node.destroy_subscription(sub)
        self.subscriptions = [self.node.create_subscription(t, topic, self._marked(k, i.callback), qos)
                              for k, (i, t, topic, qos) in enumerate(zip(self.inputs, self.types, self.topics,
                                                                         profiles))]

    def _marked(self, index: int, callback: Callable) -> Callable:
        def on_message(msg):
            self.watchdog.mark(index)
            callback(msg)

        return on_message

    def _types_on(self, topic: str) -> set[str]:
        return {info.topic_type for info in self.node.get_publishers_info_by_topic(topic)}

    def check(self) -> None:
        """Report silent inputs (timer): a transport mismatch while it lasts, else once per silence."""
        newly_silent = {s.index for s in self.watchdog.silent()}
        for silence in self.watchdog.quiet():
            row = self.inputs[silence.index]
            resolved = self.node.resolve_topic_name(self.topics[silence.index])
            hint = None
            if row.transport:
                hint = mismatch_hint(self.node.resolve_topic_name(row.topic), row.param, row.transport, row.choices,
                                     self._types_on)
            if hint is not None:  # reported (throttled) for as long as it lasts
                self.report(f"mismatch:{resolved}", hint)
            elif silence.index in newly_silent:
                self.report(f"silent:{resolved}", silent_input_message(
                    resolved, silence, self.node.count_publishers(resolved)))
