#!/usr/bin/env python3
"""Contact sheet of recorded sim episodes: colour next to depth (turbo, near = red), one tile per frame.

    python scripts/sim_variety_sheet.py --out docs/images/sim_variety.png BAG [BAG ...] [--per-bag 2] [--tile 192]

docs/images/sim_variety.png: 12 episodes ``depth-train sim --variety mixed --frames 8 --rate 1 --width 256
--height 192 --no-stereo --seed S`` (S = 3000..3011), ``--per-bag 1 --tile 160``.

Frames are read through ``depth_training.bags`` (the same reader the training modes use), spread
evenly over each bag; depth is coloured per tile from its 2nd to 98th percentile of inverse depth,
holes (no reading) black, and the tile is labelled with its depth range in metres.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from depth_training.bags import StreamSpec, SyncedSamples, open_bag

COLOR, DEPTH = "/camera/color/image_raw", "/camera/depth/image_rect_raw"


def depth_tile(depth: np.ndarray) -> np.ndarray:
    """float metres (H, W), NaN = hole -> BGR uint8 (H, W, 3), turbo of normalised inverse depth."""
    valid = np.isfinite(depth) & (depth > 0)
    out = np.zeros(depth.shape + (3,), np.uint8)
    if valid.any():
        inv = 1.0 / depth[valid]
        lo, hi = np.percentile(inv, [2, 98])
        t = np.clip((inv - lo) / max(hi - lo, 1e-9), 0, 1)
        colours = cv2.applyColorMap((t * 255).astype(np.uint8)[:, None], cv2.COLORMAP_TURBO)[:, 0]
        out[valid] = colours
    return out


def frames(bag_path: Path, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` (rgb uint8 (H,W,3), depth float32 (H,W)) pairs spread evenly over the bag."""
    with open_bag(bag_path) as bag:
        samples = [(s["color"].image, s["depth"].image) for s in SyncedSamples(
            bag, [StreamSpec("color", COLOR, "color"), StreamSpec("depth", DEPTH, "depth")])]
    if not samples:
        raise SystemExit(f"{bag_path}: no colour/depth pairs on {COLOR} and {DEPTH}")
    picks = np.linspace(0, len(samples) - 1, count + 2)[1:-1].round().astype(int)
    return [samples[i] for i in picks]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bags", nargs="+", type=Path)
    ap.add_argument("--out", required=True, type=Path, help="PNG to write")
    ap.add_argument("--per-bag", type=int, default=2, help="frames per bag (default 2)")
    ap.add_argument("--tile", type=int, default=192, help="tile width in pixels (default 192)")
    ap.add_argument("--columns", type=int, default=3, help="colour+depth pairs per row (default 3)")
    ap.add_argument("--bits", type=int, default=5, choices=range(1, 9), metavar="1..8",
                    help="bits kept per colour channel, for a small PNG of noisy images (default 5)")
    args = ap.parse_args(argv)
    tiles = []
    for bag in args.bags:
        for rgb, depth in frames(bag, args.per_bag):
            h = round(args.tile * rgb.shape[0] / rgb.shape[1])
            c = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (args.tile, h), interpolation=cv2.INTER_AREA)
            d = cv2.resize(depth_tile(depth), (args.tile, h), interpolation=cv2.INTER_NEAREST)
            ok = depth[np.isfinite(depth) & (depth > 0)]
            label = f"{ok.min():.2f}-{ok.max():.2f} m" if ok.size else "no depth"
            cv2.putText(d, label, (4, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(np.concatenate([c, d], axis=1))
    rows = []
    for r in range(0, len(tiles), args.columns):
        row = tiles[r : r + args.columns]
        row += [np.zeros_like(tiles[0])] * (args.columns - len(row))
        rows.append(np.concatenate(row, axis=1))
    sheet = np.concatenate(rows, axis=0)
    if args.bits < 8:  # keep the top bits, centred in the dropped range
        sheet = (sheet >> (8 - args.bits) << (8 - args.bits)) + (1 << (7 - args.bits))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out} ({len(tiles)} frames, {args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
