"""Augmentation: geometry-consistent horizontal flip, colour jitter, the Augment transform."""
import numpy as np
import pytest

from depth_training.data.augment import (
    Augment, color_jitter, color_jitter_torch, flip_intrinsics, flip_pose, hflip_sample, jitter_transform,
)


def _rot(axis, angle):
    c, s = np.cos(angle), np.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


def _project(K, X):
    x = K @ X
    return x[:2] / x[2]


def test_flip_keeps_projection_geometry_consistent():
    W = 64
    K = np.array([[50.0, 0, 30.3], [0, 52.0, 20.0], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3] = _rot(1, 0.2) @ _rot(0, -0.1) @ _rot(2, 0.05)
    T[:3, 3] = [0.3, -0.1, 0.2]  # frame 2 -> frame 1
    X2 = np.array([0.5, -0.4, 4.0, 1.0])
    u, v = _project(K, (T @ X2)[:3])

    Kf, Tf = flip_intrinsics(K, W), flip_pose(T)
    S = np.diag([-1.0, 1, 1, 1])
    uf, vf = _project(Kf, (Tf @ (S @ X2))[:3])
    assert uf == pytest.approx(W - 1 - u) and vf == pytest.approx(v)
    assert np.linalg.det(Tf[:3, :3]) == pytest.approx(1.0)
    assert np.allclose(flip_pose(Tf), T) and np.allclose(flip_intrinsics(Kf, W), K)


def test_hflip_sample_arrays_and_snippets():
    rng = np.random.default_rng(0)
    sample = {
        "image": rng.integers(0, 255, (3, 4, 5, 3), dtype=np.uint8),  # 3-frame snippet
        "depth": rng.random((4, 5), dtype=np.float32),
        "K": np.array([[10, 0, 1.0], [0, 10, 2.0], [0, 0, 1]], np.float32),
        "pose": np.stack([np.eye(4, dtype=np.float32)] * 3),
        "other": np.arange(3),
    }
    sample["pose"][1, 0, 3] = 0.5
    f = hflip_sample(sample)
    assert np.array_equal(f["image"][:, :, 0], sample["image"][:, :, -1])
    assert np.array_equal(f["depth"][:, 0], sample["depth"][:, -1])
    assert f["K"][0, 2] == pytest.approx(3.0) and f["K"].dtype == np.float32
    assert f["pose"][1, 0, 3] == pytest.approx(-0.5) and f["pose"].dtype == np.float32
    assert f["other"] is sample["other"]
    assert np.array_equal(hflip_sample(f)["image"], sample["image"])
    with pytest.raises(ValueError, match="width"):
        hflip_sample({"K": np.eye(3)})


def test_color_jitter_neutral_grey_and_brightness():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (2, 8, 9, 3), dtype=np.uint8)
    same = color_jitter(img, *jitter_transform(1.0, 1.0, 1.0, 0.0))
    assert np.abs(same.astype(int) - img).max() <= 1
    grey = color_jitter(img, *jitter_transform(1.0, 1.0, 0.0, 0.0))
    assert np.abs(grey[..., 0].astype(int) - grey[..., 2]).max() <= 1
    darker = color_jitter(img, *jitter_transform(0.5, 1.0, 1.0, 0.0))
    assert np.abs(darker.astype(int) - img // 2).max() <= 1
    flat = color_jitter(img, *jitter_transform(1.0, 0.0, 1.0, 0.0))  # contrast 0 -> mean grey
    assert flat[0].std() < 1.0
    hue = color_jitter(img, *jitter_transform(1.0, 1.0, 1.0, 0.25)).astype(np.float64)
    luma = np.array([0.299, 0.587, 0.114])
    inside = (hue > 0).all(-1) & (hue < 255).all(-1)  # luma is kept where nothing clipped
    assert np.abs((hue @ luma - img @ luma)[inside]).max() < 1.5
    assert np.abs(hue - img).mean() > 10


def test_augment_transform():
    rng_img = np.random.default_rng(2)
    sample = {"image": rng_img.integers(0, 256, (3, 4, 6, 3), dtype=np.uint8), "depth": np.ones((4, 6), np.float32),
              "K": np.eye(3, dtype=np.float32)}
    always = Augment(flip_p=1.0, jitter_p=1.0)
    out = always(sample, np.random.default_rng(0))
    assert np.array_equal(out["image"], sample["image"][:, :, ::-1])  # original kept, flipped
    assert out["image_aug"].shape == sample["image"].shape and not np.array_equal(out["image_aug"], out["image"])
    assert out["K"][0, 2] == pytest.approx(5.0)
    never = Augment(flip_p=0.0, jitter_p=0.0, keep_original=False)(sample, np.random.default_rng(0))
    assert np.array_equal(never["image"], sample["image"]) and "image_aug" not in never
    a = Augment()(sample, np.random.default_rng(5))
    b = Augment()(sample, np.random.default_rng(5))
    assert np.array_equal(a["image_aug"], b["image_aug"])
    flips = sum(Augment(jitter_p=0)(sample, np.random.default_rng(s))["K"][0, 2] == 5.0 for s in range(200))
    assert 70 < flips < 130


def test_params_mode_and_torch_jitter_match_numpy():
    import torch

    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, (2, 3, 5, 7, 3), dtype=np.uint8)  # batch of 3-frame snippets
    aug = Augment(flip_p=0.0, jitter_p=1.0, jitter_mode="params")
    samples = [aug({"image": imgs[i]}, np.random.default_rng(i)) for i in range(2)]
    assert "image_aug" not in samples[0] and samples[0]["color_matrix"].shape == (3, 3)
    M = torch.from_numpy(np.stack([s["color_matrix"] for s in samples]))
    c = torch.tensor([float(s["color_contrast"]) for s in samples])
    x = torch.from_numpy(imgs).permute(0, 1, 4, 2, 3).float() / 255.0  # (B, T, 3, H, W)
    out = color_jitter_torch(x, M, c)
    assert out.shape == x.shape
    for i in range(2):
        ref = color_jitter(imgs[i], samples[i]["color_matrix"].astype(np.float64), float(samples[i]["color_contrast"]))
        got = (out[i].permute(0, 2, 3, 1) * 255.0).round().numpy()
        assert np.abs(got - ref).max() <= 1.0
    # not jittered -> identity parameters
    plain = Augment(flip_p=0.0, jitter_p=0.0, jitter_mode="params")({"image": imgs[0]}, np.random.default_rng(0))
    assert np.array_equal(plain["color_matrix"], np.eye(3, dtype=np.float32)) and plain["color_contrast"] == 1.0
    with pytest.raises(ValueError, match="jitter_mode"):
        Augment(jitter_mode="gpu")


def test_flip_hwc_any_dtype_and_layout():
    from depth_training.data.augment import flip_hwc

    a = np.random.default_rng(0).random((2, 3, 4, 5, 3)).astype(np.float32)
    assert np.array_equal(flip_hwc(a), a[..., ::-1, :])
    b = np.random.default_rng(1).integers(0, 255, (4, 10, 3), dtype=np.uint8)[:, ::2]  # not contiguous
    assert np.array_equal(flip_hwc(b), b[..., ::-1, :]) and flip_hwc(b).flags.c_contiguous
