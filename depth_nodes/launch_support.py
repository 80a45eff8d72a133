"""What the launch files in ``launch/`` decide at launch time: which nodes start, and rviz2's config.

Plain functions of the launch arguments' values (strings, as ``context.launch_configurations``
holds them), tested without ``launch``; the launch files wrap them in ``Condition`` predicates and
an ``OpaqueFunction`` (:func:`rviz_action`, which imports ``launch``/``launch_ros`` when called).

* :func:`node_switch`: ``use_<node>`` is ``true``, ``false`` or ``auto``; ``auto`` starts the node
  when every file it needs is given and exists, an empty model path counting as the package's
  shipped model of that kind where there is one (:func:`launch_paths`). The tracker needs a
  keypoint reference file, which a new user does not have: the full launch still starts.
* :func:`common_arguments`: the launch arguments every launch file declares (``managed``,
  ``use_sim_time``, ``image_transport``, ``use_rviz``, ``rviz_config``, ``fixed_frame``, ``log_level``).
* :func:`rviz_config_text`: the rviz2 config shipped for the default namespaces and topics,
  rewritten for the launched ones (each display's ``Topic: Value:``) and the ``fixed_frame``
  argument; :func:`write_rviz_config` writes it to a temporary file for ``rviz2 -d``.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Callable, Mapping

__all__ = ["TRUE", "as_bool", "node_switch", "namespace_prefix", "rviz_config_text", "write_rviz_config",
           "launch_paths", "switch_condition", "rviz_action", "switch_report_action", "common_arguments"]

TRUE = ("true", "1", "yes", "on")
SWITCH_CHOICES = ("true", "false", "auto")


def as_bool(value: str) -> bool:
    """A launch argument's boolean value (``true``/``1``/``yes``/``on``, any case)."""
    return str(value).strip().lower() in TRUE


def node_switch(choice: str, required: Mapping[str, str]) -> tuple[bool, str]:
    """``(start, why)`` for a node switch ``use_<node>:=true|false|auto``.

    ``required`` maps each launch argument the node needs to its value (a file path). ``true``
    starts the node whatever they hold (the node itself reports a missing file and exits 2);
    ``auto`` starts it only when every path is non-empty and an existing file; ``false`` never.
    """
    choice = str(choice).strip().lower()
    if choice not in SWITCH_CHOICES:
        raise ValueError(f"must be one of {', '.join(SWITCH_CHOICES)}, got {choice!r}")
    if choice == "false":
        return False, "switched off"
    if choice == "true":
        return True, "switched on"
    for arg, path in required.items():
        if not path:
            return False, f"auto: no {arg} given"
        if not os.path.isfile(path):
            return False, f"auto: {arg} {path} does not exist"
    return True, "auto: " + ", ".join(f"{a} {p}" for a, p in required.items()) if required else "auto"


def namespace_prefix(namespace: str) -> str:
    """``"mono"``, ``"/mono"``, ``"/mono/"`` -> ``"/mono/"``; ``""`` -> ``"/"``."""
    ns = namespace.strip("/")
    return f"/{ns}/" if ns else "/"


_TOPIC = re.compile(r"^(\s*Value:\s*)(/\S*)\s*$")
_FRAME = re.compile(r"^(\s*Fixed Frame:\s*)(\S+)\s*$")


def rviz_config_text(template: str, topics: Mapping[str, str], fixed_frame: str | None = None) -> str:
    """``template`` (an rviz2 YAML config) with its topics and fixed frame replaced.

    ``topics`` maps a topic of the template, or a prefix ending in ``/``, to the launched one: each
    ``Value: /...`` line takes the exact match, else the longest matching prefix, else stays.
    ``Fixed Frame:`` becomes ``fixed_frame`` when given. Line-based, so the rest of the file
    (comments, layout) is kept byte for byte.
    """
    prefixes = sorted((k for k in topics if k.endswith("/")), key=len, reverse=True)
    out = []
    for line in template.splitlines(keepends=True):
        end = "\n" if line.endswith("\n") else ""
        m = _TOPIC.match(line.rstrip("\n"))
        if m:
            topic = m.group(2)
            if topic in topics:
                topic = topics[topic]
            else:
                for p in prefixes:
                    if topic.startswith(p):
                        topic = topics[p] + topic[len(p):]
                        break
            line = m.group(1) + topic + end
        elif fixed_frame:
            f = _FRAME.match(line.rstrip("\n"))
            if f:
                line = f.group(1) + fixed_frame + end
        out.append(line)
    return "".join(out)


def write_rviz_config(template_path: str, topics: Mapping[str, str], fixed_frame: str | None = None) -> str:
    """:func:`rviz_config_text` of the file ``template_path``, written to a new temporary file; its path."""
    text = rviz_config_text(Path(template_path).read_text(), topics, fixed_frame)
    folder = tempfile.mkdtemp(prefix="depth_nodes_rviz_")
    path = os.path.join(folder, Path(template_path).name)
    with open(path, "w") as f:
        f.write(text)
    return path


