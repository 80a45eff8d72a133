"""Recordings -> scenes: frames (colour, depth, K from camera_info, pose), object masks, frame pairs.

A recording is planned like every training recording (:mod:`depth_training.modes.recordings`:
colour + registered depth + camera poses from TF or joint states + URDF; missing topics, a pose
that cannot be looked up and the like are one-line errors naming the bag, topic and time), decoded
once into the shared frame cache, and then turned into a :class:`Scene`:

1. the table plane: RANSAC over the world points of up to ``plane_frames`` frames (or given);
2. per frame, the object mask (:func:`.masks.object_mask`);
3. frame pairs (:mod:`.pairs`): viewpoint diversity, enough object matches, static scene.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .geometry import find_correspondences, static_violation_fraction
from .masks import Plane, PlaneError, backproject_world, fit_plane_ransac, object_mask, workspace_centre
from .pairs import PairRules, PairStats, candidate_pairs

__all__ = ["MaskRules", "Scene", "build_scene", "scene_from_arrays", "load_scenes"]

LOG = logging.getLogger("depth_training.correspondence")


@dataclass(frozen=True)
class MaskRules:
    plane: Plane | None = None
    plane_frames: int = 8
    plane_threshold: float = 0.005
    min_height: float = 0.008
    max_height: float = 0.35
    workspace_radius: float = 0.3


@dataclass
class Scene:
    """One static scene. Arrays: ``images (N,H,W,3) uint8``, ``depth (N,H,W) f32``, ``K (N,3,3)``,
    ``poses (N,4,4)``, ``masks (N,H,W) bool``, ``pairs (P,2) int64``, ``stamps_ns (N,)``."""

    name: str
    images: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    poses: np.ndarray
    stamps_ns: np.ndarray
    masks: np.ndarray
    pairs: np.ndarray
    plane: Plane
    stats: PairStats = field(default_factory=PairStats)

    @property
    def shape(self) -> tuple[int, int]:
        return self.images.shape[1:3]


def scene_from_arrays(name: str, images, depth, K, poses, stamps_ns, masks_rules: MaskRules = MaskRules(),
                      pair_rules: PairRules = PairRules(), seed: int = 0) -> Scene:
    """Masks and pairs for frames already in memory (module docstring). Raises ``PlaneError``."""
    n = len(images)
    plane = masks_rules.plane
    pick = np.unique(np.linspace(0, n - 1, min(n, masks_rules.plane_frames)).round().astype(int))
    pts = [backproject_world(depth[i], K[i], poses[i])[0] for i in pick]
    pts = np.concatenate(pts) if pts else np.zeros((0, 3))
    if plane is None:
        sub = pts[np.random.default_rng(seed).choice(len(pts), min(len(pts), 20000), replace=False)] if len(pts) else pts
        plane = fit_plane_ransac(sub, threshold=masks_rules.plane_threshold, seed=seed,
                                 up_hint=np.asarray(poses[0])[:3, 3])
    centre = workspace_centre(pts, plane, masks_rules.min_height, masks_rules.max_height) if len(pts) else None
    masks = np.stack([object_mask(depth[i], K[i], poses[i], plane, centre=centre, min_height=masks_rules.min_height,
                                  max_height=masks_rules.max_height, workspace_radius=masks_rules.workspace_radius)
                      for i in range(n)]) if n else np.zeros((0,) + depth.shape[1:], bool)
    stats = PairStats()
    accepted = []
    for i, j in candidate_pairs(poses, pair_rules, seed):
        stats.candidates += 1
        if not masks[i].any() or not masks[j].any():
            stats.rejected["no_object"] += 1
            continue
        c = find_correspondences(depth[i], depth[j], K[i], K[j], poses[i], poses[j], mask_a=masks[i],
                                 abs_tol=pair_rules.abs_tol, rel_tol=pair_rules.rel_tol)
        if static_violation_fraction(c) > pair_rules.max_violation:
            stats.rejected["moving_scene"] += 1
        elif c.count < pair_rules.min_matches:
            stats.rejected["too_few_matches"] += 1
        else:
            accepted.append((i, j))
    stats.accepted = len(accepted)
    return Scene(name, np.asarray(images), np.asarray(depth, np.float32), np.asarray(K, np.float64),
                 np.asarray(poses, np.float64), np.asarray(stamps_ns), masks,
                 np.array(accepted, np.int64).reshape(-1, 2), plane, stats)


def build_scene(recording, options, cache_root: Path, mask_rules: MaskRules = MaskRules(),
                pair_rules: PairRules = PairRules(), seed: int = 0, need_pairs: bool = True) -> Scene:
    """Decode (or reuse the cache of) ``recording`` and make its :class:`Scene`.

    Raises:
        UserError: no frame, no table plane, or (``need_pairs``) no usable pair - naming the bag.
    """
    from depth_training.cli import UserError
    from depth_training.modes.datasets import cache_recording

    info = cache_recording(recording, options, cache_root)
    name = Path(recording.path).name
    if info.count == 0:
        raise UserError(f"{recording.path}: no usable frame (colour + depth + pose) was decoded")
    arr = {k: np.load(info.field_path(k)) for k in ("image", "depth", "K", "pose", "stamp_ns")}
    try:
        scene = scene_from_arrays(name, arr["image"], arr["depth"], arr["K"], arr["pose"], arr["stamp_ns"],
                                  mask_rules, pair_rules, seed)
    except PlaneError as exc:
        raise UserError(f"{recording.path}: table plane: {exc} (give it with --table-plane a,b,c,d)") from None
    LOG.info("%s: %d frames, object pixels %.1f%%, %s", recording.path, info.count,
             100 * scene.masks.mean(), scene.stats.line())
    if need_pairs and len(scene.pairs) == 0:
        raise UserError(f"{recording.path}: no usable frame pair ({scene.stats.line()}); a recording with more "
                        f"camera motion around the objects, or looser --min-rotation/--min-translation, is needed")
    return scene


def load_scenes(recordings, options, cache_root: Path, mask_rules: MaskRules = MaskRules(),
                pair_rules: PairRules = PairRules(), seed: int = 0) -> list[Scene]:
    return [build_scene(r, options, cache_root, mask_rules, pair_rules, seed) for r in recordings]
