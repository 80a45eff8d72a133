"""The bag summary (`depth-train info`): counts, rates, training-mode usability and reasons."""
import json

import numpy as np
import pytest

from depth_nodes.geometry.camera import PinholeCamera
from depth_training.bags import BagWriter, open_bag
from depth_training.bags.summary import TopicConfig, summarize_bag
from depth_training.bags.synthetic import SYNTHETIC_URDF, write_synthetic_bag
from depth_training.cli import main
from depth_training.kinematics.transforms import make_transform

MS = 1_000_000


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    path = tmp_path_factory.mktemp("summary") / "full"
    write_synthetic_bag(path, "mcap", frames=10)
    return path


def summary_of(path, **kw):
    with open_bag(path) as bag:
        return summarize_bag(bag, **kw)


def test_full_bag_counts_rates_and_modes(full):
    s = summary_of(full)
    topics = {t.name: t for t in s.topics}
    assert topics["/camera/color/image_raw"].count == 10 and topics["/camera/color/image_raw"].read == 10
    assert topics["/camera/color/image_raw"].rate_hz == pytest.approx(30.0, rel=1e-3)
    assert topics["/joint_states"].rate_hz == pytest.approx(60.0, rel=1e-3)
    assert topics["/camera/color/image_raw"].out_of_order == 0
    assert topics["/camera/color/image_raw"].detail == "32x24 rgb8, frame camera_color_optical_frame"
    assert "baseline=0.0600 m" in topics["/stereo/right/camera_info"].detail
    assert {m.name: m.usable for m in s.modes} == {
        "mono": True, "stereo": True, "supervised": True, "poses-tf": True, "poses-fk": True}
    assert s.mode("poses-tf").uses["fixed_frame"] == "world"
    assert s.mode("poses-fk").uses["fixed_frame"] == "base_link"
    assert s.issues == []
    assert s.duration_s == pytest.approx(9 / 30 + 0.05 + 0.004 + 1 / 60, abs=0.02)


