"""TfBuffer: chain composition, interpolation, extrapolation and gap errors, tree errors."""
import numpy as np
import pytest

from depth_training.kinematics.tf_buffer import (
    TfBuffer,
    TfConnectivityError,
    TfExtrapolationError,
    TfGapError,
    TfTreeError,
)
from depth_training.kinematics.timeseries import ExtrapolationError

S = 1_000_000_000
Q_ID = (0, 0, 0, 1)


def qz(deg):
    h = np.radians(deg) / 2
    return (0, 0, np.sin(h), np.cos(h))


def make_tree(**kw):
    """world -(static +1 x)-> a -(dynamic yaw 0..90 deg over 1 s, x 0..2)-> b -(static +1 y)-> c; a -> d static."""
    kw.setdefault("max_gap_ns", 2 * S)
    tf = TfBuffer(source="test.mcap: TF", **kw)
    tf.add("world", "a", 0, (1, 0, 0), Q_ID, static=True, origin="/tf_static")
    tf.add("a", "b", 0, (0, 0, 0), qz(0), origin="/tf")
    tf.add("a", "b", 1 * S, (2, 0, 0), qz(90), origin="/tf")
    tf.add("b", "c", 0, (0, 1, 0), Q_ID, static=True, origin="/tf_static")
    tf.add("a", "d", 0, (0, 0, 5), Q_ID, static=True, origin="/tf_static")
    return tf


def test_chain_composition_with_interpolation_hand_computed():
    tf = make_tree()
    T = tf.lookup("world", "c", S // 2)
    # b at t=0.5: translation (1, 0, 0) (LERP), yaw 45 deg (SLERP); c = b + Rz(45) (0, 1, 0)
    c45 = np.cos(np.pi / 4)
    np.testing.assert_allclose(T[:3, 3], [1 + 1 - c45, c45, 0], atol=1e-12)
    np.testing.assert_allclose(T[:3, :3], [[c45, -c45, 0], [c45, c45, 0], [0, 0, 1]], atol=1e-12)
    # the inverse direction is the inverse transform
    np.testing.assert_allclose(tf.lookup("c", "world", S // 2) @ T, np.eye(4), atol=1e-12)


def test_lookup_between_branches_goes_through_common_ancestor():
    tf = make_tree()
    # d = a + (0,0,5); c at t=1: b = a + (2,0,0) yawed 90 deg, c = b + Rz(90)(0,1,0) = a + (1,0,0)
    T_d_c = tf.lookup("d", "c", S)
    np.testing.assert_allclose(T_d_c[:3, 3], [1, 0, -5], atol=1e-12)
    assert tf.ancestors("c") == ["c", "b", "a", "world"]


def test_exact_sample_and_static_edges_valid_at_any_time():
    tf = make_tree()
    np.testing.assert_allclose(tf.lookup("a", "b", S)[:3, 3], [2, 0, 0])
    # static-only chain: any stamp works, even far outside the dynamic data
    np.testing.assert_allclose(tf.lookup("world", "d", 1000 * S)[:3, 3], [1, 0, 5])


def test_extrapolation_error_names_frames_edge_and_time():
    tf = make_tree()
    with pytest.raises(TfExtrapolationError) as exc:
        tf.lookup("world", "c", -S // 10)
    text = str(exc.value)
    assert "test.mcap: TF" in text and "'c' in 'world'" in text and "-0.100000000 s" in text
    assert "'a' -> 'b'" in text and "before the first" in text and "/tf" in text
    assert isinstance(exc.value, ExtrapolationError) and isinstance(exc.value, LookupError)
    with pytest.raises(TfExtrapolationError, match="after the last"):
        tf.lookup("world", "c", S + 1)


def test_extrapolation_within_tolerance_clamps_to_end_sample():
    tf = make_tree(tolerance_ns=S // 5)
    np.testing.assert_allclose(tf.lookup("a", "b", -S // 10)[:3, 3], [0, 0, 0])
    np.testing.assert_allclose(tf.lookup("a", "b", S + S // 10)[:3, 3], [2, 0, 0])
    with pytest.raises(TfExtrapolationError):
        tf.lookup("a", "b", -S // 2)


def test_gap_detection():
    tf = TfBuffer(max_gap_ns=S // 2, source="gap.bag: TF")
    for t, x in ((0, 0.0), (S // 10, 0.1), (S, 1.0)):
        tf.add("world", "cam", t, (x, 0, 0), Q_ID)
    np.testing.assert_allclose(tf.lookup("world", "cam", S // 20)[:3, 3], [0.05, 0, 0], atol=1e-12)
    with pytest.raises(TfGapError) as exc:
        tf.lookup("world", "cam", S // 2)
    text = str(exc.value)
    assert "gap.bag: TF" in text and "0.100000000 s" in text and "1.000000000 s" in text and "0.900000" in text
    assert [e.max_gap_ns for e in tf.edge_stats()] == [9 * S // 10]
    # with the check disabled the same lookup interpolates
    tf.max_gap_ns = None
    np.testing.assert_allclose(tf.lookup("world", "cam", S // 2)[:3, 3], [0.5, 0, 0], atol=1e-12)


def test_out_of_order_samples_are_sorted_and_counted():
    tf = TfBuffer(max_gap_ns=None)
    for t, x in ((2 * S, 2.0), (0, 0.0), (S, 1.0)):
        tf.add("world", "cam", t, (x, 0, 0), Q_ID)
    np.testing.assert_allclose(tf.lookup("world", "cam", S // 2)[:3, 3], [0.5, 0, 0])
    assert tf.edge_stats()[0].out_of_order == 2


def test_unknown_and_disconnected_frames():
    tf = make_tree()
    tf.add("map", "odom", 0, (0, 0, 0), Q_ID, static=True)
    with pytest.raises(TfConnectivityError, match="'nope' does not exist.*known frames"):
        tf.lookup("world", "nope", 0)
    with pytest.raises(TfConnectivityError, match="not connected"):
        tf.lookup("world", "odom", 0)


def test_tree_errors():
    tf = make_tree()
    with pytest.raises(TfTreeError, match="'b' has two parents: 'a'.*'world'"):
        tf.add("world", "b", 0, (0, 0, 0), Q_ID)
    with pytest.raises(TfTreeError, match="both as static and as dynamic"):
        tf.add("a", "b", 0, (0, 0, 0), Q_ID, static=True)
    with pytest.raises(TfTreeError, match="zero quaternion"):
        tf.add("a", "e", 0, (0, 0, 0), (0, 0, 0, 0))


def test_leading_slash_frames_are_the_same_frame():
    tf = TfBuffer()
    tf.add("/world", "/cam", 0, (1, 2, 3), Q_ID, static=True)
    np.testing.assert_allclose(tf.lookup("world", "cam", 0)[:3, 3], [1, 2, 3])
