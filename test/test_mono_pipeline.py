"""Mono depth pipeline (ROS-free) with a network smaller than the camera image: metric, fixed, align
and relative modes, depth limits, the cloud of an asymmetric camera and the preview."""
import numpy as np
import pytest

import cameras
from depth_nodes.backends.description import ModelDescription
from depth_nodes.pipelines.depth_io import letterbox_geometry, postprocess_depth
from depth_nodes.pipelines.mono_depth import MonoDepthPipeline, MonoFrame, MonoInputError
from depth_nodes.pipelines.mono_scale import ScaleModeError

NET_H, NET_W = 48, 64


class GradientNet:
    """A network whose output grows left to right: ``y[v, u] = a + b u / w`` at network size."""

    def __init__(self, a=1.0, b=1.0, name="depth"):
        self.a, self.b, self.name, self.calls = a, b, name, 0

    def infer(self, inputs):
        x = next(iter(inputs.values()))
        self.calls += 1
        u = np.arange(x.shape[3], dtype=np.float32)
        out = np.broadcast_to(self.a + self.b * u / x.shape[3], x.shape[2:]).astype(np.float32)
        return {self.name: out[None, None].copy()}


def _desc(kind="metric_depth", **kw):
    return ModelDescription(**{"height": NET_H, "width": NET_W, "multiple": 16, "output_kind": kind,
                               "keep_aspect": False, "source": "net.onnx", **kw})


def _frame(**kw):
    return MonoFrame(**{"image": np.zeros((cameras.HEIGHT, cameras.WIDTH, 3), np.uint8), "encoding": "rgb8", **kw})


def _raw(desc, net):
    """The network output at camera resolution, as the pipeline computes it."""
    lb = letterbox_geometry(cameras.HEIGHT, cameras.WIDTH, desc)
    x = np.zeros((1, 3, NET_H, NET_W), np.float32)
    return postprocess_depth(net.infer({"i": x})[net.name], lb, desc)


def test_metric_depth_at_camera_resolution_with_limits_cloud_and_preview():
    desc = _desc(min_depth=1.2, max_depth=1.9)
    net = GradientNet()
    pipe = MonoDepthPipeline(net, desc, "metric", min_depth=1.3, max_depth=1.8)
    cam = cameras.camera()
    res = pipe.process(_frame(camera=cam), with_cloud=True, with_colorized=True)
    raw = _raw(_desc(), net)
    expected = np.where((raw >= 1.3) & (raw <= 1.8), raw, np.nan)
    np.testing.assert_allclose(res.depth, expected, rtol=1e-6)
    assert res.depth.shape == (90, 160) and np.isnan(res.depth[:, 0]).all() and np.isfinite(res.depth[:, 80]).all()
    assert res.relative_inverse is None and res.fit is None
    assert res.cloud.shape == pipe.cloud_shape(90, 160) == (90, 160, 4)
    u, v = 80, 70
    z = res.depth[v, u]
    np.testing.assert_allclose(res.cloud[v, u, :3], [(u - cameras.CX) / cameras.FX * z, (v - cameras.CY) / cameras.FY * z,
                                                     z], rtol=1e-5)
    assert res.colorized.shape == (90, 160, 3) and res.colorized.dtype == np.uint8
    assert set(res.timings) == {"preprocess", "inference", "postprocess", "cloud", "colorize"}
    # the description's range applies to metric models: outside [1.2, 1.9] is NaN even with wide node limits
    wide = MonoDepthPipeline(net, desc, "metric").process(_frame())
    np.testing.assert_allclose(wide.depth, np.where((raw >= 1.2) & (raw <= 1.9), raw, np.nan), rtol=1e-6)
    assert wide.cloud is None and wide.colorized is None


def test_fixed_and_relative_modes():
    net = GradientNet(a=0.5, b=1.0)
    desc = _desc("relative_inverse_depth")
    raw = _raw(_desc("relative_depth"), net)
    with pytest.raises(ScaleModeError, match="use scale_mode 'align'"):  # an unknown shift: one factor is not metres
        MonoDepthPipeline(net, desc, "fixed", scale_factor=3.0)
    rel = MonoDepthPipeline(net, desc, "relative").process(_frame(), with_cloud=True, with_colorized=True)
    assert rel.depth is None and rel.cloud is None and rel.colorized.shape == (90, 160, 3)
    np.testing.assert_allclose(rel.relative_inverse, raw, rtol=1e-6)
    depth_model = MonoDepthPipeline(net, _desc("relative_depth"), "fixed", scale_factor=2.0)
    np.testing.assert_allclose(depth_model.process(_frame()).depth, 2.0 * raw, rtol=1e-5)


def test_align_fits_the_reference_depth_even_at_another_resolution():
    net = GradientNet(a=0.5, b=1.0)
    desc = _desc("relative_inverse_depth")
    x = _raw(_desc("relative_depth"), net)
    z = 1.0 / (2.0 * x + 0.1)
    pipe = MonoDepthPipeline(net, desc, "align", align_min_samples=50)
    res = pipe.process(_frame(reference_depth=z))
    assert res.fit.ok and res.fit.scale == pytest.approx(2.0, rel=1e-4) and res.fit.shift == pytest.approx(0.1, abs=1e-4)
    np.testing.assert_allclose(res.depth, z, rtol=1e-4)
    half = z[::2, ::2]  # 80x45: same aspect, resized with nearest neighbour
    assert MonoDepthPipeline(net, desc, "align").process(_frame(reference_depth=half)).fit.ok
    with pytest.raises(MonoInputError, match="align: no reference depth received yet"):
        pipe.process(_frame())
    with pytest.raises(MonoInputError, match=r"align: reference depth is 90x90, the image 160x90 \(register it"):
        pipe.process(_frame(reference_depth=z[:, :90]))
    sparse = np.full_like(z, np.nan)
    sparse[0, :10] = z[0, :10]
    with pytest.raises(MonoInputError, match="align: only 10 valid reference depths"):
        pipe.process(_frame(reference_depth=sparse))


def test_bad_frames_and_models_are_named():
    desc = _desc()
    with pytest.raises(MonoInputError, match="model has no output 'depth'"):
        MonoDepthPipeline(GradientNet(name="other"), desc).process(_frame())
    pipe = MonoDepthPipeline(GradientNet(), desc, decimation=3, colorize_points=False)
    assert pipe.cloud_shape(90, 160) == (30, 54, 3)
    with pytest.raises(MonoInputError, match="no camera_info for the point cloud"):
        pipe.process(_frame(), with_cloud=True)
    with pytest.raises(MonoInputError, match="camera_info is 80x45 but the image is 160x90"):
        pipe.process(_frame(camera=cameras.camera().resized(80, 45)), with_cloud=True)
    assert pipe.process(_frame(camera=cameras.camera()), with_cloud=True).cloud.shape == (30, 54, 3)
    from depth_nodes.pipelines.mono_scale import ScaleModeError
    with pytest.raises(ScaleModeError, match="net.onnx"):
        MonoDepthPipeline(GradientNet(), _desc("relative_inverse_depth"), "metric")
    with pytest.raises(ScaleModeError, match="^the model outputs relative_inverse_depth, not metric depth"):
        MonoDepthPipeline(GradientNet(), _desc("relative_inverse_depth", source=""), "metric")
