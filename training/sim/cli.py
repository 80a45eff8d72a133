"""``depth-train sim``: record a simulated robot-arm episode into a rosbag2 plus sidecars.

Example (200 frames at 320x240, about half a minute on 2 CPU cores)::

    depth-train sim --out out/sim/episode0 --frames 200 --seed 0

Varied scenes for depth training (rooms, furniture, textures, lights, FOV, scale, camera effects;
:mod:`.variety`), without the stereo pair::

    depth-train sim --variety room --out out/sim_variety/room/ep1000 --frames 60 --rate 2 --seed 1000 --no-stereo

Rendering is headless: ``MUJOCO_GL`` defaults to ``osmesa`` (CPU); set ``MUJOCO_GL=egl`` on a
machine with a GPU. It must be set before mujoco is imported, hence the default is applied here,
at import time of this module, unless the variable is already set.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from depth_training.argtypes import float_range, nonnegative_int, positive_float, positive_int

os.environ.setdefault("MUJOCO_GL", "osmesa")
if os.environ["MUJOCO_GL"] in ("osmesa", "egl"):
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


def _objects(text: str) -> int | None:
    if text == "mix":
        return None
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 1..8 or 'mix', got {text!r}") from None
    if not 1 <= n <= 8:
        raise argparse.ArgumentTypeError(f"expected 1..8 or 'mix', got {n}")
    return n


def _range(kind: type, lo: float, hi: float):
    """argparse type for ``X`` or ``MIN:MAX`` within ``[lo, hi]`` -> ``(min, max)``."""
    def parse(text: str) -> tuple:
        parts = text.split(":")
        try:
            values = tuple(kind(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number or MIN:MAX, got {text!r}") from None
        if len(values) == 1:
            values = values * 2
        if len(values) != 2 or not lo <= values[0] <= values[1] <= hi:
            raise argparse.ArgumentTypeError(f"expected a value or MIN:MAX with {lo} <= MIN <= MAX <= {hi}, got {text!r}")
        return values
    return parse


def _families(text: str) -> tuple[str, ...]:
    from .texture_families import FAMILIES

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in FAMILIES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(FAMILIES)}, got {text!r}")
    return names


def _add_variety_options(p) -> None:
    g = p.add_argument_group(
        "varied scenes for depth training (see docs/training.md 'Varied simulated data'); without --variety the "
        "classic tabletop cell is recorded, byte for byte as before")
    g.add_argument("--variety", choices=("tabletop", "room", "mixed"), default=None,
                   help="redraw room, furniture, clutter, textures, lights, field of view, scale and camera effects "
                        "per seed: tabletop (scale 0.5-1.5, looking down at the table), room (scale 1.8-3.2, looking "
                        "across a furnished room, depth up to ~8 m) or mixed (either, by seed)")
    g.add_argument("--fov", type=_range(float, 20.0, 150.0), default=(45.0, 100.0), metavar="DEG|MIN:MAX",
                   help="horizontal field of view of the colour/depth camera, drawn per episode (default 45:100)")
    g.add_argument("--scale", type=_range(float, 0.1, 10.0), default=None, metavar="S|MIN:MAX",
                   help="global scene scale (arm, table, room, objects) instead of the variety's range")
    g.add_argument("--textures", type=_families, default=None, metavar="F1,F2,...",
                   help="texture families to draw from (default all: noise,stripes,wood,tiles,marble,text,checker,"
                        "dots,grid,flat)")
    g.add_argument("--lights", type=_range(int, 1, 8), default=(1, 4), metavar="N|MIN:MAX",
                   help="number of lights, drawn per episode (default 1:4)")
    g.add_argument("--image-noise", type=float_range(0.0, 0.2, lo_open=False, hi_open=False), default=0.03,
                   metavar="SIGMA", help="largest read/shot noise sigma of the colour images, fraction of full "
                   "scale (default 0.03; 0 = none, and no JPEG compression)")
    g.add_argument("--blur", type=float_range(0.0, 5.0, lo_open=False, hi_open=False), default=1.5, metavar="PX",
                   help="largest defocus blur sigma in pixels (default 1.5; 0 = none, and no vignetting)")


def _variety_options(args: argparse.Namespace):
    from .texture_families import FAMILIES
    from .variety import VarietyOptions

    if args.variety is None:
        return None
    return VarietyOptions(kind=args.variety, hfov_deg=args.fov, scale=args.scale, families=args.textures or FAMILIES,
                          lights=args.lights, noise=args.image_noise, blur=args.blur)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sim",
        help="record a simulated arm + RGB-D + stereo episode to a rosbag2",
        description="Render a MuJoCo tabletop scene seen by a 6-joint arm's wrist RGB-D camera and a fixed "
        "stereo pair, and write a rosbag2 (--out DIR) plus DIR.urdf and DIR.groundtruth.npz next to it.",
    )
    p.add_argument("--out", required=True, type=Path, help="bag directory to create (must not exist)")
    p.add_argument("--frames", type=positive_int, default=200, help="number of image frames (default 200)")
    p.add_argument("--width", type=positive_int, default=320, help="image width in pixels (default 320)")
    p.add_argument("--height", type=positive_int, default=240, help="image height in pixels (default 240)")
    p.add_argument("--rate", type=positive_float, default=10.0, help="image rate in Hz; joint states at 2x (default 10)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="episode seed: scene, textures, trajectory, holes (default 0)")
    p.add_argument("--objects", type=_objects, default=None, metavar="N|mix",
                   help="objects on the table, 1..8, or 'mix' = 1 in ~30%% of seeds else 2-5 (default mix)")
    p.add_argument("--object-set", type=nonnegative_int, default=None, metavar="S",
                   help="take the objects from the fixed set of 8 objects of seed S (shapes, sizes, textures), so "
                        "several recordings show the same objects in new arrangements (default: new objects)")
    p.add_argument("--distractor", action="store_true", help="add an object flying over the table")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage (default mcap)")
    p.add_argument("--distro", choices=("humble", "jazzy", "kilted"), default="kilted",
                   help="ROS 2 distribution whose message definitions the bag stores (default kilted, the one "
                        "depth_nodes targets; the sensor, TF and joint-state messages are the same in all three)")
    p.add_argument("--baseline", type=positive_float, default=0.06, help="stereo baseline in metres (default 0.06)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-stereo", dest="stereo", action="store_false",
                   help="skip the stereo pair (under half the rendering time): no /stereo topics in the bag, and "
                        "the ground truth's stereo_left_depth_m is NaN")
    _add_variety_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from depth_training.cli import UserError

    from .record import RecordingConfig, record_episode, sidecar_paths

    cfg = RecordingConfig(
        out=args.out, frames=args.frames, width=args.width, height=args.height, rate_hz=args.rate,
        seed=args.seed, n_objects=args.objects, objects_from=args.object_set, distractor=args.distractor,
        storage=args.storage, distro=args.distro, baseline_m=args.baseline, variety=_variety_options(args),
        stereo=args.stereo,
    )
    finer = [o for o, d, v in (("--fov", (45.0, 100.0), args.fov), ("--scale", None, args.scale),
                               ("--textures", None, args.textures), ("--lights", (1, 4), args.lights),
                               ("--image-noise", 0.03, args.image_noise), ("--blur", 1.5, args.blur)) if v != d]
    if args.variety is None and finer:
        raise UserError(f"{', '.join(finer)}: only with --variety tabletop|room|mixed")
    try:
        cfg.check()
    except ValueError as exc:
        raise UserError(f"{args.out}: {exc}") from None
    for path in (args.out, *sidecar_paths(args.out)):
        if path.exists():
            raise UserError(f"{path}: already exists; choose another --out or delete it first")

    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=args.frames, unit="frame", desc="sim", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        result = record_episode(cfg, progress if bar is not None else None)
    except FileExistsError as exc:
        raise UserError(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote bag        {result.bag_dir} ({args.storage}, {result.frames} frames, "
          f"{sum(result.topic_counts.values())} messages)")
    for topic, n in result.topic_counts.items():
        print(f"  {topic:32s} {n}")
    print(f"wrote URDF       {result.urdf_path}")
    print(f"wrote truth      {result.groundtruth_path}")
    print(f"time             {result.total_s:.1f} s total ({result.setup_s:.1f} s set-up and planning, "
          f"{result.render_write_s:.1f} s rendering and writing)")
    print(f"frame rate       {result.fps:.1f} frames/s overall, "
          f"{result.frames / result.render_write_s:.1f} frames/s rendering and writing")
    return 0
