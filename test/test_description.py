"""Model descriptions (depth_nodes.backends.description): the sidecar's input range reaches the
network exactly, every field is read from where it is written, and each bad value is named."""
import json

import numpy as np
import pytest

from depth_nodes.backends.description import (IMAGENET_MEAN, IMAGENET_STD, DescriptionError, ModelDescription,
                                              description_from_mapping, load_description)
from depth_nodes.pipelines.depth_io import preprocess

SIDECAR = {"format": "depth_nodes.onnx_depth/1", "onnx": "dir/net.onnx", "onnx_sha256": "ab",
           "input": {"name": "img", "shape": ["batch", 3, 48, 80], "channels": "bgr", "range": [0.0, 1.0]},
           "output": {"name": "disparity", "kind": "disparity"}, "height": 48, "width": 80, "multiple": 16,
           "keep_aspect": False, "min_depth": 0.1, "max_depth": 10.0, "depth_is_metric": False,
           "source_model_sha256": "cd"}


def _sidecar(**kw):
    doc = json.loads(json.dumps(SIDECAR))
    doc.update(kw)
    return doc


@pytest.mark.parametrize("lo,hi", [(-1.0, 1.0), (0.5, 2.5), (-3.0, -1.0), (0.0, 1.0), (0.0, 255.0)])
def test_sidecar_input_range_maps_pixel_0_to_lo_and_255_to_hi(lo, hi):
    """``x = lo + pixel / 255 * (hi - lo)``: a [-1, 1] network sees -1 for black, +1 for white."""
    desc = description_from_mapping(_sidecar(input={**SIDECAR["input"], "range": [lo, hi]}))
    img = np.zeros((48, 80, 3), np.uint8)
    img[:, 40:] = 255
    img[:, 20:40] = 51  # 51/255 = 0.2
    x, _ = preprocess(img, "bgr8", desc)
    np.testing.assert_allclose(x[0, :, :, :20], lo, atol=1e-5)
    np.testing.assert_allclose(x[0, :, :, 20:40], lo + 0.2 * (hi - lo), atol=1e-5)
    np.testing.assert_allclose(x[0, :, :, 40:], hi, atol=1e-5)


def test_sidecar_empty_range_is_refused():
    with pytest.raises(DescriptionError, match=r"input range \[1.0, 1.0\] is empty"):
        description_from_mapping(_sidecar(input={**SIDECAR["input"], "range": [1.0, 1.0]}), "m.json")


def test_sidecar_fields_and_defaults():
    d = description_from_mapping(_sidecar(), "dir/net.json")
    assert (d.height, d.width, d.multiple, d.dynamic, d.keep_aspect) == (48, 80, 16, False, False)
    assert (d.channels, d.input_name, d.output_name, d.output_kind) == ("BGR", "img", "disparity",
                                                                       "relative_inverse_depth")
    assert (d.std, d.min_depth, d.max_depth, d.descriptor_dim) == ((1.0, 1.0, 1.0), None, None, None)
    assert (d.model_sha256, d.source_model_sha256, d.name, d.source) == ("ab", "cd", "net", "dir/net.json")
    assert d.extra["onnx"] == "dir/net.onnx"
    # height/width from the input shape when the top level lacks them; defaults for the rest
    doc = _sidecar(input={"shape": [1, 3, 32, 64]}, output={"name": "depth"})
    for key in ("height", "width", "multiple", "keep_aspect", "onnx"):
        doc.pop(key)
    d = description_from_mapping(doc, "x/other.json")
    assert (d.height, d.width, d.multiple, d.keep_aspect, d.channels) == (32, 64, 32, True, "RGB")
    assert (d.input_name, d.output_kind, d.name) == ("image", "relative_depth", "other")
    assert d.scale == pytest.approx(1 / 255) and d.mean == (0.0, 0.0, 0.0)
    assert description_from_mapping({**doc, "name": "given"}).name == "given"


