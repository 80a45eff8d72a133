"""Unsynchronised input subscriptions with the nodes' ``input_qos`` parameter (``auto`` included).

``mono_depth_node`` and ``descriptor_tracker_node`` take each input on its own (the latest
camera_info / depth is paired with each image), so they need plain subscriptions rather than
:func:`depth_nodes.ros.sync.subscribe_synchronized`. With ``input_qos: auto`` a
:class:`~depth_nodes.ros.qos_auto.PublisherQosFollower` chooses each topic's reliability from its
publishers and, when that changes, the subscriptions are replaced (same callbacks).
"""
from __future__ import annotations

from typing import Callable, Sequence

from depth_nodes.ros.qos import make_qos
from depth_nodes.ros.qos_auto import AUTO, PublisherQosFollower

__all__ = ["InputSubscriptions"]


class InputSubscriptions:
    """``inputs``: ``(message type, topic, callback)`` rows; ``kind``: an ``input_qos`` value."""

    def __init__(self, node, inputs: Sequence[tuple[type, str, Callable]], kind: str, depth: int,
                 follow_period_s: float = 0.25):
        self.node = node
        self.inputs = list(inputs)
        self.subscriptions: list = []
        self.follower = None
        if kind == AUTO:
            self.follower = PublisherQosFollower(node, [t for _, t, _ in self.inputs], depth,
                                                 on_change=self._subscribe, log=node.get_logger().info)
            profiles = self.follower.profiles
            node.create_timer(follow_period_s, self.follower.update)
        else:
            profiles = [make_qos(kind, depth)] * len(self.inputs)
        self._subscribe(profiles)

    def _subscribe(self, profiles) -> None:
        for sub in self.subscriptions:
            self.node.destroy_subscription(sub)
        self.subscriptions = [self.node.create_subscription(t, topic, cb, qos)
                              for (t, topic, cb), qos in zip(self.inputs, profiles)]
