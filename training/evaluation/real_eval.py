"""Real-image evaluation: a model next to two image-free priors, per frame, by the MiDaS protocol.

Every predictor gives an inverse depth ``x`` ``(H, W)`` up to an unknown scale and shift at the
ground truth's resolution. Per frame, over the ``n`` valid ground-truth pixels
(``min_depth < z* < max_depth``), ``(s, t) = argmin sum (s x + t - 1/z*)^2`` with ``s >= 0``
(:func:`depth_training.metrics.align_prediction`, ``"ssi_disparity"``); the aligned depth
``z = 1 / max(s x + t, 1/max_depth)``, clamped to ``[min_depth, max_depth]``, is scored with
:func:`depth_training.metrics.depth_errors`: ``delta1 = |{max(z/z*, z*/z) < 1.25}| / n`` and
``AbsRel = mean |z - z*| / z*`` (with disparity ground truth, ``z* = fB / d*`` and the fit is in
disparity space; both metrics are scale-invariant, so ``fB`` does not matter).

Priors (what a model must beat to have learnt anything from the image):

* ``ramp``: ``x(v, u) = v`` (the image row, 0 at the top): inverse depth linear in the row, the
  fitted ``s v + t`` is the best "the floor comes closer towards the bottom of the image" map;
* ``constant``: ``x = 1``; the fit gives ``s = 0, t = mean(1/z*)``: every pixel at the harmonic
  mean depth of the frame.

Public API:
    PRIORS = ("ramp", "constant")
    prior_inverse_depth(name, height, width) -> (H, W) float32
    frame_metrics(inverse (H,W), depth (H,W), min_depth, max_depth) -> dict
    evaluate_real_sets(sets, predict=None) -> list[dict]    (one row per frame)
    mean_row(rows) -> dict
    format_real_table(rows, mean) -> str
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from depth_training.evaluation.real_frames import RealSet
from depth_training.metrics import METRIC_NAMES, compute_depth_metrics

__all__ = ["PRIORS", "prior_inverse_depth", "frame_metrics", "evaluate_real_sets", "mean_row", "format_real_table"]

PRIORS = ("ramp", "constant")
# predict(rgb (H, W, 3) uint8) -> (H, W) relative inverse depth at the same size
InversePredictor = Callable[[np.ndarray], np.ndarray]


def prior_inverse_depth(name: str, height: int, width: int) -> np.ndarray:
    """The prior's inverse depth ``(height, width)`` float32 up to scale and shift (module docstring)."""
    if name == "ramp":
        return np.broadcast_to(np.arange(height, dtype=np.float32)[:, None], (height, width)).copy()
    if name == "constant":
        return np.ones((height, width), np.float32)
    raise ValueError(f"unknown prior {name!r}; choose from {PRIORS}")


def frame_metrics(inverse: np.ndarray, depth: np.ndarray, min_depth: float, max_depth: float) -> dict:
    """Metrics of one frame after the inverse-depth scale-and-shift fit (module docstring).

    Args:
        inverse: ``(H, W)`` relative inverse depth; must be finite where ``depth`` is evaluated.
        depth: ``(H, W)`` ground truth, NaN = unknown.

    Returns:
        ``{"abs_rel", ..., "a1", "a2", "a3", "pixels"}`` (metrics NaN when no pixel is evaluated).
    """
    inverse, depth = np.ascontiguousarray(inverse), np.ascontiguousarray(depth)
    if inverse.shape != depth.shape:
        raise ValueError(f"prediction is {inverse.shape}, the ground truth {depth.shape}")
    out = compute_depth_metrics(inverse, depth, min_depth=min_depth, max_depth=max_depth, alignment="ssi_disparity")
    with np.errstate(invalid="ignore"):
        pixels = int((np.isfinite(depth) & (depth > min_depth) & (depth < max_depth)).sum())
    return {**{k: out[k] for k in METRIC_NAMES}, "pixels": pixels}


def evaluate_real_sets(sets: Sequence[RealSet], predict: InversePredictor | None = None) -> list[dict]:
    """One row per frame: ``{"set", "frame", "height", "width", "pixels", "results": {predictor: metrics}}``.

    ``results`` holds ``"model"`` (when ``predict`` is given) and each of :data:`PRIORS`. A model
    prediction that is not finite at an evaluated pixel raises ``ValueError`` naming the frame.
    """
    rows = []
    for s in sets:
        for f in s.frames:
            h, w = f.depth.shape
            results = {}
            if predict is not None:
                pred = np.asarray(predict(f.rgb), dtype=np.float64)
                try:
                    results["model"] = frame_metrics(pred, f.depth, s.min_depth, s.max_depth)
                except ValueError as exc:
                    raise ValueError(f"{s.name}/{f.name} ({f.color_path}): {exc}") from None
            for prior in PRIORS:
                results[prior] = frame_metrics(prior_inverse_depth(prior, h, w), f.depth, s.min_depth, s.max_depth)
            pixels = next(iter(results.values()))["pixels"]
            for r in results.values():
                r.pop("pixels")
            rows.append({"set": s.name, "frame": f.name, "height": h, "width": w, "pixels": pixels,
                         "results": results})
    return rows


def mean_row(rows: Sequence[dict]) -> dict:
    """Mean over frames (each frame counts once) of every predictor's metrics; frames without an
    evaluated pixel are left out (their metrics are NaN). ``frames``: how many were averaged."""
    out = {}
    for name in (rows[0]["results"] if rows else {}):
        vals = [r["results"][name] for r in rows if not math.isnan(r["results"][name]["a1"])]
        out[name] = {k: (float(np.mean([v[k] for v in vals])) if vals else float("nan")) for k in METRIC_NAMES}
        out[name]["frames"] = len(vals)
    return out


def _cell(v: float) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.3f}"


def format_real_table(rows: Sequence[dict], mean: dict) -> str:
    """Text table: one line per frame and a mean line; columns ``d1`` and ``AbsRel`` per predictor."""
    names = list(mean)
    label = [f"{r['set']}/{r['frame']}" for r in rows] + ["mean"]
    width = max(len(x) for x in label + ["frame"])
    head = [f"{'frame':<{width}}"] + [f"{n + ' d1':>12} {n + ' AbsRel':>16}" for n in names] + [f"{'pixels':>8}"]
    lines = [" ".join(head)]
    for lab, r in zip(label, rows):
        cells = [f"{_cell(r['results'][n]['a1']):>12} {_cell(r['results'][n]['abs_rel']):>16}" for n in names]
        lines.append(" ".join([f"{lab:<{width}}"] + cells + [f"{r['pixels']:>8d}"]))
    cells = [f"{_cell(mean[n]['a1']):>12} {_cell(mean[n]['abs_rel']):>16}" for n in names]
    lines.append(" ".join([f"{'mean':<{width}}"] + cells + [f"{'':>8}"]))
    return "\n".join(lines)
