"""The MJCF and the URDF describe the same arm; MuJoCo cameras sit where the optical frames say.

MuJoCo's body and camera poses are checked against an independent FK of the generated URDF
(yourdfpy) for random joint configurations.
"""
import io

import mujoco
import numpy as np
import pytest
import yourdfpy

from depth_training.sim.arm import COLOR_OPTICAL_FRAME, default_arm, forward_kinematics
from depth_training.sim.camera_model import optical_pose_from_mujoco
from depth_training.sim.mjcf import build_model
from depth_training.sim.scene import random_scene
from depth_training.sim.transforms import (
    invert_transform, look_at_optical, matrix_to_quat_wxyz, matrix_to_rpy, quat_wxyz_to_matrix, rpy_to_matrix,
)
from depth_training.sim.urdf import arm_to_urdf


@pytest.fixture(scope="module")
def sim():
    arm = default_arm()
    scene = random_scene(seed=5, n_objects=3, distractor=True)
    model, index, _ = build_model(arm, scene, 64, 48)
    urdf = yourdfpy.URDF.load(io.StringIO(arm_to_urdf(arm)), load_meshes=False, build_collision_scene_graph=False)
    return arm, scene, model, index, urdf


def _mujoco_body_pose(model, data, name):
    b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
    assert b >= 0, name
    T = np.eye(4)
    T[:3, :3] = data.xmat[b].reshape(3, 3)
    T[:3, 3] = data.xpos[b]
    return T


def test_urdf_lists_six_revolute_joints_and_all_frames(sim):
    arm, _, _, _, urdf = sim
    assert urdf.actuated_joint_names == [f"joint{i}" for i in range(1, 7)]
    assert all(urdf.joint_map[j].type == "revolute" for j in urdf.actuated_joint_names)
    assert set(arm.links) == set(urdf.link_map)
    assert urdf.base_link == "base_link"
    assert urdf.joint_map["camera_color_optical_joint"].type == "fixed"


def test_mujoco_body_poses_match_urdf_fk_for_random_configurations(sim):
    arm, scene, model, index, urdf = sim
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    T_base_world = invert_transform(scene.T_world_base)
    for _ in range(20):
        q = rng.uniform(arm.lower, arm.upper)
        data.qpos[index.qpos_adr] = q
        mujoco.mj_kinematics(model, data)
        urdf.update_cfg(q)
        own = forward_kinematics(arm, q)
        for link in arm.links:
            T_urdf = urdf.get_transform(link, "base_link")
            T_mj = T_base_world @ _mujoco_body_pose(model, data, link)
            np.testing.assert_allclose(T_mj, T_urdf, rtol=0, atol=1e-8, err_msg=link)  # MuJoCo: ~1e-9 float noise
            np.testing.assert_allclose(own[link], T_urdf, atol=1e-12, err_msg=link)


def test_mujoco_wrist_camera_is_the_urdf_optical_frame(sim):
    arm, scene, model, index, urdf = sim
    data = mujoco.MjData(model)
    rng = np.random.default_rng(1)
    for _ in range(10):
        q = rng.uniform(arm.lower, arm.upper)
        data.qpos[index.qpos_adr] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_camlight(model, data)
        urdf.update_cfg(q)
        T_cam = optical_pose_from_mujoco(data.cam_xpos[index.wrist_camera], data.cam_xmat[index.wrist_camera])
        T_urdf = scene.T_world_base @ urdf.get_transform(COLOR_OPTICAL_FRAME, "base_link")
        np.testing.assert_allclose(T_cam, T_urdf, rtol=0, atol=1e-8)
        # REP 103: MuJoCo's camera looks along its -z; the optical frame along +z.
        R_mj = data.cam_xmat[index.wrist_camera].reshape(3, 3)
        np.testing.assert_allclose(T_urdf[:3, 2], -R_mj[:, 2], atol=1e-9)
        np.testing.assert_allclose(T_urdf[:3, 1], -R_mj[:, 1], atol=1e-9)


def test_stereo_cameras_are_rectified_pair_with_baseline(sim):
    _, scene, model, index, _ = sim
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    left = optical_pose_from_mujoco(data.cam_xpos[index.stereo_left_camera], data.cam_xmat[index.stereo_left_camera])
    right = optical_pose_from_mujoco(data.cam_xpos[index.stereo_right_camera], data.cam_xmat[index.stereo_right_camera])
    np.testing.assert_allclose(left, scene.stereo.T_world_left, atol=1e-9)
    np.testing.assert_allclose(right, scene.stereo.T_world_right, atol=1e-9)
    T_left_right = invert_transform(left) @ right
    expected = np.eye(4)
    expected[0, 3] = scene.stereo.baseline  # right = +B along the left optical x axis
    np.testing.assert_allclose(T_left_right, expected, atol=1e-9)


