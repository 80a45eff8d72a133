"""Property-based tests (hypothesis) of the formulas that have an inverse or a brute-force reference:
project / back-project, depth <-> disparity, letterbox <-> un-letterbox, resizing K, the SSI
least-squares alignment of a known scale and shift, and the pixel-contrastive loss.

Cameras are drawn with ``fx != fy`` and the principal point anywhere in a non-square image, so a
swapped axis fails. Few examples each (the suite stays fast); ``deadline=None`` for the loaded CI.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from depth_nodes.backends.description import ModelDescription
from depth_nodes.geometry.camera import PinholeCamera
from depth_nodes.geometry.stereo import depth_to_disparity, disparity_to_depth
from depth_nodes.pipelines.depth_io import crop_output, letterbox_geometry, postprocess_depth, preprocess

FAST = settings(max_examples=25, deadline=None, derandomize=True, database=None)


@st.composite
def cameras(draw):
    w, h = draw(st.integers(8, 200)), draw(st.integers(8, 200))
    fx = draw(st.floats(20.0, 800.0))
    fy = draw(st.floats(20.0, 800.0).filter(lambda f: abs(f - fx) > 1.0))
    cx, cy = draw(st.floats(0.0, w - 1.0)), draw(st.floats(0.0, h - 1.0))
    skew = draw(st.sampled_from([0.0, 0.0, 1.5]))
    return PinholeCamera(w, h, np.array([[fx, skew, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]))


@FAST
@given(cam=cameras(), seed=st.integers(0, 2**16))
def test_back_projected_pixels_project_back_to_themselves(cam, seed):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.2, 30.0, cam.shape).astype(np.float32)
    pts = cam.depth_to_points(depth).reshape(-1, 3)
    uv, z = cam.project(pts)
    v, u = np.mgrid[0:cam.height, 0:cam.width]
    np.testing.assert_allclose(uv, np.stack([u.ravel(), v.ravel()], 1), atol=2e-3 * max(cam.width, cam.height))
    np.testing.assert_allclose(z, depth.ravel(), rtol=1e-6)
    # and the other way: a point in front of the camera back-projects from its pixel at its depth
    p = np.array([rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(0.5, 10)])
    (u0, v0), z0 = cam.project(p[None])[0][0], p[2]
    ray = np.linalg.solve(cam.K, [u0, v0, 1.0])
    np.testing.assert_allclose(z0 * ray, p, rtol=1e-9, atol=1e-9)


@FAST
@given(cam=cameras(), w=st.integers(4, 300), h=st.integers(4, 300))
def test_resized_camera_maps_pixel_centres_per_axis(cam, w, h):
    """``u' + 0.5 = s_x (u + 0.5)``, ``v' + 0.5 = s_y (v + 0.5)``, and resizing back restores K."""
    small = cam.resized(w, h)
    sx, sy = w / cam.width, h / cam.height
    p = np.array([[0.3, -0.2, 1.7], [-0.4, 0.5, 4.0]])
    np.testing.assert_allclose(small.project(p)[0], (cam.project(p)[0] + 0.5) * [sx, sy] - 0.5, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(small.resized(cam.width, cam.height).K, cam.K, rtol=1e-9, atol=1e-9)


@FAST
@given(fx=st.floats(10.0, 2000.0), baseline=st.floats(0.01, 1.0), doffs=st.floats(-20.0, 20.0),
       z=st.lists(st.floats(0.05, 100.0), min_size=1, max_size=20))
def test_depth_disparity_round_trip(fx, baseline, doffs, z):
    z = np.asarray(z)
    d = depth_to_disparity(z, fx, baseline, doffs)
    np.testing.assert_allclose(d, fx * baseline / z + doffs, rtol=1e-6)
    # d is float32: d - doffs is known to about one ulp of |d|, so z to eps |d| / |d - doffs|
    tol = 4 * np.finfo(np.float32).eps * np.abs(d) / np.abs(d - doffs) + 1e-6
    assert np.all(np.abs(disparity_to_depth(d, fx, baseline, doffs) - z) <= tol * z)


@st.composite
def letterboxes(draw):
    net_h, net_w = draw(st.integers(1, 8)) * 8, draw(st.integers(1, 8)) * 8
    src_h, src_w = draw(st.integers(4, 120)), draw(st.integers(4, 120))
    keep, dynamic = draw(st.booleans()), draw(st.booleans())
    desc = ModelDescription(height=net_h, width=net_w, output_kind="metric_depth", multiple=8, keep_aspect=keep,
                            dynamic=dynamic)
    return desc, src_h, src_w


@FAST
@given(case=letterboxes())
def test_letterbox_then_crop_gives_back_the_image_window(case):
    """The window preprocess writes is the one crop_output returns; a network that copies its
    input back (un-letterbox) returns the camera image at camera resolution when sizes allow."""
    desc, src_h, src_w = case
    lb = letterbox_geometry(src_h, src_w, desc)
    assert 0 < lb.resized_height <= lb.net_height and 0 < lb.resized_width <= lb.net_width
    assert lb.top == (lb.net_height - lb.resized_height) // 2 and lb.left == (lb.net_width - lb.resized_width) // 2
    if desc.keep_aspect:
        s = min(desc.height / src_h, desc.width / src_w)
        assert abs(lb.resized_height - src_h * s) <= 0.5 + 1e-9 or lb.resized_height == 1
        assert abs(lb.resized_width - src_w * s) <= 0.5 + 1e-9 or lb.resized_width == 1
    else:
        assert (lb.resized_height, lb.resized_width) == (desc.height, desc.width)
    if desc.dynamic:
        assert lb.net_height % 8 == 0 and lb.net_height - lb.resized_height < 8
        assert lb.net_width % 8 == 0 and lb.net_width - lb.resized_width < 8
    img = np.full((src_h, src_w, 3), 200, np.uint8)
    x, lb2 = preprocess(img, "rgb8", desc)
    assert lb2 == lb and x.shape == (1, 3, lb.net_height, lb.net_width)
    window = crop_output(x, lb)
    np.testing.assert_allclose(window, 200 / 255, rtol=1e-6)
    assert x.sum() == pytest.approx(window.sum(), rel=1e-5)  # zero padding outside the window
    depth = postprocess_depth(x[:, :1] * 10.0, lb, desc)  # a constant image comes back constant
    assert depth.shape == (src_h, src_w)
    np.testing.assert_allclose(depth, 2000 / 255, rtol=1e-5)


@FAST
@given(seed=st.integers(0, 2**16), scale=st.floats(0.1, 20.0), shift=st.floats(-5.0, 5.0),
       b=st.integers(1, 3))
def test_ssi_alignment_recovers_a_known_scale_and_shift(seed, scale, shift, b):
    from depth_training.losses import align_scale_shift, compute_scale_shift

    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(b, 1, 6, 9, generator=g, dtype=torch.float64) + 0.1
    target = scale * pred + shift
    mask = torch.rand(b, 1, 6, 9, generator=g) > 0.3
    mask[..., :2, :2] = True  # at least a few valid pixels
    target_bad = torch.where(mask, target, torch.full_like(target, 1e3))  # masked-out pixels are ignored
    s, t = compute_scale_shift(pred, target_bad, mask)
    np.testing.assert_allclose(s.numpy(), scale, rtol=1e-8)
    np.testing.assert_allclose(t.numpy(), shift, rtol=1e-8, atol=1e-8)
    aligned = align_scale_shift(pred, target_bad, mask)
    np.testing.assert_allclose(aligned[mask].numpy(), target[mask].numpy(), rtol=1e-8, atol=1e-8)
    s_neg, _ = compute_scale_shift(-pred, target, mask, positive=True)
    assert (s_neg == 0).all()


def _brute_force_contrastive(desc_a, desc_b, match_a, match_b, nm_obj, nm_obj_valid, nm_bg, nm_bg_valid, margin):
    """The Dense Object Nets loss, one pair at a time in Python."""
    def at(desc, bi, idx):
        w = desc.shape[-1]
        return desc[bi, :, idx // w, idx % w]

    bsz, n = match_a.shape
    sq = [float(((at(desc_a, bi, match_a[bi, i]) - at(desc_b, bi, match_b[bi, i])) ** 2).sum())
          for bi in range(bsz) for i in range(n)]
    out = {"match": sum(sq) / len(sq)}
    for name, idx, valid in (("object", nm_obj, nm_obj_valid), ("background", nm_bg, nm_bg_valid)):
        hs = []
        for bi in range(bsz):
            for i in range(n):
                for j in range(idx.shape[2]):
                    if valid[bi, i, j]:
                        dist = float(np.sqrt(((at(desc_a, bi, match_a[bi, i]) - at(desc_b, bi, idx[bi, i, j])) ** 2)
                                             .sum()))
                        hs.append(max(0.0, margin - dist) ** 2)
        hard = sum(h > 0 for h in hs)
        out[name], out[f"hard_{name}"] = sum(hs) / max(1, hard), hard
    return out


@FAST
@given(seed=st.integers(0, 2**16), margin=st.floats(0.2, 2.0), d=st.integers(1, 4))
def test_pixel_contrastive_loss_matches_a_brute_force_reference(seed, margin, d):
    from depth_training.losses.pixel_contrastive import LossWeights, pixel_contrastive_loss

    rng = np.random.default_rng(seed)
    bsz, h, w, n, k = 2, 5, 7, 4, 3
    desc_a = rng.normal(0, 0.4, (bsz, d, h, w))
    desc_b = rng.normal(0, 0.4, (bsz, d, h, w))
    match_a, match_b = rng.integers(0, h * w, (bsz, n)), rng.integers(0, h * w, (bsz, n))
    nm_obj, nm_bg = rng.integers(0, h * w, (bsz, n, k)), rng.integers(0, h * w, (bsz, n, k))
    obj_valid, bg_valid = rng.random((bsz, n, k)) > 0.3, rng.random((bsz, n, k)) > 0.3
    weights = LossWeights(margin=margin, match=1.5, object=0.5, background=2.0)
    got = pixel_contrastive_loss(*(torch.from_numpy(a) for a in (desc_a, desc_b, match_a, match_b, nm_obj,
                                                                 obj_valid, nm_bg, bg_valid)), weights=weights)
    ref = _brute_force_contrastive(desc_a, desc_b, match_a, match_b, nm_obj, obj_valid, nm_bg, bg_valid, margin)
    for key in ("match", "object", "background"):
        assert got[key].item() == pytest.approx(ref[key], rel=1e-6, abs=1e-9), key
    assert (got["hard_object"].item(), got["hard_background"].item()) == (ref["hard_object"], ref["hard_background"])
    total = 1.5 * ref["match"] + 0.5 * ref["object"] + 2.0 * ref["background"]
    assert got["total"].item() == pytest.approx(total, rel=1e-6, abs=1e-9)
