"""A plain rclpy stand-in for stereo_depth_node that only receives (run as its own process).

    python -m benchmarks.dds_echo

Subscribes to ``left/image_rect``, ``left/camera_info``, ``right/image_rect`` and
``right/camera_info`` with default QoS (reliable, keep last 10), no middleware set-up and no
depth_nodes code, and once all four messages of one stamp have arrived publishes an empty
``depth/image`` with that header. Run against :mod:`benchmarks.stereo_client`, it measures the
transport alone: what a pair costs between two plain ROS 2 processes, with no matching.
"""
from __future__ import annotations

import sys


def main(argv=None) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from sensor_msgs.msg import CameraInfo, Image

    from depth_nodes.ros.harness import stamp_of

    rclpy.init(args=argv)
    node = rclpy.create_node("stereo_bench_echo")
    reply = node.create_publisher(Image, "depth/image", 10)
    seen: dict[int, int] = {}

    def on_message(msg):
        stamp = stamp_of(msg)
        seen[stamp] = seen.get(stamp, 0) + 1
        if seen[stamp] == 4:
            del seen[stamp]
            reply.publish(Image(header=msg.header))
        for old in [s for s in seen if s < stamp - 10**10]:  # a pair never completed (10 s): forget it
            del seen[old]

    for topic in ("left/image_rect", "left/camera_info", "right/image_rect", "right/camera_info"):
        node.create_subscription(Image if "image" in topic else CameraInfo, topic, on_message, 10)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
