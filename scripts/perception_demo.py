#!/usr/bin/env python3
"""The whole package on one simulated recording: mono depth, stereo depth and keypoint tracking nodes.

    .venv/bin/python scripts/perception_demo.py --out out/demo      # what `make demo` runs

0. runs the stereo demo (``scripts/demo.py``: ``OUT/stereo/``), then, in ``OUT/perception/``:

1. records two short episodes with ``depth-train sim`` (one to play, one whose median depth is the
   constant baseline);
2. uses the shipped models: the mono node runs ``depth_nodes/models/mono_depth_xfeat.onnx``
   (relative inverse depth) with ``scale_mode: align`` to the recorded depth camera (scale and
   shift fitted every frame), the tracker ``depth_nodes/models/descriptors_xfeat.onnx``, and
   ``depth-train keypoints`` picks the reference keypoints on the played episode's first frame with
   it; the exact commands are written to ``OUT/commands.txt``;
3. starts ``mono_depth_node``, ``descriptor_tracker_node`` (3D from the recorded depth camera) and
   ``stereo_depth_node`` as processes, plays the episode through them with ``depth-nodes play``
   over real ROS 2 topics, and collects what they publish;
4. writes into ``OUT/perception``: ``depth_<frame>.png`` (image | mono depth | stereo depth | ground truth),
   ``mono_points.ply``, ``keypoints_sheet.png`` (tracked keypoints on every 4th frame) and
   ``report.md`` (per node: frames in/out, latency, rate, accuracy against the simulator's exact
   depth and the keypoints' true projections).

Recordings and models are kept in ``OUT/perception/work`` and reused by the next run (delete it to redo them);
outputs are rewritten every run.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", "42")
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_shm.xml"))

H, W = 128, 160
TOPICS = {"color": "/camera/color/image_raw", "color_info": "/camera/color/camera_info",
          "depth": "/camera/depth/image_rect_raw", "left": "/stereo/left/image_rect",
          "left_info": "/stereo/left/camera_info", "right": "/stereo/right/image_rect",
          "right_info": "/stereo/right/camera_info"}


class DemoError(RuntimeError):
    pass


def run(cmd: list[str], log: Path, commands: list[str]) -> None:
    commands.append(" ".join(str(c) for c in cmd))
    print(f"+ {' '.join(str(c) for c in cmd)}", flush=True)
    with open(log, "w") as f:
        rc = subprocess.call([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT)
    if rc != 0:
        raise DemoError(f"{cmd[0]} failed (exit {rc}); last lines of {log}:\n" + "\n".join(log.read_text().splitlines()[-15:]))


def record(bag: Path, seed: int, frames: int, logs: Path, commands: list[str]) -> None:
    if (bag / "metadata.yaml").is_file() and bag.with_suffix(".groundtruth.npz").is_file():
        return
    shutil.rmtree(bag, ignore_errors=True)
    run([BIN / "depth-train", "sim", "--out", bag, "--frames", frames, "--rate", 5, "--width", W, "--height", H,
         "--seed", seed, "--objects", 2, "--quiet"], logs / f"sim_{bag.name}.log", commands)


def prepare_models(work: Path, test_bag: Path, logs: Path, commands: list[str]) -> dict:
    """The shipped models, and the tracker's keypoint reference picked with the descriptor model."""
    from depth_nodes.shipped_models import shipped_model

    models = work / "models"
    models.mkdir(parents=True, exist_ok=True)
    dt = BIN / "depth-train"
    depth_onnx = shipped_model("mono_depth")
    if depth_onnx is None:
        raise DemoError("no shipped mono depth model in depth_nodes/models (scripts/mono_shipped_model.sh)")
    # descriptors: keypoints picked on the objects of the played episode's first frame, at the camera's size
    desc_onnx, ref = shipped_model("descriptors"), models / "keypoints.npz"
    if desc_onnx is None:
        raise DemoError("no shipped descriptor model in depth_nodes/models (scripts/descriptor_shipped_model.sh)")
    if not ref.is_file():
        run([dt, "keypoints", "--model", desc_onnx, "--bag", test_bag, "--frame", 0, "--frame-size", f"{W}x{H}",
             "--auto", 6, "--out", ref, "--cache-dir", work / "cache"], logs / "keypoints.log", commands)
    return {"depth": depth_onnx, "descriptors": desc_onnx, "reference": ref}


