"""A zero-shot backbone exported with its stride-s grid as a second output, and the tracker's colour
view computed on that grid: the same view as from the full map, reading 1/s^2 of it."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from depth_nodes.backends.description import DescriptionError, ModelDescription, load_description
from depth_nodes.backends.inference import resolve_description
from depth_nodes.backends.onnxruntime_backend import OnnxRuntimeBackend
from depth_nodes.pipelines.descriptor_tracking import DescriptorTrackingPipeline
from depth_training.evaluation.export import export_descriptor_onnx
from depth_training.models.backbone_descriptor import BackboneDescriptorNet, grid_stride
from depth_training.models.descriptor import DescriptorNet, load_zero_shot

torch.set_num_threads(1)
H, W = 96, 160  # non-square network input


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    net, config = load_zero_shot("backbone:xfeat", H, W)
    out = tmp_path_factory.mktemp("grid") / "xfeat.onnx"
    export_descriptor_onnx(net, config, out)
    return net, out


def test_grid_stride_only_for_an_interpolated_map():
    assert grid_stride(BackboneDescriptorNet("xfeat", 64, "interp", pretrained=False), H, W) == 8
    assert grid_stride(BackboneDescriptorNet("xfeat", 16, "refine", pretrained=False), H, W) == 0  # learned head
    # upsampled for the backbone (working width 640 at 160 wide): the output is an average, not the grid interpolated
    assert grid_stride(BackboneDescriptorNet("xfeat", 64, "interp", pretrained=False, working_width=640), H, W) == 0
    assert grid_stride(DescriptorNet("mobile", 16, (16, 32, 64, 96, 128)), H, W) == 0


def test_export_writes_the_grid_the_descriptors_interpolate(exported):
    import onnxruntime as ort

    net, path = exported
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["output"]["grid"] == {"name": "descriptors_grid", "stride": 8, "shape": ["batch", 64, H // 8, W // 8]}
    x = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(3))
    full, grid = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})
    with torch.no_grad():
        expect_grid = torch.nn.functional.normalize(net.backbone(x), dim=1).numpy()
        expect_full = net(x).numpy()
    np.testing.assert_allclose(grid, expect_grid, atol=1e-5)
    np.testing.assert_allclose(full, expect_full, atol=1e-5)  # the main output is the network's, unchanged
    desc = load_description(path)
    assert (desc.grid_output, desc.grid_stride) == ("descriptors_grid", 8)


@pytest.mark.parametrize("cam_w, cam_h", [(W, H), (300, 120), (100, 90), (200, 150)])
def test_view_from_the_grid_is_the_view_of_the_full_map(exported, cam_w, cam_h):
    """Cameras of the network's size, wider (pads above and below: 300x120 -> 160x64 at top 16),
    taller (pads left and right, 100x90 -> 107x96 at left 26) and 4:3."""
    _, path = exported
    backend = OnnxRuntimeBackend(path, device="cpu")
    desc = resolve_description(backend, load_description(path))
    refs = np.random.default_rng(0).normal(size=(3, 64)).astype(np.float32)
    pipe = DescriptorTrackingPipeline(backend, desc, refs)
    rng = np.random.default_rng(cam_w)
    image = cv2.GaussianBlur(rng.integers(0, 255, (cam_h, cam_w, 3), dtype=np.uint8), (0, 0), 2)
    result = pipe.process(image, "rgb8")
    assert result.grid is not None and result.grid.shape == (64, H // 8, W // 8)
    pipe.pca.fit(np.ascontiguousarray(result.features).reshape(64, -1).T)
    view = pipe.descriptor_view(result, cam_h, cam_w)
    # every pixel of the window projected, then scaled linearly to the camera
    reference = cv2.resize(pipe.pca.colorize(np.ascontiguousarray(result.features)), (cam_w, cam_h),
                           interpolation=cv2.INTER_LINEAR)
    diff = np.abs(view.astype(int) - reference.astype(int))
    assert view.shape == (cam_h, cam_w, 3) and view.dtype == np.uint8
    assert diff.mean() < 0.6 and np.percentile(diff, 99) <= 4, (diff.mean(), np.percentile(diff, 99))
    # a colour view that ignored the letterbox offset or scale would be far off
    shifted = np.roll(view, 3, axis=0 if cam_w / cam_h > W / H else 1)
    assert np.abs(shifted.astype(int) - reference.astype(int)).mean() > 2 * diff.mean() + 0.5
    backend.close()


def test_description_checks_and_a_network_without_the_grid(exported, tmp_path):
    with pytest.raises(DescriptionError, match="output.grid"):
        ModelDescription(96, 160, "descriptors", descriptor_dim=64, grid_output="g", grid_stride=0)
    with pytest.raises(DescriptionError, match="output.grid"):
        ModelDescription(96, 160, "relative_inverse_depth", grid_output="g", grid_stride=8)
    # a sidecar that names a grid the graph does not have: resolved away, the view falls back to the full map
    _, path = exported
    net, config = load_zero_shot("backbone:xfeat", H, W)
    plain = tmp_path / "plain.onnx"
    export_descriptor_onnx(net, config, plain, grid=False)
    assert "grid" not in json.loads(plain.with_suffix(".json").read_text())["output"]
    side = json.loads(path.with_suffix(".json").read_text())
    (tmp_path / "claims_grid.json").write_text(json.dumps(side))
    backend = OnnxRuntimeBackend(plain, device="cpu")
    desc = resolve_description(backend, load_description(plain, tmp_path / "claims_grid.json"))
    assert (desc.grid_output, desc.grid_stride) == ("", 0)
    pipe = DescriptorTrackingPipeline(backend, desc, np.zeros((1, 64), np.float32))
    result = pipe.process(np.full((H, W, 3), 128, np.uint8), "rgb8")
    assert result.grid is None and pipe.descriptor_view(result, H, W).shape == (H, W, 3)
    backend.close()


def test_coarse_to_fine_search_finds_the_whole_image_best(exported):
    """Lost keypoints searched over the whole image: through the grid (5 cells, then windows of the
    full map) the match is the whole-image best pixel, or a tie, on a letterboxed camera."""
    from depth_nodes.pipelines.keypoint_tracking import CoarseGrid, KeypointTracker, TrackerConfig

    _, path = exported
    backend = OnnxRuntimeBackend(path, device="cpu")
    desc = resolve_description(backend, load_description(path))
    rng = np.random.default_rng(5)
    base = cv2.GaussianBlur(rng.integers(0, 255, (150, 300, 3), dtype=np.uint8), (0, 0), 1.5)
    first = DescriptorTrackingPipeline(backend, desc, np.zeros((1, 64), np.float32)).process(base, "rgb8")
    ys, xs = rng.integers(0, first.features.shape[1], 60), rng.integers(0, first.features.shape[2], 60)
    refs = np.ascontiguousarray(first.features[:, ys, xs].T)
    moved = np.roll(base, (5, 9), axis=(0, 1))  # a second frame: the scene shifted
    result = DescriptorTrackingPipeline(backend, desc, refs, TrackerConfig(lost_threshold=10.0)).process(moved, "rgb8")
    lb = result.letterbox
    assert lb.top > 0 and result.track.tracked.all()  # letterboxed; every keypoint from the whole-image search
    features = np.ascontiguousarray(result.features)
    plain = KeypointTracker(refs, TrackerConfig(lost_threshold=10.0)).update(features)  # every pixel searched
    found = result.track
    same = (np.abs(found.pixels - plain.pixels) <= 1).all(axis=1)
    assert same.mean() >= 0.95, same.mean()
    assert np.all(found.distances[~same] <= plain.distances[~same] + 0.02)  # the others: ties
    # a grid that does not cover the window: the search falls back to every pixel
    far = CoarseGrid(result.grid, 8, left=10_000, top=0)
    np.testing.assert_array_equal(KeypointTracker(refs, TrackerConfig(lost_threshold=10.0)).update(features, far).pixels,
                                  plain.pixels)
    backend.close()
