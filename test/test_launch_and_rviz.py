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
        self.enabled = True  # nodes: their condition, evaluated by load_launch


def _fake_launch_modules():
    recorded = {"args": {}, "nodes": [], "opaque": [], "logs": []}

    def action(kind):
        def make(*args, **kw):
            obj = _Sub(kind, *args, **kw)
            if kind == "DeclareLaunchArgument":
                recorded["args"][args[0]] = obj
            if kind == "Node":
                recorded["nodes"].append(obj)
            if kind == "OpaqueFunction":
                recorded["opaque"].append(obj)
            if kind == "LogInfo":
                recorded["logs"].append(kw["msg"])
            return obj
        return make

    mods = {}
    for name, attrs in {
        "launch": ["LaunchDescription", "Condition"],
        "launch.actions": ["DeclareLaunchArgument", "GroupAction", "IncludeLaunchDescription", "OpaqueFunction",
                           "LogInfo"],
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


def resolve(value, values: dict, share=None):
    """A launch value with every substitution resolved against ``values`` (argument name -> string):
    lists of text/substitutions are joined, as launch does; ParameterValue(bool) becomes a bool."""
    if isinstance(value, _Sub):
        if value.kind == "LaunchConfiguration":
            name = value.args[0]
            assert name in values, f"LaunchConfiguration({name!r}) is not declared (before its use)"
            return values[name]
        if value.kind == "PathJoinSubstitution":
            return "/".join(resolve(p, values) for p in value.args[0])
        if value.kind == "FindPackageShare":
            return f"<share:{value.args[0]}>"
        if value.kind == "TextSubstitution":
            return value.kw["text"]
        if value.kind == "ParameterValue":
            raw = resolve(value.args[0], values)
            return raw.lower() == "true" if value.kw.get("value_type") is bool else raw
        raise AssertionError(f"unexpected substitution {value.kind}")
    if isinstance(value, list) and value and all(isinstance(v, (str, _Sub)) for v in value):
        return "".join(resolve(v, values) for v in value)
    if isinstance(value, (list, tuple)):
        return type(value)(resolve(v, values) for v in value)
    if isinstance(value, dict):
        return {k: resolve(v, values) for k, v in value.items()}
    return value


def _enabled(condition, values, context) -> bool:
    if condition is None:
        return True
    if condition.kind == "Condition":
        return bool(condition.kw["predicate"](context))
    flag = str(resolve(condition.args[0], values)).lower() in ("true", "1")
    return flag if condition.kind == "IfCondition" else not flag


def load_launch(path: Path, overrides: dict | None = None):
    """Run ``path`` against the stand-in: ``{"args", "values", "nodes", "logs"}`` with every argument
    resolved (defaults in declaration order, ``overrides`` as given on the command line), the
    OpaqueFunctions run and each node's ``enabled`` set from its condition."""
    mods, recorded = _fake_launch_modules()
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.generate_launch_description()
        values = {}
        for name, arg in recorded["args"].items():
            values[name] = (overrides or {}).get(name, resolve(arg.kw["default_value"], values))
        unknown = set(overrides or {}) - set(values)
        assert not unknown, f"{path.name} declares no arguments {sorted(unknown)}"
        context = types.SimpleNamespace(launch_configurations=dict(values))
        for op in list(recorded["opaque"]):
            op.kw["function"](context)  # Node/LogInfo actions it makes are recorded by the stand-in
        for node in recorded["nodes"]:
            node.enabled = _enabled(node.kw.get("condition"), values, context)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    recorded["values"] = values
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


LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))


def launch_with_rviz(path: Path, **overrides):
    """``load_launch`` with ``use_rviz:=true``, after checking that the default rviz config is
    installed; rviz2's config is generated from the repository's copy of that file."""
    default = load_launch(path)["values"]["rviz_config"]
    rel = default.replace("<share:depth_nodes>/", "")
    assert rel in _installed_share_files(), f"{path.name}: rviz config {rel} is not installed"
    return load_launch(path, {"use_rviz": "true", "rviz_config": str(REPO / rel), **overrides})