def start_nodes(models: dict, logs: Path):
    from depth_nodes.ros.harness import NodeProcess

    dbg = lambda ns, exe: ["--log-level", f"{ns}.{exe}:=debug"]  # noqa: E731 - per-frame timing lines
    # model_path empty: the shipped relative-depth model, in metres by aligning it to the depth camera
    mono = NodeProcess("mono_depth_node", "--params-file", str(REPO / "config/mono_depth.yaml"),
                       "-p", "scale_mode:=align", "-p", "input_qos:=reliable", "-r", "__ns:=/mono",
                       "-r", f"image:={TOPICS['color']}", "-r", f"camera_info:={TOPICS['color_info']}",
                       "-r", f"sparse_depth:={TOPICS['depth']}",
                       *dbg("mono", "mono_depth_node"), log_path=logs / "mono_depth_node.log")
    tracker = NodeProcess("descriptor_tracker_node", "--params-file", str(REPO / "config/descriptor_tracker.yaml"),
                          "-p", f"model_path:={models['descriptors']}", "-p", f"reference_path:={models['reference']}",
                          "-p", "use_depth:=true", "-p", "input_qos:=reliable", "-p", "depth_max_age_s:=0.01",
                          "-r", "__ns:=/tracker", "-r", f"image:={TOPICS['color']}",
                          "-r", f"depth/image:={TOPICS['depth']}", "-r", f"camera_info:={TOPICS['color_info']}",
                          *dbg("tracker", "descriptor_tracker_node"), log_path=logs / "descriptor_tracker_node.log")
    stereo = NodeProcess("stereo_depth_node", "--params-file", str(REPO / "config/stereo_depth.yaml"),
                         "-p", "disparity_range:=48", "-p", "input_qos:=reliable", "-r", "__ns:=/stereo",
                         "-r", f"left/image_rect:={TOPICS['left']}", "-r", f"left/camera_info:={TOPICS['left_info']}",
                         "-r", f"right/image_rect:={TOPICS['right']}",
                         "-r", f"right/camera_info:={TOPICS['right_info']}",
                         *dbg("stereo", "stereo_depth_node"), log_path=logs / "stereo_depth_node.log")
    return {"mono": mono, "tracker": tracker, "stereo": stereo}


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def node_timings(log: str) -> list[float]:
    """Per-frame ``total`` ms (receive -> last publish) from a node's debug log."""
    return [float(m) for m in re.findall(r"total ([\d.]+) ms", log)]


