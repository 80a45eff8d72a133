"""Turning a single-view model's output into metric depth: the four scale modes (numpy, ROS-free).

A model's description says what its output is (``output.kind``):

* ``metric_depth``            depth in metres;
* ``relative_depth``          depth up to an unknown scale;
* ``relative_inverse_depth``  inverse depth up to an unknown scale (and, for MiDaS-style models,
  shift).

(``disparity``, stereo disparity in pixels, needs a baseline and is refused here.)

Scale modes (parameter ``scale_mode``):

* ``auto``     ``metric`` for a ``metric_depth`` model, ``relative`` for the relative kinds
  (:func:`resolve_scale_mode`; the node's default, so the shipped relative model starts without a
  depth sensor; set ``align`` to get metres from one).
* ``metric``   depth = output; only for ``metric_depth`` models.
* ``fixed``    depth = ``s * output``; only for depth kinds (``relative_inverse_depth`` is inverse depth
  up to an unknown scale *and shift*, so no single factor turns it into metres: refused, naming
  ``align``).
* ``align``    per frame, fit ``1/z_ref ~ a * x + b`` by robust least squares (:func:`fit_inverse_depth`)
  between the model's inverse depth ``x`` and a sparse or partial metric depth ``z_ref``
  (depth camera, projected lidar), then depth = ``1 / (a x + b)`` where positive.
* ``relative`` no metric depth at all: the relative inverse depth is published as is.

:func:`check_scale_mode` refuses combinations that would publish a relative model as metric.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SCALE_MODES", "DEPTH_KINDS", "INVERSE_KINDS", "ScaleModeError", "check_scale_mode", "resolve_scale_mode",
           "inverse_depth_of", "InverseDepthFit", "fit_inverse_depth", "to_metric_depth"]

SCALE_MODES = ("auto", "metric", "fixed", "align", "relative")
DEPTH_KINDS = ("metric_depth", "relative_depth")
INVERSE_KINDS = ("relative_inverse_depth",)


class ScaleModeError(ValueError):
    """The scale mode does not fit the model's output kind."""


def resolve_scale_mode(mode: str, kind: str) -> str:
    """``auto`` -> ``metric`` for ``metric_depth``, ``relative`` for any other kind; other modes as
    they are."""
    if mode != "auto":
        return mode
    return "metric" if kind == "metric_depth" else "relative"


def check_scale_mode(mode: str, kind: str, model: str = "the model") -> None:
    """Raise :class:`ScaleModeError` unless ``mode`` (resolved, not ``auto``) is allowed for a model
    of output ``kind``."""
    if mode not in SCALE_MODES[1:]:
        raise ScaleModeError(f"scale_mode: {mode!r} is not one of {', '.join(SCALE_MODES[1:])}"
                             + (" (resolve auto first)" if mode == "auto" else ""))
    if kind == "disparity":
        raise ScaleModeError(f"{model} outputs stereo disparity (pixels), which needs a stereo baseline; "
                             "a single-view node needs a metric_depth, relative_depth or relative_inverse_depth model")
    if kind not in DEPTH_KINDS + INVERSE_KINDS:
        raise ScaleModeError(f"{model}: output kind {kind!r} is not a depth output "
                             f"(expected one of {', '.join(DEPTH_KINDS + INVERSE_KINDS)})")
    if mode == "fixed" and kind in INVERSE_KINDS:
        raise ScaleModeError(f"{model} outputs {kind}: inverse depth up to an unknown scale and shift (MiDaS, "
                             "Depth Anything, SSI-trained models), so scale_mode 'fixed' (one scale_factor) cannot "
                             "make metres from it; use scale_mode 'align' (fit scale and shift to a sparse metric "
                             "depth topic every frame) or 'relative'")
    if mode == "metric" and kind != "metric_depth":
        fixed = "" if kind in INVERSE_KINDS else "'fixed' (scale_factor) or "
        raise ScaleModeError(f"{model} outputs {kind}, not metric depth: scale_mode 'metric' would publish "
                             f"relative values as metres; use scale_mode {fixed}'align' "
                             "(with a sparse metric depth topic), or 'relative'")