def test_rotation_helpers_round_trip():
    rng = np.random.default_rng(2)
    for _ in range(50):
        rpy = rng.uniform([-np.pi, -np.pi / 2 + 0.01, -np.pi], [np.pi, np.pi / 2 - 0.01, np.pi])
        R = rpy_to_matrix(rpy)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(matrix_to_rpy(R), rpy, atol=1e-9)
        np.testing.assert_allclose(quat_wxyz_to_matrix(matrix_to_quat_wxyz(R)), R, atol=1e-12)
    # URDF rpy is fixed-axis x-y-z: yaw 90 deg maps x to y.
    np.testing.assert_allclose(rpy_to_matrix((0, 0, np.pi / 2)) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    # The standard optical joint rpy (-pi/2, 0, -pi/2): optical z = body x, optical x = -body y.
    R = rpy_to_matrix((-np.pi / 2, 0, -np.pi / 2))
    np.testing.assert_allclose(R[:, 2], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(R[:, 0], [0, -1, 0], atol=1e-12)


def test_look_at_optical_points_z_at_target_with_image_up_world_up():
    T = look_at_optical([1.0, 0.0, 1.0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(T[:3, 2], np.array([-1.0, 0.0, -1.0]) / np.sqrt(2), atol=1e-12)
    assert T[2, 1] < 0  # optical y (image down) has a downward world component
    assert abs(T[2, 0]) < 1e-12  # no roll: image x is horizontal
    with pytest.raises(ValueError, match="parallel"):
        look_at_optical([0, 0, 1], [0, 0, 0])


def test_objects_do_not_overlap_and_stay_on_the_table():
    from depth_training.sim.scene import OBJECT_AREA_RADIUS, footprint_radius

    for seed in range(10):
        scene = random_scene(seed, n_objects=5)
        objs = scene.objects
        assert [o.label for o in objs] == [1, 2, 3, 4, 5]
        for a in range(len(objs)):
            pa = objs[a].pose[:2, 3]
            assert np.linalg.norm(pa) <= OBJECT_AREA_RADIUS
            for b in range(a + 1, len(objs)):
                gap = np.linalg.norm(pa - objs[b].pose[:2, 3])
                assert gap > footprint_radius(objs[a].shape, objs[a].size) + footprint_radius(objs[b].shape, objs[b].size)
    counts = {len(random_scene(s).objects) for s in range(30)}
    assert 1 in counts and max(counts) >= 3  # the default mix has single- and multi-object episodes


def test_object_sets_give_the_same_objects_in_new_arrangements():
    from depth_training.sim.scene import OBJECT_SET_SIZE, object_set

    pool = {o.name: o for o in object_set(7)}
    assert len(pool) == OBJECT_SET_SIZE
    seen = set()
    for seed in (401, 402, 403, 451):
        scene = random_scene(seed, n_objects=3, objects_from=7)
        assert [o.label for o in scene.objects] == [1, 2, 3]
        for obj in scene.objects:
            ref = pool[obj.name]  # the set's object: same shape, size and texture pixels
            assert (obj.shape, obj.size, obj.pattern) == (ref.shape, ref.size, ref.pattern)
            assert np.array_equal(obj.texture, ref.texture)
            seen.add(obj.name)
        assert not np.array_equal(scene.table_texture, random_scene(seed + 1, 3, objects_from=7).table_texture)
    assert len(seen) > 3  # episodes choose different subsets
    # the same object lies elsewhere in another episode; another set has other objects
    a, b = random_scene(401, 8, objects_from=7), random_scene(402, 8, objects_from=7)
    pa = {o.name: o.pose[:2, 3] for o in a.objects}
    assert all(not np.allclose(pa[o.name], o.pose[:2, 3]) for o in b.objects)
    assert {o.name for o in object_set(8)}.isdisjoint(pool)
    assert not np.array_equal(object_set(8)[0].texture, object_set(7)[0].texture)
    # without an object set nothing changes: new objects per episode, as before
    assert all(o.name.startswith("object") for o in random_scene(401, 3).objects)
    with pytest.raises(ValueError, match="object set"):
        random_scene(1, 2, objects_from=-1)
