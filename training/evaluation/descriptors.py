"""``depth-train eval-descriptors``: best-match pixel error of dense descriptors on held-out pairs.

For a held-out frame pair (A, B) with known correspondences (:mod:`depth_training.correspondence`),
``n`` object pixels of A with a true match are sampled; each one's descriptor is compared with the
descriptor of **every** pixel of B and the nearest (L2) wins:

    b* = argmin_b |d_A(a) - d_B(b)|,     error = |uv(b*) - uv_B(a)|   (pixels; uv_B exact, unrounded)

Reported per method (median error, PCK@1/2/5/10 px = fraction of errors within 1/2/5/10 px):

* ``same_object``: pairs of one scene (the same object(s) seen from two viewpoints);
* ``cross_object``: A and B from scenes with different objects. There is no true match; what is
  measured is whether the descriptor tells objects apart: ``cross_separation`` = fraction of A's
  pixels whose best match in the other scene's image is farther (descriptor distance) than their
  true match in their own pair, and the median ratio of the two distances.

Methods, all measured by this same code: the trained network, the same architecture untrained
(the run's seed), and OpenCV SIFT and ORB descriptors computed at every pixel (keypoints at each
pixel centre on a reflect-padded image, SIFT size 8, ORB patch 31) and matched over all of B's
pixels the same way (ORB's binary descriptors by Hamming distance).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

__all__ = ["best_match", "pck_summary", "PCK_THRESHOLDS", "network_describer", "onnx_describer", "opencv_describer",
           "load_exported_descriptors", "exported_descriptors",
           "evaluate_methods", "plot_cumulative", "format_table"]

LOG = logging.getLogger("depth_training.evaluation")
PCK_THRESHOLDS = (1, 2, 5, 10)


def best_match(query: torch.Tensor, desc_b: torch.Tensor, hamming: bool = False,
               chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest pixel of B for each query descriptor.

    Args:
        query: ``(N, D)``; desc_b: ``(D, H, W)`` (for ``hamming``: unpacked bits as 0/1 floats).

    Returns:
        ``(flat index (N,) int64, distance (N,))`` (L2, or the Hamming bit count).
    """
    flat = desc_b.reshape(desc_b.shape[0], -1).T  # (HW, D)
    idx, dist = [], []
    for s in range(0, query.shape[0], chunk):
        q = query[s:s + chunk]
        d = torch.cdist(q, flat, p=1.0 if hamming else 2.0)
        v, i = d.min(dim=1)
        idx.append(i)
        dist.append(v)
    return torch.cat(idx), torch.cat(dist)


def pck_summary(errors: np.ndarray, thresholds=PCK_THRESHOLDS) -> dict[str, float]:
    """``{"median_px", "pck@1", "pck@2", "pck@5", "pck@10", "count"}`` of pixel errors ``(N,)``
    (one ``pck@t`` per threshold ``t``)."""
    e = np.asarray(errors, np.float64)
    out = {"median_px": float(np.median(e)) if e.size else float("nan")}
    for t in thresholds:
        out[f"pck@{t}"] = float(np.mean(e <= t)) if e.size else float("nan")
    out["count"] = int(e.size)
    return out


Describer = Callable[[np.ndarray], "tuple[torch.Tensor, bool]"]


