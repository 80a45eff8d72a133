"""Static checks of the mono, tracker and perception launch files, their configs and perception.rviz.

The launch files run against the recording stand-in of ``launch``/``launch_ros`` from
``test_launch_and_rviz.py``; the topics, parameters and QoS they are checked against come from
the real nodes, constructed in this process (with networks of known output and a reference file).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml
from rclpy.parameter import Parameter
from rclpy.qos import ReliabilityPolicy

from depth_nodes.keypoints.reference import KeypointReference, save_reference
from depth_nodes.known_models import write_affine_depth_model, write_colour_descriptor_model
from test_launch_and_rviz import _console_scripts, _installed_share_files, launch_with_rviz, load_launch, resolve, rviz_of

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = {("rviz2", "rviz2")}


def _node_info(node):
    subs = {s.topic_name.lstrip("/") for s in node.subscriptions}
    pubs = {p.topic_name.lstrip("/"): p.qos_profile.reliability for p in node.publishers}
    for internal in ("rosout", "parameter_events"):
        pubs.pop(internal, None)
    return subs, pubs


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    """executable -> (subscribed topics, {published topic: reliability}, PARAMS names), all inputs enabled."""
    from depth_nodes.nodes import descriptor_tracker_node as tr
    from depth_nodes.nodes import mono_depth_node as mono
    from depth_nodes.nodes import stereo_depth_node as stereo

    d = tmp_path_factory.mktemp("launch_models")
    depth_model, _ = write_affine_depth_model(d / "depth.onnx", 32, 32)
    desc_model, side = write_colour_descriptor_model(d / "desc.onnx", 32, 32)
    ref = save_reference(d / "ref.npz", KeypointReference(
        descriptors=np.eye(3, dtype=np.float32), pixels=np.zeros((3, 2), np.float32), names=["a", "b", "c"],
        model_sha256=json.loads(side.read_text())["source_model_sha256"], input_size=(32, 32), descriptor_dim=3,
        image_size=(32, 32)))
    if not rclpy.ok():
        rclpy.init()
    out = {}
    built = [
        ("mono_depth_node", mono, lambda: mono.MonoDepthNode(parameter_overrides=[
            Parameter("model_path", value=str(depth_model)), Parameter("scale_mode", value="align")])),
        ("descriptor_tracker_node", tr, lambda: tr.DescriptorTrackerNode(parameter_overrides=[
            Parameter("model_path", value=str(desc_model)), Parameter("reference_path", value=str(ref)),
            Parameter("use_depth", value=True)])),
        ("stereo_depth_node", stereo, lambda: stereo.StereoDepthNode()),
    ]
    for exe, module, make in built:
        node = make()
        subs, pubs = _node_info(node)
        out[exe] = (subs, pubs, {p.name: p.default for p in module.PARAMS})
        node.destroy_node()
    # relative mode publishes its own topic (and no metric depth)
    node = mono.MonoDepthNode(parameter_overrides=[Parameter("model_path", value=str(depth_model)),
                                                   Parameter("scale_mode", value="relative")])
    out["mono_depth_node"][1].update(_node_info(node)[1])
    node.destroy_node()
    return out


def _launched(path: Path, overrides: dict | None = None):
    """[(executable, namespace, {param: value} from files and dicts, {src: dst} remaps)] of the nodes a
    launch file starts (with ``overrides`` as command-line arguments)."""
    recorded = load_launch(path, overrides)
    values = recorded["values"]
    share = _installed_share_files()
    for a in recorded["args"].values():
        assert a.kw.get("description"), f"{path.name}: argument {a.args[0]} has no description"
    out = []
    for node in recorded["nodes"]:
        pkg, exe = node.kw["package"], node.kw["executable"]
        if pkg != "depth_nodes" or not node.enabled:
            assert pkg == "depth_nodes" or (pkg, exe) in EXTERNAL, f"{path.name}: unknown executable {pkg}/{exe}"
            continue
        assert exe in _console_scripts(), f"{path.name}: {exe} is not a console script"
        params = {}
        for p in node.kw.get("parameters", []):
            p = resolve(p, values)
            if isinstance(p, str):
                rel = p.replace("<share:depth_nodes>/", "")
                assert rel in share, f"{path.name}: parameter file {p} is not installed by setup.py"
                params.update(yaml.safe_load(share[rel].read_text())["/**"]["ros__parameters"])
            else:
                params.update(p)
        remaps = {resolve(s, values): resolve(d, values) for s, d in node.kw.get("remappings", [])}
        out.append((exe, resolve(node.kw["namespace"], values), params, remaps))
    return out


ALL_NODES = {"use_mono": "true", "use_tracker": "true"}  # perception.launch.py with every node
# parameters every node takes that are not in its PARAMS table: rclpy's own, and image_transport
# (issue 20's compressed inputs add it to the nodes; the launch files pass it through)
NOT_IN_PARAMS = {"use_sim_time"}


MY_LAUNCH = ["mono_depth.launch.py", "descriptor_tracker.launch.py", "perception.launch.py"]


@pytest.mark.parametrize("name", MY_LAUNCH)
def test_launch_files_name_only_executables_parameters_and_topics_that_exist(name, nodes):
    launched = _launched(REPO / "launch" / name, ALL_NODES if name == "perception.launch.py" else None)
    assert launched
    for exe, ns, params, remaps in launched:
        subs, pubs, specs = nodes[exe]
        unknown = sorted(set(params) - set(specs) - NOT_IN_PARAMS)
        assert not unknown, f"{name}: {exe} has no parameters {unknown}"
        for src, dst in remaps.items():
            assert src in subs, f"{name}: {exe} remaps {src}, which it does not subscribe to"
            assert dst and ns, (src, dst)
        assert set(remaps) == subs, f"{name}: every input of {exe} should be remappable ({sorted(subs)})"


def test_perception_launch_gives_the_tracker_a_depth_camera_that_can_be_on_time():
    launched = {exe: (ns, params, remaps)
                for exe, ns, params, remaps in _launched(REPO / "launch/perception.launch.py", ALL_NODES)}
    assert set(launched) == {"mono_depth_node", "descriptor_tracker_node", "stereo_depth_node"}
    mono_ns = launched["mono_depth_node"][0]
    tracker = launched["descriptor_tracker_node"]
    # a depth camera topic by default: the mono node's depth of the same image is always late
    assert tracker[2]["depth/image"] == "/camera/depth/image" and tracker[1]["use_depth"] is True
    assert tracker[2]["depth/image"] != f"/{mono_ns}/depth/image"
    assert tracker[2]["image"] == launched["mono_depth_node"][2]["image"]


@pytest.mark.parametrize("config, module", [("mono_depth.yaml", "mono_depth_node"),
                                            ("descriptor_tracker.yaml", "descriptor_tracker_node")])
def test_config_lists_every_parameter_with_its_default(config, module):
    import importlib

    specs = importlib.import_module(f"depth_nodes.nodes.{module}").PARAMS
    values = yaml.safe_load((REPO / "config" / config).read_text())["/**"]["ros__parameters"]
    assert list(values) == [p.name for p in specs]
    for p in specs:
        assert values[p.name] == p.default and type(values[p.name]) is type(p.default), p.name


def test_perception_rviz_shows_every_output_with_matching_qos(nodes):
    cfg = yaml.safe_load((REPO / "rviz/perception.rviz").read_text())
    displays = [d for d in cfg["Visualization Manager"]["Displays"] if "Topic" in d]
    launched = _launched(REPO / "launch/perception.launch.py", ALL_NODES)
    published, inputs = {}, set()
    for exe, ns, params, remaps in launched:
        subs, pubs, _ = nodes[exe]
        expected = ReliabilityPolicy.RELIABLE if params["output_qos"] == "reliable" else ReliabilityPolicy.BEST_EFFORT
        for topic, reliability in pubs.items():
            assert reliability == expected, (exe, topic)
            published[f"/{ns}/{topic}"] = reliability
        inputs |= {v for v in remaps.values() if v.startswith("/")}
    shown = set()
    for d in displays:
        topic, qos = d["Topic"]["Value"], d["Topic"]["Reliability Policy"]
        shown.add(topic)
        if topic in published:
            # a Reliable display gets nothing from a best-effort publisher; Best Effort works with both
            assert qos == "Best Effort" or published[topic] == ReliabilityPolicy.RELIABLE, topic
            assert qos == ("Reliable" if published[topic] == ReliabilityPolicy.RELIABLE else "Best Effort"), topic
        else:
            assert topic in inputs, f"perception.rviz: {topic} is neither an output nor an input of the launched nodes"
            assert qos == "Best Effort", f"{topic}: camera drivers publish best effort (sensor data)"
    for out in ("/mono/depth/image", "/mono/depth/colorized", "/mono/depth/points", "/stereo/points2",
                "/stereo/depth/image", "/tracker/keypoints/markers", "/tracker/keypoints/image",
                "/tracker/descriptors/image"):
        assert out in shown, f"perception.rviz does not show {out}"
