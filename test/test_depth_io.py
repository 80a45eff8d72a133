"""Shared pre/post-processing (depth_nodes.pipelines.depth_io): letterbox, normalisation, colour order,
and back to metric depth at camera resolution; exact round trips for known cases."""
import numpy as np
import pytest

from depth_nodes.backends.description import (IMAGENET_MEAN, IMAGENET_STD, DescriptionError, ModelDescription,
                                              description_from_mapping, load_description)
from depth_nodes.pipelines.depth_io import (DepthIOError, crop_output, letterbox_geometry, postprocess_depth,
                                            preprocess, to_channels)


def _desc(**kw):
    base = dict(height=240, width=320, output_kind="metric_depth", multiple=16)
    base.update(kw)
    return ModelDescription(**base)


def _identity_net(x, channel=0):
    """A 'network' whose output is one input channel: exercises the geometry exactly."""
    return x[:, channel:channel + 1].copy()


def test_letterbox_geometry_fixed_and_dynamic():
    lb = letterbox_geometry(480, 640, _desc(height=256, width=256))
    assert (lb.resized_height, lb.resized_width, lb.top, lb.left, lb.net_height, lb.net_width) == (192, 256, 32, 0,
                                                                                                   256, 256)
    lb = letterbox_geometry(480, 640, _desc(height=518, width=518, multiple=14, dynamic=True))
    assert (lb.resized_height, lb.resized_width) == (388, 518) or (lb.resized_height, lb.resized_width) == (389, 518)
    assert lb.net_height % 14 == 0 and lb.net_width % 14 == 0 and lb.net_width == 518
    assert lb.net_height - lb.resized_height < 14
    lb = letterbox_geometry(480, 640, _desc(height=256, width=256, keep_aspect=False))
    assert (lb.resized_height, lb.resized_width, lb.top, lb.left) == (256, 256, 0, 0)


