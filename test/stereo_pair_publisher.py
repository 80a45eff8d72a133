"""A camera driver stand-in for node tests: publishes a synthetic rectified pair in its own process.

    python test/stereo_pair_publisher.py --width 1280 --height 1024 --reliability best_effort

publishes ``left/image_rect``, ``left/camera_info``, ``right/image_rect``, ``right/camera_info``
(rgb8, exact ground truth from :func:`depth_nodes.synthetic.default_scene`) at ``--rate`` Hz with
a fresh stamp per frame, until ``--frames`` are sent or SIGINT/SIGTERM. The environment decides
the middleware set-up (a test passes the one README tells users to use, or none).
``--right-offset-ms`` shifts the right camera's stamps (unsynchronised inputs); ``--no-images`` /
``--no-camera-info`` leave those topics out. Prints ``ready`` once publishing, ``frame <stamp_ns>``
per frame.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time

import rclpy
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from depth_nodes.ros.harness import stereo_messages
from depth_nodes.synthetic import default_scene

TOPICS = ("left/image_rect", "left/camera_info", "right/image_rect", "right/camera_info")
FIRST_STAMP = 1_700_000_000_000_000_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--reliability", choices=("reliable", "best_effort"), default="reliable")
    ap.add_argument("--depth", type=int, default=5, help="keep-last history depth (the ROS default is 5)")
    ap.add_argument("--rate", type=float, default=2.0)
    ap.add_argument("--frames", type=int, default=0, help="0 = until stopped")
    ap.add_argument("--right-offset-ms", type=float, default=0.0)
    ap.add_argument("--no-images", action="store_true")
    ap.add_argument("--no-camera-info", action="store_true")
    args = ap.parse_args()

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    scene = default_scene(args.width, args.height, seed=3)
    rclpy.init()
    node = rclpy.create_node("stereo_pair_publisher")
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=args.depth, durability=DurabilityPolicy.VOLATILE,
                     reliability=ReliabilityPolicy.RELIABLE if args.reliability == "reliable"
                     else ReliabilityPolicy.BEST_EFFORT)
    wanted = [not args.no_images, not args.no_camera_info, not args.no_images, not args.no_camera_info]
    pubs = [node.create_publisher(Image if "image" in t else CameraInfo, t, qos) if w else None
            for t, w in zip(TOPICS, wanted)]
    print("ready", flush=True)
    offset_ns = int(round(args.right_offset_ms * 1e6))
    sent = 0
    try:
        while not stop and (args.frames == 0 or sent < args.frames):
            stamp = FIRST_STAMP + sent * 100_000_000
            left = stereo_messages(scene, stamp)
            right = stereo_messages(scene, stamp + offset_ns) if offset_ns else left
            for pub, msg in zip(pubs, (left[0], left[1], right[2], right[3])):
                if pub is not None:
                    pub.publish(msg)
            print(f"frame {stamp}", flush=True)
            sent += 1
            deadline = time.monotonic() + 1.0 / args.rate
            while not stop and time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=max(0.0, min(0.05, deadline - time.monotonic())))
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
