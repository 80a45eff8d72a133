"""Input QoS that follows the publishers (``input_qos: auto``) and incompatible-QoS reports.

``auto`` subscribes to each input topic with the reliability its publishers offer, as rosbag2
and rviz2 do: reliable when every publisher found on the topic is reliable (so large messages
are retransmitted instead of lost), best effort as soon as one is best effort (a reliable
subscription would not match it). Before any publisher is seen the subscription is best effort,
which matches every publisher. :class:`PublisherQosFollower` re-checks the graph periodically
(call :meth:`~PublisherQosFollower.update` from a timer), so publishers that appear later or
change are followed, and it logs every choice.

:func:`subscription_qos_events` / :func:`publisher_qos_events` build rclpy event callbacks that
report an incompatible QoS with both sides' settings and the parameter that fixes it.

Typical use in a node::

    follower = PublisherQosFollower(self, topics, depth, log=self.get_logger().info)
    subs = subscribe_synchronized(self, inputs, follower.profiles, cb, ...,
                                  event_callbacks=lambda i: subscription_qos_events(
                                      self, topics[i], lambda: subs.qos[i], "input_qos", report))
    follower.on_change = subs.resubscribe
    self.create_timer(1.0, follower.update)
"""
from __future__ import annotations

from typing import Callable, Sequence

from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSPolicyKind, QoSProfile, ReliabilityPolicy

from depth_nodes.ros.qos import QOS_CHOICES

__all__ = ["AUTO", "INPUT_QOS_CHOICES", "choose_reliability", "qos_summary", "PublisherQosFollower",
           "subscription_qos_events", "publisher_qos_events"]

AUTO = "auto"
#: Values of an ``input_qos`` parameter: ``auto`` plus the fixed profiles of :mod:`depth_nodes.ros.qos`.
INPUT_QOS_CHOICES = (AUTO,) + QOS_CHOICES


def _is_reliable(policy) -> bool:
    return policy == ReliabilityPolicy.RELIABLE


def choose_reliability(offered: Sequence[ReliabilityPolicy], current: ReliabilityPolicy) -> ReliabilityPolicy:
    """Reliability to subscribe with, given the reliabilities offered by a topic's publishers.

    RELIABLE if there is at least one publisher and all are reliable; BEST_EFFORT if any is
    not; ``current`` (unchanged) when there are no publishers, so a publisher that restarts
    does not cause a needless resubscription.
    """
    if not offered:
        return current
    return ReliabilityPolicy.RELIABLE if all(_is_reliable(p) for p in offered) else ReliabilityPolicy.BEST_EFFORT


def _name(policy) -> str:
    return getattr(policy, "name", str(policy)).lower()


def qos_summary(profile: QoSProfile) -> str:
    """``"reliable, volatile, keep_last 2"``: the settings that decide matching, for log lines."""
    parts = [_name(profile.reliability), _name(profile.durability)]
    if profile.history == HistoryPolicy.KEEP_LAST:
        parts.append(f"keep_last {profile.depth}")
    elif profile.history == HistoryPolicy.KEEP_ALL:
        parts.append("keep_all")
    return ", ".join(parts)  # the graph reports history as unknown for remote endpoints: left out


def _counts(offered: Sequence[ReliabilityPolicy]) -> str:
    n_rel = sum(_is_reliable(p) for p in offered)
    parts = [f"{n_rel} reliable"] if n_rel else []
    if len(offered) - n_rel:
        parts.append(f"{len(offered) - n_rel} best_effort")
    return ", ".join(parts) or "none"


