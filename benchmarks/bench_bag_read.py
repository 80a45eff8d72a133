"""Bag reading speed: decoded, time-synchronised samples per second vs the bare ``rosbags`` reader.

For each storage (MCAP, sqlite3) a synthetic RGB-D recording is written in a temporary folder
(:func:`depth_training.bags.synthetic.write_synthetic_bag`), then, interleaved and best of
``repeats``:

* baseline: ``rosbags.highlevel.AnyReader`` iterating the colour and depth messages, raw bytes
  only (no deserialisation, no decoding); one "sample" = one colour + one depth message;
* ``bag_read_decode_<fmt>``: :class:`~depth_training.bags.SyncedSamples` with colour (rgb8 ->
  RGB uint8, camera_info attached) and depth (16UC1 -> float32 metres, NaN holes), matched by
  header stamp;
* ``bag_info_scan_<fmt>``: :func:`~depth_training.bags.summary.summarize_bag` (reads every
  message of the bag) in messages per second vs the bare reader over all messages.

``ratio = value / baseline`` (1.0 = as fast as the bare reader; lower = the cost of decoding).
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

COLOR = "/camera/color/image_raw"
DEPTH = "/camera/depth/image_rect_raw"


def _best(fn, repeats: int) -> tuple[float, int]:
    """(best seconds, count returned by fn) over ``repeats`` runs."""
    best, count = float("inf"), 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        count = fn()
        best = min(best, time.perf_counter() - t0)
    return best, count


def _bare(path: Path, topics: list[str] | None) -> int:
    from rosbags.highlevel import AnyReader

    n = 0
    with AnyReader([path]) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        for _conn, _t, data in reader.messages(connections=conns):
            n += len(data) > 0
    return n


def _synced(path: Path) -> int:
    from depth_training.bags import StreamSpec, SyncedSamples, open_bag

    n = 0
    with open_bag(path) as bag:
        for sample in SyncedSamples(bag, [StreamSpec("color", COLOR, "color", "/camera/color/camera_info"),
                                          StreamSpec("depth", DEPTH, "depth")], tolerance_s=0.005):
            n += sample["depth"].image.shape[0] > 0
    return n


def _scan(path: Path) -> int:
    from depth_training.bags import open_bag
    from depth_training.bags.summary import summarize_bag

    with open_bag(path) as bag:
        summary = summarize_bag(bag)
    return sum(t.read or 0 for t in summary.topics)


def run(quick: bool) -> list[dict]:
    """Rows ``{"name", "value", "unit", "baseline", "ratio"}`` for MCAP and sqlite3."""
    from depth_training.bags.synthetic import write_synthetic_bag

    frames, width, height, repeats = (40, 160, 120, 2) if quick else (150, 320, 240, 3)
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_bag_read_"))
    try:
        for fmt in ("mcap", "sqlite3"):
            path = tmp / fmt
            write_synthetic_bag(path, fmt, frames=frames, width=width, height=height, with_stereo=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _bare(path, None)  # warm the page cache
                t_bare, n_bare = _best(lambda: _bare(path, [COLOR, DEPTH]), repeats)
                t_ours, n_ours = _best(lambda: _synced(path), repeats)
                t_all, n_all = _best(lambda: _bare(path, None), repeats)
                t_scan, n_scan = _best(lambda: _scan(path), repeats)
            if n_ours != frames or n_bare != 2 * frames or n_scan != n_all:
                raise RuntimeError(f"{fmt}: read {n_ours} samples / {n_bare} raw messages, expected {frames} / "
                                   f"{2 * frames}; scan {n_scan} of {n_all} messages")
            base = (n_bare / 2) / t_bare
            ours = n_ours / t_ours
            rows.append({"name": f"bag_read_decode_{fmt}_{width}x{height}", "value": round(ours, 1),
                         "unit": "samples/s", "baseline": round(base, 1), "ratio": round(ours / base, 3)})
            base_all, scan = n_all / t_all, n_scan / t_scan
            rows.append({"name": f"bag_info_scan_{fmt}", "value": round(scan, 1), "unit": "messages/s",
                         "baseline": round(base_all, 1), "ratio": round(scan / base_all, 3)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        print(f"{row['name']:<34} {row['value']:>10} {row['unit']:<11} baseline {row['baseline']:>10}  "
              f"ratio {row['ratio']}")
