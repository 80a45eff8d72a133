"""Managed nodes (``--managed``): a real node process driven through its lifecycle over DDS.

The test process is the lifecycle manager (``change_state`` / ``get_state`` service calls, as
nav2's lifecycle_manager makes them) and the camera: the stereo node publishes nothing before
configure, nothing while configured but inactive, serves frames once active, stops on deactivate,
serves again on the next activate, and drops its outputs on cleanup. Configure is where
parameters are checked and models load: the mono node without a model stays up, unconfigured,
with its usual message.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from sensor_msgs.msg import CameraInfo, Image

from depth_nodes.ros.harness import NodeProcess, RosIO, stamp_of, stereo_messages
from depth_nodes.synthetic import default_scene

REPO = Path(__file__).resolve().parents[1]
INPUTS = ("left/image_rect", "left/camera_info", "right/image_rect", "right/camera_info")


def _call(io, srv_type, name, request, timeout=20.0):
    client = io.node.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=timeout), f"no service {name}"
        future = client.call_async(request)
        assert io.wait_for(future.done, timeout), f"{name}: no answer"
        return future.result()
    finally:
        io.node.destroy_client(client)


def _transition(io, node_name, transition_id) -> bool:
    return _call(io, ChangeState, f"/{node_name}/change_state",
                 ChangeState.Request(transition=Transition(id=transition_id))).success


def _state(io, node_name) -> int:
    return _call(io, GetState, f"/{node_name}/get_state", GetState.Request()).current_state.id


def _outputs_for(io, pubs, scene, seconds, stamp) -> bool:
    """Publish one set (repeatedly) for ``seconds``; whether its depth/image came back."""
    msgs = stereo_messages(scene, stamp)
    have = lambda: any(stamp_of(m) == stamp for m in io.received["depth/image"])  # noqa: E731
    deadline = time.monotonic() + seconds
    while not have() and time.monotonic() < deadline:
        for pub, msg in zip(pubs, msgs):
            pub.publish(msg)
        io.wait_for(have, 0.5)
    return have()


def test_stereo_node_configures_activates_and_deactivates_over_dds(tmp_path):
    scene = default_scene(160, 120, seed=2)
    node = _managed("stereo_depth_node", tmp_path / "managed.log", "--params-file",
                    str(REPO / "config/stereo_depth.yaml"), "-p", "disparity_range:=32", "-p", "input_qos:=reliable",
                    "--log-level", "stereo_depth_node:=debug")
    io = RosIO("lifecycle_test_io")
    stamp = 1_700_000_000_000_000_000
    try:
        pubs = [io.publisher(Image if "image" in t else CameraInfo, t) for t in INPUTS]
        io.collect(Image, "depth/image")
        assert node.wait_for_log("waiting for configure", 20), node.log()
        assert _state(io, "stereo_depth_node") == State.PRIMARY_STATE_UNCONFIGURED
        assert io.node.count_publishers("/depth/image") == 0 and "matching with" not in node.log()

        assert _transition(io, "stereo_depth_node", Transition.TRANSITION_CONFIGURE), node.log()
        assert _state(io, "stereo_depth_node") == State.PRIMARY_STATE_INACTIVE
        assert "matching with opencv_sgbm" in node.log()
        assert io.wait_for(lambda: io.node.count_publishers("/depth/image") == 1, 10)
        assert not _outputs_for(io, pubs, scene, 3.0, stamp), "published while inactive"
        assert _frame_line(stamp) not in node.log(), "processed a frame while inactive"

        assert _transition(io, "stereo_depth_node", Transition.TRANSITION_ACTIVATE), node.log()
        assert _outputs_for(io, pubs, scene, 20.0, stamp + 1), node.log()

        assert _transition(io, "stereo_depth_node", Transition.TRANSITION_DEACTIVATE), node.log()
        assert not _outputs_for(io, pubs, scene, 3.0, stamp + 2), "published after deactivate"
        assert _frame_line(stamp + 2) not in node.log(), "processed a frame after deactivate"
        assert _frame_line(stamp + 1) in node.log()  # the debug line is there for a processed one
        assert "nothing received on" not in node.log()  # its timers are off too while inactive

        assert _transition(io, "stereo_depth_node", Transition.TRANSITION_ACTIVATE), node.log()
        assert _outputs_for(io, pubs, scene, 20.0, stamp + 3), node.log()

        assert _transition(io, "stereo_depth_node", Transition.TRANSITION_DEACTIVATE)
        assert _transition(io, "stereo_depth_node", Transition.TRANSITION_CLEANUP), node.log()
        assert _state(io, "stereo_depth_node") == State.PRIMARY_STATE_UNCONFIGURED
        assert io.wait_for(lambda: io.node.count_publishers("/depth/image") == 0, 10)
        # configured again from scratch: the command-line parameters come back
        assert _transition(io, "stereo_depth_node", Transition.TRANSITION_CONFIGURE), node.log()
        assert _transition(io, "stereo_depth_node", Transition.TRANSITION_ACTIVATE), node.log()
        assert _outputs_for(io, pubs, scene, 20.0, stamp + 4), node.log()
        assert node.log().count("disparities 0..31") == 2, node.log()
    finally:
        io.close()
        assert node.stop() == 0, node.log()
    for bad in ("Traceback", "ERROR", "unexpected"):
        assert bad not in node.log(), node.log()


def test_subscriptions_remade_while_active_follow_the_lifecycle(tmp_path):
    """input_qos auto: the camera appears after activate, the node re-makes its subscriptions
    (reliable publishers) while active; those too stop on deactivate."""
    scene = default_scene(160, 120, seed=4)
    node = _managed("stereo_depth_node", tmp_path / "auto.log", "--params-file", str(REPO / "config/stereo_depth.yaml"),
                    "-p", "disparity_range:=32", "--log-level", "stereo_depth_node:=debug")
    io = RosIO("lifecycle_auto_io")
    stamp = 1_700_000_100_000_000_000
    try:
        io.collect(Image, "depth/image")
        assert node.wait_for_log("waiting for configure", 20), node.log()
        assert _transition(io, "stereo_depth_node", Transition.TRANSITION_CONFIGURE), node.log()
        assert _transition(io, "stereo_depth_node", Transition.TRANSITION_ACTIVATE), node.log()
        pubs = [io.publisher(Image if "image" in t else CameraInfo, t) for t in INPUTS]
        assert node.wait_for_log("input QoS auto: left/image_rect -> reliable", 20), node.log()
        assert _outputs_for(io, pubs, scene, 20.0, stamp), node.log()
        assert _transition(io, "stereo_depth_node", Transition.TRANSITION_DEACTIVATE), node.log()
        assert not _outputs_for(io, pubs, scene, 3.0, stamp + 1), "published after deactivate"
        assert _frame_line(stamp + 1) not in node.log(), "processed a frame after deactivate"
    finally:
        io.close()
        assert node.stop() == 0, node.log()


def test_mono_node_loads_its_model_in_configure_and_reports_a_missing_one(tmp_path):
    # the launch files' managed:=true: the environment instead of --managed
    missing = tmp_path / "no_such_depth.onnx"
    node = NodeProcess("mono_depth_node", "--params-file", str(REPO / "config/mono_depth.yaml"),
                       "-p", f"model_path:={missing}",
                       log_path=tmp_path / "mono.log", env=dict(os.environ, DEPTH_NODES_MANAGED="true"))
    io = RosIO("lifecycle_mono_io")
    try:
        assert node.wait_for_log("waiting for configure", 20), node.log()
        assert "scale_mode" not in node.log(), "loaded a model before configure"
        assert not _transition(io, "mono_depth_node", Transition.TRANSITION_CONFIGURE)
        assert f"configure failed: invalid parameters:\n  model_path: {missing}: no such file" in node.log(), \
            node.log()
        assert node.alive() and _state(io, "mono_depth_node") == State.PRIMARY_STATE_UNCONFIGURED
        # the failed configure left nothing declared behind: it can be tried again
        assert not _transition(io, "mono_depth_node", Transition.TRANSITION_CONFIGURE)
        assert node.log().count(f"model_path: {missing}: no such file") == 2, node.log()
    finally:
        io.close()
        assert node.stop() == 0, node.log()
    assert "Traceback" not in node.log(), node.log()


def _frame_line(stamp: int) -> str:
    return f"frame {stamp // 10**9}.{stamp % 10**9:09d}: started"


def _managed(executable: str, log_path: Path, *ros_args: str) -> NodeProcess:
    return NodeProcess(executable, *ros_args, log_path=log_path, before_ros_args=("--managed",))
