"""A tiny recorded episode read back with plain rosbags matches the simulator's ground truth."""
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.interfaces import QosDurability

from depth_nodes.image_encodings import decode_image
from depth_training.cli import main as depth_train
from depth_training.sim import bag_writer as topics
from depth_training.sim.groundtruth import GroundTruthError, load_groundtruth
from depth_training.sim.record import RecordingConfig, record_episode, sidecar_paths
from depth_training.sim.transforms import invert_transform, make_transform, quat_wxyz_to_matrix

W, H, FRAMES = 96, 72, 6


def _read(bag: Path) -> dict[str, list]:
    """topic -> [(log_time, msg)] using only rosbags."""
    out: dict[str, list] = {}
    with AnyReader([bag]) as reader:
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
        out["__connections__"] = list(reader.connections)
    return out


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _T(tf) -> np.ndarray:
    r, t = tf.transform.rotation, tf.transform.translation
    return make_transform(quat_wxyz_to_matrix([r.w, r.x, r.y, r.z]), [t.x, t.y, t.z])


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim")
    cfg = RecordingConfig(out=root / "ep", frames=FRAMES, width=W, height=H, seed=3, n_objects=3, distractor=True)
    result = record_episode(cfg)
    return cfg, result, _read(result.bag_dir), load_groundtruth(result.groundtruth_path)


def test_outputs_are_where_the_contract_says(episode):
    cfg, result, _, _ = episode
    urdf, gt = sidecar_paths(cfg.out)
    assert result.bag_dir == cfg.out and (cfg.out / "metadata.yaml").is_file()
    assert result.urdf_path == urdf and urdf.parent == cfg.out.parent and urdf.name == "ep.urdf"
    assert result.groundtruth_path == gt and gt.name == "ep.groundtruth.npz"
    assert not any(p.suffix == ".npz" for p in cfg.out.iterdir())  # ground truth is never inside the bag


def test_topics_types_counts_and_latched_qos(episode):
    _, result, msgs, gt = episode
    conns = {c.topic: c for c in msgs["__connections__"]}
    assert {t: c.msgtype for t, c in conns.items()} == {t: mt for t, (mt, _) in topics.TOPICS.items()}
    for topic in (topics.COLOR_IMAGE, topics.COLOR_INFO, topics.DEPTH_IMAGE, topics.DEPTH_INFO,
                  topics.LEFT_IMAGE, topics.LEFT_INFO, topics.RIGHT_IMAGE, topics.RIGHT_INFO):
        assert len(msgs[topic]) == FRAMES, topic
    assert len(msgs[topics.TF_STATIC]) == 1 and len(msgs[topics.ROBOT_DESCRIPTION]) == 1
    assert len(msgs[topics.JOINT_STATES]) == len(msgs[topics.TF]) == len(gt.joint_stamps_ns) >= 2 * FRAMES
    for topic in (topics.TF_STATIC, topics.ROBOT_DESCRIPTION):
        assert conns[topic].ext.offered_qos_profiles[0].durability == QosDurability.TRANSIENT_LOCAL
    assert conns[topics.TF].ext.offered_qos_profiles[0].durability == QosDurability.VOLATILE
    assert msgs[topics.ROBOT_DESCRIPTION][0][1].data == result.urdf_path.read_text()
    first_log = min(t for topic, lst in msgs.items() if topic != "__connections__" for t, _ in lst)
    assert msgs[topics.TF_STATIC][0][0] == first_log  # static transforms come first


