"""``depth-train mono`` on a simulated wrist-camera recording: Monodepth2 with recorded poses learns
metric depth, with the pose network the validation loss falls; TF and URDF+joint-state poses agree
with each other and with the simulator, and the cached frames obey the warp's conventions."""
import numpy as np
import pytest
import torch

from depth_training.cli import build_parser
from depth_training.cli import main as depth_train
from depth_training.data.augment import flip_intrinsics, flip_pose, hflip_sample
from depth_training.engine.checkpoint import CheckpointManager
from depth_training.geometry_torch import warp
from depth_training.losses import photometric_error
from depth_training.models.artifact import load_depth_model
from depth_training.modes.cli import check_args
from depth_training.modes.mono import invert_rigid, mono_setup, relative_transforms
from depth_training.modes.recordings import DecodeOptions
from depth_training.sim.groundtruth import load_groundtruth
from train_modes_helpers import FAST, SIM_H, SIM_W, first_and_last, history, sim_bags, write_tiny_bag


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    return sim_bags(tmp_path_factory)[0]


def _rows(bag, *options):
    args = build_parser().parse_args(["mono", "--dataset", str(bag), "--out", "unused", *FAST, *options])
    check_args(args)
    recording = mono_setup(args).plan(bag)
    return list(recording.rows(DecodeOptions(args.width, args.height)))


def test_recorded_poses_learn_metric_depth(bag, tmp_path):
    out = tmp_path / "tf"
    assert depth_train(["mono", "--dataset", str(bag), "--out", str(out), "--pose-source", "tf", "--steps", "40",
                        "--val-every", "40", "--ckpt-every", "40", *FAST]) == 0
    before, after = first_and_last(out)
    assert before["depth_images"] == 6  # 8 held-out frames, 6 with both neighbours
    # no alignment: the untrained network says ~0.2 m for a table 0.2-0.6 m away
    assert before["abs_rel"] > 0.3
    assert after["abs_rel"] < 0.5 * before["abs_rel"], (before, after)
    assert after["loss"] < 0.7 * before["loss"], (before, after)
    net, cfg = load_depth_model(out / "model.pt")
    assert cfg["output"] == "metric_depth" and cfg["pose_source"] == "tf" and cfg["num_scales"] == 4
    assert not any(k.startswith("pose") for k in net.state_dict())


def test_pose_network_lowers_the_validation_loss(bag, tmp_path):
    out = tmp_path / "net"
    assert depth_train(["mono", "--dataset", str(bag), "--out", str(out), "--steps", "24", "--val-every", "24",
                        "--ckpt-every", "24", *FAST]) == 0
    before, after = first_and_last(out)
    # the untrained pose network barely moves (0.01 x its output), so the untrained loss is about the
    # identity (no motion) error; learning the motion must take a clear share of it away
    assert after["loss"] < 0.85 * before["loss"], (before, after)
    assert np.isfinite(after["abs_rel"])
    _, cfg = load_depth_model(out / "model.pt")
    assert cfg["output"] == "relative_depth" and cfg["pose_source"] == "net"
    state = CheckpointManager(out / "checkpoints").load_latest()
    assert any(k.startswith("pose.") for k in state["model"]) and any(k.startswith("depth.") for k in state["model"])
    assert state["config"]["model"]["output"] == "relative_depth"


def test_recordings_with_and_without_depth_mix(bag, tmp_path, caplog):
    """Depth is optional for mono (validation only): a 64x64 recording without it mixes with the
    96x64 simulator recording (both resized to the training size, each with its own K)."""
    import logging

    plain = write_tiny_bag(tmp_path / "plain", frames=12, depth=False)
    out = tmp_path / "mix"
    caplog.set_level(logging.INFO, logger="depth_training")
    assert depth_train(["mono", "--dataset", f"{bag}:2", "--dataset", f"{plain}:1", "--out", str(out), *FAST,
                        "--steps", "3", "--ckpt-every", "0"]) == 0
    assert "training mix: a 67% (30 samples), plain 33% (7 samples)" in caplog.text
    assert "frames held out from this recording are validated without depth metrics" in caplog.text
    assert [h["depth_images"] for h in history(out)] == [6, 6]  # only the simulator's tail has depth