def launch_paths(values: Mapping[str, str], required_args: tuple[str, ...],
                 shipped: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{arg: path}`` of the files a node needs, from the launch arguments' ``values``; an empty
    argument named in ``shipped`` (``{arg: kind}``) becomes the shipped model of that kind
    (:func:`depth_nodes.shipped_models.shipped_model`), when this installation has one."""
    from depth_nodes.shipped_models import shipped_model

    out = {}
    for arg in required_args:
        path = values.get(arg, "")
        if not path and shipped and arg in shipped:
            default = shipped_model(shipped[arg])
            path = str(default) if default is not None else ""
        out[arg] = path
    return out


def switch_condition(switch_arg: str, required_args: tuple[str, ...] = (), shipped: Mapping[str, str] | None = None):
    """A ``launch.Condition`` true when :func:`node_switch` starts the node (import needs ``launch``)."""
    from launch import Condition

    def predicate(context) -> bool:
        cfg = context.launch_configurations
        return node_switch(cfg[switch_arg], launch_paths(cfg, required_args, shipped))[0]

    return Condition(predicate=predicate)


def rviz_action(config_arg: str, topics: Callable[[Mapping[str, str]], Mapping[str, str]]):
    """An ``OpaqueFunction`` that starts rviz2 (when ``use_rviz`` is true) with the config named by the
    launch argument ``config_arg``, rewritten by ``topics(launch_configurations)`` and
    ``fixed_frame`` (import needs ``launch``/``launch_ros``)."""
    from launch.actions import OpaqueFunction

    def start(context):
        from launch_ros.actions import Node

        cfg = context.launch_configurations
        if not as_bool(cfg.get("use_rviz", "false")):
            return []
        frame = cfg.get("fixed_frame", "")
        path = write_rviz_config(cfg[config_arg], topics(cfg), frame or None)
        return [Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
                     arguments=["-d", path] + (["-f", frame] if frame else []),
                     parameters=[{"use_sim_time": as_bool(cfg.get("use_sim_time", "false"))}])]

    return OpaqueFunction(function=start)


def switch_report_action(switches: tuple[tuple[str, str, tuple[str, ...], Mapping[str, str]], ...]):
    """An ``OpaqueFunction`` logging, for each ``(node, switch_arg, required_args, shipped)``, whether
    the node starts and why (:func:`node_switch`), so a node left out by ``auto`` is never a silent
    surprise."""
    from launch.actions import LogInfo, OpaqueFunction

    def report(context):
        cfg = context.launch_configurations
        lines = []
        for node, switch, required, shipped in switches:
            start, why = node_switch(cfg[switch], launch_paths(cfg, required, shipped))
            lines.append(f"{node}: {'starting' if start else 'not started'} ({switch}: {why})"
                         + ("" if start else f"; {switch}:=true to start it anyway"))
        return [LogInfo(msg=line) for line in lines]

    return OpaqueFunction(function=report)


def common_arguments(rviz_file: str, *, fixed_frame: str = "camera_optical_frame",
                     frame_text: str = "the camera's optical frame, or one TF connects it to",
                     several: bool = False) -> list:
    """The ``DeclareLaunchArgument`` actions every launch file has: ``managed``, ``use_sim_time``,
    ``image_transport``, ``use_rviz``, ``rviz_config`` (default: ``rviz/<rviz_file>`` of the installed
    package), ``fixed_frame`` (default ``fixed_frame``, described as ``rviz2's fixed frame
    (<frame_text>)``) and ``log_level``; ``several``: the launch file starts several nodes (import
    needs ``launch``/``launch_ros``)."""
    from launch.actions import DeclareLaunchArgument
    from launch.substitutions import PathJoinSubstitution
    from launch_ros.substitutions import FindPackageShare

    return [
        DeclareLaunchArgument("managed", default_value="false",
                              description="Start the nodes as lifecycle nodes (--managed): unconfigured until a "
                                          "lifecycle manager (nav2's lifecycle_manager, ros2 lifecycle set) "
                                          "configures and activates them."),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="Use /clock (a recording played with depth-nodes play --clock)."),
        DeclareLaunchArgument("image_transport", default_value="raw",
                              description="raw, or compressed: " + ("the nodes subscribe" if several else "subscribe")
                                          + " to <image>/compressed."),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="Start rviz2 with " + ("every output." if several else "the outputs.")),
        DeclareLaunchArgument("rviz_config",
                              default_value=PathJoinSubstitution([FindPackageShare("depth_nodes"), "rviz", rviz_file]),
                              description="rviz2 configuration (its topics and fixed frame are set from the "
                                          "arguments)."),
        DeclareLaunchArgument("fixed_frame", default_value=fixed_frame,
                              description=f"rviz2's fixed frame ({frame_text})."),
        DeclareLaunchArgument("log_level", default_value="info",
                              description="Log level of the nodes." if several else "Node log level."),
    ]