def test_stamps_frames_and_interleaving(episode):
    _, _, msgs, gt = episode
    color = [m for _, m in msgs[topics.COLOR_IMAGE]]
    np.testing.assert_array_equal([_stamp(m) for m in color], gt.stamps_ns)
    for topic in (topics.DEPTH_IMAGE, topics.LEFT_IMAGE, topics.RIGHT_IMAGE, topics.COLOR_INFO):
        np.testing.assert_array_equal([_stamp(m) for _, m in msgs[topic]], gt.stamps_ns)
    js = np.array([_stamp(m) for _, m in msgs[topics.JOINT_STATES]])
    np.testing.assert_array_equal(js, gt.joint_stamps_ns)
    assert not set(js) & set(gt.stamps_ns.tolist())  # readers must interpolate
    assert js[0] < gt.stamps_ns[0] and js[-1] > gt.stamps_ns[-1]
    dt_img, dt_js = np.median(np.diff(gt.stamps_ns)), np.median(np.diff(js))
    assert abs(dt_img - 2 * dt_js) <= 0.1 * dt_js  # joint states at twice the image rate (+- stamp jitter)
    assert all(m.header.frame_id == "camera_color_optical_frame" for _, m in msgs[topics.DEPTH_IMAGE])
    assert msgs[topics.LEFT_IMAGE][0][1].header.frame_id == "stereo_left_optical_frame"
    assert msgs[topics.RIGHT_IMAGE][0][1].header.frame_id == "stereo_right_optical_frame"
    j0 = msgs[topics.JOINT_STATES][0][1]
    assert list(j0.name) == [f"joint{i}" for i in range(1, 7)]
    np.testing.assert_allclose(np.stack([m.position for _, m in msgs[topics.JOINT_STATES]]), gt.joint_state_positions)


def test_depth_image_is_16uc1_millimetres_matching_ground_truth_with_holes(episode):
    _, _, msgs, gt = episode
    holes = 0
    for i, (_, msg) in enumerate(msgs[topics.DEPTH_IMAGE]):
        assert msg.encoding == "16UC1"
        mm = decode_image(msg).astype(np.float64)
        exact = gt.depth_m[i].astype(np.float64) * 1000.0
        valid = mm > 0
        assert valid.mean() > 0.6
        assert np.abs(mm[valid] - exact[valid]).max() <= 1.0
        assert not np.any(valid & ~(exact <= 3000.0))  # nothing beyond the sensor's range
        holes += (~valid & np.isfinite(exact) & (exact < 3000.0)).sum()
    assert holes > 0  # edges and dropout do make holes inside the range


def test_camera_info_matches_ground_truth_and_encodes_the_baseline(episode):
    _, _, msgs, gt = episode
    color = msgs[topics.COLOR_INFO][0][1]
    depth = msgs[topics.DEPTH_INFO][0][1]
    left, right = msgs[topics.LEFT_INFO][0][1], msgs[topics.RIGHT_INFO][0][1]
    np.testing.assert_allclose(color.k.reshape(3, 3), gt.K_color)
    np.testing.assert_allclose(depth.k, color.k)
    assert (color.width, color.height) == (W, H) == (gt.width, gt.height)
    np.testing.assert_allclose(left.k.reshape(3, 3), gt.K_stereo)
    np.testing.assert_allclose(right.k, left.k)
    np.testing.assert_allclose(right.r.reshape(3, 3), np.eye(3))
    P = right.p.reshape(3, 4)
    assert left.p[3] == 0.0
    assert -P[0, 3] / P[0, 0] == pytest.approx(gt.baseline_m)


def _tf_tree(msgs):
    static = {tf.child_frame_id: (tf.header.frame_id, _T(tf)) for tf in msgs[topics.TF_STATIC][0][1].transforms}
    dynamic = {}
    for _, m in msgs[topics.TF]:
        for tf in m.transforms:
            dynamic[(tf.child_frame_id, _stamp(tf))] = (tf.header.frame_id, _T(tf))
    return static, dynamic


def _lookup(static, dynamic, frame, stamp, root="world"):
    T = np.eye(4)
    while frame != root:
        parent, T_pf = static[frame] if frame in static else dynamic[(frame, stamp)]
        T, frame = T_pf @ T, parent
    return T


