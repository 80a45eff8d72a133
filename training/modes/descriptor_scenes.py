"""Recordings -> correspondence scenes for the descriptor tools (training, ``eval-descriptors``,
``keypoints``): the recording check, the mask/pair rules from the command line, scene loading
through the frame cache, and the command-line options they share.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from depth_training.bags import TopicConfig
from depth_training.cli import UserError

__all__ = ["plan_descriptor_recording", "rules_from_args", "load_scenes_for", "add_scene_arguments"]


def plan_descriptor_recording(path: Path, topics: TopicConfig, pose: str, urdf: Path | None):
    """Check a bag for descriptor training: colour + camera_info, registered depth, poses (tf/fk)."""
    from .recordings import plan_rgbd_recording

    return plan_rgbd_recording(path, topics, "descriptor", pose=pose, urdf=urdf)


def rules_from_args(args):
    from depth_training.correspondence.masks import Plane
    from depth_training.correspondence.pairs import PairRules
    from depth_training.correspondence.scenes import MaskRules

    try:
        plane = Plane.parse(args.table_plane) if args.table_plane else None
    except ValueError as exc:
        raise UserError(f"--table-plane: {exc}") from None
    masks = MaskRules(plane=plane, min_height=args.min_height, workspace_radius=args.workspace_radius)
    pairs = PairRules(min_rotation_deg=args.min_rotation, min_translation_m=args.min_translation,
                      min_matches=args.min_matches, max_violation=args.max_violation, abs_tol=args.occlusion_tol,
                      rel_tol=args.occlusion_rel_tol)
    return masks, pairs


def load_scenes_for(paths, args, cache_root: Path, need_pairs: bool = True):
    from depth_training.correspondence.scenes import build_scene

    from .cli import topics_for
    from .recordings import DecodeOptions

    masks, pairs = rules_from_args(args)
    options = DecodeOptions(args.width, args.height, args.sync_tolerance, args.max_gap,
                            "skip" if args.skip_bad_frames else "raise")
    recordings = [plan_descriptor_recording(Path(p), topics_for(args, p), args.pose_source, args.urdf) for p in paths]
    return [build_scene(r, options, cache_root, masks, pairs, args.seed, need_pairs) for r in recordings]


def add_scene_arguments(p: argparse.ArgumentParser) -> None:
    """Pose source, masks, pairs and occlusion test (shared by descriptors, eval-descriptors, keypoints)."""
    g = p.add_argument_group("correspondences")
    g.add_argument("--pose-source", choices=("tf", "fk"), default="tf",
                   help="camera poses from the bag's TF tree or joint states + URDF (default tf)")
    g.add_argument("--urdf", type=Path, default=None, help="URDF for --pose-source fk (default: the bag's)")
    g.add_argument("--table-plane", default=None, metavar="A,B,C,D",
                   help="table plane a x + b y + c z + d = 0 in the pose frame (default: RANSAC)")
    g.add_argument("--min-height", type=float, default=0.008, help="object points start this far above the table, m")
    g.add_argument("--workspace-radius", type=float, default=0.3, help="object points lie within this radius, m")
    g.add_argument("--min-rotation", type=float, default=8.0, help="pairs differ by this rotation, degrees ...")
    g.add_argument("--min-translation", type=float, default=0.04, help="... or this camera translation, m")
    g.add_argument("--min-matches", type=int, default=50, help="pairs with fewer object matches are skipped")
    g.add_argument("--max-violation", type=float, default=0.03,
                   help="pairs whose static-scene violation fraction exceeds this are skipped (moving things)")
    g.add_argument("--occlusion-tol", type=float, default=0.004, help="occlusion test tolerance, m (plus ...)")
    g.add_argument("--occlusion-rel-tol", type=float, default=0.01, help="... this fraction of the depth")
