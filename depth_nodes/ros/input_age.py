"""How old an input message is when it arrives, and the line a node logs when it is late.

A message's age at arrival is ``now - header.stamp`` on the node's clock (``use_sim_time``
aware): the camera's own latency plus the transport's. A frame's output can never be earlier
than its latest input, so a node that only times its own work (``total .. ms`` in the stereo
node's debug line) cannot see inputs that arrive seconds late. One example, measured with
``benchmarks/stereo_client.py``: a 741x500 rgb8 pair (1.1 MB per image) from a plain rclpy
process with Fast DDS's defaults goes out as fragments through the publisher's 512 KB
shared-memory segment or UDP; when a fragment is lost, the reliable writer repairs it after its
next heartbeat, and Fast DDS's default heartbeat period is 3 s: some frames arrive ~3 s late.
Only the publisher's middleware set-up fixes that (``config/fastdds_shm.xml`` for the camera
driver too, README: Large images and DDS); the node says so with :func:`late_input_message`.

Plain Python (no rclpy): the node computes the age with :func:`input_age_s` in its subscription
callback and reports through its :class:`~depth_nodes.ros.throttle.ThrottledReporter`.
"""
from __future__ import annotations

__all__ = ["input_age_s", "late_input_message"]


def input_age_s(now_ns: int, stamp_ns: int) -> float:
    """Age at arrival in seconds: ``(now_ns - stamp_ns) * 1e-9`` (negative: stamped in the future)."""
    return (int(now_ns) - int(stamp_ns)) * 1e-9


def late_input_message(topic: str, age_s: float, threshold_s: float, size_bytes: int = 0) -> str:
    """One log line for an input that arrived ``age_s`` after its stamp (``age_s > threshold_s``)."""
    size = f" ({size_bytes / 2**20:.1f} MB)" if size_bytes else ""
    hint = ("large messages from a publisher without shared memory are repaired by DDS after its heartbeat "
            "(Fast DDS: 3 s): give the publisher config/fastdds_shm.xml (README: Large images and DDS)"
            if size_bytes >= 512 * 1024 else
            "a loaded or slow publisher, a recording played without --clock, or clocks that differ between hosts")
    return (f"input {topic}{size} arrived {age_s:.3f} s after its stamp (late_input_s {threshold_s:g}): the output "
            f"of that frame is at least that late; likely: {hint}")
