"""A plain rclpy camera-driver stand-in that times stereo_depth_node end to end (run as its own process).

    python -m benchmarks.stereo_client --width 741 --height 500 --frames 30 [--image left.png right.png]

Publishes ``left/image_rect``, ``left/camera_info``, ``right/image_rect``, ``right/camera_info``
with default QoS (reliable, keep last 10: what ``create_publisher(..., 10)`` gives a camera
driver) and no middleware set-up of its own (whatever the environment holds; the bench runs it
with none), one pair in flight at a time, and times each pair from publishing to receiving its
``depth/image``. Between two pairs it times a bare ``cv2.StereoSGBM`` call in ``MODE_SGBM`` with
the node's range, window and penalties on the same grey pair, so both see the same machine load.
Prints one JSON line: ``{"e2e_s": [...], "bare_s": [...], "lost": n}``.

With ``--image`` the pair is read from two image files (a real pair, resized to the size asked);
otherwise it is :func:`depth_nodes.synthetic.default_scene`.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time


def _pair(args):
    from depth_nodes.synthetic import default_scene

    scene = default_scene(args.width, args.height, seed=0)
    if args.image:
        import cv2

        imgs = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in args.image]
        scene.left, scene.right = (cv2.resize(im, (args.width, args.height), interpolation=cv2.INTER_AREA)
                                   for im in imgs)
    return scene


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=741)
    ap.add_argument("--height", type=int, default=500)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--image", nargs=2, metavar=("LEFT", "RIGHT"))
    ap.add_argument("--config", required=True, help="the node's parameter file (for the bare call's settings)")
    ap.add_argument("--gap-s", type=float, default=0.05, help="pause between pairs")
    args = ap.parse_args(argv)

    import cv2
    import rclpy
    import yaml
    from sensor_msgs.msg import CameraInfo, Image

    from depth_nodes.ros.harness import stamp_of, stereo_messages

    values = yaml.safe_load(open(args.config))["/**"]["ros__parameters"]
    w = values["correlation_window_size"]
    bare = cv2.StereoSGBM_create(
        minDisparity=values["min_disparity"], numDisparities=values["disparity_range"], blockSize=w,
        P1=int(values["P1"]) or 8 * w * w, P2=int(values["P2"]) or 32 * w * w, disp12MaxDiff=values["disp12_max_diff"],
        preFilterCap=values["prefilter_cap"], uniquenessRatio=int(values["uniqueness_ratio"]),
        speckleWindowSize=values["speckle_size"], speckleRange=values["speckle_range"], mode=cv2.StereoSGBM_MODE_SGBM)
    scene = _pair(args)
    grey = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in (scene.left, scene.right)]
    bare.compute(*grey)

    rclpy.init()
    node = rclpy.create_node("stereo_bench_client")
    topics = ("left/image_rect", "left/camera_info", "right/image_rect", "right/camera_info")
    pubs = [node.create_publisher(Image if "image" in t else CameraInfo, t, 10) for t in topics]
    arrived: dict[int, float] = {}
    cond = threading.Condition()

    def on_depth(msg):
        with cond:
            arrived.setdefault(stamp_of(msg), time.perf_counter())
            cond.notify_all()

    node.create_subscription(Image, "depth/image", on_depth, 10)
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()

    def send_and_wait(stamp: int, timeout: float) -> float | None:
        msgs = stereo_messages(scene, stamp)  # built before the clock starts
        t0 = time.perf_counter()
        for p, m in zip(pubs, msgs):
            p.publish(m)
        publish_s.append(time.perf_counter() - t0)
        with cond:
            cond.wait_for(lambda: stamp in arrived, timeout)
            return arrived[stamp] - t0 if stamp in arrived else None

    e2e, bare_s, publish_s, lost = [], [], [], 0
    try:
        deadline = time.monotonic() + 60  # discovery: repeat until the node answers
        while send_and_wait(time.time_ns(), 1.0) is None:
            if time.monotonic() > deadline:
                print(json.dumps({"error": "no depth/image from stereo_depth_node in 60 s"}), flush=True)
                return 1
        for _ in range(2):
            send_and_wait(time.time_ns(), 10.0)
        for _ in range(args.frames):
            t0 = time.perf_counter()
            bare.compute(*grey)
            bare_s.append(time.perf_counter() - t0)
            time.sleep(args.gap_s)
            dt = send_and_wait(time.time_ns(), 10.0)
            if dt is None:
                lost += 1
            else:
                e2e.append(dt)
    finally:
        executor.shutdown()
        spinner.join(5)
        node.destroy_node()
        rclpy.try_shutdown()
    print(json.dumps({"e2e_s": e2e, "bare_s": bare_s, "lost": lost, "publish_s": publish_s[-len(e2e) - lost:]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
