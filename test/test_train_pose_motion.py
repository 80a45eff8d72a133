"""Issue 12 item 1: recorded poses without camera motion are refused before training, with numbers and frames.

A bag with ``/tf_static`` but no ``/tf`` (or a ``--topics tf=`` typo), and joint states that never
change, give the same camera pose for every frame: ``mono --pose-source tf|fk`` must refuse them
(it used to train on zero motion and write a "metric_depth" model), and ``depth-train info`` must
say the same. ``--fixed-frame`` chooses the frame the poses are expressed in.
"""
import numpy as np
import pytest

from depth_training.bags.reader import open_bag
from depth_training.bags.synthetic import write_synthetic_bag
from depth_training.cli import main as depth_train
from depth_training.kinematics.motion import camera_motion, motion_problem
from train_modes_helpers import FAST


def _copy(src, dst, *, drop=(), freeze_joints=False):
    """A copy of the bag without the topics ``drop``; ``freeze_joints``: every joint state = the first."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    first = None
    with open_bag(src) as bag, Writer(dst, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        store, conns = bag._reader.typestore, {}
        for raw in bag.raw_messages():
            if raw.topic in drop:
                continue
            data = raw.data
            if freeze_joints and raw.topic == "/joint_states":
                msg = bag.deserialize(raw)
                if first is None:
                    first = msg.position.copy()
                msg.position = first.copy()
                data = store.serialize_cdr(msg, raw.msgtype)
            if raw.topic not in conns:
                conns[raw.topic] = w.add_connection(raw.topic, raw.msgtype, typestore=store)
            w.write(conns[raw.topic], raw.log_ns, data)
    return dst


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    path = tmp_path_factory.mktemp("motion") / "moving"
    write_synthetic_bag(path, "mcap", frames=8, with_stereo=False)
    return path


def _mono(bag, out, *options):
    return depth_train(["mono", "--dataset", str(bag), "--out", str(out), *FAST, "--steps", "1", "--val-every", "0",
                        "--ckpt-every", "0", *options])


def test_motion_formulas():
    T = np.tile(np.eye(4), (3, 1, 1))
    assert motion_problem(camera_motion(T), "cam", "world", "tf") is not None
    T[1, :3, 3] = [0.03, 0.04, 0.0]  # 5 cm away
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    T[2, :3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    m = camera_motion(T)
    assert m.max_translation_m == pytest.approx(0.05) and m.path_length_m == pytest.approx(0.10)
    assert m.max_rotation_deg == pytest.approx(30.0)
    assert motion_problem(m, "cam", "world", "tf") is None


def test_tf_static_only_is_refused_with_numbers_and_frames(moving, tmp_path, capsys):
    bag = _copy(moving, tmp_path / "static", drop=("/tf",))
    assert _mono(bag, tmp_path / "run", "--pose-source", "tf") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bag) in err
    assert "camera frame 'camera_color_optical_frame' does not move in 'link2'" in err  # the static tree's root
    assert "at most 0.0000 m from the first pose" in err and "--topics tf=" in err
    assert not (tmp_path / "run" / "model.pt").exists()
    # a typo in the TF topic name: the same refusal (the static tree alone is still there)
    assert _mono(moving, tmp_path / "run2", "--pose-source", "tf", "--topics", "tf=/tf_typo") == 2
    assert "does not move in 'link2'" in capsys.readouterr().err
    # info says it too, and its last line counts the problem
    assert depth_train(["info", str(bag)]) == 0
    out = capsys.readouterr().out
    assert "poses-tf               NOT usable" in out and "does not move in 'link2'" in out
    assert out.splitlines()[-1].startswith("result: not usable: stereo, poses-tf (see") and "none found" not in out


def test_frozen_joint_states_are_refused_for_fk(moving, tmp_path, capsys):
    bag = _copy(moving, tmp_path / "frozen", freeze_joints=True)
    assert _mono(bag, tmp_path / "run", "--pose-source", "fk") == 2
    err = capsys.readouterr().err
    assert "--pose-source fk: camera frame 'camera_color_optical_frame' does not move in 'base_link'" in err
    assert "joint states change" in err


def test_fixed_frame_moving_with_the_camera_is_refused_and_a_good_one_trains(moving, tmp_path, capsys):
    assert _mono(moving, tmp_path / "run", "--pose-source", "tf", "--fixed-frame", "link2") == 2
    err = capsys.readouterr().err
    assert "does not move in 'link2'" in err and "--fixed-frame link2 seems to move with the camera" in err
    assert _mono(moving, tmp_path / "run2", "--pose-source", "tf", "--fixed-frame", "nowhere") == 2
    assert "--fixed-frame nowhere: not in the TF tree" in capsys.readouterr().err
    assert _mono(moving, tmp_path / "run3", "--fixed-frame", "base_link") == 2
    assert "--fixed-frame is only used with --pose-source tf or fk" in capsys.readouterr().err
    assert _mono(moving, tmp_path / "ok", "--pose-source", "tf", "--fixed-frame", "base_link",
                 "--val-fraction", "0", "--frame-stride", "1") == 0
    assert (tmp_path / "ok" / "model.pt").is_file()
