"""Stereo node end to end from a plain publisher process, and fill_left_band on a real pair.

Rows (``ratio = value / baseline``):

* ``stereo_e2e_plain_<W>x<H>_median`` / ``..._p95``: a real ``stereo_depth_node`` process (default
  parameters, ``config/stereo_depth.yaml``) fed by :mod:`benchmarks.stereo_client`, a plain rclpy
  process as a camera driver would be (default QoS, no middleware set-up: the environment has no
  ``FASTDDS_DEFAULT_PROFILES_FILE``), one pair in flight at a time, >= 30 pairs; value = the median
  (p95) time from publishing a pair to receiving its ``depth/image`` in that process, baseline =
  the median (p95) of a bare ``cv2.StereoSGBM`` ``MODE_SGBM`` call on the same grey pair, timed in
  the client between two pairs. Targets: median ratio < 1, p95 ratio < 2. Sizes: 741x500 (the real
  Middlebury Cones pair resized, when ``../shared/real`` is there; else the synthetic scene),
  640x480 and 1280x720 (synthetic scene).
* ``stereo_e2e_shm_741x500_median`` / ``..._p95`` (info): the same with the client using
  ``config/fastdds_shm.xml``. With Fast DDS's defaults some images (and camera_info messages)
  reach the node up to 3 s late: a lost fragment is sent again only after the writer's next
  heartbeat (3 s by default; the profile sets 100 ms and large shared-memory segments), and the
  node logs ``arrived .. s after its stamp``. Only the publisher's set-up can change that; this
  row shows what it gives.
* ``stereo_e2e_transport_only_741x500_median`` / ``..._p95`` (info): the same client against
  :mod:`benchmarks.dds_echo` instead of the node: a plain rclpy process with default QoS and no
  depth_nodes code that answers each complete pair with an empty ``depth/image``. It shows what the
  transport alone costs between two processes with Fast DDS's defaults: the seconds-long p95 is
  there with no node at all (baseline: the same bare ``MODE_SGBM`` call, for the same ratio).
* ``sgbm_fill_left_band_bad2_cones`` / ``..._bad2_nonocc_cones`` / ``..._density_cones``: the node's
  matcher (``3way``, 128 disparities) on the real Middlebury Cones pair with ``fill_left_band``
  (value) and without (baseline): bad-2 (%, |d - gt| > 2 px or missing, over pixels with ground
  truth; and over non-occluded ones) and density (% of pixels with a disparity).
* ``sgbm_fill_left_band_time_cones`` (info): the matcher's median time with vs without padding,
  alternated (the matcher sees ``(W + P) / W`` = 1.28x the columns on Cones).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config/stereo_depth.yaml"
CONES = Path(os.environ.get("DEPTH_NODES_REAL_DATA") or REPO.parent / "shared" / "real") / "stereo" / "cones"


def _row(name, value, unit, baseline, target):
    value, baseline = float(value), float(baseline)
    return {"name": name, "value": round(value, 3), "unit": unit, "baseline": round(baseline, 3),
            "ratio": round(value / baseline, 3) if baseline else float("nan"), "target": target}


def _end_to_end(width: int, height: int, frames: int, real: bool, shm_client: bool, echo: bool = False) -> dict:
    """Start the node (or, with ``echo``, :mod:`benchmarks.dds_echo`), run the client process against
    it; the client's JSON result."""
    env = {k: v for k, v in os.environ.items() if k not in ("FASTDDS_DEFAULT_PROFILES_FILE",
                                                           "RMW_FASTRTPS_PUBLICATION_MODE")}
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("ROS_DOMAIN_ID", "43")
    client_env = dict(env, **({"FASTDDS_DEFAULT_PROFILES_FILE": str(REPO / "config/fastdds_shm.xml")}
                              if shm_client else {}))
    log = Path(tempfile.mkdtemp(prefix="bench_e2e_")) / "stereo_depth_node.log"
    exe = Path(sys.executable).parent / "stereo_depth_node"
    server = ([sys.executable, "-m", "benchmarks.dds_echo"] if echo
              else [str(exe), "--ros-args", "--params-file", str(CONFIG)])
    with open(log, "w") as out:
        node = subprocess.Popen(server, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    try:
        cmd = [sys.executable, "-m", "benchmarks.stereo_client", "--config", str(CONFIG), "--width", str(width),
               "--height", str(height), "--frames", str(frames)]
        if real:
            cmd += ["--image", str(CONES / "left.png"), str(CONES / "right.png")]
        run = subprocess.run(cmd, cwd=REPO, env=client_env, capture_output=True, text=True, timeout=600)
    finally:
        node.send_signal(2)
        try:
            node.wait(15)
        except subprocess.TimeoutExpired:
            node.kill()
    result = json.loads(run.stdout.strip().splitlines()[-1]) if run.stdout.strip() else {"error": run.stderr[-2000:]}
    if "error" in result or len(result["e2e_s"]) < frames // 2:
        raise RuntimeError(f"{width}x{height}: {result.get('error', result)}\n{log.read_text()[-2000:]}")
    result["late_lines"] = log.read_text().count("after its stamp")
    return result


def bench_end_to_end(frames: int) -> list[dict]:
    rows = []
    real = (CONES / "left.png").exists()
    cases = [(741, 500, real, False, False), (640, 480, False, False, False), (1280, 720, False, False, False),
             (741, 500, real, True, False), (741, 500, real, False, True)]
    for width, height, use_real, shm, echo in cases:
        r = _end_to_end(width, height, frames, use_real, shm, echo)
        e2e, bare = np.array(r["e2e_s"]) * 1e3, np.array(r["bare_s"]) * 1e3
        name = f"stereo_e2e_{'transport_only' if echo else 'shm' if shm else 'plain'}_{width}x{height}"
        med_target, p95_target = ("info", "info") if shm or echo else ("< 1", "< 2")
        rows += [_row(f"{name}_median", float(np.median(e2e)), "ms", float(np.median(bare)), med_target),
                 _row(f"{name}_p95", float(np.percentile(e2e, 95)), "ms", float(np.percentile(bare, 95)), p95_target)]
        print(f"   ({name}: {len(e2e)} pairs{' of the real Cones pair' if use_real else ''}, {r['lost']} lost, "
              f"max {e2e.max():.0f} ms, {r['late_lines']} late-input lines in the node's log)", flush=True)
    return rows


def bench_fill_left_band(repeats: int) -> list[dict]:
    if not (CONES / "left.png").exists():
        print(f"   (fill_left_band rows skipped: no real data at {CONES})", flush=True)
        return []
    import cv2

    from depth_nodes.backends.sgbm import SgbmMatcher, SgbmParams

    left, right = (cv2.imread(str(CONES / f"{s}.png"), cv2.IMREAD_GRAYSCALE) for s in ("left", "right"))
    gt = np.load(CONES / "disp_left.npy")
    known = gt > 0
    nonocc = known & (cv2.imread(str(CONES / "occlusion.png"), cv2.IMREAD_GRAYSCALE) == 255)
    stats, matchers = {}, {fill: SgbmMatcher(SgbmParams(fill_left_band=fill)) for fill in (True, False)}
    for fill, matcher in matchers.items():
        disp = matcher.compute(left, right)
        bad = ~(np.abs(disp - gt) <= 2.0)
        stats[fill] = [100 * bad[known].mean(), 100 * bad[nonocc].mean(), 100 * np.isfinite(disp).mean()]
    times = {True: [], False: []}
    for _ in range(repeats):  # alternated, so both see the same machine load
        for fill, matcher in matchers.items():
            t0 = time.perf_counter()
            matcher.compute(left, right)
            times[fill].append(time.perf_counter() - t0)
    for fill in matchers:
        stats[fill].append(float(np.median(times[fill])))
    on, off = stats[True], stats[False]
    return [_row("sgbm_fill_left_band_bad2_cones", on[0], "%", off[0], "info"),
            _row("sgbm_fill_left_band_bad2_nonocc_cones", on[1], "%", off[1], "info"),
            _row("sgbm_fill_left_band_density_cones", on[2], "%", off[2], "info"),
            _row("sgbm_fill_left_band_time_cones", on[3] * 1e3, "ms", off[3] * 1e3, "info")]


def run(quick: bool) -> list[dict]:
    return bench_fill_left_band(5 if quick else 21) + bench_end_to_end(10 if quick else 30)


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        print(row)
