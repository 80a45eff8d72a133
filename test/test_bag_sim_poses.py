"""Integration: a tiny `depth-train sim` recording read back; poses and depth against the sidecar."""
import numpy as np
import pytest

from depth_training.bags import StreamSpec, SyncedSamples, open_bag
from depth_training.bags.summary import summarize_bag
from depth_training.cli import main
from depth_training.kinematics import pose_error
from depth_training.kinematics.camera_poses import (
    FkPoseSource,
    TfPoseSource,
    camera_poses,
    load_joint_states,
    load_tf_buffer,
    load_urdf,
)

pytest.importorskip("mujoco")
from depth_training.sim.groundtruth import load_groundtruth  # noqa: E402

MAX_T_M, MAX_R_DEG = 1e-3, 0.1


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "episode"
    rc = main(["sim", "--out", str(out), "--frames", "10", "--width", "64", "--height", "48", "--quiet"])
    assert rc == 0
    return out, load_groundtruth(out.with_name("episode.groundtruth.npz")), out.with_name("episode.urdf")


def errors(poses, truth):
    return np.array([pose_error(a, b) for a, b in zip(poses, truth)])


def test_summary_says_every_mode_is_usable(sim):
    bag_dir, _, _ = sim
    with open_bag(bag_dir) as bag:
        summary = summarize_bag(bag)
    assert {m.name: m.usable for m in summary.modes} == {
        "mono": True, "stereo": True, "supervised": True, "poses-tf": True, "poses-fk": True}, summary.format_table()
    assert summary.issues == []


def test_tf_and_fk_camera_poses_match_the_simulator(sim):
    bag_dir, gt, urdf_file = sim
    truth = gt.T_world_color_optical
    # the camera really moves between frames by more than the tolerance, so a stale pose would fail
    steps = errors(truth[1:], truth[:-1])
    assert steps[:, 0].max() > 10 * MAX_T_M or steps[:, 1].max() > 10 * MAX_R_DEG
    with open_bag(bag_dir) as bag:
        tf, joints = load_tf_buffer(bag), load_joint_states(bag)
        sources = {
            "tf": TfPoseSource(tf, "world"),
            "fk-bag-urdf": FkPoseSource(load_urdf(bag), joints, fixed_frame="world", tf=tf),
            "fk-file-urdf": FkPoseSource(load_urdf(bag, urdf_file), joints, fixed_frame="world", tf=tf),
        }
        for name, source in sources.items():
            poses = camera_poses(bag, "/camera/color/image_raw", source)
            np.testing.assert_array_equal(poses.stamps_ns, gt.stamps_ns)
            err = errors(poses.T_fixed_camera, truth)
            assert err[:, 0].max() < MAX_T_M, (name, err[:, 0].max())
            assert err[:, 1].max() < MAX_R_DEG, (name, err[:, 1].max())
        # FK alone gives the pose in the URDF root (base_link)
        fk_base = camera_poses(bag, "/camera/color/image_raw", FkPoseSource(load_urdf(bag), joints))
        assert fk_base.fixed_frame == "base_link"
        err = errors(fk_base.T_fixed_camera, np.linalg.inv(gt.T_world_base) @ truth)
        assert err[:, 0].max() < MAX_T_M and err[:, 1].max() < MAX_R_DEG


def test_decoded_depth_matches_ground_truth(sim):
    bag_dir, gt, _ = sim
    with open_bag(bag_dir) as bag:
        samples = list(SyncedSamples(bag, [
            StreamSpec("color", "/camera/color/image_raw", "color", "/camera/color/camera_info"),
            StreamSpec("depth", "/camera/depth/image_rect_raw", "depth", "/camera/depth/camera_info")]))
    assert len(samples) == len(gt.stamps_ns)
    depth = np.stack([s["depth"].image for s in samples])
    valid = np.isfinite(depth)
    assert valid.mean() > 0.5  # holes exist but most pixels have a reading
    # 16UC1 millimetres: rounding is at most 0.5 mm
    assert np.nanmax(np.abs(depth - gt.depth_m)[valid & np.isfinite(gt.depth_m)]) <= 0.0005 + 1e-6
    np.testing.assert_allclose(samples[0]["color"].camera.K, gt.K_color, atol=1e-9)
