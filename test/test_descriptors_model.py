"""Descriptor network, model file, training samples (flip transforms the indices) and a falling loss."""
import numpy as np
import pytest
import torch

from depth_training.correspondence.dataset import PairDataset, SampleConfig, flip_flat
from depth_training.correspondence.masks import Plane
from depth_training.correspondence.pairs import PairRules
from depth_training.correspondence.scenes import MaskRules, scene_from_arrays
from depth_training.losses.pixel_contrastive import LossWeights
from depth_training.models.descriptor import (
    DescriptorModelError, DescriptorNet, load_descriptor_model, save_descriptor_model)
from depth_training.modes.descriptors import DescriptorModel, descriptor_step, pca_image


@pytest.fixture(autouse=True)
def one_thread():
    """Two threads on two shared cores are many times slower than one (the threads wait for each other)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _scene(seed=0):
    """A textured box on a plane seen from two camera positions (exact geometry, numpy only)."""
    rng = np.random.default_rng(seed)
    h, w = 64, 96
    K = np.array([[80.0, 0, 47.5], [0, 80.0, 31.5], [0, 0, 1]])
    poses, depths, images = [], [], []
    tex = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    for k, x in enumerate((0.0, 0.03, 0.06)):
        T = np.eye(4)
        T[0, 3] = x
        depth = np.full((h, w), 1.0, np.float32)  # the table, 1 m away (table normal = -z)
        u0 = int(30 - 80 * x / 0.9)
        depth[20:44, u0:u0 + 30] = 0.9  # the box, 10 cm above it
        img = np.repeat(np.repeat(tex, 4, 0), 4, 1).copy()
        img = np.roll(img, -int(round(80 * x / 1.0)), axis=1)
        poses.append(T)
        depths.append(depth)
        images.append(img)
    return scene_from_arrays("synthetic", np.stack(images), np.stack(depths), np.stack([K] * 3), np.stack(poses),
                             np.arange(3), MaskRules(plane=Plane(np.array([0, 0, -1.0]), 1.0), workspace_radius=10),
                             PairRules(min_translation_m=0.02, min_rotation_deg=90, min_matches=10))


def test_network_is_fully_convolutional_at_input_resolution():
    net = DescriptorNet("mobile", 5, (8, 8, 16, 16, 32))
    assert net(torch.rand(2, 3, 64, 96)).shape == (2, 5, 64, 96)
    assert net(torch.rand(1, 3, 96, 128)).shape == (1, 5, 96, 128)
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.rand(1, 3, 60, 96))


def test_model_file_round_trip_and_errors(tmp_path):
    net = DescriptorNet("mobile", 4, (8, 8, 16, 16, 32))
    cfg = {"encoder": "mobile", "descriptor_dim": 4, "decoder_channels": [8, 8, 16, 16, 32], "height": 64, "width": 96}
    save_descriptor_model(tmp_path / "m.pt", net, cfg)
    back, c = load_descriptor_model(tmp_path / "m.pt")
    x = torch.rand(1, 3, 64, 96)
    net.eval()
    assert torch.equal(back(x), net(x)) and c["kind"] == "descriptors"
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(DescriptorModelError, match="junk.pt"):
        load_descriptor_model(tmp_path / "junk.pt")
    torch.save({"format": "something"}, tmp_path / "other.pt")
    with pytest.raises(DescriptorModelError, match="other.pt: neither"):
        load_descriptor_model(tmp_path / "other.pt")


def test_flip_transforms_the_indices_with_the_images():
    sc = _scene()
    assert len(sc.pairs) > 0 and sc.masks[0].any() and not sc.masks[0].all()
    plain = PairDataset(sc, 0, SampleConfig(background_p=0, jitter_p=0, flip_p=0, matches=50))
    flipped = PairDataset(sc, 0, SampleConfig(background_p=0, jitter_p=0, flip_p=1, matches=50))
    a, b = plain[(0, 7)], flipped[(0, 7)]
    np.testing.assert_array_equal(b["image_a"], a["image_a"][:, ::-1])
    for img, key in (("image_a", "match_a"), ("image_b", "match_b"), ("image_b", "nonmatch_obj")):
        np.testing.assert_array_equal(b[img].reshape(-1, 3)[b[key]], a[img].reshape(-1, 3)[a[key]])
    np.testing.assert_array_equal(flip_flat(np.array([0, 95, 96]), 96), [95, 0, 191])
    # matches are on the object mask, non-matches keep their distance
    assert sc.masks[sc.pairs[0, 0]].reshape(-1)[a["match_a"]].all()


def test_local_nonmatches_join_the_object_term_near_the_match():
    sc = _scene()
    cfg = SampleConfig(background_p=0, jitter_p=0, flip_p=1, matches=50, nonmatch_object=16, nonmatch_local=8,
                       local_radius=9.0, min_nonmatch_distance=3.0)
    s = PairDataset(sc, 0, cfg)[(0, 5)]
    assert s["nonmatch_obj"].shape == (50, 24) and s["nonmatch_obj_valid"].shape == (50, 24)
    w = sc.shape[1]
    uv = lambda idx: np.stack([idx % w, idx // w], axis=-1).astype(float)  # noqa: E731
    d = np.linalg.norm(uv(s["nonmatch_obj"]) - uv(s["match_b"])[:, None], axis=-1)  # after the flip, both flipped
    local, ok = d[:, 16:], s["nonmatch_obj_valid"][:, 16:]
    assert ok.any() and ((local[ok] >= 3.0) & (local[ok] <= 9.75)).all()
    i, j = sc.pairs[0]
    on_object = sc.masks[j][:, ::-1].reshape(-1)[s["nonmatch_obj"][:, 16:][ok]]  # the flipped mask of B
    assert on_object.all()


def test_background_randomisation_keeps_the_object():
    sc = _scene()
    ds = PairDataset(sc, 0, SampleConfig(background_p=1, jitter_p=0, flip_p=0))
    s = ds[(0, 3)]
    i, j = sc.pairs[0]
    m = sc.masks[i]
    np.testing.assert_array_equal(s["image_a"][m], sc.images[i][m])
    assert (s["image_a"][~m] != sc.images[i][~m]).any()


def test_training_steps_lower_the_loss_on_a_batch():
    torch.manual_seed(0)
    sc = _scene()
    ds = PairDataset(sc, 0, SampleConfig(background_p=0, jitter_p=0, flip_p=0, matches=64))
    batch = torch.utils.data.default_collate([ds[(k % len(ds), k)] for k in range(2)])
    model = DescriptorModel(DescriptorNet("mobile", 3, (8, 8, 16, 16, 32)))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss, logs = descriptor_step(model, batch, LossWeights())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses
    img = pca_image(model(torch.rand(1, 3, 64, 96))[0].detach())
    assert img.shape == (64, 96, 3) and img.dtype == np.uint8


def test_picked_keypoints_are_spread_and_distinctive():
    from depth_training.evaluation.descriptors_cli import pick_keypoints

    h, w = 40, 60
    desc = np.zeros((3, h, w), np.float32)
    mask = np.zeros((h, w), bool)
    mask[5:35, 5:55] = True
    desc[:, 10, 10] = [5.0, 0, 0]  # two pixels unlike any other; everything else identical
    desc[:, 30, 50] = [0, 5.0, 0]
    pix = pick_keypoints(desc, mask, 4, min_separation=6.0)
    assert pix.shape == (4, 2)
    assert {(10.0, 10.0), (50.0, 30.0)} <= {tuple(p) for p in pix[:2].tolist()}
    d = np.linalg.norm(pix[:, None] - pix[None], axis=-1) + np.eye(4) * 1e9
    assert d.min() >= 6.0 and mask[pix[:, 1].astype(int), pix[:, 0].astype(int)].all()


def test_every_export_sidecar_names_the_source_model_sha256(tmp_path):
    import json

    from depth_training.evaluation.export import export_onnx
    from depth_training.models import build_depth_net
    from depth_training.models.artifact import load_depth_model, save_depth_model
    from depth_training.models.descriptor import file_sha256

    cfg = {"encoder": "mobile", "num_scales": 1, "decoder_channels": [8, 8, 16, 16, 32], "height": 64, "width": 64,
           "min_depth": 0.1, "max_depth": 10.0, "output": "metric_depth"}
    save_depth_model(tmp_path / "depth.pt", build_depth_net("mobile", 1, (8, 8, 16, 16, 32)), cfg)
    net, c = load_depth_model(tmp_path / "depth.pt")
    res = export_onnx(net, c, tmp_path / "depth.onnx", source=str(tmp_path / "depth.pt"))
    side = json.loads(res.sidecar_path.read_text())
    assert side["source_model_sha256"] == file_sha256(tmp_path / "depth.pt")
