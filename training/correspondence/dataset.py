"""Training samples: a frame pair of one scene with sampled matches and non-matches, augmented.

``PairDataset(scene, scene_id, config)[(i, seed)]`` -> dict of arrays (fixed shapes, so the default
collate works):

=====================  ============  =====================================================
key                    shape         meaning
=====================  ============  =====================================================
``image_a, image_b``   (H, W, 3) u8  the two frames (augmented)
``match_a, match_b``   (N,) int64    flat indices ``v W + u`` of the matches in A and B
``match_uv_b``         (N, 2) f32    exact (unrounded) ``(u, v)`` of the matches in B
``nonmatch_obj``       (N, k_o)      object non-matches in B, ``nonmatch_obj_valid`` bool
``nonmatch_bg``        (N, k_b)      background non-matches in B, ``nonmatch_bg_valid`` bool
``obj_a, obj_b``       (n,) int64    object pixels of A and B (cross-object term)
``scene``              () int64      scene id (different objects <=> different scenes)
=====================  ============  =====================================================

Matches are drawn from the object-mask correspondences of the pair (rounded to B's pixel grid by
:func:`.geometry.round_pixels`). Augmentation, each with its probability: a camera roll of each
frame about its optical axis (:mod:`.roll`: image, depth, mask and pose turned together, so the
correspondences stay exact; pixels from outside the original image get a random texture), background
randomisation (pixels outside the object mask replaced by a random smooth texture, per image),
colour jitter (:func:`depth_training.data.augment.color_jitter`, per image) and a horizontal flip
of both images with every index transformed, ``u -> W - 1 - u``.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from torch.utils.data import Dataset

from depth_training.data.augment import color_jitter, jitter_transform

from .geometry import find_correspondences
from .roll import roll_frame
from .sampling import flat_to_uv, sample_local_nonmatches, sample_matches, sample_nonmatches
from .scenes import Scene

__all__ = ["SampleConfig", "PairDataset", "flip_flat", "random_background"]

MIN_ROLLED_MATCHES = 16  # a rolled pair with fewer matches is replaced by the pair as recorded


@dataclass(frozen=True)
class SampleConfig:
    matches: int = 256
    nonmatch_object: int = 16
    nonmatch_background: int = 16
    cross_pixels: int = 64
    min_nonmatch_distance: float = 5.0
    nonmatch_local: int = 0       # object non-matches per match drawn near the true match (added to the object term)
    local_radius: float = 12.0    # ..within this many pixels of it
    background_p: float = 0.5
    jitter_p: float = 0.5
    flip_p: float = 0.5
    roll_p: float = 0.0           # probability that a frame is rolled about the optical axis (per frame) ..
    roll_max_deg: float = 180.0   # ..by an angle ~ U(-max, max)
    abs_tol: float = 0.004
    rel_tol: float = 0.01


def flip_flat(idx: np.ndarray, width: int) -> np.ndarray:
    """Flat indices after a horizontal flip: ``(u, v) -> (W - 1 - u, v)``."""
    v, u = np.divmod(idx, width)
    return v * width + (width - 1 - u)


def random_background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """``(h, w, 3)`` uint8 smooth random texture: coarse noise (2..16 cells per side) upsampled."""
    cells = int(rng.integers(2, 17))
    small = rng.integers(0, 256, size=(cells, max(2, cells * w // h), 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR if rng.random() < 0.7 else cv2.INTER_NEAREST)


class PairDataset(Dataset):
    """The accepted pairs of one :class:`Scene` as training samples (module docstring)."""

    accepts_seeded_keys = True

    def __init__(self, scene: Scene, scene_id: int, config: SampleConfig = SampleConfig(), augment: bool = True):
        self.scene, self.scene_id, self.config, self.augment = scene, int(scene_id), config, augment
        self.name = scene.name

    def __len__(self) -> int:
        return len(self.scene.pairs)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, None)
        rng = np.random.default_rng(seed if seed is not None else np.random.randint(0, 2**31))
        i, j = (int(x) for x in self.scene.pairs[int(index)])
        return self.sample(i, j, rng)

    def _frame(self, f: int, rng: np.random.Generator, roll: bool):
        """Frame ``f`` as ``(image copy, depth, mask, K, pose)``; with ``roll``, rolled with probability ``roll_p``."""
        s, cfg = self.scene, self.config
        image, depth, mask, K, pose = s.images[f].copy(), s.depth[f], s.masks[f], s.K[f], s.poses[f]
        if roll and rng.random() < cfg.roll_p:
            theta = np.deg2rad(rng.uniform(-cfg.roll_max_deg, cfg.roll_max_deg))
            image, depth, mask, pose, outside = roll_frame(image, depth, mask, K, pose, theta)
            if outside.any():  # no black corners for the network to key on
                image[outside] = random_background(*mask.shape, rng)[outside]
        return image, depth, mask, K, pose

    def sample(self, i: int, j: int, rng: np.random.Generator, roll: bool = True) -> dict:
        cfg = self.config
        h, w = self.scene.shape
        roll = roll and self.augment and cfg.roll_p > 0
        img_a, depth_a, mask_a, K_a, pose_a = self._frame(i, rng, roll)
        img_b, depth_b, mask_b2d, K_b, pose_b = self._frame(j, rng, roll)
        c = find_correspondences(depth_a, depth_b, K_a, K_b, pose_a, pose_b, mask_a=mask_a,
                                 abs_tol=cfg.abs_tol, rel_tol=cfg.rel_tol)
        if roll and (c.count < MIN_ROLLED_MATCHES or not mask_b2d.any()):
            # the roll turned the object (nearly) out of view: use the pair as recorded
            return self.sample(i, j, rng, roll=False)
        pick = sample_matches(cfg.matches, c.count, rng)
        ma, mb = c.idx_a[pick], c.idx_b[pick]
        uvb = c.uv_b[pick].astype(np.float32)
        mask_b = mask_b2d.reshape(-1)
        obj_pool = np.flatnonzero(mask_b)
        bg_pool = np.flatnonzero(~mask_b)
        uv_b = flat_to_uv(mb, w)
        no, nov = sample_nonmatches(uv_b, obj_pool, w, cfg.nonmatch_object, rng, min_distance=cfg.min_nonmatch_distance)
        if cfg.nonmatch_local:
            nl, nlv = sample_local_nonmatches(uv_b, mask_b2d, cfg.nonmatch_local, rng,
                                              min_distance=cfg.min_nonmatch_distance, radius=cfg.local_radius)
            no, nov = np.concatenate([no, nl], axis=1), np.concatenate([nov, nlv], axis=1)
        nb, nbv = sample_nonmatches(uv_b, bg_pool, w, cfg.nonmatch_background, rng,
                                    min_distance=cfg.min_nonmatch_distance)
        obj_a = rng.choice(np.flatnonzero(mask_a.reshape(-1)), cfg.cross_pixels)
        obj_b = rng.choice(obj_pool, cfg.cross_pixels)
        if self.augment:
            for img, m in ((img_a, mask_a), (img_b, mask_b2d)):
                if rng.random() < cfg.background_p:
                    img[~m] = random_background(h, w, rng)[~m]
                if rng.random() < cfg.jitter_p:
                    M, con = jitter_transform(rng.uniform(0.7, 1.3), rng.uniform(0.7, 1.3), rng.uniform(0.7, 1.3),
                                              rng.uniform(-0.05, 0.05))
                    img[...] = color_jitter(img, M, con)
            if rng.random() < cfg.flip_p:
                img_a, img_b = np.ascontiguousarray(img_a[:, ::-1]), np.ascontiguousarray(img_b[:, ::-1])
                ma, mb, no, nb, obj_a, obj_b = (flip_flat(x, w) for x in (ma, mb, no, nb, obj_a, obj_b))
                uvb = np.stack([(w - 1) - uvb[:, 0], uvb[:, 1]], axis=1)
        return {"image_a": img_a, "image_b": img_b, "match_a": ma.astype(np.int64), "match_b": mb.astype(np.int64),
                "match_uv_b": np.ascontiguousarray(uvb, np.float32),
                "nonmatch_obj": no, "nonmatch_obj_valid": nov, "nonmatch_bg": nb, "nonmatch_bg_valid": nbv,
                "obj_a": obj_a.astype(np.int64), "obj_b": obj_b.astype(np.int64), "scene": np.int64(self.scene_id)}
