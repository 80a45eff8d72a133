"""How old an input message is when it arrives, and the line a node logs when it is late.

A message's age at arrival is ``now - header.stamp`` on the node's clock (``use_sim_time``
aware): the camera's own latency plus the transport's. A frame's output can never be earlier
than its latest input, so a node that only times its own work (``total .. ms`` in the stereo
node's debug line) cannot see inputs that arrive seconds late. Measured with
``benchmarks/stereo_client.py``: 741x500 rgb8 pairs (1.1 MB per image) from a plain rclpy process
with Fast DDS's defaults reach the node up to 3 s late (p95 2.4-3.5 s end to end, camera_info
messages late too), whatever the node's own transport set-up: a lost fragment is only sent again
after the writer's next heartbeat, every 3 s by default. With the publisher on
``config/fastdds_shm.xml`` (large shared-memory segments, 100 ms heartbeats) or only a 100 ms
heartbeat, no input arrives late and p95 is ~0.35 s; a plain rclpy receiver with no depth_nodes
code (``benchmarks/dds_echo.py``) sees the same delays. Only the publisher's middleware set-up
fixes that (docs/dds.md, "Late inputs"); the node says so with :func:`late_input_message`.

Plain Python (no rclpy): the node computes the age with :func:`input_age_s` in its subscription
callback and reports through its :class:`~depth_nodes.ros.throttle.ThrottledReporter`.
"""
from __future__ import annotations

__all__ = ["CLOCK_MISMATCH_S", "input_age_s", "late_input_message"]


def input_age_s(now_ns: int, stamp_ns: int) -> float:
    """Age at arrival in seconds: ``(now_ns - stamp_ns) * 1e-9`` (negative: stamped in the future)."""
    return (int(now_ns) - int(stamp_ns)) * 1e-9


#: an age beyond this is no transport delay but stamps from another clock
CLOCK_MISMATCH_S = 60.0


def late_input_message(topic: str, age_s: float, threshold_s: float, size_bytes: int = 0) -> str:
    """One log line for an input that arrived ``age_s`` after its stamp (``age_s > threshold_s``).

    Over :data:`CLOCK_MISMATCH_S` the line says the stamps come from another clock (a recording
    played without ``--clock``, hosts whose clocks differ) instead of naming transport causes.
    """
    size = f" ({size_bytes / 2**20:.1f} MB)" if size_bytes else ""
    if age_s > CLOCK_MISMATCH_S:
        days = f" ({age_s / 86400:.1f} days)" if age_s >= 86400 else ""
        return (f"input {topic}{size} is stamped {age_s:.0f} s{days} before this node's clock (late_input_s "
                f"{threshold_s:g}): the stamps come from another clock. A recording: play it with --clock "
                "(depth-nodes play --clock, ros2 bag play --clock) and start the node with use_sim_time:=true; "
                "a camera on another host: synchronise the clocks (chrony/PTP)")
    hint = ("a large message lost in part and sent again after the publisher's next DDS heartbeat (Fast DDS: "
            "every 3 s): give the publisher config/fastdds_shm.xml (docs/dds.md, Late inputs)"
            if size_bytes >= 512 * 1024 else
            "a loaded or slow publisher, a recording played without --clock, or clocks that differ between hosts")
    return (f"input {topic}{size} arrived {age_s:.3f} s after its stamp (late_input_s {threshold_s:g}): the output "
            f"of that frame is at least that late; likely: {hint}")