def rviz_of(recorded):
    """(config dict, rviz2's command line) of the one rviz2 node a launch made."""
    rviz = [n for n in recorded["nodes"] if n.kw["executable"] == "rviz2"]
    assert len(rviz) == 1, rviz
    cli = [resolve(a, recorded["values"]) for a in rviz[0].kw["arguments"]]  # one value per argument
    return yaml.safe_load(Path(cli[cli.index("-d") + 1]).read_text()), cli


def test_there_is_a_launch_file_and_an_rviz_config_per_node():
    names = {p.name for p in LAUNCH_FILES}
    for node in ("stereo_depth", "mono_depth", "descriptor_tracker"):
        assert f"{node}.launch.py" in names and (REPO / "rviz" / f"{node}.rviz").is_file(), node
        assert load_launch(REPO / "launch" / f"{node}.launch.py")["values"]["rviz_config"].endswith(f"/{node}.rviz")
    assert load_launch(REPO / "launch/perception.launch.py")["values"]["rviz_config"].endswith("/perception.rviz")


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_only_things_that_exist(path, stereo_node_topics):
    recorded = launch_with_rviz(path)
    args, values = recorded["args"], recorded["values"]
    share = _installed_share_files()
    scripts = _console_scripts()
    subs, pubs = stereo_node_topics
    assert {"config_file" if "namespace" in args else "stereo_config", "use_rviz", "use_sim_time",
            "image_transport", "fixed_frame", "rviz_config"} <= set(args)
    for a in args.values():
        assert a.kw.get("description"), f"argument {a.args[0]} has no description"
    assert not recorded["opaque"] or recorded["nodes"]
    for node in recorded["nodes"]:
        pkg, exe = node.kw["package"], node.kw["executable"]
        if pkg == "depth_nodes":
            assert exe in scripts, f"{path.name}: executable {exe} is not a console script"
        else:
            assert (pkg, exe) in EXTERNAL_EXECUTABLES, f"{path.name}: unknown executable {pkg}/{exe}"
        for p in resolve(node.kw.get("parameters", []), values):
            if isinstance(p, str):
                rel = p.replace("<share:depth_nodes>/", "")
                assert rel in share, f"{path.name}: parameter file {p} is not installed by setup.py"
                yaml.safe_load(share[rel].read_text())["/**"]["ros__parameters"]
        if exe == "stereo_depth_node":
            for src, dst in resolve(node.kw.get("remappings", []), values):
                assert src in subs | pubs, f"{path.name}: remaps {src}, which the node does not use"
                assert dst, src
            assert {src for src, _ in node.kw["remappings"]} == subs, "every input should be remappable"
    config, cli = rviz_of(recorded)
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == values["fixed_frame"]
    assert cli[cli.index("-f") + 1] == values["fixed_frame"]


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_use_sim_time_image_transport_managed_and_camera_namespace_reach_every_node(path):
    camera_arg = "stereo_camera" if path.name == "perception.launch.py" else "camera"
    recorded = load_launch(path, {"use_sim_time": "true", "image_transport": "compressed", "camera": "/robot/cam",
                                  "managed": "true",
                                  **({"stereo_camera": "/robot/pair"} if camera_arg == "stereo_camera" else {})})
    ours = [n for n in recorded["nodes"] if n.kw["package"] == "depth_nodes"]
    assert ours
    for node in ours:
        params = {}
        for p in resolve(node.kw["parameters"], recorded["values"]):
            params.update(p if isinstance(p, dict) else {})
        assert params["use_sim_time"] is True and params["image_transport"] == "compressed", node.kw["executable"]
        assert resolve(node.kw["additional_env"], recorded["values"]) == {"DEPTH_NODES_MANAGED": "true"}
        remaps = dict(resolve(node.kw["remappings"], recorded["values"]))
        if node.kw["executable"] == "stereo_depth_node":
            pair = "/robot/pair" if camera_arg == "stereo_camera" else "/robot/cam"
            assert remaps["left/image_rect"] == f"{pair}/left/image_rect", remaps
            assert remaps["right/camera_info"] == f"{pair}/right/camera_info", remaps
        else:
            assert remaps["image"] == "/robot/cam/image_raw" and remaps["camera_info"] == "/robot/cam/camera_info"
    assert load_launch(path)["values"]["use_sim_time"] == "false"
