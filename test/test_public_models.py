"""Public-model descriptions (config/models/*.yaml) against the references' own preprocessing.

The reference transforms below are transcribed from the public code: ``Resize`` /
``NormalizeImage`` / ``PrepareForNet`` of MiDaS (``midas/transforms.py``, ``tf/transforms.py``)
and Depth Anything V2 (``depth_anything_v2/util/transform.py``), composed as MiDaS'
``tf/run_onnx.py`` (release ``model-small.onnx``: RGB / 255 stretched to 256x256, INTER_CUBIC, the
normalisation inside the graph), ``hubconf.py`` ``small_transform`` (torch hub: longer side 256,
multiple of 32, ImageNet) and Depth Anything V2's ``dpt.py`` ``image2tensor`` (shorter side 518,
multiple of 14, INTER_CUBIC, ImageNet). Small conv nets exported with torch carry the public
input/output signatures.
"""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from depth_nodes.backends.description import DescriptionError, description_from_mapping, load_description
from depth_nodes.backends.inference import load_backend, resolve_description
from depth_nodes.pipelines.depth_io import letterbox_geometry, preprocess
from depth_nodes.pipelines.mono_depth import MonoDepthPipeline, MonoFrame

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "config" / "models"
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


# ------------------------------------------------------------- the references, as their code is written
class RefResize:
    """MiDaS / Depth Anything V2 ``Resize`` (image only, ``resize_target=False``)."""

    def __init__(self, width, height, keep_aspect_ratio, ensure_multiple_of, resize_method, interpolation):
        self.width, self.height, self.keep, self.m = width, height, keep_aspect_ratio, ensure_multiple_of
        self.method, self.interp = resize_method, interpolation

    def constrain_to_multiple_of(self, x, min_val=0, max_val=None):
        y = (np.round(x / self.m) * self.m).astype(int)
        if max_val is not None and y > max_val:
            y = (np.floor(x / self.m) * self.m).astype(int)
        if y < min_val:
            y = (np.ceil(x / self.m) * self.m).astype(int)
        return y

    def get_size(self, width, height):
        scale_height, scale_width = self.height / height, self.width / width
        if self.keep:
            if self.method == "lower_bound":
                if scale_width > scale_height:
                    scale_height = scale_width
                else:
                    scale_width = scale_height
            elif self.method == "upper_bound":
                if scale_width < scale_height:
                    scale_height = scale_width
                else:
                    scale_width = scale_height
        if self.method == "lower_bound":
            new_height = self.constrain_to_multiple_of(scale_height * height, min_val=self.height)
            new_width = self.constrain_to_multiple_of(scale_width * width, min_val=self.width)
        else:
            new_height = self.constrain_to_multiple_of(scale_height * height, max_val=self.height)
            new_width = self.constrain_to_multiple_of(scale_width * width, max_val=self.width)
        return int(new_width), int(new_height)

    def __call__(self, image):
        width, height = self.get_size(image.shape[1], image.shape[0])
        return cv2.resize(image, (width, height), interpolation=self.interp)


def _prepare(image, normalise):
    if normalise:
        image = (image - MEAN) / STD
    return np.ascontiguousarray(np.transpose(image, (2, 0, 1)).astype(np.float32))[None]


def midas_release_input(bgr):   # tf/run_onnx.py with --model_type small
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) / 255.0
    return _prepare(RefResize(256, 256, False, 32, "upper_bound", cv2.INTER_CUBIC)(rgb), normalise=False)


def midas_hub_input(bgr):       # hubconf.py transforms().small_transform on an RGB image
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) / 255.0
    return _prepare(RefResize(256, 256, True, 32, "upper_bound", cv2.INTER_CUBIC)(rgb), normalise=True)


def da_v2_input(bgr):           # depth_anything_v2/dpt.py image2tensor(raw_image, 518)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) / 255.0
    return _prepare(RefResize(518, 518, True, 14, "lower_bound", cv2.INTER_CUBIC)(rgb), normalise=True)


CASES = {"midas_v21_small": midas_release_input, "midas_v21_small_hub": midas_hub_input,
         "depth_anything_v2_small": da_v2_input}


