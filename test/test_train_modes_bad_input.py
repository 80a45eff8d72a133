"""Bad recordings and arguments get one clear line naming the file, topic and problem (exit 2),
before any training; with ``--skip-bad-frames`` bad frames are dropped with a warning instead."""
import logging
import warnings

import pytest

from depth_training.bags import BagDecodeError, BagWarning, StreamSpec, open_bag
from depth_training.cli import main as depth_train
from depth_training.modes.bag_frames import FrameLayout, frames_from_bag
from train_modes_helpers import FAST, sim_bags, write_tiny_bag


@pytest.fixture(scope="module")
def sim_bag(tmp_path_factory):
    return sim_bags(tmp_path_factory)[0]


def _fails(capsys, argv) -> str:
    rc = depth_train(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return err


def test_missing_topic_is_named_before_anything_is_done(sim_bag, tmp_path, capsys):
    out = tmp_path / "run"
    err = _fails(capsys, ["mono", "--dataset", str(sim_bag), "--out", str(out), "--topics", "color=/cam/missing",
                          *FAST])
    assert str(sim_bag) in err and "/cam/missing" in err and "not in the bag" in err
    assert "/camera/color/image_raw" in err  # the hint lists the image topics that do exist
    assert not out.exists()


def test_every_bag_is_checked_before_the_first_is_decoded(sim_bag, tmp_path, capsys):
    nodepth = write_tiny_bag(tmp_path / "nodepth", frames=4, depth=False)
    out = tmp_path / "run"
    err = _fails(capsys, ["supervised", "--dataset", str(sim_bag), "--dataset", str(nodepth), "--out", str(out), *FAST])
    assert str(nodepth) in err and "/camera/depth/image_rect_raw" in err
    assert not out.exists()  # the good first bag was not decoded either


def test_pose_sources_need_their_topics(tmp_path, capsys):
    bag = write_tiny_bag(tmp_path / "tiny", frames=4)
    err = _fails(capsys, ["mono", "--dataset", str(bag), "--out", str(tmp_path / "a"), "--pose-source", "tf", *FAST])
    assert str(bag) in err and "/tf" in err
    err = _fails(capsys, ["mono", "--dataset", str(bag), "--out", str(tmp_path / "b"), "--pose-source", "fk", *FAST])
    assert str(bag) in err and "/joint_states" in err


def test_stereo_pair_of_two_sizes_is_refused(tmp_path, capsys):
    bag = write_tiny_bag(tmp_path / "pair", frames=4, stereo=True, right_height=48)
    err = _fails(capsys, ["stereo", "--dataset", str(bag), "--out", str(tmp_path / "run"), *FAST])
    assert str(bag) in err and "/stereo/right/camera_info" in err and "64x48" in err and "64x64" in err


def test_left_right_size_mismatch_in_a_frame_names_topic_and_time(tmp_path):
    bag = write_tiny_bag(tmp_path / "pair", frames=4, stereo=True, right_height=48)
    layout = FrameLayout((StreamSpec("left", "/stereo/left/image_rect", "color", "/stereo/left/camera_info"),
                          StreamSpec("right", "/stereo/right/image_rect", "color")), camera_role="left")
    with open_bag(bag) as b, pytest.raises(BagDecodeError) as exc:
        list(frames_from_bag(b, layout, width=64, height=64))
    text = str(exc.value)
    assert str(bag) in text and "/stereo/right/image_rect" in text and "1700000000.000000000" in text
    assert "64x48" in text and "64x64" in text


def test_image_size_change_in_a_stream_stops_the_run_before_training(tmp_path, capsys):
    bag = write_tiny_bag(tmp_path / "resized", frames=12, resize_from=7)
    out = tmp_path / "run"
    err = _fails(capsys, ["mono", "--dataset", str(bag), "--out", str(out), "--steps", "2", *FAST])
    assert str(bag) in err and "/camera/color/image_raw" in err and "1700000000.700000000" in err
    assert "64x48" in err and "64x64" in err
    assert not (out / "checkpoints").exists() and not (out / "model.pt").exists()


def test_skip_bad_frames_drops_them_with_a_warning_and_trains(tmp_path, caplog):
    bag = write_tiny_bag(tmp_path / "resized", frames=12, resize_from=7)
    out = tmp_path / "run"
    caplog.set_level(logging.INFO, logger="depth_training")
    with warnings.catch_warnings():
        warnings.simplefilter("error", BagWarning)  # bag warnings must reach the log, not the console
        assert depth_train(["mono", "--dataset", str(bag), "--out", str(out), "--skip-bad-frames", *FAST,
                            "--steps", "2", "--val-fraction", "0", "--batch-size", "2"]) == 0
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("/camera/color/image_raw" in m and "64x48" in m and "skipped" in m for m in logged), logged
    assert any("7 frames, training on all of them" in r.getMessage() for r in caplog.records)
    assert (out / "model.pt").is_file()


@pytest.mark.parametrize("argv, words", [
    (["--height", "100"], ["--height 100", "multiple of 32"]),
    (["--min-depth", "5", "--max-depth", "1"], ["--min-depth", "0 < min < max"]),
    (["--topics", "colour=/x"], ["--topics", "colour", "valid roles"]),
    (["--dataset", "a.bag:heavy"], None),
    (["--val-bag", "/no/such/bag"], ["/no/such/bag", "--val-bag"]),
])
def test_bad_arguments(sim_bag, tmp_path, capsys, argv, words):
    full = ["supervised", "--dataset", str(sim_bag), "--out", str(tmp_path / "run"), *FAST, *argv]
    if words is None:  # argparse's own error (usage + message): still exit 2, naming the argument
        with pytest.raises(SystemExit) as exc:
            depth_train(full)
        assert exc.value.code == 2 and "weight 'heavy' is not a number" in capsys.readouterr().err
        return
    err = _fails(capsys, full)
    assert all(w in err for w in words), err


def test_an_out_dir_of_another_run_is_not_resumed(sim_bag, tmp_path, capsys):
    out = tmp_path / "run"
    assert depth_train(["supervised", "--dataset", str(sim_bag), "--out", str(out), *FAST, "--steps", "1",
                        "--val-fraction", "0"]) == 0
    err = _fails(capsys, ["supervised", "--dataset", str(sim_bag), "--out", str(out), *FAST, "--steps", "1",
                          "--val-fraction", "0", "--loss", "silog"])
    assert str(out) in err and "relative_disparity" in err and "metric_depth" in err