class PublisherQosFollower:
    """Per-topic subscription QoS that follows the reliability of the topics' publishers.

    Args:
        node: the rclpy node (used for ``get_publishers_info_by_topic``).
        topics: input topic names (relative names are resolved like the subscriptions').
        depth: keep-last history depth of the subscriptions.
        on_change: called with the new list of profiles (one per topic) when any changes;
            typically ``_Subscriptions.resubscribe``. May be set after construction.
        log: called with one line per change (``"input QoS auto: left/image_rect -> reliable
            (publishers: 1 reliable)"``).

    The initial :attr:`profiles` already follow the publishers present at construction.
    """

    def __init__(self, node, topics: Sequence[str], depth: int,
                 on_change: Callable[[list[QoSProfile]], None] | None = None,
                 log: Callable[[str], None] | None = None):
        self.node = node
        self.topics = list(topics)
        self.depth = depth
        self.on_change = on_change
        self.log = log
        self.reliability = [ReliabilityPolicy.BEST_EFFORT] * len(self.topics)
        self._logged: list[str | None] = [None] * len(self.topics)
        self.changes = 0
        self._update(initial=True)

    @property
    def profiles(self) -> list[QoSProfile]:
        return [QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.depth, reliability=r,
                           durability=DurabilityPolicy.VOLATILE) for r in self.reliability]

    def offered(self, topic: str) -> list[ReliabilityPolicy]:
        """Reliability offered by each publisher currently on ``topic``."""
        infos = self.node.get_publishers_info_by_topic(self.node.resolve_topic_name(topic))
        return [info.qos_profile.reliability for info in infos]

    def update(self) -> bool:
        """Re-check the publishers; resubscribe (``on_change``) and log if a choice changed."""
        return self._update(initial=False)

    def _update(self, initial: bool) -> bool:
        changed = []
        seen_any = False
        for i, topic in enumerate(self.topics):
            offered = self.offered(topic)
            seen_any = seen_any or bool(offered)
            new = choose_reliability(offered, self.reliability[i])
            if new != self.reliability[i]:
                changed.append(i)
                self.reliability[i] = new
            publishers = _counts(offered)
            if offered and publishers != self._logged[i]:  # every new set of publishers, and the choice
                self._logged[i] = publishers
                if self.log is not None:
                    self.log(f"input QoS auto: {topic} -> {_name(new)} (publishers: {publishers})")
        if initial:
            if self.log is not None and not seen_any:
                self.log("input QoS auto: no publishers yet, subscribing best_effort (matches any publisher); "
                         "following publishers as they appear")
            return False
        if changed:
            self.changes += 1
            if self.on_change is not None:
                self.on_change(self.profiles)
        return bool(changed)


def _policy_name(kind) -> str:
    try:
        return QoSPolicyKind(int(getattr(kind, "value", kind))).name
    except (ValueError, TypeError):
        return str(kind)


def _peer_summary(infos) -> str:
    if not infos:
        return "none found"
    summaries = sorted({qos_summary(info.qos_profile) for info in infos})
    return "; ".join(summaries)


def subscription_qos_events(node, topic: str, requested: Callable[[], QoSProfile], param: str,
                            report: Callable[[str, str], object]) -> SubscriptionEventCallbacks:
    """Event callbacks for a subscription: an incompatible publisher is reported.

    ``report(kind, message)`` gets ``("incompatible_qos:<topic>", "incompatible QoS on
    /left/image_rect (RELIABILITY): publishers offer best_effort, volatile, keep_last 5; this
    node requests reliable, volatile, keep_last 2 (input_qos:=reliable); set input_qos:=auto
    ...")``. ``requested`` returns the profile currently subscribed with.
    """
    resolved = node.resolve_topic_name(topic)

    def on_incompatible(info) -> None:
        profile = requested()
        offered = node.get_publishers_info_by_topic(resolved)
        policy = _policy_name(info.last_policy_kind)
        fix = (f"set {param}:=auto (follows the publishers) or {param}:=best_effort"
               if _is_reliable(profile.reliability) else f"set {param}:=auto")
        report(f"incompatible_qos:{topic}",
               f"incompatible QoS on {resolved} ({policy}): publishers offer {_peer_summary(offered)}; this node "
               f"requests {qos_summary(profile)} ({param}); no messages from those publishers will arrive: {fix}")

    return SubscriptionEventCallbacks(incompatible_qos=on_incompatible)


def publisher_qos_events(node, topic: str, offered: QoSProfile, param: str,
                         report: Callable[[str, str], object]) -> PublisherEventCallbacks:
    """Event callbacks for a publisher: a subscriber requesting more than we offer is reported."""
    resolved = node.resolve_topic_name(topic)

    def on_incompatible(info) -> None:
        requested = node.get_subscriptions_info_by_topic(resolved)
        requested = [r for r in requested if r.node_name != node.get_name() or r.node_namespace != node.get_namespace()]
        policy = _policy_name(info.last_policy_kind)
        report(f"incompatible_qos:{topic}",
               f"incompatible QoS on {resolved} ({policy}): subscribers request {_peer_summary(requested)}; this node "
               f"offers {qos_summary(offered)} ({param}); those subscribers receive nothing: set {param}:=reliable "
               "or subscribe best effort")

    return PublisherEventCallbacks(incompatible_qos=on_incompatible)
