"""``depth-train info BAG``: what is in a recording and what each training mode can use from it;
``depth-train repair BAG``: a properly closed copy of a cut-off recording.

Examples::

    depth-train info run1/                       # rosbag2 directory
    depth-train info run1.mcap --topics color=/cam/image_raw color_info=/cam/camera_info
    depth-train info old.bag --urdf robot.urdf --json
    depth-train repair run1/ --out run1_repaired/  # recorder was killed: MCAP without footer, torn .db3
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings

from depth_training.bags.errors import BagWarning
from depth_training.bags.reader import open_bag
from depth_training.bags.summary import TopicConfig, summarize_bag
from depth_training.cli import UserError
from depth_training.argtypes import positive_float, role_topic

__all__ = ["register", "run_info", "run_repair", "parse_topic_overrides"]


def parse_topic_overrides(items: list[str]) -> dict[str, str]:
    """``["color=/cam/image", ...]`` -> ``{"color": "/cam/image"}``; errors name the bad item."""
    out = {}
    for item in items or []:
        role, sep, topic = item.partition("=")
        if not sep or not role or not topic:
            raise UserError(f"--topics: {item!r} is not ROLE=TOPIC (roles: {', '.join(TopicConfig.roles())})")
        out[role.strip()] = topic.strip()
    return out


def run_info(args: argparse.Namespace) -> int:
    try:
        config = TopicConfig().with_overrides(parse_topic_overrides(args.topics))
    except ValueError as exc:
        raise UserError(f"--topics: {exc}") from None
    summaries = []
    for i, path in enumerate(args.bag):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BagWarning)
            with open_bag(path) as bag:
                summary = summarize_bag(bag, config, urdf_path=args.urdf, scan=not args.no_scan,
                                        max_gap_s=args.max_gap, fixed_frame=args.fixed_frame)
        summary.issues += [str(w.message) for w in caught if issubclass(w.category, BagWarning)]
        summaries.append(summary)
        if not args.json:
            print(("\n" if i else "") + summary.format_table(), flush=True)
    if args.json:
        data = [s.to_dict() for s in summaries]
        json.dump(data[0] if len(data) == 1 else data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0


def run_repair(args: argparse.Namespace) -> int:
    from pathlib import Path

    from depth_training.bags.recover import recover_bag, storage_file_of

    src = Path(args.bag)
    if not src.exists():
        raise UserError(f"{src}: no such file or directory")
    storage = storage_file_of(src)
    if storage is None:
        raise UserError(f"{src}: not a rosbag2 recording with one .mcap or .db3 file (ROS 1 bags: `rosbag reindex`)")
    out = Path(args.out) if args.out else src.with_name((src.name if src.is_dir() else src.stem) + "_repaired")
    rec = recover_bag(src, out)
    if rec.complete:
        print(f"{src}: the recording is complete (nothing was cut off); wrote a copy with "
              f"{rec.message_count} messages to {out}")
    else:
        print(f"{src}: {rec.describe()}")
        print(f"wrote {out} ({'MCAP' if rec.storage == 'mcap' else 'sqlite3'}, {rec.message_count} messages, "
              f"properly closed)")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info", help="summarise a bag: topics, rates, time span, usable training modes",
        description="Summarise a recording (rosbag2 directory, .mcap, .db3 or ROS 1 .bag): topics, types, "
                    "counts, rates, time span, and per training mode (mono, stereo, supervised, poses from "
                    "TF or from joint states + URDF) what it would use and what is missing.")
    p.add_argument("bag", nargs="+", help="rosbag2 directory, .mcap/.db3 file or ROS 1 .bag (several: one summary "
                                          "each; --json then prints a list)")
    p.add_argument("--topics", nargs="*", default=[], metavar="ROLE=TOPIC", type=role_topic,
                   help=f"topic names per role (roles: {', '.join(TopicConfig.roles())}); defaults are the "
                        f"RealSense-style names, e.g. color={TopicConfig.color}")
    p.add_argument("--urdf", default=None, metavar="FILE",
                   help="robot URDF for the forward-kinematics pose mode (default: the bag's /robot_description)")
    p.add_argument("--fixed-frame", default=None, metavar="FRAME",
                   help="frame the pose modes express camera poses in (default: the TF tree's / URDF's root); "
                        "the camera must move in it")
    p.add_argument("--max-gap", type=positive_float, default=0.5, metavar="S",
                   help="report TF / stamp gaps longer than this many seconds (default 0.5)")
    p.add_argument("--no-scan", action="store_true",
                   help="do not read every message: no exact rates, stamp order or truncation checks (fast)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run_info)

    r = subparsers.add_parser(
        "repair", help="write a properly closed copy of a cut-off recording (MCAP without footer, torn .db3)",
        description="Read a recording whose recorder died (an MCAP file without its summary and footer, cut "
                    "inside a chunk or between records; a sqlite3 .db3 whose last pages were never written) up "
                    "to its last complete message and write those messages to a new, properly closed rosbag2 "
                    "directory of the same storage. Every other depth-train command reads such a recording "
                    "too (through a temporary copy, with a warning); repairing once saves that work.")
    r.add_argument("bag", help="rosbag2 directory, .mcap or .db3 file")
    r.add_argument("--out", default=None, metavar="DIR",
                   help="the repaired rosbag2 directory to write (must not exist; default: BAG_repaired next to BAG)")
    r.set_defaults(func=run_repair)