def test_camera_poses_composed_from_tf_equal_the_simulator(episode):
    _, _, msgs, gt = episode
    static, dynamic = _tf_tree(msgs)
    assert {c for c, _ in dynamic} == {f"link{i}" for i in range(1, 7)}
    for j, stamp in enumerate(gt.joint_stamps_ns):
        T = _lookup(static, dynamic, "camera_color_optical_frame", int(stamp))
        np.testing.assert_allclose(T, gt.T_world_color_optical_at_joint_stamps[j], atol=1e-6)
    np.testing.assert_allclose(_lookup(static, dynamic, "stereo_left_optical_frame", 0), gt.T_world_stereo_left_optical, atol=1e-9)
    np.testing.assert_allclose(_lookup(static, dynamic, "stereo_right_optical_frame", 0), gt.T_world_stereo_right_optical, atol=1e-9)
    np.testing.assert_allclose(_lookup(static, dynamic, "base_link", 0), gt.T_world_base, atol=1e-12)


def test_image_stamp_poses_follow_the_urdf_kinematics(episode):
    """T_world_color_optical at the image stamps (MuJoCo) = world->base (tf_static) @ URDF FK of the
    ground-truth joint positions at those stamps."""
    import io

    import yourdfpy

    _, result, _, gt = episode
    urdf = yourdfpy.URDF.load(io.StringIO(result.urdf_path.read_text()), load_meshes=False,
                              build_collision_scene_graph=False)
    for i in range(gt.num_frames):
        urdf.update_cfg(gt.joint_positions[i])
        T = gt.T_world_base @ urdf.get_transform("camera_color_optical_frame", "base_link")
        np.testing.assert_allclose(T, gt.T_world_color_optical[i], atol=1e-6)


def _bilinear_row_sample(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x0 = np.floor(x).astype(int)
    ok = (x0 >= 0) & (x0 + 1 < img.shape[1])
    x0c = np.clip(x0, 0, img.shape[1] - 2)
    a = (x - x0c)[..., None]
    return (1 - a) * img[y, x0c] + a * img[y, x0c + 1], ok


def test_stereo_right_match_is_at_u_minus_fxB_over_z(episode):
    _, _, msgs, gt = episode
    static, dynamic = _tf_tree(msgs)
    K = gt.K_stereo
    fx, B = K[0, 0], gt.baseline_m
    T_right_left = invert_transform(_lookup(static, dynamic, "stereo_right_optical_frame", 0)) @ \
        _lookup(static, dynamic, "stereo_left_optical_frame", 0)
    for i in (0, FRAMES - 1):
        z = gt.stereo_left_depth_m[i].astype(np.float64)
        v, u = np.mgrid[0:H, 0:W].astype(np.float64)
        pts = np.stack([(u - K[0, 2]) / fx * z, (v - K[1, 2]) / K[1, 1] * z, z], axis=-1)
        pr = pts @ T_right_left[:3, :3].T + T_right_left[:3, 3]
        ur, vr = K[0, 0] * pr[..., 0] / pr[..., 2] + K[0, 2], K[1, 1] * pr[..., 1] / pr[..., 2] + K[1, 2]
        good = np.isfinite(z)
        np.testing.assert_allclose(ur[good], (u - fx * B / z)[good], atol=1e-6)
        np.testing.assert_allclose(vr[good], v[good], atol=1e-6)
        # Photometric check: the right image sampled at u - fx B / z reproduces the left image.
        left = decode_image(msgs[topics.LEFT_IMAGE][i][1]).astype(np.float64)
        right = decode_image(msgs[topics.RIGHT_IMAGE][i][1]).astype(np.float64)
        ys = np.repeat(np.arange(H)[:, None], W, axis=1)

        def err(shift):
            warped, ok = _bilinear_row_sample(right, np.where(good, u - fx * B / z + shift, -1.0), ys)
            return np.median(np.abs(warped - left).mean(axis=-1)[ok & good])

        e_true, e_off, e_zero = err(0.0), err(2.0), err(fx * B / np.nanmedian(z))
        assert e_true < 6.0, e_true
        assert e_true < 0.6 * e_off and e_true < 0.6 * e_zero, (e_true, e_off, e_zero)


def test_object_labels_are_pixels_of_those_objects(episode):
    _, _, _, gt = episode
    K = gt.K_color
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    seen = set()
    for i in range(gt.num_frames):
        ids, z = gt.object_ids[i], gt.depth_m[i].astype(np.float64)
        assert set(np.unique(ids)) <= {0, *gt.object_labels.tolist()}
        pts = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], axis=-1)
        world = pts @ gt.T_world_color_optical[i][:3, :3].T + gt.T_world_color_optical[i][:3, 3]
        for k, label in enumerate(gt.object_labels):
            mask = ids == label
            if not mask.any():
                continue
            seen.add(int(label))
            radius = np.nanmax(gt.object_sizes[k]) * (2.0 if gt.object_shapes[k] == "capsule" else 1.8)
            dist = np.linalg.norm(world[mask] - gt.object_poses[i, k, :3, 3], axis=-1)
            assert np.quantile(dist, 0.99) < radius, (gt.object_names[k], dist.max(), radius)
    assert seen  # at least one object is in view
    # The distractor moves, the static objects do not.
    moving = np.linalg.norm(gt.object_poses[-1, :, :3, 3] - gt.object_poses[0, :, :3, 3], axis=-1) > 1e-4
    np.testing.assert_array_equal(moving, gt.object_is_distractor)