def network_describer(net: torch.nn.Module, device="cpu") -> Describer:
    """image ``(H, W, 3)`` uint8 -> ``((D, H, W) descriptors, hamming=False)``."""
    net = net.to(device).eval()

    def describe(image: np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div(255.0).to(device)
        with torch.inference_mode():
            return net(x)[0].float().cpu(), False
    return describe


def load_exported_descriptors(path):
    """``(backend, description)`` of an exported descriptor model (``.onnx`` + sidecar) on the CPU,
    the description bound to the graph's tensors. Raises ``depth_nodes.backends.base.BackendError``
    for a missing or unloadable file and ``ValueError`` for a model that does not output descriptors."""
    from depth_nodes.backends.description import load_description
    from depth_nodes.backends.inference import load_backend, resolve_description

    description = load_description(path)
    if description.output_kind != "descriptors":
        raise ValueError(f"{path}: output kind is {description.output_kind}, not descriptors")
    backend = load_backend(path, "auto", "cpu")
    return backend, resolve_description(backend, description)


def exported_descriptors(backend, desc, image_rgb: np.ndarray):
    """``((D, h_r, w_r) float32, letterbox)``: the image's window of the descriptors computed as
    ``descriptor_tracker_node`` computes them (the runtime's preprocessing, the backend, the window
    of the output; a strided output, ``output.stride``, interpolated in full). Raises
    ``TrackerInputError`` for an output of the wrong size."""
    from depth_nodes.pipelines.depth_io import preprocess
    from depth_nodes.pipelines.descriptor_grid import dense_descriptors
    from depth_nodes.pipelines.descriptor_tracking import descriptor_window

    x, lb = preprocess(np.ascontiguousarray(image_rgb), "RGB", desc)
    window = descriptor_window(backend.infer({desc.input_name: x})[desc.output_name], lb, desc.output_stride)
    return np.ascontiguousarray(dense_descriptors(window)), lb


def onnx_describer(path) -> Describer:
    """An exported descriptor model run as ``descriptor_tracker_node`` runs it
    (:func:`exported_descriptors`), then brought to the image's size by area averaging, which is the
    mean over each block when the input is an integer multiple of the image (as
    ``backbone:NAME@W`` does). Raises as :func:`load_exported_descriptors`.
    """
    backend, desc = load_exported_descriptors(path)

    def describe(image: np.ndarray):
        window, _ = exported_descriptors(backend, desc, image)
        h, w = image.shape[:2]
        if window.shape[1:] != (h, w):  # per channel: cv2 resizes at most 4 channels with INTER_AREA
            window = np.stack([cv2.resize(np.ascontiguousarray(c), (w, h), interpolation=cv2.INTER_AREA)
                               for c in window])
        return torch.from_numpy(np.ascontiguousarray(window, dtype=np.float32)), False
    return describe


def opencv_describer(method: str, pad: int = 32) -> Describer:
    """SIFT or ORB descriptors at every pixel centre (module docstring)."""
    if method == "sift":
        extractor, size = cv2.SIFT_create(), 8.0
    elif method == "orb":
        extractor, size = cv2.ORB_create(edgeThreshold=0, patchSize=31), 31.0
    else:
        raise ValueError(f"method: expected 'sift' or 'orb', got {method!r}")

    def describe(image: np.ndarray):
        h, w = image.shape[:2]
        grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
        padded = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
        kps = [cv2.KeyPoint(float(u + pad), float(v + pad), size, 0.0, 0, 0, v * w + u)
               for v in range(h) for u in range(w)]
        kps_out, desc = extractor.compute(padded, kps)
        if desc is None or len(kps_out) != h * w:
            raise RuntimeError(f"{method}: descriptors for {0 if desc is None else len(kps_out)} of {h * w} pixels")
        order = np.argsort([k.class_id for k in kps_out])
        desc = desc[order]
        if method == "orb":
            bits = np.unpackbits(desc, axis=1).astype(np.float32)
            return torch.from_numpy(bits.T.reshape(-1, h, w)), True
        return torch.from_numpy(desc.astype(np.float32).T.reshape(-1, h, w)), False
    return describe


def _pair_points(scene, i, j, n, rng, abs_tol=0.004, rel_tol=0.01):
    from depth_training.correspondence.geometry import find_correspondences

    c = find_correspondences(scene.depth[i], scene.depth[j], scene.K[i], scene.K[j], scene.poses[i],
                             scene.poses[j], mask_a=scene.masks[i], abs_tol=abs_tol, rel_tol=rel_tol)
    if c.count == 0:
        return None
    pick = rng.choice(c.count, size=min(n, c.count), replace=False)
    return c.idx_a[pick], c.uv_b[pick], c.idx_b[pick]


def evaluate_methods(scenes, methods: dict[str, Describer], *, pairs_per_scene: int = 10, points: int = 100,
                     seed: int = 0, cross: bool = True) -> dict:
    """Errors of every method on the same pixels of the same pairs (module docstring). ``cross=False``
    skips the cross-object measure (meaningless when the scenes share objects).

    Returns ``{"methods": {name: {"same_object": summary, "cross_object": {...}, "errors": [...]}},
    "pairs": n, "points": n}``.
    """
    rng = np.random.default_rng(seed)
    jobs = []  # (scene index, i, j, idx_a, uv_b, idx_b)
    for s, scene in enumerate(scenes):
        if len(scene.pairs) == 0:
            continue
        chosen = scene.pairs[rng.choice(len(scene.pairs), min(pairs_per_scene, len(scene.pairs)), replace=False)]
        for i, j in chosen:
            pts = _pair_points(scene, int(i), int(j), points, rng)
            if pts is not None:
                jobs.append((s, int(i), int(j), *pts))
    # cross-object: A of each job against frame j of the next scene (different objects)
    report = {"pairs": len(jobs), "points_per_pair": points, "methods": {}}
    for name, describe in methods.items():
        cache: dict = {}

        def desc(s, f):
            if (s, f) not in cache:
                cache[(s, f)] = describe(scenes[s].images[f])
            return cache[(s, f)]
        errors, sep, ratio = [], [], []
        for s, i, j, idx_a, uv_b, idx_b in jobs:
            da, ham = desc(s, i)
            db, _ = desc(s, j)
            q = da.reshape(da.shape[0], -1).T[torch.from_numpy(idx_a)]
            best, _ = best_match(q, db, ham)
            w = scenes[s].shape[1]
            pred = np.stack([best.numpy() % w, best.numpy() // w], 1).astype(np.float64)
            errors.append(np.linalg.norm(pred - uv_b, axis=1))
            true_d = torch.linalg.vector_norm(q - db.reshape(db.shape[0], -1).T[torch.from_numpy(idx_b)], ord=1 if ham else 2, dim=1)
            if cross and len(scenes) > 1:
                o = (s + 1) % len(scenes)
                if len(scenes[o].images):
                    f = int(j % len(scenes[o].images))
                    dc, _ = desc(o, f)
                    _, cross_d = best_match(q, dc, ham)
                    sep.append((cross_d > true_d).numpy())
                    ratio.append((cross_d / true_d.clamp_min(1e-9)).numpy())
            if len(cache) > 64:
                cache.clear()
        e = np.concatenate(errors) if errors else np.zeros(0)
        entry = {"same_object": pck_summary(e), "errors": e.tolist()}
        if sep:
            entry["cross_object"] = {"cross_separation": float(np.mean(np.concatenate(sep))),
                                     "median_distance_ratio": float(np.median(np.concatenate(ratio)))}
        report["methods"][name] = entry
    return report


def format_table(report: dict) -> str:
    head = f"{'method':<12} {'median px':>9} " + " ".join(f"{'PCK@' + str(t):>7}" for t in PCK_THRESHOLDS) + \
        f" {'cross sep':>9} {'n':>6}"
    lines = [head, "-" * len(head)]
    for name, m in report["methods"].items():
        s = m["same_object"]
        cross = m.get("cross_object", {}).get("cross_separation")
        cross_text = f"{cross:>9.3f}" if cross is not None else f"{'n/a':>9}"
        lines.append(f"{name:<12} {s['median_px']:>9.2f} " + " ".join(f"{s[f'pck@{t}']:>7.3f}" for t in PCK_THRESHOLDS)
                     + f" {cross_text} {s['count']:>6d}")
    return "\n".join(lines)


COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def plot_cumulative(report: dict, path: Path, max_px: float = 30.0) -> None:
    """PNG (OpenCV drawing, no matplotlib) of the cumulative error curves: fraction of points within x px."""
    W, H, L, R, T, B = 640, 420, 60, 150, 20, 50
    img = np.full((H, W, 3), 255, np.uint8)
    pw, ph = W - L - R, H - T - B

    def xy(x, y):
        return int(L + pw * x / max_px), int(T + ph * (1 - y))
    for k in range(0, int(max_px) + 1, 5):
        cv2.line(img, xy(k, 0), xy(k, 1), (225, 225, 225), 1)
        cv2.putText(img, str(k), (xy(k, 0)[0] - 6, H - B + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    for y in np.linspace(0, 1, 6):
        cv2.line(img, xy(0, y), xy(max_px, y), (225, 225, 225), 1)
        cv2.putText(img, f"{y:.1f}", (L - 32, xy(0, y)[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.rectangle(img, xy(0, 0), xy(max_px, 1), (0, 0, 0), 1)
    cv2.putText(img, "pixel error of the best match", (L + pw // 2 - 110, H - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (0, 0, 0), 1)
    cv2.putText(img, "fraction of points", (4, T + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    xs = np.linspace(0, max_px, 301)
    for n, (name, m) in enumerate(report["methods"].items()):
        e = np.sort(np.asarray(m["errors"]))
        ys = np.searchsorted(e, xs, side="right") / max(1, e.size)
        rgb = COLOURS[n % len(COLOURS)]
        pts = np.array([xy(x, y) for x, y in zip(xs, ys)], np.int32)
        cv2.polylines(img, [pts], False, rgb[::-1], 2, cv2.LINE_AA)
        ly = T + 20 + 22 * n
        cv2.line(img, (W - R + 10, ly), (W - R + 35, ly), rgb[::-1], 2)
        cv2.putText(img, name, (W - R + 40, ly + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"{path}: could not write the PNG")


def write_report(report: dict, out_json: Path) -> None:
    from .report import write_json

    slim = {**report, "methods": {k: {kk: vv for kk, vv in v.items() if kk != "errors"}
                                  for k, v in report["methods"].items()}}
    write_json(out_json, slim)