def _photo(h, w, seed=0):
    """A camera-like BGR image: smooth shading, edges and noise (cubic overshoots at the edges)."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:h, 0:w]
    img = np.stack([40 + 150 * u / w, 60 + 120 * v / h, 128 + 60 * np.sin(u / 17.0 + v / 23.0)], -1)
    img[(u // 37 + v // 29) % 2 == 0] += 60
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------ the tests
@pytest.mark.parametrize("size, expect", [((480, 640), (518, 686)), ((1080, 1920), (518, 924)),
                                          ((375, 450), (518, 616)), ((640, 480), (686, 518)),
                                          ((200, 1000), (518, 2590))])
def test_depth_anything_v2_sizes_are_the_reference_sizes(size, expect):
    desc = load_description("x.onnx", MODELS / "depth_anything_v2_small.yaml")
    lb = letterbox_geometry(*size, desc)
    assert (lb.net_height, lb.net_width) == (lb.resized_height, lb.resized_width) == expect  # no padding
    assert (lb.top, lb.left) == (0, 0)
    ref_w, ref_h = RefResize(518, 518, True, 14, "lower_bound", cv2.INTER_CUBIC).get_size(size[1], size[0])
    assert (ref_h, ref_w) == expect


@pytest.mark.parametrize("size", [(480, 640), (1080, 1920), (375, 450), (640, 480), (200, 1000), (37, 53)])
@pytest.mark.parametrize("name", sorted(CASES))
def test_preprocessing_equals_the_reference_transform(name, size):
    desc = load_description("x.onnx", MODELS / f"{name}.yaml")
    bgr = _photo(*size, seed=size[0])
    ref = CASES[name](bgr)
    ours, lb = preprocess(bgr, "bgr8", desc)
    assert ours.shape == ref.shape, (name, size)
    assert (lb.top, lb.left) == (0, 0) and (lb.resized_height, lb.resized_width) == ref.shape[2:]
    np.testing.assert_allclose(ours, ref, atol=2e-4)  # float32 vs the references' float64 (0.006 grey levels)
    assert (ours.min() < 0) == (name != "midas_v21_small")  # normalised outside the graph or not


def test_reference_size_rule_on_many_sizes_and_boxes_that_are_not_multiples():
    from depth_nodes.pipelines.depth_io import reference_resize_size

    rng = np.random.default_rng(7)
    for _ in range(400):
        h, w = (int(x) for x in rng.integers(8, 2000, 2))
        box_h, box_w = (int(x) for x in rng.integers(60, 700, 2))
        m = int(rng.choice([1, 8, 14, 32]))
        for method in ("lower_bound", "upper_bound"):
            ref_w, ref_h = RefResize(box_w, box_h, True, m, method, cv2.INTER_CUBIC).get_size(w, h)
            assert reference_resize_size(h, w, box_h, box_w, m, method) == (max(m, ref_h), max(m, ref_w)), \
                (h, w, box_h, box_w, m, method)


def test_midas_hub_rounding_follows_the_reference_half_to_even():
    desc = load_description("x.onnx", MODELS / "midas_v21_small_hub.yaml")
    lb = letterbox_geometry(1080, 1920, desc)  # 1080 * 256/1920 = 144 = 4.5 * 32 -> 4 * 32 (np.round)
    assert (lb.net_height, lb.net_width) == (128, 256)
    assert (letterbox_geometry(480, 640, desc).net_height, letterbox_geometry(480, 640, desc).net_width) == (192, 256)


class _TinyDepthNet(torch.nn.Module):
    """A conv net with a public model's signature: (B, 3, H, W) -> (B, H, W) positive inverse depth."""

    def __init__(self, normalise_inside: bool):
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.conv2 = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(4, 1, 1)
        self.normalise_inside = normalise_inside
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, x):
        if self.normalise_inside:  # MidasNet_preprocessing of tf/make_onnx_model.py
            x = (x - self.mean) / self.std
        return torch.nn.functional.softplus(self.conv2(torch.relu(self.conv1(x))))[:, 0] + 0.1


def _export(path, name):
    net = _TinyDepthNet(normalise_inside=name == "midas_v21_small").eval()
    in_name, out_name = {"midas_v21_small": ("x", "y"), "midas_v21_small_hub": ("image", "depth"),
                         "depth_anything_v2_small": ("pixel_values", "predicted_depth")}[name]
    dynamic = None if name == "midas_v21_small" else {in_name: {0: "batch", 2: "height", 3: "width"},
                                                        out_name: {0: "batch", 1: "height", 2: "width"}}
    size = 256 if name != "depth_anything_v2_small" else 518
    torch.onnx.export(net, (torch.rand(1, 3, size, size),), str(path), opset_version=17, dynamo=False,
                      input_names=[in_name], output_names=[out_name], dynamic_axes=dynamic)
    return net


