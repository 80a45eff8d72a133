"""``depth-train sim --variety``: each option changes what it says, the recordings stay consistent and
classic episodes stay exactly what they were before the options existed."""
import hashlib
import json

import numpy as np
import pytest

from depth_training.cli import main as depth_train
from depth_training.sim import bag_writer as topics
from depth_training.sim.arm import COLOR_OPTICAL_FRAME, default_arm, forward_kinematics
from depth_training.sim.groundtruth import load_groundtruth
from depth_training.sim.mjcf import build_model, scene_to_mjcf
from depth_training.sim.scene import FLOOR_Z, footprint_radius, random_scene
from depth_training.sim.trajectory import plan_trajectory
from depth_training.sim.camera_effects import apply_camera_effects
from depth_training.sim.texture_families import FAMILIES, family_texture
from depth_training.sim.variety import VarietyOptions, draw_variety, scale_arm, scale_world
from depth_nodes.image_encodings import decode_image
from test_sim_bag import _lookup, _read, _tf_tree

W, H, FRAMES = 96, 64, 3


def _record(root, name, *options):
    out = root / name
    argv = ["sim", "--out", str(out), "--frames", str(FRAMES), "--width", str(W), "--height", str(H), "--quiet",
            *options]
    assert depth_train(argv) == 0
    gt = load_groundtruth(out.with_name(name + ".groundtruth.npz"))
    info = json.loads(str(np.load(out.with_name(name + ".groundtruth.npz"))["variety_json"]))
    return out, _read(out), gt, info


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    return _record(tmp_path_factory.mktemp("variety"), "room", "--variety", "room", "--seed", "4", "--fov", "80",
                   "--lights", "3", "--textures", "tiles,marble,text")


TABLETOP = ("--variety", "tabletop", "--seed", "9", "--scale", "0.6", "--fov", "50", "--textures", "flat",
            "--image-noise", "0.01", "--blur", "0")


@pytest.fixture(scope="module")
def tabletop(tmp_path_factory):
    return _record(tmp_path_factory.mktemp("variety"), "table", *TABLETOP, "--no-stereo")


def test_classic_episodes_are_unchanged():
    """MJCF text and planned joint positions of classic scenes equal those of the code before --variety
    (values recorded from commit 344bfef); a 100-frame seed-0 bag was also compared byte for byte then."""
    arm = default_arm()
    expected = {
        (0, False): ("e8d7ffa59e573eee2d790adfb49c7feaf93767f9c075c51e03910df9769a82a8",
                     [0.492805, -0.125999, 2.066587, -0.640616, 1.080082, 1.435341]),
        (5, True): ("afb8e9150b13aa0d8db113735ab94adee8fda8078d13d6b43b421e9011468fbf",
                    [-0.332528, -0.257087, 1.93463, 0.287887, 1.132306, -0.803558]),
    }
    for (seed, distractor), (digest, q_last) in expected.items():
        scene = random_scene(seed, None, distractor)
        assert hashlib.sha256(scene_to_mjcf(arm, scene, 96, 64).encode()).hexdigest() == digest
        traj = plan_trajectory(arm, scene, 2.0, seed)
        np.testing.assert_allclose(traj.positions(1.9), q_last, atol=2e-6)


def _on_room_planes(K, T, depth, info):
    """Fraction of the valid pixels whose back-projection ``T (z K^-1 [u, v, 1])`` lies within 2 mm x scale of
    a known plane of the room: table top z = 0, floor, ceiling, the four walls."""
    s, (hx, hy), top = info["scale"], info["room_half"], info["wall_top"]
    v, u = np.nonzero(np.isfinite(depth))
    rays = np.linalg.inv(K) @ np.stack([u, v, np.ones_like(u)]).astype(float)
    p = T[:3, :3] @ (rays * depth[v, u]) + T[:3, 3:4]
    tol = 2e-3 * s
    on = ((np.abs(p[2]) < tol) | (np.abs(p[2] - FLOOR_Z * s) < tol) | (np.abs(p[2] - top) < tol)
          | (np.abs(np.abs(p[0]) - hx) < tol) | (np.abs(np.abs(p[1]) - hy) < tol))
    return float(on.mean())


