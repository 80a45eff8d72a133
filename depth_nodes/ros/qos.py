"""QoS profiles for inputs and outputs, chosen by parameter.

Camera inputs default to the sensor-data profile (best effort, keep last, small depth), outputs
to reliable; both can be overridden (``input_qos`` / ``output_qos`` parameters), e.g. to
subscribe to a reliable-only bag player or publish best effort over Wi-Fi.
"""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

__all__ = ["QOS_CHOICES", "make_qos"]

QOS_CHOICES = ("sensor_data", "reliable", "best_effort")


def make_qos(kind: str, depth: int) -> QoSProfile:
    """``sensor_data``/``best_effort`` -> best effort; ``reliable`` -> reliable; keep last ``depth``."""
    if kind not in QOS_CHOICES:
        raise ValueError(f"QoS must be one of {', '.join(QOS_CHOICES)}, got {kind!r}")
    if depth < 1:
        raise ValueError(f"QoS depth must be >= 1, got {depth}")
    reliability = ReliabilityPolicy.RELIABLE if kind == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)