def test_sidecar_metric_depth_keeps_its_range_and_descriptors_their_dimension():
    d = description_from_mapping(_sidecar(output={"name": "depth", "kind": "depth"}, depth_is_metric=True))
    assert (d.output_kind, d.min_depth, d.max_depth) == ("metric_depth", 0.1, 10.0)
    d = description_from_mapping(_sidecar(output={"name": "depth", "kind": "depth"}, depth_is_metric=True,
                                          min_depth=None))
    assert (d.min_depth, d.max_depth) == (None, 10.0)
    d = description_from_mapping(_sidecar(output={"name": "d", "kind": "descriptors"}, descriptor_dim=24))
    assert (d.output_kind, d.output_name, d.descriptor_dim) == ("descriptors", "d", 24)


@pytest.mark.parametrize("doc,match", [
    ({"format": "depth_nodes.onnx_depth/1", "output": {"name": "d"}}, "m.json: sidecar lacks input/output fields"),
    ({"format": "depth_nodes.onnx_depth/1", "input": {"shape": [1, 3]}, "output": {"name": "d"}},
     "m.json: sidecar lacks input/output fields"),
    ({"format": "other/1"}, "m.json: format must be 'depth_nodes.onnx_depth/1' or 'depth_nodes.model_description/1',"
                            " got 'other/1'"),
    ({"format": "depth_nodes.model_description/1", "input": [], "output": {}}, "m.json: needs 'input' and 'output'"),
    ({"format": "depth_nodes.model_description/1", "input": {"height": 8}, "output": {"kind": "metric_depth"}},
     "m.json: missing key 'width'"),
    ({"format": "depth_nodes.model_description/1", "input": {"height": 8, "width": "x"},
      "output": {"kind": "metric_depth"}}, "m.json: invalid literal"),
    ({"format": "depth_nodes.model_description/1", "input": {"height": 8, "width": 8},
      "output": {"kind": "metric_depth", "range": 1}}, r"m.json: unknown output keys \['range'\]"),
    ({"format": "depth_nodes.model_description/1", "input": {"height": 8, "width": 8, "mean": [1, 2]},
      "output": {"kind": "metric_depth"}}, "m.json: mean must have 3 values, got 2"),
    ({"format": "depth_nodes.model_description/1", "input": {"height": 8, "width": 8, "std": "x"},
      "output": {"kind": "metric_depth"}}, "m.json: std must be a list of 3 numbers or 'imagenet', got 'x'"),
])
def test_bad_documents_are_named(doc, match):
    with pytest.raises(DescriptionError, match=match):
        description_from_mapping(doc, "m.json")
    with pytest.raises(DescriptionError, match="expected a mapping, found list"):
        description_from_mapping([], "m.json")


def test_description_yaml_fields_and_imagenet(tmp_path):
    path = tmp_path / "public.yaml"
    path.write_text("format: depth_nodes.model_description/1\nname: pub\nmodel_sha256: ee\n"
                    "input: {name: pixel_values, height: 64, width: 96, multiple: 32, dynamic: true, keep_aspect: false,"
                    " channels: bgr, scale: 0.5, mean: imagenet, std: ImageNet}\n"
                    "output: {name: out, kind: metric_depth, min_depth: 0.5, max_depth: 20, descriptor_dim: 3}\n")
    d = load_description(tmp_path / "public.onnx", path)
    assert (d.height, d.width, d.multiple, d.dynamic, d.keep_aspect, d.channels) == (64, 96, 32, True, False, "BGR")
    assert (d.scale, d.mean, d.std) == (0.5, IMAGENET_MEAN, IMAGENET_STD)
    assert (d.input_name, d.output_name, d.min_depth, d.max_depth, d.descriptor_dim) == (
        "pixel_values", "out", 0.5, 20.0, 3)
    assert (d.name, d.model_sha256, d.source) == ("pub", "ee", str(path))
    path.write_text("format: depth_nodes.model_description/1\ninput: {height: 64, width: 96, mean: [1, 2, 3]}\n"
                    "output: {kind: relative_depth}\n")
    d = load_description(tmp_path / "public.onnx", path)
    assert (d.multiple, d.dynamic, d.keep_aspect, d.channels, d.input_name, d.output_name, d.name) == (
        1, False, True, "RGB", "", "", "")
    assert (d.mean, d.std, d.scale) == ((1.0, 2.0, 3.0), (1.0, 1.0, 1.0), pytest.approx(1 / 255))
    assert (d.min_depth, d.max_depth, d.descriptor_dim, d.model_sha256) == (None, None, None, None)
    path.write_text("input: [\n")
    with pytest.raises(DescriptionError, match="public.yaml: not valid YAML"):
        load_description(tmp_path / "public.onnx", path)
    with pytest.raises(DescriptionError, match=r"nothing.json: no model description for .*public.onnx$"):
        load_description(tmp_path / "public.onnx", tmp_path / "nothing.json")
    (tmp_path / "side.engine").write_bytes(b"")
    (tmp_path / "side.json").write_text(json.dumps(_sidecar()))
    assert load_description(tmp_path / "side.engine").source == str(tmp_path / "side.json")


