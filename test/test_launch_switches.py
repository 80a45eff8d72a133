"""Launch-time decisions: which nodes perception.launch.py starts, and rviz2's generated configs.

The launch files run against the recording stand-in of ``test_launch_and_rviz.py`` with their
OpaqueFunctions and Conditions evaluated; the topics the rviz configs must show come from the real
nodes (``nodes`` fixture of ``test_perception_launch.py``).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from depth_nodes.launch_support import namespace_prefix, node_switch, rviz_config_text
from test_launch_and_rviz import launch_with_rviz, load_launch, resolve, rviz_of
from test_perception_launch import nodes  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]
PERCEPTION = REPO / "launch/perception.launch.py"


def test_node_switch(tmp_path):
    f = tmp_path / "m.onnx"
    f.write_bytes(b"x")
    assert node_switch("auto", {"model": ""}) == (False, "auto: no model given")
    assert node_switch("auto", {"model": str(tmp_path / "none.onnx")})[1].endswith("does not exist")
    assert node_switch("AUTO", {"model": str(f)})[0]
    assert node_switch("true", {"model": ""}) == (True, "switched on")
    assert node_switch("false", {"model": str(f)}) == (False, "switched off")
    with pytest.raises(ValueError, match="true, false, auto"):
        node_switch("maybe", {})


def test_rviz_config_text_rewrites_topics_and_frame_only():
    template = ("Displays:\n  - Topic:\n      Value: /mono/depth/image\n  - Topic:\n      Value: /camera/image_raw\n"
                "  - Topic:\n      Value: /monochrome/x\n  - Name: Value: /mono/ in a name\n"
                "Global Options:\n  Fixed Frame: camera_optical_frame\n  Frame Rate: 30\n")
    out = rviz_config_text(template, {"/mono/": "/robot/mono/", "/camera/image_raw": "/robot/cam/image"}, "base_link")
    assert out == template.replace("Value: /mono/depth", "Value: /robot/mono/depth").replace(
        "Value: /camera/image_raw", "Value: /robot/cam/image").replace("camera_optical_frame", "base_link")
    assert rviz_config_text(template, {}, None) == template
    assert namespace_prefix("/a/b/") == "/a/b/" and namespace_prefix("mono") == "/mono/" and namespace_prefix("") == "/"


def _enabled(recorded):
    return {n.kw["executable"] for n in recorded["nodes"] if n.enabled and n.kw["package"] == "depth_nodes"}


def test_full_launch_starts_with_the_shipped_models_and_says_what_it_left_out():
    from depth_nodes.shipped_models import shipped_model

    recorded = load_launch(PERCEPTION)
    logs = "\n".join(recorded["logs"])
    # the repository ships a mono depth model: with no argument the mono node runs it (relative depth)
    assert shipped_model("mono_depth") is not None
    assert _enabled(recorded) == {"stereo_depth_node", "mono_depth_node"}
    assert f"mono_model_path {shipped_model('mono_depth')}" in logs
    missing = "reference_path" if shipped_model("descriptors") is not None else "descriptor_model_path"
    assert f"descriptor_tracker_node: not started (use_tracker: auto: no {missing} given)" in logs


def test_node_switches_follow_files_and_arguments(tmp_path):
    model, ref = tmp_path / "desc.onnx", tmp_path / "ref.npz"
    model.write_bytes(b"x")
    ref.write_bytes(b"x")
    depth = tmp_path / "depth.onnx"
    depth.write_bytes(b"x")
    files = {"descriptor_model_path": str(model), "reference_path": str(ref), "mono_model_path": str(depth)}
    assert _enabled(load_launch(PERCEPTION, files)) == {"stereo_depth_node", "mono_depth_node",
                                                        "descriptor_tracker_node"}
    missing_ref = load_launch(PERCEPTION, {**files, "reference_path": str(tmp_path / "none.npz")})
    assert _enabled(missing_ref) == {"stereo_depth_node", "mono_depth_node"}
    assert f"reference_path {tmp_path / 'none.npz'} does not exist" in "\n".join(missing_ref["logs"])
    off = load_launch(PERCEPTION, {**files, "use_tracker": "false", "use_mono": "false", "use_stereo": "false"})
    assert _enabled(off) == set()
    assert _enabled(load_launch(PERCEPTION, {"use_tracker": "true", "use_mono": "false"})) == {
        "stereo_depth_node", "descriptor_tracker_node"}


def test_an_empty_descriptor_model_path_is_the_shipped_model_when_installed(tmp_path, monkeypatch):
    from depth_nodes import shipped_models

    ref = tmp_path / "ref.npz"
    ref.write_bytes(b"x")
    monkeypatch.setattr(shipped_models, "MODELS_DIR", tmp_path / "none")
    bare = load_launch(PERCEPTION, {"reference_path": str(ref)})
    assert _enabled(bare) == {"stereo_depth_node"}
    assert "mono_depth_node: not started (use_mono: auto: no mono_model_path given); use_mono:=true" in "\n".join(
        bare["logs"])
    models = tmp_path / "models"
    models.mkdir()
    for suffix in (".onnx", ".json"):
        (models / ("descriptors_xfeat" + suffix)).write_bytes(b"x")
    monkeypatch.setattr(shipped_models, "MODELS_DIR", models)
    recorded = load_launch(PERCEPTION, {"reference_path": str(ref)})
    assert _enabled(recorded) == {"stereo_depth_node", "descriptor_tracker_node"}
    assert f"descriptor_model_path {models / 'descriptors_xfeat.onnx'}" in "\n".join(recorded["logs"])
    # the reference file is still needed: a new user without one gets the launch without the tracker
    assert _enabled(load_launch(PERCEPTION)) == {"stereo_depth_node"}
    for suffix in (".onnx", ".json"):
        (models / ("mono_depth_xfeat" + suffix)).write_bytes(b"x")
    assert _enabled(load_launch(PERCEPTION)) == {"stereo_depth_node", "mono_depth_node"}


LAUNCHES = [("mono_depth.launch.py", {"namespace": "/robot/depth"}),
            ("descriptor_tracker.launch.py", {"namespace": "/robot/kp"}),
            ("stereo_depth.launch.py", {"namespace": "/robot/pair"}),
            ("perception.launch.py", {"mono_namespace": "/r/mono", "tracker_namespace": "r/kp",
                                      "stereo_namespace": "/r/st/", "use_mono": "true", "use_tracker": "true"})]


@pytest.mark.parametrize("name, overrides", LAUNCHES, ids=[n for n, _ in LAUNCHES])
def test_rviz_shows_the_launched_topics_in_the_given_frame(name, overrides, nodes):  # noqa: F811
    recorded = launch_with_rviz(REPO / "launch" / name, camera="/robot/cam", fixed_frame="base_link", **overrides)
    values = recorded["values"]
    config, cli = rviz_of(recorded)
    assert cli[cli.index("-f") + 1] == "base_link"
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == "base_link"
    outputs, inputs, launched = set(), set(), set()
    for node in recorded["nodes"]:
        exe = node.kw["executable"]
        if exe == "rviz2" or not node.enabled:
            continue
        launched.add(exe)
        ns = namespace_prefix(resolve(node.kw["namespace"], values))
        subs, pubs, _ = nodes[exe]
        outputs |= {ns + t for t in pubs}
        inputs |= {resolve(d, values) if resolve(d, values).startswith("/") else ns + resolve(d, values)
                   for _, d in node.kw["remappings"]}
    shown = [d["Topic"]["Value"] for d in config["Visualization Manager"]["Displays"] if "Topic" in d]
    for topic in shown:
        assert topic in outputs | inputs, f"{name}: rviz shows {topic}, which no launched node publishes or reads"
    images_and_clouds = {t for t in outputs if t.endswith(("points", "points2", "depth/image", "colorized",
                                                            "keypoints/image", "descriptors/image", "markers"))}
    assert images_and_clouds <= set(shown), images_and_clouds - set(shown)
    assert launched and ("/robot/cam/image_raw" in shown) == (name != "stereo_depth.launch.py")
