"""Mono depth scale modes: metric/fixed/align/relative rules and the robust inverse-depth fit."""
from __future__ import annotations

import numpy as np
import pytest

from depth_nodes.pipelines.mono_scale import (
    ScaleModeError, check_scale_mode, fit_inverse_depth, resolve_scale_mode, inverse_depth_of, to_metric_depth)


def _scene(h=48, w=64):
    v, u = np.mgrid[0:h, 0:w]
    return (1.0 + 0.05 * u + 0.02 * v).astype(np.float32)  # metres


def test_relative_model_is_refused_as_metric():
    with pytest.raises(ScaleModeError, match="relative_inverse_depth, not metric depth.*use scale_mode 'align'"):
        check_scale_mode("metric", "relative_inverse_depth", "midas.onnx")
    with pytest.raises(ScaleModeError, match="relative_depth, not metric depth.*'fixed'.*'align'"):
        check_scale_mode("metric", "relative_depth", "depth.onnx")
    # inverse depth up to scale AND shift: no single factor gives metres
    with pytest.raises(ScaleModeError, match="midas.onnx outputs relative_inverse_depth.*unknown scale and shift.*"
                                             "'fixed'.*use scale_mode 'align'"):
        check_scale_mode("fixed", "relative_inverse_depth", "midas.onnx")
    with pytest.raises(ScaleModeError, match="descriptors"):
        check_scale_mode("fixed", "descriptors")
    with pytest.raises(ScaleModeError, match="not one of.*resolve auto first"):
        check_scale_mode("auto", "metric_depth")
    # auto: metres only from a metric model; any relative kind is published as relative inverse depth
    assert resolve_scale_mode("auto", "metric_depth") == "metric"
    assert resolve_scale_mode("auto", "relative_inverse_depth") == "relative"
    assert resolve_scale_mode("auto", "relative_depth") == "relative"
    assert [resolve_scale_mode(m, "relative_inverse_depth") for m in ("align", "fixed")] == ["align", "fixed"]
    for mode in ("metric", "fixed", "align", "relative"):
        check_scale_mode(mode, "metric_depth")
    for mode in ("align", "relative"):
        check_scale_mode(mode, "relative_inverse_depth")
    for mode in ("fixed", "align", "relative"):
        check_scale_mode(mode, "relative_depth")
    with pytest.raises(ScaleModeError, match="stereo baseline"):
        check_scale_mode("fixed", "disparity")


def test_align_recovers_scale_and_shift_despite_outliers():
    z = _scene()
    x = (0.25 / z - 0.03).astype(np.float32)  # model inverse depth = (1/z - b') / a'
    a_true, b_true = 4.0, 0.12                 # 1/z = 4 x + 0.12
    ref = np.full_like(z, np.nan)
    rng = np.random.default_rng(0)
    idx = rng.choice(z.size, 400, replace=False)
    ref.flat[idx] = z.flat[idx]
    bad = idx[:40]                             # 10 % gross outliers (wrong returns)
    ref.flat[bad] = z.flat[bad] * 3.0
    fit = fit_inverse_depth(x, ref)
    assert fit.ok and fit.samples == 400
    assert fit.scale == pytest.approx(a_true, rel=1e-4) and fit.shift == pytest.approx(b_true, abs=1e-5)
    assert 355 <= fit.inliers <= 360 and fit.residual < 1e-5
    depth = to_metric_depth(x, "relative_inverse_depth", "align", fit=fit)
    np.testing.assert_allclose(depth, z, rtol=1e-4)


def test_align_reports_too_few_references_and_scale_only_fit():
    z = _scene()
    ref = np.full_like(z, np.nan)
    ref[0, :5] = z[0, :5]
    fit = fit_inverse_depth(1.0 / z, ref)
    assert not fit.ok and "only 5 valid" in fit.reason
    with pytest.raises(ValueError, match="no usable"):
        to_metric_depth(1.0 / z, "relative_inverse_depth", "align", fit=fit)
    rel = 2.0 * z  # a relative depth model off by 2: 1/z = 2 * (1/rel)
    fit = fit_inverse_depth(inverse_depth_of(rel, "relative_depth"), z, with_shift=False)
    assert fit.ok and fit.shift == 0 and fit.scale == pytest.approx(2.0, rel=1e-5)


def test_fixed_and_metric_modes():
    z = _scene()
    np.testing.assert_allclose(to_metric_depth(z / 2, "relative_depth", "fixed", scale_factor=2.0), z, rtol=1e-6)
    with pytest.raises(ScaleModeError, match="align"):
        to_metric_depth(3.0 / z, "relative_inverse_depth", "fixed", scale_factor=3.0)
    out = z.copy()
    out[0, 0], out[0, 1], out[0, 2] = 0.0, np.inf, -1.0
    d = to_metric_depth(out, "metric_depth", "metric")
    assert np.isnan(d[0, :3]).all() and np.array_equal(d[1:], z[1:])
    with pytest.raises(ScaleModeError):
        to_metric_depth(z, "relative_depth", "metric")
    with pytest.raises(ScaleModeError):
        to_metric_depth(z, "metric_depth", "relative")


def test_align_trims_outliers_on_both_sides():
    """Wrong returns both nearer and farther than the surface: a one-sided trim keeps half of them."""
    z = _scene()
    x = (0.25 / z - 0.03).astype(np.float32)  # 1/z = 4 x + 0.12
    ref = np.full_like(z, np.nan)
    idx = np.random.default_rng(1).choice(z.size, 400, replace=False)
    ref.flat[idx] = z.flat[idx]
    ref.flat[idx[:30]] = z.flat[idx[:30]] * 3.0   # residual a x + b - 1/z > 0
    ref.flat[idx[30:60]] = z.flat[idx[30:60]] / 3.0  # residual < 0
    fit = fit_inverse_depth(x, ref)
    assert fit.ok and fit.inliers == 340 and fit.samples == 400
    assert fit.scale == pytest.approx(4.0, rel=1e-4) and fit.shift == pytest.approx(0.12, abs=1e-5)


def test_align_refuses_a_scale_that_is_not_positive():
    z = _scene()
    fit = fit_inverse_depth(-0.25 / z, z)  # inverse depth running the wrong way
    assert not fit.ok and fit.scale == pytest.approx(-4.0) and "fitted scale -4 is not positive" in fit.reason
    with pytest.raises(ValueError, match="align: no usable scale/shift fit"):
        to_metric_depth(z, "relative_inverse_depth", "align", fit=fit)


def test_too_few_references_report_no_inliers():
    z = _scene()
    ref = np.full_like(z, np.nan)
    ref[0, :3] = z[0, :3]
    fit = fit_inverse_depth(1.0 / z, ref)
    assert (fit.ok, fit.inliers, fit.samples, fit.scale, fit.shift) == (False, 0, 3, 1.0, 0.0)
    assert fit.reason == "only 3 valid reference depths (need 20)" and np.isnan(fit.residual)