def test_same_seed_reproduces_images_in_sqlite3_storage(episode, tmp_path):
    cfg, _, msgs, _ = episode
    again = record_episode(RecordingConfig(out=tmp_path / "again", frames=FRAMES, width=W, height=H, seed=3, n_objects=3,
                                           distractor=True, storage="sqlite3"))
    assert any(p.suffix == ".db3" for p in again.bag_dir.iterdir())
    msgs2 = _read(again.bag_dir)
    for topic in (topics.COLOR_IMAGE, topics.DEPTH_IMAGE, topics.RIGHT_IMAGE):
        assert len(msgs[topic]) == len(msgs2[topic]) > 0
        for (_, a), (_, b) in zip(msgs[topic], msgs2[topic], strict=True):
            np.testing.assert_array_equal(a.data, b.data)
    other = record_episode(RecordingConfig(out=tmp_path / "other", frames=2, width=W, height=H, seed=4, n_objects=3))
    assert not np.array_equal(_read(other.bag_dir)[topics.COLOR_IMAGE][0][1].data, msgs[topics.COLOR_IMAGE][0][1].data)


def test_cli_refuses_to_overwrite_and_rejects_bad_arguments(episode, capsys):
    cfg, _, _, _ = episode
    assert depth_train(["sim", "--out", str(cfg.out), "--frames", "2", "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert depth_train(["sim", "--out", str(cfg.out.with_name("new")), "--frames", "1", "--quiet"]) == 2
    assert "frames must be >= 2" in capsys.readouterr().err
    assert not cfg.out.with_name("new").exists()


def test_groundtruth_loader_names_file_and_missing_key(episode, tmp_path):
    _, result, _, _ = episode
    with np.load(result.groundtruth_path) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "object_ids"}
    bad = tmp_path / "bad.groundtruth.npz"
    np.savez(bad, **arrays)
    with pytest.raises(GroundTruthError, match=r"bad\.groundtruth\.npz: missing key\(s\) object_ids"):
        load_groundtruth(bad)
    arrays["object_ids"] = np.zeros((1, 2, 2), dtype=np.int16)
    np.savez(bad, **arrays)
    with pytest.raises(GroundTruthError, match="object_ids has shape"):
        load_groundtruth(bad)


def test_interrupted_recording_leaves_nothing_behind(tmp_path):
    def interrupt(done, total):
        if done == 2:
            raise KeyboardInterrupt

    cfg = RecordingConfig(out=tmp_path / "cut", frames=4, width=32, height=24, seed=1, n_objects=1)
    with pytest.raises(KeyboardInterrupt):
        record_episode(cfg, interrupt)
    assert list(tmp_path.iterdir()) == []  # no bag, no sidecars, no temporaries