def test_fov_option_gives_its_K_and_the_depth_agrees_with_it(room):
    """camera_info K has the horizontal FOV asked for; depth back-projected with that K and the camera pose
    puts most pixels exactly on the room's known planes, and does not with fx off by 3 %."""
    _, msgs, gt, info = room
    K = msgs[topics.COLOR_INFO][0][1].k.reshape(3, 3)
    np.testing.assert_allclose(K, gt.K_color)
    assert np.degrees(2 * np.arctan(W / (2 * K[0, 0]))) == pytest.approx(80.0, abs=1e-9)
    assert K[0, 0] == K[1, 1] and (K[0, 2], K[1, 2]) == ((W - 1) / 2, (H - 1) / 2)
    K_bad = K * np.array([[1.03], [1.0], [1.0]])
    for i in range(gt.num_frames):
        good = _on_room_planes(K, gt.T_world_color_optical[i], gt.depth_m[i], info)
        assert good > 0.6, f"frame {i}: only {good:.2f} of the pixels on the room's planes"
        assert _on_room_planes(K_bad, gt.T_world_color_optical[i], gt.depth_m[i], info) < 0.6 * good


def test_room_depth_reaches_metres_and_the_depth_topic_keeps_it(room):
    _, msgs, gt, info = room
    assert info["kind"] == "room" and 1.8 <= info["scale"] <= 3.2
    far = np.nanmax(gt.depth_m)
    assert 4.0 < far < 15.0
    depth = decode_image(msgs[topics.DEPTH_IMAGE][0][1]).astype(float) / 1000.0
    assert depth.max() > 3.5  # beyond the classic sensor's 3 m range
    ok = depth > 0
    np.testing.assert_allclose(depth[ok], gt.depth_m[0][ok], atol=6e-4)


def test_room_options_lights_textures_and_tf_of_the_scaled_arm(room):
    _, msgs, gt, info = room
    assert info["lights"] == 3
    assert {info["floor"], info["wall"], info["table"], *info["objects"]} <= {"tiles", "marble", "text"}
    static, dynamic = _tf_tree(msgs)
    for j, stamp in enumerate(gt.joint_stamps_ns):
        T = _lookup(static, dynamic, COLOR_OPTICAL_FRAME, int(stamp))
        np.testing.assert_allclose(T, gt.T_world_color_optical_at_joint_stamps[j], atol=1e-6)
    # world -> base_link is the classic one times the scale.
    np.testing.assert_allclose(gt.T_world_base[:3, 3], np.array([-0.45, 0.0, 0.0]) * info["scale"], atol=1e-12)


def test_tabletop_scale_flat_textures_and_no_effects(tabletop):
    out, msgs, gt, info = tabletop
    assert info["kind"] == "tabletop" and info["scale"] == pytest.approx(0.6)
    assert info["noise_sigma"] <= 0.01 and info["blur_sigma"] == 0.0 and info["vignette"] == 0.0
    assert {info["floor"], info["wall"], info["table"], *info["objects"]} == {"flat"}
    K = gt.K_color
    assert np.degrees(2 * np.arctan(W / (2 * K[0, 0]))) == pytest.approx(50.0, abs=1e-9)
    # The camera works 0.6x as close as the classic one (0.30-0.48 m from the look target).
    cam = gt.T_world_color_optical[:, :3, 3]
    assert np.all(np.linalg.norm(cam, axis=1) < 0.6 * 0.6)
    assert np.nanmin(gt.depth_m) < 0.35
    # --no-stereo: no stereo topics, NaN stereo ground truth, everything else as usual.
    stereo = set(topics.STEREO_TOPICS)
    assert stereo.isdisjoint(msgs) and {t for t in topics.TOPICS if t not in stereo} <= set(msgs)
    assert np.isnan(gt.stereo_left_depth_m).all() and len(msgs[topics.COLOR_IMAGE]) == FRAMES


def test_scaled_arm_kinematics_are_the_classic_ones_times_s():
    arm, q = default_arm(), np.array([0.3, -0.4, 1.9, 0.2, 0.8, -0.5])
    a, b = forward_kinematics(arm, q)[COLOR_OPTICAL_FRAME], forward_kinematics(scale_arm(arm, 2.5), q)[COLOR_OPTICAL_FRAME]
    np.testing.assert_allclose(b[:3, :3], a[:3, :3], atol=1e-12)
    np.testing.assert_allclose(b[:3, 3], 2.5 * a[:3, 3], atol=1e-12)