def test_tf_and_forward_kinematics_poses_agree_with_the_simulator(bag):
    gt = load_groundtruth(bag.with_name(bag.name + ".groundtruth.npz"))
    tf = np.stack([r["pose"] for r in _rows(bag, "--pose-source", "tf")])
    fk = np.stack([r["pose"] for r in _rows(bag, "--pose-source", "fk")])
    assert tf.shape == fk.shape == (len(gt.stamps_ns), 4, 4)
    truth = torch.from_numpy(gt.T_world_color_optical)[:, None]
    for poses in (tf, fk):
        p = torch.from_numpy(poses)[:, None]
        # camera motion between neighbours (what the loss uses), independent of the fixed frame
        rel = torch.stack([relative_transforms(torch.cat([p[i], p[i + 1]])[None], 0)[0][0] for i in range(len(p) - 1)])
        ref = torch.stack([relative_transforms(torch.cat([truth[i], truth[i + 1]])[None], 0)[0][0]
                           for i in range(len(p) - 1)])
        assert ref[:, :3, 3].norm(dim=-1).max() > 0.02  # the camera really moves, by up to centimetres a frame
        assert (rel[:, :3, 3] - ref[:, :3, 3]).norm(dim=-1).max() < 1e-3  # < 1 mm
        # < 0.2 degrees (joint states are interpolated between their 20 Hz samples)
        assert (rel[:, :3, :3] - ref[:, :3, :3]).abs().max() < 3.5e-3


def test_cached_frames_warp_onto_each_other_with_the_recorded_depth(bag):
    """Depth (REP 118 metres), K scaled to 96x64, and T_{t->s} from TF: warping frame t+1 into t
    with the bag's own depth reproduces frame t far better than not warping at all."""
    rows = _rows(bag, "--pose-source", "tf")
    assert rows[0]["image"].shape == (SIM_H, SIM_W, 3) and rows[0]["depth"].shape == (SIM_H, SIM_W)
    image = torch.from_numpy(np.stack([r["image"] for r in rows])).permute(0, 3, 1, 2).float() / 255
    depth = torch.from_numpy(np.stack([r["depth"] for r in rows]))[:, None]
    poses = torch.from_numpy(np.stack([r["pose"] for r in rows]))
    K = torch.from_numpy(rows[0]["K"])
    ratios = []
    for t in range(10, 30):
        T = relative_transforms(poses[[t, t + 1]][None], 0)[0].float()
        valid_depth = torch.isfinite(depth[t:t + 1])
        warped, ok = warp(image[t + 1:t + 2], torch.nan_to_num(depth[t:t + 1], nan=1.0), T, K)
        m = valid_depth & ok
        e_warp = photometric_error(warped, image[t:t + 1])[m].mean()
        e_id = photometric_error(image[t + 1:t + 2], image[t:t + 1])[m].mean()
        ratios.append(float(e_warp / e_id))
    assert np.median(ratios) < 0.5, ratios


def test_relative_transforms_and_flip_are_consistent():
    rng = np.random.default_rng(0)

    def random_pose():
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        T = np.eye(4)
        T[:3, :3] = q * np.sign(np.linalg.det(q))
        T[:3, 3] = rng.normal(size=3)
        return T

    poses = np.stack([[random_pose() for _ in range(3)] for _ in range(2)])  # (B=2, F=3, 4, 4)
    rel = relative_transforms(torch.from_numpy(poses), centre=1)
    for b in range(2):
        np.testing.assert_allclose(rel[0][b].numpy(), np.linalg.inv(poses[b, 0]) @ poses[b, 1], atol=1e-12)
        np.testing.assert_allclose(rel[1][b].numpy(), np.linalg.inv(poses[b, 2]) @ poses[b, 1], atol=1e-12)
    np.testing.assert_allclose(invert_rigid(torch.from_numpy(poses)).numpy(), np.linalg.inv(poses), atol=1e-12)
    # a flipped snippet (augmentation) moves by the mirrored relative motion S T S
    flipped = hflip_sample({"pose": poses[0], "K": np.eye(3), "image": np.zeros((3, 4, 6, 3), np.uint8)})
    rel_f = relative_transforms(torch.from_numpy(flipped["pose"])[None], centre=1)
    np.testing.assert_allclose(rel_f[0][0].numpy(), flip_pose(rel[0][0].numpy()), atol=1e-12)
    np.testing.assert_allclose(flipped["K"], flip_intrinsics(np.eye(3), 6))
