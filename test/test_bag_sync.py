"""Time synchronisation: the streaming matcher on hand-made stamps, and SyncedSamples on real bags."""
import numpy as np
import pytest

from depth_nodes.geometry.camera import PinholeCamera
from depth_training.bags import (
    BagDecodeError,
    BagReadError,
    BagTopicError,
    BagWarning,
    BagWriter,
    StreamSpec,
    SyncedSamples,
    open_bag,
)
from depth_training.bags.matcher import StampMatcher
from depth_training.bags.synthetic import depth_truth, write_synthetic_bag

MS = 1_000_000


def run_matcher(events, tol_ms, **kw):
    """events: (role, stamp_ms); returns [(ref_ms, other_ms)] and the matcher."""
    m = StampMatcher(["ref", "x"], "ref", tolerance_ns=tol_ms * MS, **kw)
    out = []
    for role, t in events:
        out += m.push(role, t * MS, f"{role}{t}")
    out += m.finish()
    return [(mm.stamp_ns // MS, mm.parts["x"][0] // MS) for mm in out], m


def test_nearest_neighbour_within_tolerance():
    events = [("ref", 0), ("x", 3), ("x", 96), ("ref", 100), ("x", 130), ("ref", 200), ("x", 205)]
    pairs, m = run_matcher(events, 10, reorder_ns=0)
    assert pairs == [(0, 3), (100, 96), (200, 205)]
    assert m.stats.matched == 3 and m.stats.unmatched == {}
    assert m.stats.max_offset_ns["x"] == 5 * MS
    pairs, m = run_matcher(events, 4, reorder_ns=0)
    assert pairs == [(0, 3), (100, 96)]  # |205 - 200| = 5 > 4
    assert m.stats.unmatched == {"x": 1}


def test_nearest_is_chosen_even_if_a_worse_one_came_first():
    pairs, _ = run_matcher([("ref", 100), ("x", 92), ("x", 99), ("x", 120)], 10, reorder_ns=0)
    assert pairs == [(100, 99)]


def test_out_of_order_within_reorder_window_is_sorted_and_counted():
    events = [("ref", 200), ("x", 205), ("x", 199), ("x", 260), ("ref", 300), ("x", 400)]
    pairs, m = run_matcher(events, 10, reorder_ns=50 * MS)
    assert pairs[0] == (200, 199)
    assert m.stats.out_of_order == {"x": 1}


def test_late_message_is_counted_not_silently_matched():
    # the reference at 100 is final once x passed 100 + tol + reorder; a later x stamped 101 is late
    events = [("ref", 100), ("x", 150), ("ref", 200), ("x", 101), ("x", 201)]
    reports = []
    m = StampMatcher(["ref", "x"], "ref", tolerance_ns=10 * MS, reorder_ns=0,
                     report=lambda role, kind, t: reports.append((role, kind, t // MS)))
    out = []
    for role, t in events:
        out += m.push(role, t * MS, None)
    out += m.finish()
    assert [o.stamp_ns // MS for o in out] == [200]
    assert m.stats.late == {"x": 1} and m.stats.unmatched == {"x": 1}
    assert ("x", "late", 101) in reports and ("x", "unmatched", 100) in reports


def test_max_wait_bounds_memory_when_a_stream_is_silent():
    m = StampMatcher(["ref", "x"], "ref", tolerance_ns=5 * MS, reorder_ns=0, max_wait_ns=100 * MS)
    emitted = []
    for t in range(0, 1000, 33):
        emitted += m.push("ref", t * MS, None)
        assert len(m._buffers["ref"]) <= 5  # never more than max_wait worth of pending references
    assert emitted == []  # nothing to match against
    assert m.stats.unmatched["x"] >= 25


def test_reference_stream_alone_comes_out_sorted():
    pairs = []
    m = StampMatcher(["ref"], "ref", tolerance_ns=0, reorder_ns=50 * MS)
    for t in (0, 40, 20, 100, 80, 200):
        pairs += [mm.stamp_ns // MS for mm in m.push("ref", t * MS, None)]
    pairs += [mm.stamp_ns // MS for mm in m.finish()]
    assert pairs == [0, 20, 40, 80, 100, 200]


# ---------------------------------------------------------------------------------------- bags
@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("sync")
    truth = write_synthetic_bag(root / "syn", "mcap", frames=8, with_stereo=True)
    return root / "syn", truth


COLOR = StreamSpec("color", "/camera/color/image_raw", "color", "/camera/color/camera_info")
DEPTH = StreamSpec("depth", "/camera/depth/image_rect_raw", "depth", "/camera/depth/camera_info")


def test_colour_depth_pairs_decode_to_ground_truth(synth):
    path, truth = synth
    with open_bag(path) as bag:
        samples = SyncedSamples(bag, [COLOR, DEPTH], tolerance_s=0.002)
        out = list(samples)
    assert len(out) == 8 and samples.stats.emitted == 8 and samples.stats.unmatched == {}
    assert [s.stamp_ns for s in out] == list(truth.image_stamps_ns)
    for i, s in enumerate(out):
        d = s["depth"]
        assert d.stamp_ns - s.stamp_ns == 1_000_000  # the depth is stamped 1 ms later
        assert d.image.dtype == np.float32 and d.image.shape == (24, 32)
        assert np.isnan(d.image[0, :4]).all()  # the holes (0 mm) are NaN
        np.testing.assert_allclose(d.image[1:], depth_truth(32, 24, i)[1:], atol=0.0005 + 1e-6)
        c = s["color"]
        assert c.image.dtype == np.uint8 and c.image.shape == (24, 32, 3) and c.encoding == "rgb8"
        np.testing.assert_array_equal(c.camera.K, truth.camera.K)
        assert c.frame_id == "camera_color_optical_frame"


def test_tolerance_below_the_offset_drops_every_sample_with_a_warning(synth):
    path, _ = synth
    with open_bag(path) as bag:
        samples = SyncedSamples(bag, [COLOR, DEPTH], tolerance_s=0.0005)
        with pytest.warns(BagWarning, match=r"/camera/depth/image_rect_raw: no message within the tolerance"):
            out = list(samples)
    assert out == [] and samples.stats.unmatched == {"depth": 8}


def test_stereo_pair_and_ros1_bag(tmp_path):
    write_synthetic_bag(tmp_path / "s.bag", "ros1", frames=4)
    with open_bag(tmp_path / "s.bag") as bag:
        out = list(SyncedSamples(bag, [StreamSpec("left", "/stereo/left/image_rect", "raw", "/stereo/left/camera_info"),
                                       StreamSpec("right", "/stereo/right/image_rect", "raw",
                                                  "/stereo/right/camera_info")], tolerance_s=0.001))
    assert len(out) == 4
    assert out[0]["right"].camera.baseline == pytest.approx(0.06)
    assert out[0]["left"].image.dtype == np.uint8 and out[0]["left"].encoding == "mono8"


def test_compressed_colour_decodes_like_raw(tmp_path):
    write_synthetic_bag(tmp_path / "raw", "sqlite3", frames=3, with_stereo=False)
    write_synthetic_bag(tmp_path / "png", "sqlite3", frames=3, with_stereo=False, compressed_color=True)
    images = {}
    for name in ("raw", "png"):
        with open_bag(tmp_path / name) as bag:
            images[name] = [s["color"].image for s in SyncedSamples(bag, [COLOR])]
    assert len(images["raw"]) == len(images["png"]) == 3
    for a, b in zip(images["raw"], images["png"], strict=True):
        np.testing.assert_array_equal(a, b)  # PNG is lossless; BGR -> RGB handled


CAM = PinholeCamera(4, 3, [[5, 0, 1.5], [0, 5, 1], [0, 0, 1]])


def write_custom(path, frames, fmt="mcap"):
    """frames: list of (stamp_ms, log_ms, encoding, size) on /img (1 s added); camera_info at every stamp."""
    with BagWriter(path, fmt) as w:
        for stamp, log, enc, (h, wd) in frames:
            stamp, log = stamp + 1000, log + 1000
            arr = np.full((h, wd, 3), stamp % 256, np.uint8)
            if enc == "rgb8":
                w.image("/img", stamp * MS, arr, "rgb8", "cam", log_ns=log * MS)
            else:
                w.raw_image("/img", stamp * MS, height=h, width=wd, encoding=enc, step=wd * 3,
                            data=arr.tobytes(), frame_id="cam", log_ns=log * MS)
            w.camera_info("/info", stamp * MS, CAM, "cam", log_ns=log * MS)
    return path


def test_out_of_order_messages_in_a_bag_are_sorted_and_reported(tmp_path):
    # frame 2 (stamp 66 ms) is logged after frame 3 (stamp 99 ms)
    path = write_custom(tmp_path / "ooo", [(0, 1, "rgb8", (3, 4)), (33, 34, "rgb8", (3, 4)),
                                           (99, 100, "rgb8", (3, 4)), (66, 101, "rgb8", (3, 4)),
                                           (132, 133, "rgb8", (3, 4))])
    with open_bag(path) as bag:
        samples = SyncedSamples(bag, [StreamSpec("c", "/img", "color", "/info")], reorder_s=0.05)
        with pytest.warns(BagWarning, match=r"ooo: /img: header stamp 1.066000000 s is earlier than the previous"):
            stamps = [s.stamp_ns // MS for s in samples]
    assert stamps == [1000, 1033, 1066, 1099, 1132]
    assert samples.stats.out_of_order == {"c": 1}
    # with no reorder window the same message is late: dropped and reported, never emitted out of order
    with open_bag(path) as bag:
        samples = SyncedSamples(bag, [StreamSpec("c", "/img", "color")], reorder_s=0.0)
        with pytest.warns(BagWarning, match=r"/img: message stamped 1.066000000 s arrived after"):
            stamps = [s.stamp_ns // MS for s in samples]
    assert stamps == [1000, 1033, 1099, 1132] and samples.stats.late == {"c": 1}


def test_unknown_encoding_error_names_file_topic_time(tmp_path):
    path = write_custom(tmp_path / "enc", [(0, 0, "rgb8", (3, 4)), (33, 33, "yuv422_weird", (3, 4)),
                                           (66, 66, "rgb8", (3, 4))])
    with open_bag(path) as bag:
        with pytest.raises(BagDecodeError, match=r"enc: /img: image at 1.033000000 s cannot be used as color: "
                                                 r"encoding: unsupported image encoding 'yuv422_weird'"):
            list(SyncedSamples(bag, [StreamSpec("c", "/img", "color")]))
        samples = SyncedSamples(bag, [StreamSpec("c", "/img", "color")], on_error="skip")
        with pytest.warns(BagWarning, match="yuv422_weird"):
            assert [s.stamp_ns // MS for s in samples] == [1000, 1066]
        assert samples.stats.skipped == {"c": 1}


def test_image_size_differs_from_camera_info(tmp_path):
    path = write_custom(tmp_path / "size", [(0, 0, "rgb8", (3, 4)), (33, 33, "rgb8", (6, 8))])
    with open_bag(path) as bag:
        with pytest.raises(BagDecodeError, match=r"size: /img: image at 1.033000000 s is 8x6 but /info says 4x3"):
            list(SyncedSamples(bag, [StreamSpec("c", "/img", "color", "/info")]))


def test_missing_camera_info_and_wrong_type_fail_up_front(tmp_path, synth):
    path, _ = synth
    with open_bag(path) as bag:
        with pytest.raises(BagTopicError, match=r"syn: /cam/missing_info \(camera_info\): topic not in the bag"):
            SyncedSamples(bag, [StreamSpec("c", "/camera/color/image_raw", "color", "/cam/missing_info")])
        with pytest.raises(BagTopicError, match=r"syn: /camera/color/camera_info \(color\): has type "
                                                r"sensor_msgs/msg/CameraInfo, expected"):
            SyncedSamples(bag, [StreamSpec("c", "/camera/color/camera_info", "color")])
        with pytest.raises(BagDecodeError, match=r"/camera/depth/image_rect_raw: image at .* cannot be used as color"):
            list(SyncedSamples(bag, [StreamSpec("d", "/camera/depth/image_rect_raw", "color")]))


def test_zero_header_stamp_is_reported(tmp_path):
    path = write_custom(tmp_path / "zero", [(-1000, 0, "rgb8", (3, 4)), (33, 33, "rgb8", (3, 4))])
    with open_bag(path) as bag:
        with pytest.raises(BagDecodeError, match=r"zero: /img: header stamp is zero at log time 1.000000000 s"):
            list(SyncedSamples(bag, [StreamSpec("c", "/img", "color")]))
        samples = SyncedSamples(bag, [StreamSpec("c", "/img", "color")], on_error="skip")
        with pytest.warns(BagWarning, match="header stamp is zero"):
            assert [s.stamp_ns // MS for s in samples] == [1033]


def test_corrupt_message_error_names_file_topic_and_log_time(tmp_path):
    with BagWriter(tmp_path / "corrupt", "mcap") as w:
        w.image("/img", 1000 * MS, np.zeros((3, 4, 3), np.uint8), "rgb8", "cam")
        w._writer.write(w._conns["/img"], 1033 * MS, b"\x00\x01\x00\x00\x07")  # a cut-off message
        w.image("/img", 1066 * MS, np.zeros((3, 4, 3), np.uint8), "rgb8", "cam")
    with open_bag(tmp_path / "corrupt") as bag:
        with pytest.raises(BagReadError, match=r"corrupt: /img: cannot deserialise sensor_msgs/msg/Image at log "
                                               r"time 1.033000000 s"):
            list(SyncedSamples(bag, [StreamSpec("c", "/img", "color")]))