def test_variety_is_seeded_and_kinds_differ():
    scene = random_scene(3)
    a, b = draw_variety(3, scene, VarietyOptions("mixed")), draw_variety(3, scene, VarietyOptions("mixed"))
    assert a.summary() == b.summary() and np.array_equal(a.wall.texture, b.wall.texture)
    kinds = {draw_variety(s, scene, VarietyOptions("mixed")).kind for s in range(12)}
    assert kinds == {"tabletop", "room"}
    arm, scene_s, v = scale_world(default_arm(), scene, draw_variety(3, scene, VarietyOptions("room")))
    model, index, xml = build_model(arm, scene_s, 64, 48, v)
    assert xml.count("<light ") == len(v.lights) and 'name="ceiling"' in xml
    assert model.ngeom > 20  # room, furniture parts and clutter on top of the classic cell


def test_cli_rejects_bad_variety_options(tmp_path, capsys):
    base = ["sim", "--out", str(tmp_path / "x"), "--frames", "2", "--quiet"]
    assert depth_train(base + ["--fov", "70"]) == 2
    assert "--fov: only with --variety" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        depth_train(base + ["--variety", "room", "--fov", "10:200"])
    assert exc.value.code == 2 and "--fov" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        depth_train(base + ["--variety", "room", "--textures", "wood,lava"])
    assert exc.value.code == 2 and "lava" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_camera_effects_do_what_their_parameters_say():
    rng = np.random.default_rng(0)
    grey = np.full((120, 160, 3), 100, np.uint8)
    assert np.array_equal(apply_camera_effects(grey, rng), grey)
    assert apply_camera_effects(grey, rng, exposure=2.0).mean() == 200
    assert apply_camera_effects(grey, rng, gamma=2.0).mean() == round(255 * (100 / 255) ** 0.5)
    noisy = apply_camera_effects(grey, rng, noise_sigma=0.02, shot_noise=0.05).astype(float)
    expected = np.sqrt(0.02**2 + 0.05**2 * 100 / 255) * 255
    assert noisy.std() == pytest.approx(expected, rel=0.05) and abs(noisy.mean() - 100) < 0.5
    checker = np.kron((np.indices((15, 20)).sum(0) % 2) * 255, np.ones((8, 8)))[..., None].repeat(3, 2).astype(np.uint8)
    blurred = apply_camera_effects(checker, rng, blur_sigma=2.0).astype(float)
    assert blurred.std() < 0.8 * checker.astype(float).std() and abs(blurred.mean() - checker.mean()) < 2
    vig = apply_camera_effects(np.full((121, 161, 3), 200, np.uint8), rng, vignette=0.3).astype(float)
    assert vig[60, 80, 0] == 200 and vig[0, 0, 0] == round(200 * 0.7) and vig[60, 0, 0] == round(200 * (1 - 0.3 * 0.64))
    speckle = np.random.default_rng(1).integers(60, 200, (120, 160, 3)).astype(np.uint8)
    jpeg = apply_camera_effects(speckle, rng, jpeg_quality=60).astype(float)
    assert 2 < np.abs(jpeg - speckle).mean() < 40 and abs(jpeg.mean() - speckle.mean()) < 2
    with pytest.raises(ValueError, match="exposure=0"):
        apply_camera_effects(grey, rng, exposure=0.0)


@pytest.mark.parametrize("family", FAMILIES)
def test_texture_families_are_seeded_and_distinct(family):
    a = family_texture(np.random.default_rng(1), family, 64)
    assert a.dtype == np.uint8 and a.shape == (64, 64, 3)
    assert np.array_equal(a, family_texture(np.random.default_rng(1), family, 64))
    assert not np.array_equal(a, family_texture(np.random.default_rng(2), family, 64))
    grey = a.astype(float).mean(axis=2)
    if family == "flat":
        assert grey.std() < 3  # textureless
    else:
        assert grey.std() > 4  # something to see
    dark = family_texture(np.random.default_rng(1), family, 64, dark=True)
    assert dark.mean() < 0.75 * max(a.mean(), 60)


def test_unknown_texture_family_is_named():
    with pytest.raises(ValueError, match="'lava'"):
        family_texture(np.random.default_rng(0), "lava")


