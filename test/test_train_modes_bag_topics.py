"""Issue 20 item 10: ``--topics`` applied to every ``--dataset``, so recordings with different topic
names could not be mixed. ``--bag-topics PATH ROLE=TOPIC ...`` names one recording's topics."""
import logging

from depth_training.cli import main as depth_train
from train_modes_helpers import FAST, write_tiny_bag

CAM2 = ["color=/cam2/color/image_raw", "color_info=/cam2/color/camera_info", "depth=/cam2/depth/image_rect_raw"]


def test_recordings_with_different_topic_names_train_together(tmp_path, caplog, capsys):
    a = write_tiny_bag(tmp_path / "a", seed=1)
    b = write_tiny_bag(tmp_path / "b", seed=2, camera="/cam2")
    base = ["supervised", "--loss", "silog", "--dataset", str(a), "--dataset", str(b), "--steps", "2",
            "--val-fraction", "0", "--val-every", "0", "--ckpt-every", "0", *FAST]
    # one --topics for both: the second recording has no /camera/color/image_raw
    assert depth_train(base + ["--out", str(tmp_path / "one")]) == 2
    assert "b: /camera/color/image_raw (color): topic not in the bag" in capsys.readouterr().err
    caplog.set_level(logging.INFO, logger="depth_training")
    assert depth_train(base + ["--out", str(tmp_path / "mixed"), "--bag-topics", str(b), *CAM2]) == 0
    mix = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("training mix:"))
    assert "a " in mix and "b " in mix and mix.count("samples") == 2, mix
    assert (tmp_path / "mixed" / "model.pt").is_file()


def test_bag_topics_must_name_a_recording_of_the_run_and_a_role(tmp_path, capsys):
    a = write_tiny_bag(tmp_path / "a", seed=1, frames=6)
    base = ["supervised", "--dataset", str(a), "--out", str(tmp_path / "o"), "--steps", "1", *FAST]
    assert depth_train(base + ["--bag-topics", str(tmp_path / "other"), "color=/x"]) == 2
    assert "--bag-topics " + str(tmp_path / "other") + ": not a --dataset or --val-bag of this run" in capsys.readouterr().err
    assert depth_train(base + ["--bag-topics", str(a), "colour=/x"]) == 2
    assert "unknown topic role(s) colour" in capsys.readouterr().err
    assert depth_train(base + ["--bag-topics", str(a)]) == 2
    assert "expected ROLE=TOPIC after the path" in capsys.readouterr().err