@pytest.mark.parametrize("name", sorted(CASES))
def test_exported_public_signature_through_the_runtime_matches_the_reference(tmp_path, name):
    net = _export(tmp_path / f"{name}.onnx", name)
    backend = load_backend(tmp_path / f"{name}.onnx", threads=1)
    desc = resolve_description(backend, load_description(tmp_path / f"{name}.onnx", MODELS / f"{name}.yaml"))
    bgr = _photo(480, 640, seed=3)
    ref_in = CASES[name](bgr)
    with torch.no_grad():
        ref_out = net(torch.from_numpy(ref_in)).numpy()
    x, lb = preprocess(bgr, "bgr8", desc)
    y = backend.infer({desc.input_name: x})[desc.output_name]
    np.testing.assert_allclose(y, ref_out, rtol=1e-4, atol=1e-5)  # the network sees what the reference feeds
    # back at camera resolution: one value per camera pixel, the reference's resize of its output
    inverse = MonoDepthPipeline(backend, desc, "relative").process(MonoFrame(bgr, "bgr8")).relative_inverse
    assert inverse.shape == (480, 640)
    ref_back = cv2.resize(ref_out[0], (640, 480), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(inverse, ref_back, rtol=1e-4, atol=1e-5)


def test_postprocessing_undoes_each_axis_scale_of_the_short_side_resize(tmp_path):
    """A grey ramp through a network that returns its input's mean channel: the output at camera
    resolution is the ramp again (interior, away from the resize's border handling)."""
    name = "depth_anything_v2_small"
    path = tmp_path / "mean.onnx"

    class MeanNet(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=1) + 3.0

    torch.onnx.export(MeanNet(), (torch.rand(1, 3, 518, 518),), str(path), opset_version=17, dynamo=False,
                      input_names=["pixel_values"], output_names=["predicted_depth"],
                      dynamic_axes={"pixel_values": {2: "h", 3: "w"}, "predicted_depth": {1: "h", 2: "w"}})
    backend = load_backend(path, threads=1)
    desc = resolve_description(backend, load_description(path, MODELS / f"{name}.yaml"))
    v, u = np.mgrid[0:60, 0:127]
    grey = 5 + u + 2 * v  # exact integers, 5 .. 249, different slopes along the two axes
    img = np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    lb = letterbox_geometry(60, 127, desc)
    assert (lb.net_height, lb.net_width) == (518, 1092)  # x 8.633 down, x 8.598 across
    out = MonoDepthPipeline(backend, desc, "relative").process(MonoFrame(img, "rgb8")).relative_inverse
    expect = 3.0 + np.mean([(grey / 255.0 - m) / s for m, s in zip(MEAN, STD)], axis=0)
    inner = (slice(3, -3), slice(3, -3))  # the resizes replicate the border
    # half a camera pixel off along u would be 0.5 grey levels = 0.009 here
    np.testing.assert_allclose(out[inner], expect[inner], atol=1e-3)


def test_resize_policy_and_interpolation_fields_are_checked():
    base = {"format": "depth_nodes.model_description/1", "output": {"kind": "relative_inverse_depth"}}
    inp = {"height": 518, "width": 518, "multiple": 14, "dynamic": True}
    d = description_from_mapping({**base, "input": inp}, "a.yaml")
    assert (d.resize, d.interpolation, d.keep_aspect) == ("fit_inside_pad", "auto", True)  # today's default
    d = description_from_mapping({**base, "input": {**inp, "keep_aspect": False}}, "a.yaml")
    assert d.resize == "stretch" and d.keep_aspect is False
    assert description_from_mapping({**base, "input": {**inp, "resize": "stretch"}}, "a.yaml").keep_aspect is False
    with pytest.raises(DescriptionError, match="a.yaml: resize must be one of"):
        description_from_mapping({**base, "input": {**inp, "resize": "short"}}, "a.yaml")
    with pytest.raises(DescriptionError, match="a.yaml: interpolation must be one of"):
        description_from_mapping({**base, "input": {**inp, "interpolation": "lanczos"}}, "a.yaml")
    with pytest.raises(DescriptionError, match="short_side .*dynamic: true"):
        description_from_mapping({**base, "input": {**inp, "dynamic": False, "resize": "short_side"}}, "a.yaml")
    with pytest.raises(DescriptionError, match="keep_aspect False contradicts resize short_side"):
        description_from_mapping({**base, "input": {**inp, "keep_aspect": False, "resize": "short_side"}}, "a.yaml")
