"""Dense-descriptor training: correspondence generation rate, step time, and the loader's share.

Set-up: a synthetic scene (numpy geometry, no simulator): a textured table plane 1 m below 24
cameras that translate and turn, with boxes on it; 128x96 frames; object masks from a given table
plane; the pairs :mod:`depth_training.correspondence.pairs` accepts. The model and step are those
of ``depth-train descriptors`` (mobile encoder, D = 16, pixel-contrastive loss, 256 matches per
pair, 16 + 16 non-matches per match, batch 4 pairs).

Rows (``ratio = value / baseline``):

* ``correspondence_pairs_per_s``: training samples per second made by
  :class:`~depth_training.correspondence.dataset.PairDataset` in one process (projection,
  occlusion test, sampling, background randomisation, jitter, flip); baseline: the projection and
  occlusion test alone (:func:`~depth_training.correspondence.geometry.find_correspondences`).
* ``descriptor_step_s``: seconds per training step inside ``engine.loop.train`` with the loader
  (``--workers``' default); baseline: the bare step on pre-loaded batches.
* ``descriptor_loader_wait_fraction``: time the loop waited for batches / step time
  (``data_to_step_time`` of the engine). Target < 0.2: the loader is not the bottleneck.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import torch

H, W = 96, 128


def synthetic_scene(n: int = 24, seed: int = 0):
    from depth_training.correspondence.masks import Plane
    from depth_training.correspondence.pairs import PairRules
    from depth_training.correspondence.scenes import MaskRules, scene_from_arrays
    from depth_training.sim.transforms import make_transform, rot_x, rot_z

    rng = np.random.default_rng(seed)
    K = np.array([[110.0, 0, (W - 1) / 2], [0, 110.0, (H - 1) / 2], [0, 0, 1]])
    tex = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    boxes = [(rng.uniform(-0.2, 0.2), rng.uniform(-0.15, 0.15), rng.uniform(0.04, 0.08), rng.uniform(0.05, 0.12))
             for _ in range(3)]
    images, depths, poses = [], [], []
    v, u = np.mgrid[0:H, 0:W]
    rays = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3) @ np.linalg.inv(K).T
    for i in range(n):
        yaw = 0.6 * np.sin(i / n * 2 * np.pi)
        T = make_transform(rot_z(yaw) @ rot_x(np.pi + 0.2 * np.cos(i / n * 2 * np.pi)),
                           (0.1 * np.sin(i / 3), 0.1 * np.cos(i / 4), 1.0))  # looking down at z = 0
        d_world = rays @ T[:3, :3].T
        t = -T[2, 3] / d_world[:, 2]  # hit the table z = 0
        hit = T[:3, 3] + t[:, None] * d_world
        z_cam = t * rays[:, 2]
        top = np.full_like(t, np.inf)
        for bx, by, half, height in boxes:  # box tops at z = height
            tt = (height - T[2, 3]) / d_world[:, 2]
            p = T[:3, 3] + tt[:, None] * d_world
            inside = (np.abs(p[:, 0] - bx) < half) & (np.abs(p[:, 1] - by) < half)
            top = np.where(inside & (tt < top), tt, top)
        on_box = np.isfinite(top)
        t = np.where(on_box, top, t)
        hit = T[:3, 3] + t[:, None] * d_world
        z_cam = (t * rays[:, 2]).astype(np.float32)
        colour = tex[(hit[:, 1] * 200).astype(int) % 64, (hit[:, 0] * 200).astype(int) % 64]
        colour[on_box] = 255 - colour[on_box]
        images.append(colour.reshape(H, W, 3))
        depths.append(z_cam.reshape(H, W))
        poses.append(T)
    return scene_from_arrays("bench", np.stack(images), np.stack(depths), np.stack([K] * n), np.stack(poses),
                             np.arange(n), MaskRules(plane=Plane(np.array([0, 0, 1.0]), 0.0), workspace_radius=10),
                             PairRules(min_matches=50))


def run(quick: bool, workers: int | None = None) -> list[dict]:
    from depth_training.correspondence.dataset import PairDataset, SampleConfig
    from depth_training.correspondence.geometry import find_correspondences
    from depth_training.data.loader import EpochLoader
    from depth_training.data.mixing import MixedDataset, MixingSampler
    from depth_training.engine import Monitor, train
    from depth_training.engine.loop import move_to_device
    from depth_training.losses.pixel_contrastive import LossWeights
    from depth_training.models.descriptor import DescriptorNet
    from depth_training.modes.descriptors import DescriptorModel, descriptor_step
    from depth_training.modes.runner import default_workers

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    workers = default_workers() if workers is None else workers
    if not cuda:
        torch.set_num_threads(1)  # the loader workers need the other core
    sc = synthetic_scene()
    if len(sc.pairs) == 0:
        raise RuntimeError("the synthetic scene gave no pairs")
    rows = []
    n = 10 if quick else 40
    t0 = time.perf_counter()
    for k in range(n):
        i, j = sc.pairs[k % len(sc.pairs)]
        find_correspondences(sc.depth[i], sc.depth[j], sc.K[i], sc.K[j], sc.poses[i], sc.poses[j], mask_a=sc.masks[i])
    base = n / (time.perf_counter() - t0)
    ds = PairDataset(sc, 0, SampleConfig())
    t0 = time.perf_counter()
    for k in range(n):
        ds[(k % len(ds), k)]
    rate = n / (time.perf_counter() - t0)
    rows.append({"name": "correspondence_pairs_per_s", "value": round(rate, 2), "unit": "pairs/s",
                 "baseline": round(base, 2), "ratio": round(rate / base, 3)})

    batch, steps = 4, (4 if quick else 12)
    mixed = MixedDataset([ds])
    loader = EpochLoader(mixed, MixingSampler.for_mixed(mixed, [1.0], 10_000), batch_size=batch, num_workers=workers)
    torch.manual_seed(0)
    model = DescriptorModel(DescriptorNet("mobile", 16, (16, 32, 64, 96, 128))).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    it = iter(loader.iter_epoch(0))
    batches = [move_to_device(next(it), device) for _ in range(steps + 1)]
    times = []
    for b in batches:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss, _ = descriptor_step(model, b, LossWeights())
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    bare = float(np.median(times[1:]))
    result = train(model, opt, lambda m, b: descriptor_step(m, b, LossWeights()), loader, max_steps=steps + 1,
                   monitor=Monitor(None, progress=False), log_every=10**9)
    s = result.last_scalars
    step_s = batch / s["images_per_s"]
    rows.append({"name": "descriptor_step_s", "value": round(step_s, 4), "unit": "s/step", "baseline": round(bare, 4),
                 "ratio": round(step_s / bare, 3)})
    rows.append({"name": f"descriptor_loader_wait_fraction_w{workers}", "value": round(s["data_to_step_time"], 4),
                 "unit": "fraction", "baseline": 1.0, "ratio": round(s["data_to_step_time"], 4), "target": "< 0.2"})
    return rows


if __name__ == "__main__":
    args = sys.argv[1:]
    w = int(args[args.index("--workers") + 1]) if "--workers" in args else None
    for row in run(quick="--quick" in args, workers=w):
        print(f"{row['name']:<38} {row['value']:>10} {row['unit']:<9} baseline {row['baseline']:>10}  "
              f"ratio {row['ratio']}")
