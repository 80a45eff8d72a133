"""Descriptor tracking pipeline (ROS-free): network pixels back to camera pixels and 3D points with a
network smaller than the camera image, different factors per axis and an asymmetric camera."""
import numpy as np
import pytest

import cameras
from depth_nodes.backends.description import ModelDescription
from depth_nodes.pipelines.descriptor_tracking import (DescriptorTrackingPipeline, TrackerInputError, draw_keypoints,
                                                       keypoints_3d)
from depth_nodes.pipelines.keypoint_tracking import TrackerConfig

D = 4


class PlantedDescriptors:
    """A descriptor network that answers every frame with a ``(1, D, h, w)`` map holding one
    distinct descriptor per reference at a chosen network pixel (zeros elsewhere)."""

    def __init__(self, desc: ModelDescription, spots: list[tuple[int, int]], name="desc"):
        self.desc, self.spots, self.name = desc, spots, name
        self.inputs = []

    def infer(self, inputs):
        x = inputs[self.desc.input_name]
        self.inputs.append(x.shape)
        out = np.zeros((1, D, x.shape[2], x.shape[3]), np.float32)
        for i, (u, v) in enumerate(self.spots):
            out[0, i % D, v, u] = 1.0 + i // D
        return {self.name: out}


def _refs(n):
    refs = np.zeros((n, D), np.float32)
    for i in range(n):
        refs[i, i % D] = 1.0 + i // D
    return refs


def _desc(**kw):
    return ModelDescription(**{"height": 48, "width": 64, "multiple": 16, "output_kind": "descriptors",
                               "descriptor_dim": D, "output_name": "desc", **kw})


def test_network_pixels_map_to_camera_pixels_with_the_half_pixel_shift_per_axis():
    """Camera 160x90 into a 64x48 network (no aspect kept): s_x = 0.4, s_y = 8/15;
    ``u_cam = (u_net + 0.5) / s_x - 0.5``, ``v_cam = (v_net + 0.5) / s_y - 0.5``."""
    desc = _desc(keep_aspect=False)
    spots = [(10, 7), (50, 40), (0, 0)]
    backend = PlantedDescriptors(desc, spots)
    pipe = DescriptorTrackingPipeline(backend, desc, _refs(3), TrackerConfig(lost_threshold=0.5, search_radius=0))
    image = np.zeros((cameras.HEIGHT, cameras.WIDTH, 3), np.uint8)
    out = pipe.process(image, "rgb8")
    assert backend.inputs == [(1, 3, 48, 64)] and out.features.shape == (D, 48, 64)
    sx, sy = 0.4, 48 / 90
    expected = np.array([[(u + 0.5) / sx - 0.5, (v + 0.5) / sy - 0.5] for u, v in spots])
    np.testing.assert_allclose(out.pixels, expected, rtol=1e-6)
    np.testing.assert_array_equal(out.track.pixels, np.array(spots, np.float32))
    assert np.isnan(out.xyz).all()  # no depth, no camera
    assert set(out.timings) == {"preprocess", "inference", "tracking"}


def test_letterboxed_network_window_is_cropped_before_tracking():
    """Keeping the aspect, 160x90 -> 64x36 in a 64x48 input, 6 rows of padding above: a network
    pixel (u, v) of the input is window pixel (u, v - 6)."""
    desc = _desc(keep_aspect=True)
    backend = PlantedDescriptors(desc, [(20, 6 + 9)])
    pipe = DescriptorTrackingPipeline(backend, desc, _refs(1), TrackerConfig(lost_threshold=0.5))
    out = pipe.process(np.zeros((90, 160, 3), np.uint8), "bgr8")
    assert out.features.shape == (D, 36, 64)
    np.testing.assert_allclose(out.pixels, [[20.5 / 0.4 - 0.5, 9.5 / 0.4 - 0.5]], rtol=1e-6)


def test_keypoints_3d_uses_fx_for_x_and_fy_for_y_at_the_nearest_pixel():
    cam = cameras.camera()
    depth = np.full((90, 160), np.nan, np.float32)
    depth[70, 120], depth[10, 3] = 2.5, -1.0
    pixels = np.array([[120.4, 69.6], [3.0, 10.0], [np.nan, np.nan], [500.0, 10.0], [-3.0, 4.0], [5.0, 95.0],
                       [0.0, 0.0]], np.float32)
    xyz = keypoints_3d(pixels, depth, cam)
    np.testing.assert_allclose(xyz[0], [(120.4 - 97.3) / 230 * 2.5, (69.6 - 52.6) / 170 * 2.5, 2.5], rtol=1e-5)
    assert np.isnan(xyz[1:]).all()  # negative depth, lost, outside (right, left, below), no reading
    assert np.isnan(keypoints_3d(pixels, None, cam)).all() and np.isnan(keypoints_3d(pixels, depth, None)).all()
    assert keypoints_3d(pixels, depth, cam).shape == (7, 3)
    with pytest.raises(TrackerInputError, match="depth image is 90x160 but camera_info is 160x90"):
        keypoints_3d(pixels, depth.T.copy(), cam)