def bag_image(bag: Path, topic: str, stamp_ns: int) -> np.ndarray:
    """The rgb8 image of ``topic`` with header stamp ``stamp_ns`` in ``bag``."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        for conn, _, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            if msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec == stamp_ns:
                return np.asarray(msg.data, np.uint8).reshape(msg.height, msg.width, 3).copy()
    raise DemoError(f"{bag}: no {topic} image with stamp {stamp_ns}")


def absrel(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """(mean |z - z*| / z* over pixels valid in both, fraction of ground-truth pixels with a prediction)."""
    valid = np.isfinite(gt) & (gt > 0)
    both = valid & np.isfinite(pred) & (pred > 0)
    if not both.any():
        return float("nan"), 0.0
    return float(np.mean(np.abs(pred[both] - gt[both]) / gt[both])), float(both.sum() / max(valid.sum(), 1))


def true_keypoints(ref_pixels: np.ndarray, gt, f0: int, frames: list[int]) -> dict[int, np.ndarray]:
    """Projections of the reference keypoints (picked in frame ``f0``) into ``frames`` (NaN when occluded)."""
    K = gt["K_color"]
    T = gt["T_world_color_optical"]
    depth = gt["depth_m"]
    u, v = ref_pixels[:, 0], ref_pixels[:, 1]
    z = depth[f0][np.rint(v).astype(int), np.rint(u).astype(int)]
    cam = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z, np.ones_like(z)])
    world = T[f0] @ cam
    out = {}
    for f in frames:
        pc = np.linalg.inv(T[f]) @ world
        uu, vv = K[0, 0] * pc[0] / pc[2] + K[0, 2], K[1, 1] * pc[1] / pc[2] + K[1, 2]
        px = np.stack([uu, vv], axis=1)
        ui, vi = np.rint(uu).astype(int), np.rint(vv).astype(int)
        inside = (ui >= 0) & (ui < depth.shape[2]) & (vi >= 0) & (vi < depth.shape[1]) & (pc[2] > 0)
        seen = np.zeros(len(u), bool)
        seen[inside] = np.abs(depth[f][vi[inside], ui[inside]] - pc[2][inside]) < 0.01 + 0.02 * pc[2][inside]
        px[~seen] = np.nan
        out[f] = px
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out/demo", help="output folder (default out/demo): the perception demo "
                        "writes OUT/perception/, the stereo demo (scripts/demo.py) OUT/stereo/")
    parser.add_argument("--no-stereo-demo", action="store_true", help="do not run scripts/demo.py first")
    parser.add_argument("--frames", type=int, default=25, help="frames of the played episode (default 25)")
    parser.add_argument("--rate", type=float, default=0.5, help="playback speed factor (default 0.5)")
    args = parser.parse_args(argv)
    t_start = time.monotonic()
    if not args.no_stereo_demo:  # the stereo node on a synthetic pair with exact depth (OUT/stereo/)
        rc = subprocess.call([sys.executable, str(REPO / "scripts/demo.py"), "--out", args.out])
        if rc != 0:
            raise DemoError(f"scripts/demo.py failed (exit {rc})")
    out = Path(args.out).resolve() / "perception"
    work, logs = out / "work", out / "logs"
    for d in (work, logs):
        d.mkdir(parents=True, exist_ok=True)
    commands: list[str] = []
    baseline_bag, test_bag = work / "sim_baseline", work / "sim_test"  # baseline: its median depth is the constant
    record(baseline_bag, 1, 40, logs, commands)
    record(test_bag, 2, args.frames, logs, commands)
    models = prepare_models(work, test_bag, logs, commands)
    if commands or not (out / "commands.txt").is_file():  # a re-run keeps the commands that made work/
        (out / "commands.txt").write_text("\n".join(commands) + "\n")
    t_prepared = time.monotonic()

    import cv2
    import rclpy
    from sensor_msgs.msg import Image, PointCloud2

    from depth_nodes.geometry.pointcloud import write_ply
    from depth_nodes.image_encodings import decode_image
    from depth_nodes.keypoints.reference import load_reference
    from depth_nodes.ros.harness import RosIO
    from depth_nodes.visualization import colorize

    nodes = start_nodes(models, logs)
    io = RosIO("perception_demo_io")
    try:
        for topic, typ in (("/mono/depth/image", Image), ("/mono/depth/points", PointCloud2),
                           ("/stereo/depth/image", Image), ("/tracker/keypoints", PointCloud2),
                           ("/tracker/keypoints/image", Image)):  # (not the inputs: play waits for the nodes)
            io.collect(typ, topic, depth=100)
        for name, node in nodes.items():
            if not node.wait_for_log("[INFO]", 60) or not node.alive():
                raise DemoError(f"{name} node did not start:\n{node.log()[-2000:]}")
        # the mono node and the tracker both take the wrist camera: wait for both (one may start seconds later)
        shared = [f"{TOPICS[k]}=2" for k in ("color", "color_info", "depth")]
        play = [BIN / "depth-nodes", "play", test_bag, "--rate", args.rate, "--wait-for-subscribers", 30,
                "--min-subscribers", *shared, "--delay", 1.0, "--topics", *TOPICS.values()]
        run(play, logs / "play.log", [])
        time.sleep(2.0)  # last frames through the nodes
        received = {t: io.messages(t) for t in io.received}
    finally:
        io.close()
        codes = {name: node.stop() for name, node in nodes.items()}
        if rclpy.ok():
            rclpy.try_shutdown()
    bad = {n: c for n, c in codes.items() if c != 0}
    if bad:
        raise DemoError(f"nodes exited with {bad}; see {logs}")

    gt = np.load(test_bag.with_suffix(".groundtruth.npz"), allow_pickle=False)
    frame_of = {int(s): i for i, s in enumerate(gt["stamps_ns"])}
    played = len(gt["stamps_ns"])
    rows = []
    # ---- depth accuracy
    for node, topic, gt_key in (("mono_depth_node", "/mono/depth/image", "depth_m"),
                                ("stereo_depth_node", "/stereo/depth/image", "stereo_left_depth_m")):
        msgs = [m for m in received[topic] if _stamp(m) in frame_of]
        errs = [absrel(decode_image(m), gt[gt_key][frame_of[_stamp(m)]]) for m in msgs]
        rows.append((node, len({_stamp(m) for m in msgs}), errs))
    # ---- keypoints
    ref = load_reference(models["reference"])
    kp_msgs = {_stamp(m): m for m in received["/tracker/keypoints"] if _stamp(m) in frame_of}
    truth = true_keypoints(ref.pixels.astype(np.float64), gt, 0, [frame_of[s] for s in kp_msgs])
    kp_err, tracked, visible = [], 0, 0
    for s, m in kp_msgs.items():
        rec = np.frombuffer(bytes(m.data), np.float32).reshape(m.width, 7)
        t = truth[frame_of[s]]
        vis = np.isfinite(t).all(axis=1)
        ok = vis & np.isfinite(rec[:, 3:5]).all(axis=1)
        visible += int(vis.sum())
        tracked += int(ok.sum())
        kp_err += list(np.linalg.norm(rec[ok, 3:5] - t[ok], axis=1))
    # ---- files
    mid = sorted(s for s in {_stamp(m) for m in received["/mono/depth/image"]} & set(frame_of))
    if not mid:
        raise DemoError("the mono node published no depth for the played frames; see logs/")
    s_mid = mid[len(mid) // 2]
    f_mid = frame_of[s_mid]
    pick = lambda topic: next((m for m in received[topic] if _stamp(m) == s_mid), None)  # noqa: E731
    colour = bag_image(test_bag, TOPICS["color"], s_mid)
    lo, hi = np.nanpercentile(gt["depth_m"][f_mid], [2, 98])
    s_lo, s_hi = np.nanpercentile(gt["stereo_left_depth_m"][f_mid], [2, 98])

    def panel(topic, vmin, vmax):
        m = pick(topic)
        return colorize(decode_image(m), vmin, vmax, inverse=True) if m else np.zeros((H, W, 3), np.uint8)

    panels = [colour, panel("/mono/depth/image", lo, hi), colorize(gt["depth_m"][f_mid], lo, hi, inverse=True),
              bag_image(test_bag, TOPICS["left"], s_mid), panel("/stereo/depth/image", s_lo, s_hi),
              colorize(gt["stereo_left_depth_m"][f_mid], s_lo, s_hi, inverse=True)]
    for old in out.glob("depth_*.png"):
        old.unlink()
    depth_png = out / f"depth_{f_mid:03d}.png"
    cv2.imwrite(str(depth_png), cv2.cvtColor(np.concatenate(panels, axis=1), cv2.COLOR_RGB2BGR))
    cloud = pick("/mono/depth/points")
    if cloud is not None:
        arr = np.frombuffer(bytes(cloud.data), np.float32).reshape(cloud.height, cloud.width, 4)
        write_ply(out / "mono_points.ply", arr)
    overlays = [m for m in received["/tracker/keypoints/image"] if _stamp(m) in frame_of][::4][:8]
    if overlays:
        tiles = [decode_image(m) for m in overlays] + [np.zeros((H, W, 3), np.uint8)] * ((-len(overlays)) % 4)
        sheet = np.concatenate([np.concatenate(tiles[i:i + 4], axis=1) for i in range(0, len(tiles), 4)], axis=0)
        cv2.imwrite(str(out / "keypoints_sheet.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    # ---- report
    play_s = (gt["stamps_ns"][-1] - gt["stamps_ns"][0]) / 1e9 / args.rate
    lines = [
        "# Perception demo report", "",
        f"Episode: {played} frames at 5 Hz ({W}x{H}), played at x{args.rate:g} through real node processes over "
        "ROS 2 topics. Both learned nodes run the shipped models, untrained here: the mono node's relative "
        "depth is aligned (scale and shift of inverse depth, every frame) to the recorded depth camera, which has "
        "holes and noise; accuracy against the simulator's exact depth (see commands.txt).", "",
        "| node | frames out / in | latency median (p90) ms | rate Hz (input {:.1f} Hz) | accuracy |".format(
            5 * args.rate),
        "|---|---|---|---|---|",
    ]
    other_gt = np.load(baseline_bag.with_suffix(".groundtruth.npz"), allow_pickle=False)["depth_m"]
    const = float(np.nanmedian(np.where(other_gt > 0, other_gt, np.nan)))
    const_err = [absrel(np.full_like(d, const), d)[0] for d in gt["depth_m"]]
    for node, n, errs in rows:
        t = node_timings(nodes[node.split("_")[0]].log())
        vals = [e for e, _ in errs if np.isfinite(e)]
        cover = float(np.mean([c for _, c in errs])) if errs else 0.0
        acc = (f"AbsRel {np.mean(vals):.3f} on {100 * cover:.0f} % of pixels" if vals else "no depth")
        lat = f"{np.median(t):.1f} ({np.percentile(t, 90):.1f})" if t else "-"
        lines.append(f"| {node} | {n} / {played} | {lat} | {n / play_s:.2f} | {acc} |")
    t = node_timings(nodes["tracker"].log())
    lat = f"{np.median(t):.1f} ({np.percentile(t, 90):.1f})" if t else "-"
    kp_acc = (f"{100 * tracked / max(visible, 1):.0f} % of visible keypoints tracked, median error "
              f"{np.median(kp_err):.1f} px, {100 * np.mean(np.array(kp_err) < 5):.0f} % within 5 px"
              if kp_err else "nothing tracked")
    lines.append(f"| descriptor_tracker_node ({ref.num_keypoints} keypoints) | {len(kp_msgs)} / {played} | {lat} | "
                 f"{len(kp_msgs) / play_s:.2f} | {kp_acc} |")
    from depth_nodes.pipelines.mono_scale import fit_inverse_depth

    ramp = np.repeat(np.linspace(0.0, 1.0, H, dtype=np.float32)[:, None], W, axis=1)
    ramp_err = []
    for d in gt["depth_m"]:  # the prior fitted to the exact depth: more than the node's fit to the camera gets
        fit = fit_inverse_depth(ramp, d)
        ramp_err.append(absrel(1.0 / np.maximum(fit.scale * ramp + fit.shift, 1e-6), d)[0])
    lines += ["", f"Baselines on the wrist camera's frames: a constant depth ({const:.2f} m, the other episode's median) "
              f"has AbsRel {np.mean(const_err):.3f}; a vertical ramp in inverse depth fitted (scale and shift) to "
              f"each frame's exact depth has {np.mean(ramp_err):.3f}.", "",
              "Latency: receive -> last publish inside each node (its debug log). Files: "
              f"`{depth_png.name}` (wrist image, mono depth, its ground truth; stereo left image, stereo depth, its ground "
              "truth; same colour range within each triple), `mono_points.ply`, "
              "`keypoints_sheet.png`; node logs in `logs/`.", "",
              f"Total {time.monotonic() - t_start:.0f} s (preparing recordings and models "
              f"{t_prepared - t_start:.0f} s)."]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DemoError as exc:
        print(f"perception_demo: {exc}", file=sys.stderr)
        sys.exit(1)