def test_cli_table_and_json(full, capsys):
    assert main(["info", str(full)]) == 0
    out = capsys.readouterr().out
    assert "training modes:" in out and "/camera/color/image_raw" in out and "NOT usable" not in out
    assert main(["info", str(full), "--json", "--no-scan"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scanned"] is False
    assert all(m["usable"] for m in data["modes"])
    assert {t["name"] for t in data["topics"]} >= {"/tf", "/tf_static", "/joint_states"}


def test_cli_errors_exit_2_naming_the_problem(tmp_path, full, capsys):
    assert main(["info", str(tmp_path / "nope.mcap")]) == 2
    assert "nope.mcap: no such file" in capsys.readouterr().err
    assert main(["info", str(full), "--topics", "colour=/x"]) == 2
    assert "unknown topic role(s) colour" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # refused by the parser (usage line, status 2)
        main(["info", str(full), "--topics", "color"])
    assert exit_.value.code == 2 and "'color' is not ROLE=TOPIC" in capsys.readouterr().err
    # a recording after the list is not silently taken for an item: the error says where to put it
    with pytest.raises(SystemExit) as exit_:
        main(["info", "--topics", "color=/camera/color/image_raw", str(full)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"{str(full)!r} is not ROLE=TOPIC" in err
    assert "put it before --topics, or end the list with --" in err
    assert main(["info", "--no-scan", "--topics", "color=/camera/color/image_raw", "--", str(full)]) == 0


def test_missing_parts_are_reported_with_reasons(tmp_path):
    path = tmp_path / "mono_only"
    write_synthetic_bag(path, "sqlite3", frames=4, with_stereo=False, with_description=False)
    s = summary_of(path)
    stereo = s.mode("stereo")
    assert not stereo.usable
    assert any("/stereo/left/image_rect (left): topic not in the bag" in m for m in stereo.missing)
    fk = s.mode("poses-fk")
    assert not fk.usable and any("no URDF: pass --urdf FILE" in m for m in fk.missing)
    assert s.mode("mono").usable and s.mode("supervised").usable and s.mode("poses-tf").usable
    (tmp_path / "arm.urdf").write_text(SYNTHETIC_URDF)
    assert summary_of(path, urdf_path=tmp_path / "arm.urdf").mode("poses-fk").usable


def write_custom(path, *, right_tx=-0.3, depth_frame="cam", encoding="rgb8", out_of_order=False, tf_gap=False):
    """Colour /img, depth /depth, stereo /l /r with infos; /tf world -> cam at 20 Hz."""
    cam = PinholeCamera(8, 6, [[5, 0, 3.5], [0, 5, 2.5], [0, 0, 1]])
    P = cam.P.copy()
    P[0, 3] = right_tx
    right = PinholeCamera(8, 6, cam.K, P=P)
    with BagWriter(path, "mcap") as w:
        for i in range(6):
            t = 1000 + 50 * i
            stamp = (t - 60 if (out_of_order and i == 4) else t) * MS
            w.raw_image("/img", stamp, height=6, width=8, encoding=encoding, step=24, data=bytes(144),
                        frame_id="cam", log_ns=t * MS)
            w.camera_info("/info", t * MS, cam, "cam")
            w.image("/depth", t * MS, np.full((6, 8), 900, np.uint16), "16UC1", depth_frame)
            w.image("/l", t * MS, np.zeros((6, 8), np.uint8), "mono8", "l")
            w.image("/r", t * MS, np.zeros((6, 8), np.uint8), "mono8", "r")
            w.camera_info("/li", t * MS, cam, "l")
            w.camera_info("/ri", t * MS, right, "r")
            if not (tf_gap and 2 <= i <= 4):
                w.tf("/tf", [("world", "cam", t * MS, make_transform([0, 0, i], [0, 0, 0, 1]))])
    return TopicConfig(color="/img", color_info="/info", depth="/depth", left="/l", right="/r", left_info="/li",
                       right_info="/ri")


def test_good_custom_topics(tmp_path):
    config = write_custom(tmp_path / "ok")
    s = summary_of(tmp_path / "ok", config=config)
    assert s.mode("stereo").usable and s.mode("supervised").usable and s.mode("poses-tf").usable, s.format_table()
    assert any("baseline 0.0600 m" in n for n in s.mode("stereo").notes)


def test_zero_baseline_makes_stereo_unusable(tmp_path):
    config = write_custom(tmp_path / "b0", right_tx=0.0)
    stereo = summary_of(tmp_path / "b0", config=config).mode("stereo")
    assert not stereo.usable and any("/ri: P[0,3] = 0.0 gives baseline" in m for m in stereo.missing)


def test_unregistered_depth_makes_supervised_unusable(tmp_path):
    config = write_custom(tmp_path / "unreg", depth_frame="depth_optical")
    sup = summary_of(tmp_path / "unreg", config=config).mode("supervised")
    assert not sup.usable
    assert any("in frame 'depth_optical' but colour in 'cam'" in m for m in sup.missing)


def test_unknown_encoding_makes_colour_modes_unusable(tmp_path):
    config = write_custom(tmp_path / "enc", encoding="yuv422_weird")
    s = summary_of(tmp_path / "enc", config=config)
    for name in ("mono", "supervised"):
        assert any("enc: /img: image at 1.000000000 s cannot be used as color: encoding: unsupported image "
                   "encoding 'yuv422_weird'" in m for m in s.mode(name).missing)


def test_out_of_order_stamps_and_tf_gaps_are_issues(tmp_path):
    config = write_custom(tmp_path / "bad", out_of_order=True, tf_gap=True)
    s = summary_of(tmp_path / "bad", config=config, max_gap_s=0.1)
    text = "\n".join(s.issues)
    assert "bad: /img: 1 message(s) with a header stamp earlier than a previous one" in text
    assert "bad: TF: gap of 0.200 s in 'world' -> 'cam' after 1.050000000 s" in text
    assert any("gap of 0.200 s on 'world' -> 'cam'" in n for n in s.mode("poses-tf").notes)


def test_topic_of_the_wrong_type_is_named(full):
    mono = summary_of(full, config=TopicConfig(color="/joint_states")).mode("mono")
    assert not mono.usable
    assert any("full: /joint_states (color): has type sensor_msgs/msg/JointState, expected "
               "sensor_msgs/msg/CompressedImage or sensor_msgs/msg/Image" in m for m in mono.missing)


def test_cli_on_a_truncated_bag(full, tmp_path, capsys):
    import shutil

    shutil.copytree(full, tmp_path / "cut")
    mcap = tmp_path / "cut" / "full.mcap"
    mcap.write_bytes(mcap.read_bytes()[:40])  # nothing but the header: nothing to recover
    assert main(["info", str(tmp_path / "cut")]) == 2
    err = capsys.readouterr().err
    assert "cut: cannot open" in err and "truncated" in err and "nothing recoverable" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_missing_colour_topic_is_named_by_the_pose_modes_not_blamed_on_tf(full):
    """Issue 20 item 10: with only ``--topics color=`` wrong, poses-tf said the (fixed) left stereo
    camera 'does not move' and told the user to check the TF topic."""
    s = summary_of(full, config=TopicConfig(color="/camera/color/image_rwa"))
    assert s.mode("stereo").usable
    for name in ("poses-tf", "poses-fk"):
        mode = s.mode(name)
        assert not mode.usable and len(mode.missing) == 1, mode.missing
        assert mode.missing[0].startswith("no camera frame to look up: "), mode.missing
        assert "full: /camera/color/image_rwa (color): topic not in the bag" in mode.missing[0], mode.missing
        assert "does not move" not in mode.missing[0] and "tf=" not in mode.missing[0]