def test_same_size_round_trip_is_exact_and_normalisation_matches_the_formula():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    desc = _desc(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    x, lb = preprocess(img, "rgb8", desc)
    assert x.shape == (1, 3, 240, 320) and x.dtype == np.float32 and x.flags.c_contiguous
    expect = (img.astype(np.float64) / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(x[0].transpose(1, 2, 0), expect, atol=1e-5)
    # identity network, metric output: the red channel comes back pixel for pixel
    desc_id = _desc(scale=1.0)  # x = pixel value
    x, lb = preprocess(img, "rgb8", desc_id)
    depth = postprocess_depth(_identity_net(x), lb, desc_id)
    red = img[:, :, 0].astype(np.float32)
    np.testing.assert_array_equal(np.nan_to_num(depth, nan=0.0), red)  # 0 -> NaN (no reading)
    assert np.isnan(depth[red == 0]).all()


def test_letterboxed_round_trip_with_integer_scale_is_exact():
    rng = np.random.default_rng(1)
    small = rng.integers(1, 256, (64, 96, 3), dtype=np.uint8)
    img = np.kron(small, np.ones((2, 2, 1), np.uint8))  # 128x192 camera, constant 2x2 blocks
    # letterbox into a square box: image centred, padding exactly 0 in normalised space
    desc = _desc(height=256, width=256, scale=1.0)
    x, lb = preprocess(img, "rgb8", desc)
    assert (lb.resized_height, lb.resized_width, lb.top, lb.left) == (171, 256, 42, 0)
    assert np.all(x[:, :, :lb.top] == 0) and np.all(x[:, :, lb.top + lb.resized_height:] == 0)
    assert postprocess_depth(_identity_net(x), lb, desc).shape == (128, 192)
    # exact x1/2: 128x192 -> 64x96 (area average of constant blocks), back x2 with nearest
    desc2 = _desc(height=64, width=96, scale=1.0)
    x, lb = preprocess(img, "rgb8", desc2)
    assert (lb.resized_height, lb.resized_width, lb.top, lb.left) == (64, 96, 0, 0)
    np.testing.assert_array_equal(x[0].transpose(1, 2, 0), small.astype(np.float32))
    depth = postprocess_depth(_identity_net(x, 1), lb, desc2, interpolation="nearest")
    np.testing.assert_array_equal(depth, img[:, :, 1].astype(np.float32))
    # padded to the box: 64x96 camera in a 96x96 box, crop gives the camera image back exactly
    desc3 = _desc(height=96, width=96, scale=1.0)
    x, lb = preprocess(small, "rgb8", desc3)
    assert (lb.resized_height, lb.resized_width, lb.top, lb.left) == (64, 96, 16, 0)
    np.testing.assert_array_equal(postprocess_depth(_identity_net(x, 2), lb, desc3), small[:, :, 2].astype(np.float32))


def test_colour_orders_reach_the_network_in_its_order():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 200  # red
    bgr = rgb[..., ::-1].copy()
    for desc_order, channel in (("RGB", 0), ("BGR", 2)):
        desc = _desc(height=4, width=4, multiple=1, channels=desc_order, scale=1.0)
        for image, enc in ((rgb, "rgb8"), (bgr, "bgr8"), (np.dstack([rgb, np.full((4, 4), 9, np.uint8)]), "rgba8"),
                           (np.dstack([bgr, np.full((4, 4), 9, np.uint8)]), "bgra8")):
            x, _ = preprocess(image, enc, desc)
            assert np.all(x[0, channel] == 200) and np.all(np.delete(x[0], channel, axis=0) == 0), (enc, desc_order)
    mono = np.full((4, 4), 7, np.uint8)
    x, _ = preprocess(mono, "mono8", _desc(height=4, width=4, multiple=1, scale=1.0))
    assert np.all(x == 7)
    with pytest.raises(DepthIOError, match="encoding"):
        to_channels(rgb, "yuv422", "RGB")
    with pytest.raises(DepthIOError, match="does not match encoding"):
        to_channels(mono, "rgb8", "RGB")
    with pytest.raises(DepthIOError, match="uint8"):
        to_channels(rgb.astype(np.float32), "rgb8", "RGB")


def test_output_kinds_to_metric_depth():
    lb = letterbox_geometry(4, 6, _desc(height=4, width=6, multiple=1))
    y = np.full((1, 1, 4, 6), 2.0, np.float32)
    y[0, 0, 0, 0] = 0.0
    z = postprocess_depth(y, lb, _desc(height=4, width=6, multiple=1, output_kind="relative_depth"), scale=3.0)
    assert z[1, 1] == 6.0 and np.isnan(z[0, 0])
    z = postprocess_depth(y, lb, _desc(height=4, width=6, multiple=1, output_kind="relative_inverse_depth"),
                          scale=0.5, shift=0.25)
    np.testing.assert_allclose(z[1, 1], 1.0 / (0.5 * 2.0 + 0.25))
    assert z[0, 0] == 4.0  # inverse depth 0 -> 1/shift
    z = postprocess_depth(y, lb, _desc(height=4, width=6, multiple=1, output_kind="relative_inverse_depth"))
    assert np.isnan(z[0, 0]) and z[1, 1] == 0.5
    # disparity in network pixels: network at half the camera width -> camera disparity doubles
    desc = _desc(height=2, width=3, multiple=1, output_kind="disparity")
    lb = letterbox_geometry(4, 6, desc)
    assert lb.scale_x == 0.5
    d = np.full((1, 1, 2, 3), 5.0, np.float32)
    z = postprocess_depth(d, lb, desc, fx=500.0, baseline=0.1)
    np.testing.assert_allclose(z, 500.0 * 0.1 / 10.0)
    with pytest.raises(DepthIOError, match="fx and baseline"):
        postprocess_depth(d, lb, desc)
    # metric depth outside [min_depth, max_depth] -> NaN
    desc = _desc(height=4, width=6, multiple=1, min_depth=0.5, max_depth=1.5)
    z = postprocess_depth(np.array([[0.4, 1.0, 2.0]], np.float32).repeat(4, 0).repeat(2, 1), lb_ := letterbox_geometry(
        4, 6, desc), desc)
    assert np.isnan(z[:, :2]).all() and (z[:, 2:4] == 1.0).all() and np.isnan(z[:, 4:]).all()
    with pytest.raises(DepthIOError, match="does not match"):
        postprocess_depth(np.zeros((1, 1, 5, 6), np.float32), lb_, desc)
    with pytest.raises(DepthIOError, match="descriptors"):
        postprocess_depth(y, lb_, _desc(height=4, width=6, multiple=1, output_kind="descriptors", descriptor_dim=8))


def test_buffer_reuse_gives_the_same_input():
    img = np.random.default_rng(2).integers(0, 256, (100, 150, 3), dtype=np.uint8)
    desc = _desc(height=64, width=64)
    x1, _ = preprocess(img, "bgr8", desc)
    buf = np.full_like(x1, 123.0)
    x2, _ = preprocess(img, "bgr8", desc, out=buf)
    assert x2 is buf
    np.testing.assert_array_equal(x1, x2)


def test_sidecar_mapping_and_yaml_errors(tmp_path):
    side = {"format": "depth_nodes.onnx_depth/1", "onnx": "m.onnx", "onnx_sha256": "ab",
            "input": {"name": "image", "shape": ["batch", 3, 64, 96], "channels": "RGB", "range": [0.0, 1.0]},
            "output": {"name": "disparity", "kind": "disparity"}, "height": 64, "width": 96,
            "min_depth": 0.1, "max_depth": 10.0, "depth_is_metric": False, "source_model_sha256": "cd"}
    d = description_from_mapping(side)
    assert d.output_kind == "relative_inverse_depth" and (d.height, d.width) == (64, 96)
    assert d.scale == pytest.approx(1 / 255) and d.mean == (0.0, 0.0, 0.0) and d.source_model_sha256 == "cd"
    d = description_from_mapping({**side, "output": {"name": "depth", "kind": "depth"}, "depth_is_metric": True})
    assert d.output_kind == "metric_depth" and d.max_depth == 10.0
    d = description_from_mapping({**side, "output": {"name": "depth", "kind": "depth"}})
    assert d.output_kind == "relative_depth" and d.max_depth is None
    d = description_from_mapping({**side, "output": {"name": "descriptors", "kind": "descriptors"},
                                  "descriptor_dim": 16})
    assert d.output_kind == "descriptors" and d.descriptor_dim == 16
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(DescriptionError, match="m.json: no model description"):
        load_description(tmp_path / "m.onnx")
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(DescriptionError, match="m.json: not valid JSON"):
        load_description(tmp_path / "m.onnx")
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: depth_nodes.model_description/1\ninput: {height: 256, width: 256, colour: RGB}\n"
                   "output: {kind: relative_inverse_depth}\n")
    with pytest.raises(DescriptionError, match=r"bad.yaml: unknown input keys \['colour'\]"):
        load_description(tmp_path / "m.onnx", bad)
    bad.write_text("format: depth_nodes.model_description/1\ninput: {height: 256, width: 256}\n"
                   "output: {kind: inverse}\n")
    with pytest.raises(DescriptionError, match="bad.yaml: output kind must be one of"):
        load_description(tmp_path / "m.onnx", bad)


def test_resize_image_is_close_to_inter_area_and_exact_for_integer_factors():
    import cv2

    from depth_nodes.pipelines.depth_io import resize_image
    from depth_nodes.synthetic import default_scene

    img = default_scene(640, 480, seed=0).left
    area = cv2.resize(img, (256, 192), interpolation=cv2.INTER_AREA).astype(float)
    fast = resize_image(img, 256, 192)
    assert fast.shape == (192, 256, 3) and fast.dtype == np.uint8
    assert np.abs(fast - area).mean() < 4.0  # a camera image: about 2 grey levels
    # integer factor: exactly the k x k block mean
    exact = resize_image(img, 320, 240)
    np.testing.assert_array_equal(exact, cv2.resize(img, (320, 240), interpolation=cv2.INTER_AREA))
    # no integer factor divides 637x479 (479 is prime): plain INTER_AREA; growing: bilinear; same size: the image itself
    odd = img[:479, :637]
    np.testing.assert_array_equal(resize_image(odd, 200, 150), cv2.resize(odd, (200, 150), interpolation=cv2.INTER_AREA))
    np.testing.assert_array_equal(resize_image(img[:96, :128], 256, 192),
                                  cv2.resize(img[:96, :128], (256, 192), interpolation=cv2.INTER_LINEAR))
    assert resize_image(img, 640, 480) is img
    # 1920x1080 -> 256x144 goes through a 6x6 block mean (floor(7.5) = 7 does not divide 1920)
    big = cv2.resize(img, (1920, 1080), interpolation=cv2.INTER_LINEAR)
    ref = cv2.resize(big, (256, 144), interpolation=cv2.INTER_AREA).astype(float)
    assert np.abs(resize_image(big, 256, 144) - ref).mean() < 4.0


def test_disparity_uses_the_horizontal_factor_when_the_axes_are_resized_differently():
    """Camera 160x90 into a 64x48 network without keeping the aspect: s_x = 0.4, s_y = 8/15.
    Disparity is horizontal: camera disparity = network disparity / s_x."""
    import cameras

    desc = _desc(height=48, width=64, multiple=16, keep_aspect=False, output_kind="disparity", max_depth=100.0)
    lb = letterbox_geometry(cameras.HEIGHT, cameras.WIDTH, desc)
    assert (lb.scale_x, lb.scale_y, lb.top, lb.left) == (0.4, pytest.approx(48 / 90), 0, 0)
    d = np.full((1, 1, 48, 64), 4.0, np.float32)
    z = postprocess_depth(d, lb, desc, fx=cameras.FX, baseline=0.12)
    assert z.shape == (90, 160)
    np.testing.assert_allclose(z, cameras.FX * 0.12 / (4.0 / 0.4), rtol=1e-6)


def test_letterbox_of_a_non_square_image_places_the_window_in_the_middle():
    """160x90 into 64x64 keeping the aspect: resized to 64x36, 14 rows of padding above."""
    desc = _desc(height=64, width=64, multiple=16)
    lb = letterbox_geometry(90, 160, desc)
    assert (lb.resized_width, lb.resized_height, lb.top, lb.left, lb.net_width, lb.net_height) == (64, 36, 14, 0, 64, 64)
    lb = letterbox_geometry(160, 90, desc)
    assert (lb.resized_width, lb.resized_height, lb.top, lb.left) == (36, 64, 0, 14)
    img = np.zeros((90, 160, 3), np.uint8)
    img[:, :80] = 255
    x, lb = preprocess(img, "rgb8", desc)
    assert (x[0, :, :14] == 0).all() and (x[0, :, 50:] == 0).all()
    np.testing.assert_allclose(x[0, :, 14:50, :32], 1.0) and np.testing.assert_allclose(x[0, :, 14:50, 32:], 0.0)
    out = np.arange(64 * 64, dtype=np.float32).reshape(1, 1, 64, 64)
    np.testing.assert_array_equal(crop_output(out, lb), out[0, :, 14:50, :])


def test_resize_that_grows_one_axis_and_shrinks_the_other_averages_the_shrinking_axis():
    import cv2

    from depth_nodes.pipelines.depth_io import resize_image

    img = np.random.default_rng(4).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    out = resize_image(img, 200, 45)  # wider, half the height
    np.testing.assert_array_equal(out, cv2.resize(img, (200, 45), interpolation=cv2.INTER_AREA))
    out = resize_image(img, 80, 120)  # narrower, taller
    np.testing.assert_array_equal(out, cv2.resize(img, (80, 120), interpolation=cv2.INTER_AREA))


def test_a_mono_image_with_a_channel_axis_is_accepted():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    rgb = to_channels(img, "mono8", "RGB")
    assert rgb.shape == (3, 4, 3) and (rgb[..., 1] == img[..., 0]).all()