def test_furnishing_stands_on_the_floor_and_keeps_clear_of_the_arm():
    """Over 10 seeds (planning world): furniture stands on the floor, outside the table grown by 0.3 m; wall
    items sit on the wall planes; table clutter keeps 1 cm from the labelled objects and 0.2 m from the base."""
    for seed in range(10):
        scene = random_scene(seed)
        v = draw_variety(seed, scene, VarietyOptions("mixed"))
        (hx, hy), (tx0, tx1), (ty0, ty1) = v.room_half, v.table_x, v.table_y
        pieces: dict[str, list] = {}
        for b in v.boxes:
            pieces.setdefault(b.group, []).append(b)
        for group, parts in pieces.items():
            lows = [b.pose[2, 3] - b.size[2] for b in parts]
            centres = np.array([b.pose[:3, 3] for b in parts])
            if group.startswith("furniture"):
                assert min(lows) == pytest.approx(FLOOR_Z, abs=1e-9), group
                x, y = centres[:, 0].mean(), centres[:, 1].mean()
                assert not (tx0 - 0.3 < x < tx1 + 0.3 and ty0 - 0.3 < y < ty1 + 0.3), (seed, group)
            elif group.startswith("wall_"):
                (c,) = centres
                assert np.isclose(abs(c[0]), hx) or np.isclose(abs(c[1]), hy), (seed, group)
                assert FLOOR_Z <= c[2] - parts[0].size[2] and c[2] + parts[0].size[2] <= v.wall_top + 1e-9
            elif group.startswith("monitor"):
                assert min(lows) == pytest.approx(0.0, abs=1e-9) and tx0 < centres[0, 0] < tx1
        for obj in (o for o in v.clutter if o.name.startswith("table_clutter")):
            xy, r = obj.pose[:2, 3], footprint_radius(obj.shape, obj.size)
            assert np.linalg.norm(xy - scene.T_world_base[:2, 3]) >= 0.2 + r
            for o in scene.objects:
                assert np.linalg.norm(xy - o.pose[:2, 3]) >= r + footprint_radius(o.shape, o.size) + 0.01
            assert obj in v.obstacles  # the planner keeps the camera clear of it


def test_colour_images_do_not_depend_on_recording_stereo(tabletop, tmp_path):
    _, msgs, _, _ = tabletop
    _, with_stereo, _, _ = _record(tmp_path, "stereo", *TABLETOP)
    assert len(with_stereo[topics.LEFT_IMAGE]) == FRAMES
    for (_, a), (_, b) in zip(msgs[topics.COLOR_IMAGE], with_stereo[topics.COLOR_IMAGE]):
        assert np.array_equal(decode_image(a), decode_image(b))


def test_training_modes_can_read_varied_recordings(room, tabletop):
    """``depth-train info``'s checks: every mode usable on a varied bag; with --no-stereo all but ``stereo``
    (the 3-frame tabletop moves too little for the pose modes, so only the image modes are asked there)."""
    from depth_training.bags import open_bag, summarize_bag

    expected = ({"mono": True, "stereo": True, "supervised": True, "poses-tf": True, "poses-fk": True},
                {"mono": True, "stereo": False, "supervised": True})
    for (out, *_), want in zip((room, tabletop), expected):
        with open_bag(out) as bag:
            summary = summarize_bag(bag)
        assert {m.name: m.usable for m in summary.modes if m.name in want} == want, summary.format_table()


def test_scale_is_a_similarity_of_the_rendered_world():
    """The same variety at scale 1 and at its drawn scale s, arm at the same joint angles: the wrist camera's
    depth is s times larger everywhere (the scene, arm and lights scale about one origin)."""
    import dataclasses

    import mujoco

    from depth_training.sim.render import SceneRenderer

    scene = random_scene(6)
    v = draw_variety(6, scene, VarietyOptions("room"))
    q = np.array([0.3, 0.4, 1.4, 0.0, 1.0, 0.0])
    depths = []
    for s in (1.0, v.scale):
        arm, scene_s, v_s = scale_world(default_arm(), scene, dataclasses.replace(v, scale=s))
        model, index, _ = build_model(arm, scene_s, 64, 48, v_s)
        data = mujoco.MjData(model)
        data.qpos[index.qpos_adr] = q
        mujoco.mj_forward(model, data)
        with SceneRenderer(model, index, 64, 48) as ren:
            depths.append(ren.depth(data, index.wrist_camera))
    ok = np.isfinite(depths[0]) & np.isfinite(depths[1])
    assert ok.mean() > 0.95 and v.scale > 1.7
    np.testing.assert_allclose(depths[1][ok], v.scale * depths[0][ok], rtol=2e-3)
