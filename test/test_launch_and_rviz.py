"""Static checks of launch files and rviz configs against the package.

``launch``/``launch_ros`` are not installable from PyPI, so the launch file is executed against a
small recording stand-in of their API: every action it builds is recorded, every
LaunchConfiguration is resolved from the declared defaults, and then each executable, parameter
file, remapped topic, argument and rviz config it names is checked against what the package
really installs and what the node really subscribes to and publishes.
"""
from __future__ import annotations

import ast
import importlib.util
import sys
import types
from pathlib import Path

import pytest
import rclpy
import yaml

REPO = Path(__file__).resolve().parents[1]
EXTERNAL_EXECUTABLES = {("rviz2", "rviz2")}


class _Sub:
    def __init__(self, kind, *args, **kw):
        self.kind, self.args, self.kw = kind, args, kw


def _fake_launch_modules():
    recorded = {"args": {}, "nodes": []}

    def action(kind):
        def make(*args, **kw):
            obj = _Sub(kind, *args, **kw)
            if kind == "DeclareLaunchArgument":
                recorded["args"][args[0]] = obj
            if kind == "Node":
                recorded["nodes"].append(obj)
            return obj
        return make

    mods = {}
    for name, attrs in {
        "launch": ["LaunchDescription"],
        "launch.actions": ["DeclareLaunchArgument", "GroupAction", "IncludeLaunchDescription"],
        "launch.conditions": ["IfCondition", "UnlessCondition"],
        "launch.substitutions": ["LaunchConfiguration", "PathJoinSubstitution", "TextSubstitution"],
        "launch_ros.actions": ["Node", "PushRosNamespace"],
        "launch_ros.parameter_descriptions": ["ParameterValue"],
        "launch_ros.substitutions": ["FindPackageShare"],
    }.items():
        m = types.ModuleType(name)
        for a in attrs:
            setattr(m, a, action(a))
        mods[name] = m
    return mods, recorded


def _installed_share_files() -> dict[str, Path]:
    """share/depth_nodes/<rel> -> repo file, from setup.py's data_files globs."""
    tree = ast.parse((REPO / "setup.py").read_text())
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and len(node.elts) == 2:
            for call in ast.walk(node.elts[1]):  # glob("a/*.x") or glob(...) + glob(...)
                if (isinstance(call, ast.Call) and getattr(call.func, "id", "") == "glob"
                        and isinstance(call.args[0], ast.Constant)):
                    folder = call.args[0].value.split("/")[0]
                    for f in REPO.glob(call.args[0].value):
                        out[f"{folder}/{f.name}"] = f
    return out


def _console_scripts() -> set[str]:
    text = (REPO / "setup.py").read_text()
    tree = ast.parse(text)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " = " in node.value and ":" in node.value:
            names.add(node.value.split(" = ")[0].strip())
    return names


def resolve(value, args, share):
    if isinstance(value, _Sub):
        if value.kind == "LaunchConfiguration":
            name = value.args[0]
            assert name in args, f"LaunchConfiguration({name!r}) is not declared"
            return resolve(args[name].kw["default_value"], args, share)
        if value.kind == "PathJoinSubstitution":
            return "/".join(resolve(p, args, share) for p in value.args[0])
        if value.kind == "FindPackageShare":
            return f"<share:{value.args[0]}>"
        if value.kind == "TextSubstitution":
            return value.kw["text"]
        raise AssertionError(f"unexpected substitution {value.kind}")
    if isinstance(value, (list, tuple)):
        return type(value)(resolve(v, args, share) for v in value)
    return value


def load_launch(path: Path):
    mods, recorded = _fake_launch_modules()
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.generate_launch_description()
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return recorded


@pytest.fixture(scope="module")
def stereo_node_topics():
    from depth_nodes.nodes.stereo_depth_node import StereoDepthNode

    if not rclpy.ok():
        rclpy.init()
    node = StereoDepthNode()
    subs = {s.topic_name.lstrip("/") for s in node.subscriptions}
    pubs = {p.topic_name.lstrip("/") for p in node.publishers} - {"rosout", "parameter_events"}
    node.destroy_node()
    return subs, pubs


# perception.launch.py (three nodes, per-node config arguments) has its own checks in test_perception_launch.py
LAUNCH_FILES = sorted(p for p in (REPO / "launch").glob("*.launch.py") if p.name != "perception.launch.py")


def test_there_is_a_stereo_launch_file():
    assert REPO / "launch/stereo_depth.launch.py" in LAUNCH_FILES


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_only_things_that_exist(path, stereo_node_topics):
    recorded = load_launch(path)
    args = recorded["args"]
    share = _installed_share_files()
    scripts = _console_scripts()
    subs, pubs = stereo_node_topics
    assert {"namespace", "config_file", "use_rviz"} <= set(args)
    for a in args.values():
        assert a.kw.get("description"), f"argument {a.args[0]} has no description"
    for node in recorded["nodes"]:
        pkg, exe = node.kw["package"], node.kw["executable"]
        if pkg == "depth_nodes":
            assert exe in scripts, f"{path.name}: executable {exe} is not a console script"
        else:
            assert (pkg, exe) in EXTERNAL_EXECUTABLES, f"{path.name}: unknown executable {pkg}/{exe}"
        for p in resolve(node.kw.get("parameters", []), args, share):
            if isinstance(p, str):
                rel = p.replace("<share:depth_nodes>/", "")
                assert rel in share, f"{path.name}: parameter file {p} is not installed by setup.py"
                yaml.safe_load(share[rel].read_text())["/**"]["ros__parameters"]
        cli = resolve(node.kw.get("arguments", []), args, share)
        if "-d" in cli:
            rel = cli[cli.index("-d") + 1].replace("<share:depth_nodes>/", "")
            assert rel in share, f"{path.name}: rviz config {rel} is not installed"
        if exe == "stereo_depth_node":
            for src, dst in resolve(node.kw.get("remappings", []), args, share):
                assert src in subs | pubs, f"{path.name}: remaps {src}, which the node does not use"
                assert dst, src
            assert {src for src, _ in node.kw["remappings"]} == subs, "every input should be remappable"


@pytest.mark.parametrize("path", [REPO / "rviz/stereo_depth.rviz"], ids=lambda p: p.name)  # perception.rviz: see
# test_perception_launch.py
def test_rviz_config_shows_topics_that_exist(path, stereo_node_topics):
    subs, pubs = stereo_node_topics
    cfg = yaml.safe_load(path.read_text())
    displays = cfg["Visualization Manager"]["Displays"]
    topics = [d["Topic"]["Value"] for d in displays if "Topic" in d]
    recorded = load_launch(REPO / "launch/stereo_depth.launch.py")
    ns = recorded["args"]["namespace"].kw["default_value"]
    known = {f"/{ns}/{t}" for t in subs | pubs}
    for t in topics:
        assert t in known, f"{path.name}: {t} is not a topic of the stereo node under /{ns}"
    # every image/cloud output is shown
    for out in ("points2", "depth/image"):
        assert f"/{ns}/{out}" in topics