def test_pipeline_3d_points_and_bad_models():
    desc = _desc(keep_aspect=False)
    backend = PlantedDescriptors(desc, [(25, 20)])
    pipe = DescriptorTrackingPipeline(backend, desc, _refs(1), TrackerConfig(lost_threshold=0.5))
    assert pipe.config.lost_threshold == 0.5
    u, v = 25.5 / 0.4 - 0.5, 20.5 * 90 / 48 - 0.5
    depth = np.full((90, 160), 3.0, np.float32)
    out = pipe.process(np.zeros((90, 160), np.uint8), "mono8", depth=depth, camera=cameras.camera())
    np.testing.assert_allclose(out.xyz[0], [(u - 97.3) / 230 * 3.0, (v - 52.6) / 170 * 3.0, 3.0], rtol=1e-5)
    with pytest.raises(TrackerInputError, match="model has no output 'desc'"):
        DescriptorTrackingPipeline(PlantedDescriptors(desc, [(1, 1)], name="other"), desc, _refs(1)).process(
            np.zeros((90, 160, 3), np.uint8), "rgb8")
    with pytest.raises(TrackerInputError, match="model output has 4 channels, the reference descriptors 3"):
        DescriptorTrackingPipeline(backend, desc, np.ones((1, 3), np.float32)).process(
            np.zeros((90, 160, 3), np.uint8), "rgb8")
    with pytest.raises(ValueError, match="output kind is metric_depth, not descriptors"):
        DescriptorTrackingPipeline(backend, ModelDescription(height=48, width=64, output_kind="metric_depth",
                                                             source="m.onnx"), _refs(1))


def test_views_at_camera_resolution():
    desc = _desc(keep_aspect=False)
    pipe = DescriptorTrackingPipeline(PlantedDescriptors(desc, [(5, 5)]), desc, _refs(1))
    features = np.random.default_rng(0).normal(size=(D, 48, 64)).astype(np.float32)
    view = pipe.descriptor_image(features, 90, 160)
    assert view.shape == (90, 160, 3) and view.dtype == np.uint8
    assert pipe.descriptor_image(features, 48, 64).shape == (48, 64, 3)
    grey = np.arange(90 * 160, dtype=np.uint8).reshape(90, 160)
    rgb = DescriptorTrackingPipeline.rgb_of(grey, "mono8")
    assert rgb.shape == (90, 160, 3) and (rgb[..., 0] == grey).all() and (rgb[..., 2] == grey).all()
    bgr = np.zeros((90, 160, 3), np.uint8)
    bgr[..., 0] = 255
    assert (DescriptorTrackingPipeline.rgb_of(bgr, "bgr8")[..., 2] == 255).all()
    img = np.zeros((90, 160, 3), np.uint8)
    drawn = draw_keypoints(img, np.array([[40.0, 30.0], [np.nan, np.nan]]), np.array([3, 4]))
    assert drawn[30, 40 - 5:40 + 6].any() and not drawn[:, 100:].any() and not img.any()
    named = draw_keypoints(img, np.array([[40.0, 30.0]]), np.array([3]), names=["a-much-longer-name"])
    assert named[:, 60:].any() and not drawn[:, 60:].any()  # the label is the name, drawn to the right


def test_network_input_buffer_is_reused_between_frames_and_labels_sit_right_of_the_point():
    desc = _desc(keep_aspect=False)
    pipe = DescriptorTrackingPipeline(PlantedDescriptors(desc, [(5, 5)]), desc, _refs(1))
    pipe.process(np.zeros((90, 160, 3), np.uint8), "rgb8")
    first = pipe._input
    pipe.process(np.full((90, 160, 3), 9, np.uint8), "rgb8")
    assert pipe._input is first and np.allclose(first, 9 / 255)
    img = np.zeros((90, 160, 3), np.uint8)
    drawn = draw_keypoints(img, np.array([[120.0, 20.0]]), np.array([3]), names=["abcdef"])
    cols = np.flatnonzero(drawn.any(axis=(0, 2)))
    assert cols.min() >= 113 and cols.max() > 130  # circle around u = 120, then the label to its right
    rows = np.flatnonzero(drawn.any(axis=(1, 2)))
    assert rows.min() >= 5 and rows.max() <= 27  # the label's baseline is at v - radius