def inverse_depth_of(output: np.ndarray, kind: str) -> np.ndarray:
    """Model output ``(H, W)`` -> inverse depth (up to scale for relative kinds), NaN where undefined.

    ``x = 1 / output`` for depth kinds (``output > 0``), ``x = output`` for inverse kinds.
    """
    out = np.asarray(output, dtype=np.float32)
    if kind in INVERSE_KINDS:
        return np.where(np.isfinite(out), out, np.float32(np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(out > 0, np.float32(1.0) / out, np.float32(np.nan)).astype(np.float32)


@dataclass(frozen=True)
class InverseDepthFit:
    """``1/z ~ scale * x + shift``; ``residual`` = RMS of the inliers' residuals (1/m);
    ``inliers`` of ``samples`` valid pixel pairs; ``ok`` when the fit is usable."""

    scale: float
    shift: float
    residual: float
    inliers: int
    samples: int
    ok: bool
    reason: str = ""


def fit_inverse_depth(x: np.ndarray, z_ref: np.ndarray, *, iterations: int = 5, inlier_k: float = 3.0,
                      min_samples: int = 20, max_samples: int = 50000, with_shift: bool = True,
                      seed: int = 0) -> InverseDepthFit:
    """Robust least-squares scale (and shift) of inverse depth against metric depth.

    Over the pixels where both are valid (``x`` finite, ``z_ref`` finite and ``> 0``), with
    ``y = 1 / z_ref``, solve ``min_{a,b} sum_i (a x_i + b - y_i)^2`` over the inlier set, starting
    from all pairs; after each solve the inliers are the pairs with
    ``|r_i| <= inlier_k * 1.4826 * median|r - median(r)|`` (MAD of the residuals). A fit needs
    ``min_samples`` inliers and ``a > 0``.

    Args:
        x: ``(H, W)`` model inverse depth (up to scale).
        z_ref: ``(H, W)`` metric depth, NaN or ``<= 0`` where there is no reading.
        with_shift: fit ``b`` too (MiDaS-style affine-invariant output); else ``b = 0``.
        max_samples: random subsample of the valid pairs (seeded) to bound the cost.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    z = np.asarray(z_ref, dtype=np.float64).ravel()
    if x.shape != z.shape:
        raise ValueError(f"model output has {x.size} pixels but the reference depth {z.size}")
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(x) & np.isfinite(z) & (z > 0)
    idx = np.flatnonzero(valid)
    n = int(idx.size)
    if n < min_samples:
        return InverseDepthFit(1.0, 0.0, float("nan"), 0, n, False, f"only {n} valid reference depths (need {min_samples})")
    if n > max_samples:
        idx = np.random.default_rng(seed).choice(idx, max_samples, replace=False)
    xs, ys = x[idx], 1.0 / z[idx]
    inl = np.ones(xs.size, bool)
    a, b = 1.0, 0.0
    for _ in range(max(1, iterations)):
        if inl.sum() < min_samples:
            break
        xi, yi = xs[inl], ys[inl]
        if with_shift:
            A = np.stack([xi, np.ones_like(xi)], axis=1)
            sol, *_ = np.linalg.lstsq(A, yi, rcond=None)
            a, b = float(sol[0]), float(sol[1])
        else:
            den = float(xi @ xi)
            a, b = (float(xi @ yi) / den if den > 0 else 0.0), 0.0
        r = a * xs + b - ys
        med = np.median(r[inl])
        mad = 1.4826 * np.median(np.abs(r[inl] - med))
        thr = inlier_k * max(mad, 1e-4 * float(np.abs(ys).mean()))  # floor: float32 rounding
        new = np.abs(r) <= thr
        if np.array_equal(new, inl):
            break
        inl = new
    count = int(inl.sum())
    r = a * xs[inl] + b - ys[inl]
    residual = float(np.sqrt(np.mean(r * r))) if count else float("nan")
    ok, reason = True, ""
    if count < min_samples:
        ok, reason = False, f"only {count} inliers (need {min_samples})"
    elif not a > 0:
        ok, reason = False, f"fitted scale {a:.3g} is not positive"
    return InverseDepthFit(a, b, residual, count, n, ok, reason)


def to_metric_depth(output: np.ndarray, kind: str, mode: str, *, scale_factor: float = 1.0,
                    fit: InverseDepthFit | None = None) -> np.ndarray:
    """Model output ``(H, W)`` -> metric depth ``(H, W)`` float32 (NaN invalid) for ``mode``.

    ``metric``: output; ``fixed``: ``s * output`` (depth kinds only, see :func:`check_scale_mode`);
    ``align``: ``1 / (fit.scale * x + fit.shift)`` where positive, ``x`` = :func:`inverse_depth_of`.
    """
    out = np.asarray(output, dtype=np.float32)
    if mode == "metric":
        check_scale_mode(mode, kind)
        depth = out.copy()
    elif mode == "fixed":
        check_scale_mode(mode, kind)
        depth = out * np.float32(scale_factor)
    elif mode == "align":
        if fit is None or not fit.ok:
            raise ValueError("align: no usable scale/shift fit for this frame")
        x = inverse_depth_of(out, kind)
        inv = np.float32(fit.scale) * x + np.float32(fit.shift)
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = np.where(inv > 0, np.float32(1.0) / inv, np.float32(np.nan))
    else:
        raise ScaleModeError(f"scale_mode {mode!r} has no metric depth")
    depth = depth.astype(np.float32, copy=False)
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth
