"""A zero-shot backbone exported at its own stride (the stride-s map, sidecar ``output.stride``), and the
tracker working on that grid: the same keypoints as from the full-resolution export, and the same
colour view as from the full map, without ever computing the full map."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from depth_nodes.backends.description import DescriptionError, ModelDescription, load_description
from depth_nodes.backends.inference import resolve_description
from depth_nodes.backends.onnxruntime_backend import OnnxRuntimeBackend
from depth_nodes.pipelines.descriptor_tracking import DescriptorTrackingPipeline, TrackerInputError, descriptor_window
from depth_nodes.pipelines.depth_io import letterbox_geometry
from depth_nodes.pipelines.descriptor_grid import GridDescriptors
from depth_nodes.pipelines.keypoint_tracking import KeypointTracker, TrackerConfig
from depth_training.evaluation.export import export_descriptor_onnx
from depth_training.models.backbone_descriptor import BackboneDescriptorNet, grid_stride
from depth_training.models.descriptor import DescriptorNet, load_zero_shot

torch.set_num_threads(1)
H, W = 96, 160  # non-square network input


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The same zero-shot network exported at its stride (the default) and at full resolution."""
    net, config = load_zero_shot("backbone:xfeat", H, W)
    folder = tmp_path_factory.mktemp("grid")
    export_descriptor_onnx(net, config, folder / "xfeat.onnx")
    export_descriptor_onnx(net, config, folder / "full.onnx", strided=False)
    return net, folder / "xfeat.onnx", folder / "full.onnx"


def _pipeline(path, refs, config=None):
    backend = OnnxRuntimeBackend(path, device="cpu")
    return DescriptorTrackingPipeline(backend, resolve_description(backend, load_description(path)), refs, config)


def test_grid_stride_only_for_an_interpolated_map():
    assert grid_stride(BackboneDescriptorNet("xfeat", 64, "interp", pretrained=False), H, W) == 8
    assert grid_stride(BackboneDescriptorNet("xfeat", 16, "refine", pretrained=False), H, W) == 0  # learned head
    # upsampled for the backbone (working width 640 at 160 wide): the output is an average, not the grid interpolated
    assert grid_stride(BackboneDescriptorNet("xfeat", 64, "interp", pretrained=False, working_width=640), H, W) == 0
    assert grid_stride(DescriptorNet("mobile", 16, (16, 32, 64, 96, 128)), H, W) == 0


def test_export_writes_the_grid_whose_interpolation_is_the_network(exported):
    import onnxruntime as ort

    net, path, full_path = exported
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["output"]["stride"] == 8 and side["output"]["shape"] == ["batch", 64, H // 8, W // 8]
    assert "stride" not in json.loads(full_path.with_suffix(".json").read_text())["output"]
    x = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(3))
    (grid,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})
    with torch.no_grad():
        expect_grid = torch.nn.functional.normalize(net.backbone(x), dim=1).numpy()
        expect_full = net(x).numpy()
    np.testing.assert_allclose(grid, expect_grid, atol=1e-5)
    # the dense descriptors the sidecar promises (bilinear, half-pixel) are the network's own
    np.testing.assert_allclose(GridDescriptors(grid, 8).dense(), expect_full[0], atol=1e-5)
    assert load_description(path).output_stride == 8 and load_description(full_path).output_stride == 1


@pytest.mark.parametrize("cam_w, cam_h", [(W, H), (300, 120), (100, 90)])
def test_tracking_on_the_grid_is_tracking_on_the_full_map(exported, cam_w, cam_h):
    """Two frames (the second shifted) through the strided and the full-resolution export: the same
    keypoints at the same pixels, in the window searches and in the whole-image (coarse-to-fine) search
    that the first frame needs; on cameras of the network's size, wider (letterboxed above and below)
    and taller (left and right)."""
    _, path, full_path = exported
    rng = np.random.default_rng(cam_w)
    first = cv2.GaussianBlur(rng.integers(0, 255, (cam_h, cam_w, 3), dtype=np.uint8), (0, 0), 1.5)
    second = np.roll(first, (2, 3), axis=(0, 1))
    dense = _pipeline(full_path, np.zeros((1, 64), np.float32)).process(first, "rgb8").features
    ys, xs = rng.integers(0, dense.shape[1], 12), rng.integers(0, dense.shape[2], 12)
    refs = np.ascontiguousarray(dense[:, ys, xs].T)
    config = TrackerConfig(lost_threshold=10.0, search_radius=6)
    on_grid, on_map = _pipeline(path, refs, config), _pipeline(full_path, refs, config)
    for frame in (first, second):
        a, b = on_grid.process(frame, "rgb8"), on_map.process(frame, "rgb8")
        assert isinstance(a.features, GridDescriptors) and isinstance(b.features, np.ndarray)
        assert a.track.tracked.all() and b.track.tracked.all()
        same = (a.track.pixels == b.track.pixels).all(axis=1)
        # float rounding between ONNX Runtime's Resize and ours can only swap near-ties
        assert same.mean() >= 0.9, same.mean()
        assert np.all(np.abs(a.track.distances - b.track.distances)[same] < 1e-4)
        assert np.all(a.track.distances[~same] <= b.track.distances[~same] + 1e-3)
    assert a.track.in_window.all()  # the second frame: found near the first frame's pixels


@pytest.mark.parametrize("cam_w, cam_h", [(W, H), (300, 120), (100, 90), (200, 150)])
def test_view_from_the_grid_is_the_view_of_the_full_map(exported, cam_w, cam_h):
    """Cameras of the network's size, wider (pads above and below: 300x120 -> 160x64 at top 16),
    taller (pads left and right, 100x90 -> 107x96 at left 26) and 4:3."""
    _, path, _ = exported
    pipe = _pipeline(path, np.random.default_rng(0).normal(size=(3, 64)).astype(np.float32))
    rng = np.random.default_rng(cam_w)
    image = cv2.GaussianBlur(rng.integers(0, 255, (cam_h, cam_w, 3), dtype=np.uint8), (0, 0), 2)
    result = pipe.process(image, "rgb8")
    assert isinstance(result.features, GridDescriptors) and result.features.grid.shape == (64, H // 8, W // 8)
    full = result.features.dense()
    pipe.pca.fit(full.reshape(64, -1).T)
    view = pipe.descriptor_view(result, cam_h, cam_w)
    # every pixel of the window projected, then scaled linearly to the camera
    reference = cv2.resize(pipe.pca.colorize(full), (cam_w, cam_h), interpolation=cv2.INTER_LINEAR)
    diff = np.abs(view.astype(int) - reference.astype(int))
    assert view.shape == (cam_h, cam_w, 3) and view.dtype == np.uint8
    assert diff.mean() < 0.6 and np.percentile(diff, 99) <= 4, (diff.mean(), np.percentile(diff, 99))
    # a colour view that ignored the letterbox offset or scale would be far off
    shifted = np.roll(view, 3, axis=0 if cam_w / cam_h > W / H else 1)
    assert np.abs(shifted.astype(int) - reference.astype(int)).mean() > 2 * diff.mean() + 0.5


def test_description_and_output_size_checks():
    with pytest.raises(DescriptionError, match="output.stride"):
        ModelDescription(96, 160, "descriptors", descriptor_dim=64, output_stride=0)
    with pytest.raises(DescriptionError, match="output.stride"):
        ModelDescription(96, 160, "relative_inverse_depth", output_stride=8)
    desc = ModelDescription(96, 160, "descriptors", descriptor_dim=4, output_stride=8)
    lb = letterbox_geometry(120, 300, desc)
    assert isinstance(descriptor_window(np.zeros((1, 4, 12, 20), np.float32), lb, 8), GridDescriptors)
    with pytest.raises(TrackerInputError, match="stride 8"):  # a full-resolution output described as strided
        descriptor_window(np.zeros((1, 4, 96, 160), np.float32), lb, 8)


def test_coarse_to_fine_search_finds_the_whole_image_best(exported):
    """Lost keypoints searched over the whole image: through the grid (5 cells, then windows of the
    interpolated map) the match is the whole-image best pixel, or a tie, on a letterboxed camera."""
    _, path, _ = exported
    rng = np.random.default_rng(5)
    base = cv2.GaussianBlur(rng.integers(0, 255, (150, 300, 3), dtype=np.uint8), (0, 0), 1.5)
    first = _pipeline(path, np.zeros((1, 64), np.float32)).process(base, "rgb8").features.dense()
    ys, xs = rng.integers(0, first.shape[1], 60), rng.integers(0, first.shape[2], 60)
    refs = np.ascontiguousarray(first[:, ys, xs].T)
    moved = np.roll(base, (5, 9), axis=(0, 1))  # a second frame: the scene shifted
    result = _pipeline(path, refs, TrackerConfig(lost_threshold=10.0)).process(moved, "rgb8")
    lb = result.letterbox
    assert lb.top > 0 and result.track.tracked.all()  # letterboxed; every keypoint from the whole-image search
    plain = KeypointTracker(refs, TrackerConfig(lost_threshold=10.0)).update(result.features.dense())  # every pixel
    found = result.track
    same = (np.abs(found.pixels - plain.pixels) <= 1).all(axis=1)
    assert same.mean() >= 0.95, same.mean()
    assert np.all(found.distances[~same] <= plain.distances[~same] + 0.02)  # the others: ties


def test_eval_descriptors_measures_an_exported_model_as_the_node_runs_it(exported, tmp_path, capsys):
    """``onnx_describer``: at the network's size the strided export gives the network's own dense
    descriptors; on a smaller image, the block means of the upsampled image's descriptors (what
    ``backbone:NAME@W`` computes). ``eval-descriptors --compare X.onnx`` reports it next to the rest."""
    from depth_training.cli import main
    from depth_training.evaluation.descriptors import network_describer, onnx_describer

    net, path, _ = exported
    rng = np.random.default_rng(9)
    image = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (0, 0), 1.5)
    got, hamming = onnx_describer(path)(image)
    assert not hamming and got.shape == (64, H, W)
    np.testing.assert_allclose(got.numpy(), network_describer(net)(image)[0].numpy(), atol=1e-4)
    half = cv2.resize(image, (W // 2, H // 2), interpolation=cv2.INTER_AREA)
    small = onnx_describer(path)(half)[0].numpy()
    # what the node computes: the 8-bit image grown to the input (bilinear), then each 2x2 block's mean
    grown = onnx_describer(path)(cv2.resize(half, (W, H), interpolation=cv2.INTER_LINEAR))[0].numpy()
    expect = grown.reshape(64, H // 2, 2, W // 2, 2).mean(axis=(2, 4))
    assert small.shape == (64, H // 2, W // 2)
    np.testing.assert_allclose(small, expect, atol=1e-5)

    seq = tmp_path / "pairs"
    seq.mkdir()
    Hm = np.array([[1.0, 0.02, 3.0], [-0.01, 1.0, 2.0], [0, 0, 1.0]])
    cv2.imwrite(str(seq / "1.png"), image)
    cv2.imwrite(str(seq / "2.png"), cv2.warpPerspective(image, Hm, (W, H)))
    np.savetxt(seq / "H_1_2", Hm)
    out = tmp_path / "eval"
    assert main(["eval-descriptors", "--model", "backbone:xfeat", "--pairs", str(seq), "--pairs-size", str(W),
                 "--compare", str(path), "--baselines", "--points", "40", "--threads", "1", "--out", str(out)]) == 0
    report = json.loads((out / "eval_pairs.json").read_text())
    rows = json.dumps(report)
    assert path.name in rows and "trained" in rows
    assert path.name in capsys.readouterr().out
    missing = tmp_path / "none.onnx"
    assert main(["eval-descriptors", "--model", "backbone:xfeat", "--pairs", str(seq), "--compare", str(missing),
                 "--baselines", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "none.onnx" in err and len(err.strip().splitlines()) == 1


def exported_fixed(tmp_path, net, config):
    path = tmp_path / "fixed.onnx"
    export_descriptor_onnx(net, config, path)
    return path


def test_dynamic_export_runs_each_camera_at_its_own_size_and_orientation(tmp_path, capsys):
    """``export --dynamic`` with a landscape 96x160 box: a landscape and a portrait camera each run
    at their own size (the box turned for the portrait one: no letterbox shrink), with the network's
    own descriptors; a wide camera is letterboxed into the box exactly as a fixed-size export would.
    ``--dynamic`` on a depth model is refused."""
    from depth_training.cli import main

    net, config = load_zero_shot("backbone:xfeat", H, W)
    path = tmp_path / "dyn.onnx"
    export_descriptor_onnx(net, config, path, dynamic=True)
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["dynamic"] is True and side["multiple"] == 32 and side["orientation"] == "any"
    assert side["input"]["shape"] == ["batch", 3, "height", "width"]
    assert [s[2:] for s in side["verification"]["input_shapes"]] == [[H, W], [W, H]]
    desc = load_description(path)
    assert desc.dynamic and desc.any_orientation and (desc.height, desc.width, desc.output_stride) == (H, W, 8)
    rng = np.random.default_rng(4)
    for cam_h, cam_w in ((H, W), (W, H), (2 * W, 2 * H)):  # landscape, portrait, portrait at twice the box
        image = cv2.GaussianBlur(rng.integers(0, 255, (cam_h, cam_w, 3), dtype=np.uint8), (0, 0), 1.5)
        result = _pipeline(path, np.zeros((1, 64), np.float32)).process(image, "rgb8")
        lb = result.letterbox
        side_h, side_w = (H, W) if cam_w > cam_h else (W, H)
        assert (lb.net_height, lb.net_width, lb.resized_height, lb.resized_width) == (side_h, side_w, side_h, side_w)
        if (cam_h, cam_w) == (side_h, side_w):  # at its own size: the network's own descriptors
            with torch.no_grad():
                expect = net(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0)[0].numpy()
            np.testing.assert_allclose(result.features.dense(), expect, atol=1e-4)
    wide = np.zeros((90, 320, 3), np.uint8)
    lb = _pipeline(path, np.zeros((1, 64), np.float32)).process(wide, "rgb8").letterbox
    # 320x90 -> 160x45 in the 160x96 box, as the fixed-size export letterboxes it
    fixed_lb = _pipeline(exported_fixed(tmp_path, net, config), np.zeros((1, 64), np.float32)).process(wide, "rgb8").letterbox
    assert lb == fixed_lb and (lb.resized_width, lb.resized_height, lb.net_width, lb.net_height, lb.top) == (160, 45, 160, 96, 25)
    with pytest.raises(DescriptionError, match="orientation"):
        ModelDescription(H, W, "descriptors", descriptor_dim=64, any_orientation=True)  # a fixed-size network
    depth_model = tmp_path / "depth.pt"
    depth_model.write_bytes(b"not a descriptor model")
    assert main(["export", "--model", str(depth_model), "--onnx", str(tmp_path / "d.onnx"), "--dynamic"]) == 2
    assert "--dynamic is for descriptor models" in capsys.readouterr().err


def test_tensorrt_gets_a_profile_for_both_orientations(monkeypatch):
    """A node given ``backend: tensorrt`` and the shipped (turnable) model builds its engine with one
    profile covering 480x640 and 640x480; fixed graphs get none. The TensorRT build itself is not run
    here (no TensorRT): the backend loader is replaced to see what it is given."""
    from depth_nodes.nodes import model_loading
    from depth_nodes.shipped_models import shipped_model

    model = shipped_model("descriptors")
    desc = load_description(model)
    build = model_loading.tensorrt_build_options(desc)
    (profile,) = build.profiles
    assert (profile.name, profile.min, profile.opt, profile.max) == (
        "image", (1, 3, 480, 480), (1, 3, 480, 640), (1, 3, 640, 640))
    assert model_loading.tensorrt_build_options(ModelDescription(H, W, "descriptors", descriptor_dim=64)) is None
    seen = {}

    class Loaded:
        def warmup(self):
            pass

        def infer(self, feeds):
            seen.setdefault("warm-up shapes", []).append(next(iter(feeds.values())).shape)
            return {}

    def fake_load(path, backend, device, **options):
        seen.update(backend=backend, options=options)
        return Loaded()

    monkeypatch.setattr(model_loading, "load_backend", fake_load)
    monkeypatch.setattr(model_loading, "_warm_up_at_box",
                        lambda net, d: net.infer({"image": np.zeros((1, 3, d.height, d.width), np.float32)}))
    model_loading.load_model(str(model), "", "tensorrt", "cuda")
    assert seen["backend"] == "tensorrt" and seen["options"] == {"build_options": build}
    assert seen["warm-up shapes"] == [(1, 3, 480, 640)]
    model_loading.load_model(str(model), "", "onnxruntime", "cpu")
    assert seen["options"] == {}
