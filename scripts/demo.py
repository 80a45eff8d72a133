#!/usr/bin/env python3
"""`make demo`: run depth_nodes on a bundled default and write what it produced to a folder.

Stereo: a synthetic rectified 640x480 pair of textured planes at known depths (4 m wall, 2 m
box, 1.2 m panel) is published to a real ``stereo_depth_node`` process over DDS (loopback);
the node's ``disparity``, ``depth/image`` and ``points2`` are received and written as

    left.png, right.png          the input pair
    disparity.png, depth.png     colourised outputs (near = warm)
    depth.npy                    float32 depth in metres (NaN = no reading)
    points.ply                   the coloured point cloud (open in MeshLab/CloudCompare)
    summary.json                 accuracy against the exact ground truth

Why it passes on the first run: the pair (0.9 MB per image) and the cloud (4.9 MB) are larger
than Fast DDS's default 512 KB shared-memory segment, so without a profile they travel as UDP
fragments, and the node's best-effort (sensor-data) subscription loses most of them whenever
the 208 KB socket buffer overflows (only the small camera_info messages got through, and the
demo failed on a machine under load). Both the demo and the node therefore run with the
repository's ``config/fastdds_shm.xml`` (64 MB shared-memory segments) unless
``FASTDDS_DEFAULT_PROFILES_FILE`` is already set, and the demo publishes only once discovery
has matched its publishers and subscriptions with the node's (no message is sent into the void).
:func:`run_stereo_demo` is importable (``from scripts.demo import run_stereo_demo`` or by path).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", "42")
REPO = Path(__file__).resolve().parents[1]
# Large messages over shared memory (see the module docstring); a profile of the user's own wins.
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_shm.xml"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402
from stereo_msgs.msg import DisparityImage  # noqa: E402

from depth_nodes.geometry.pointcloud import write_ply  # noqa: E402
from depth_nodes.image_encodings import decode_image  # noqa: E402
from depth_nodes.ros.harness import NodeProcess, RosIO, stamp_of, stereo_messages  # noqa: E402
from depth_nodes.synthetic import default_scene  # noqa: E402
from depth_nodes.visualization import colorize  # noqa: E402

OUTPUTS = (("points2", PointCloud2), ("depth/image", Image), ("disparity", DisparityImage))


def _wait_for_discovery(io: RosIO, pubs, topics, timeout: float) -> bool:
    """True once every input publisher has the node's subscription and every output a publisher."""
    node = io.node
    return io.wait_for(lambda: all(p.get_subscription_count() > 0 for p in pubs)
                       and all(node.count_publishers(t) > 0 for t, _ in OUTPUTS), timeout=timeout, poll=0.05)


def run_stereo_demo(out: Path, width: int = 640, height: int = 480) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    scene = default_scene(width, height, seed=0)
    node = NodeProcess("stereo_depth_node", "--params-file", str(REPO / "config/stereo_depth.yaml"),
                       log_path=out / "stereo_depth_node.log")
    io = RosIO("demo_io")
    try:
        topics = ("left/image_rect", "left/camera_info", "right/image_rect", "right/camera_info")
        pubs = [io.publisher(Image if "image" in t else CameraInfo, t) for t in topics]
        for t, typ in OUTPUTS:
            io.collect(typ, t)
        if not node.wait_for_log("matching with", 30):
            raise SystemExit(f"stereo_depth_node did not start; log:\n{node.log()}")
        if not _wait_for_discovery(io, pubs, topics, 30):
            raise SystemExit(f"stereo_depth_node's topics were not discovered within 30 s; log:\n{node.log()}")
        stamp = time.time_ns()
        msgs = stereo_messages(scene, stamp)
        t0 = time.monotonic()
        have = lambda topic: any(stamp_of(m) == stamp for m in io.received[topic])  # noqa: E731
        while not all(have(t) for t in ("points2", "depth/image", "disparity")):
            if time.monotonic() - t0 > 30:
                raise SystemExit(f"no output from stereo_depth_node within 30 s; log:\n{node.log()}")
            for p, m in zip(pubs, msgs):
                p.publish(m)
            io.wait_for(lambda: all(have(t) for t in ("points2", "depth/image", "disparity")), timeout=1.0)
        pick = lambda topic: [m for m in io.messages(topic) if stamp_of(m) == stamp][0]  # noqa: E731
        depth = decode_image(pick("depth/image"))
        disp_msg = pick("disparity")
        cloud_msg = pick("points2")
    finally:
        io.close()
        node.stop()

    disparity = decode_image(disp_msg.image)
    disparity[disparity < disp_msg.min_disparity] = np.nan
    cloud = np.frombuffer(bytes(cloud_msg.data), np.float32).reshape(cloud_msg.height, cloud_msg.width, -1)
    cv2.imwrite(str(out / "left.png"), scene.left[:, :, ::-1])
    cv2.imwrite(str(out / "right.png"), scene.right[:, :, ::-1])
    cv2.imwrite(str(out / "disparity.png"), colorize(disparity)[:, :, ::-1])
    cv2.imwrite(str(out / "depth.png"), colorize(depth, 0.5, 5.0, inverse=True)[:, :, ::-1])
    np.save(out / "depth.npy", depth)
    n_points = write_ply(out / "points.ply", cloud)

    valid = np.isfinite(depth)
    rel = np.abs(depth[valid] - scene.depth[valid]) / scene.depth[valid]
    summary = {
        "input": f"synthetic rectified pair {width}x{height}, fx={scene.left_camera.fx:.1f} px, baseline 0.12 m, "
                 "planes at 4.0 / 2.0 / 1.2 m",
        "valid_fraction": round(float(valid.mean()), 4),
        "depth_abs_rel_median": round(float(np.median(rel)), 5),
        "depth_within_2pct": round(float(np.mean(rel < 0.02)), 4),
        "disparity_error_median_px": round(float(np.nanmedian(np.abs(disparity - scene.disparity))), 4),
        "points_written": n_points,
        "files": sorted(p.name for p in out.iterdir()),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "out/demo", help="output folder (default: out/demo)")
    args = parser.parse_args(argv)
    stereo_out = args.out / "stereo"
    print(f"[demo] stereo_depth_node on a synthetic 640x480 pair -> {stereo_out}")
    summary = run_stereo_demo(stereo_out)
    for k, v in summary.items():
        print(f"  {k}: {v}")
    print(f"[demo] done: outputs in {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