@pytest.mark.parametrize("kw,match", [
    (dict(output_kind="depthish"), "m: output kind must be one of"),
    (dict(channels="rgb"), r"m: channels must be one of \('RGB', 'BGR'\), got 'rgb'"),
    (dict(multiple=0), "m: multiple must be >= 1, got 0"),
    (dict(height=0, multiple=1), "m: input size must be positive, got 0x64"),
    (dict(width=0, multiple=1), "m: input size must be positive, got 48x0"),
    (dict(height=40), "m: input size 40x64 is not a multiple of 16"),
    (dict(width=40), "m: input size 48x40 is not a multiple of 16"),
    (dict(mean=(0.0, float("nan"), 0.0)), "m: mean must be 3 finite numbers"),
    (dict(std=(1.0, 1.0)), "m: std must be 3 finite numbers"),
    (dict(std=(1.0, 0.0, 1.0)), "m: std and scale must be positive"),
    (dict(scale=0.0), "m: std and scale must be positive"),
    (dict(min_depth=2.0, max_depth=2.0), "m: need 0 <= min_depth < max_depth, got 2.0, 2.0"),
    (dict(min_depth=-1.0, max_depth=2.0), "m: need 0 <= min_depth < max_depth"),
    (dict(output_kind="descriptors"), "m: a descriptors model needs a positive descriptor_dim"),
    (dict(output_kind="descriptors", descriptor_dim=0), "m: a descriptors model needs a positive descriptor_dim"),
])
def test_model_description_checks_name_the_field(kw, match):
    base = dict(height=48, width=64, output_kind="metric_depth", multiple=16, source="m")
    with pytest.raises(DescriptionError, match=match):
        ModelDescription(**{**base, **kw})


def test_valid_edges_are_accepted_and_with_size_keeps_the_rest():
    base = dict(height=48, width=64, output_kind="metric_depth", multiple=16)
    assert ModelDescription(**base, dynamic=True, min_depth=0.0, max_depth=1.0).min_depth == 0.0
    assert ModelDescription(**{**base, "height": 40}, dynamic=True).height == 40  # dynamic: any size
    assert ModelDescription(**base, min_depth=3.0).max_depth is None
    d = ModelDescription(**{**base, "output_kind": "descriptors"}, descriptor_dim=1, name="n").with_size(32, 96)
    assert (d.height, d.width, d.descriptor_dim, d.name) == (32, 96, 1, "n")
    with pytest.raises(DescriptionError, match="model description: multiple must be >= 1"):
        ModelDescription(**{**base, "multiple": 0})


def test_sidecar_size_name_and_default_source(tmp_path):
    """Top-level height/width win over symbolic input dimensions; the name is the ONNX file's stem
    (not the sidecar's); errors without a source say 'model description'; a missing sidecar hints
    at description files for public models."""
    doc = _sidecar(input={"shape": ["batch", 3, "h", "w"]}, onnx="models/exported.onnx")
    d = description_from_mapping(doc, "elsewhere/sidecar.json")
    assert (d.height, d.width, d.name) == (48, 80, "exported")
    with pytest.raises(DescriptionError, match="^model description: expected a mapping, found str$"):
        description_from_mapping("x")
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(DescriptionError, match=r"m.json: no model description for .*m.onnx "
                                               r"\(pass a model description YAML for public models\)$"):
        load_description(tmp_path / "m.onnx")


def test_description_defaults_and_the_smallest_input():
    doc = {"format": "depth_nodes.model_description/1", "input": {"height": 1, "width": 1},
           "output": {"kind": "metric_depth"}}
    d = description_from_mapping(doc, "tiny.yaml")
    assert (d.height, d.width, d.mean, d.std, d.dynamic, d.multiple) == (1, 1, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0),
                                                                        False, 1)
