"""Launch the three perception nodes together (and optionally rviz2 with every output).

    ros2 launch depth_nodes perception.launch.py          # starts what it can without models
    ros2 launch depth_nodes perception.launch.py \
        camera:=/camera/color mono_model_path:=/models/depth.onnx \
        descriptor_model_path:=/models/descriptors.onnx reference_path:=/models/mug_keypoints.npz \
        stereo_camera:=/stereo use_rviz:=true fixed_frame:=camera_color_optical_frame

Which nodes start: ``use_mono``, ``use_tracker`` (``auto``: when their model and reference files
are given and exist; an empty ``mono_model_path`` / ``descriptor_model_path`` is the shipped model) and
``use_stereo`` (``true``); each decision is logged with its reason.
Topics: ``camera`` / ``stereo_camera`` name the cameras' namespaces (``<camera>/image_raw``,
``<camera>/camera_info``, ``<stereo_camera>/left/image_rect``, ...); each topic has its own
argument too. ``use_sim_time:=true`` for a recording played with ``depth-nodes play --clock``;
``image_transport`` is passed to every node.

* ``mono_depth_node`` in ``mono_namespace`` on ``image``/``camera_info``;
* ``descriptor_tracker_node`` in ``tracker_namespace`` on the same camera, with 3D keypoint
  positions from the registered depth camera image ``depth_image`` when ``tracker_use_depth`` is
  true (paired by stamp). ``depth_image:=/<mono_namespace>/depth/image`` uses the mono node's
  depth instead: it exists only after the mono node's inference on the same image, so the
  tracker waits ``depth_wait_s`` for it and otherwise takes the previous frame's (one frame late);
* ``stereo_depth_node`` in ``stereo_namespace`` on the rectified pair (``use_stereo:=false`` to leave
  it out).

Each node reads its own parameter file (``mono_config``, ``tracker_config``, ``stereo_config``).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from depth_nodes.launch_support import (common_arguments, namespace_prefix, rviz_action, switch_condition,
                                        switch_report_action)

# (launch argument, default, description)
# (launch argument, default under the camera namespace argument "camera", description)
CAMERA_ARGS = (
    ("image", "/image_raw", "Camera image for the mono depth and descriptor nodes."),
    ("camera_info", "/camera_info", "camera_info of that camera."),
    ("sparse_depth", "/sparse_depth", "Sparse metric depth for the mono node's scale_mode align."),
    ("depth_image", "/depth/image", "Depth camera image registered to image (same stamps), for the tracker's 3D "
     "keypoints; /<mono_namespace>/depth/image = the mono node's depth, one frame late unless it arrives within the "
     "tracker's depth_wait_s."),
)
# (node's topic, launch argument, default under "stereo_camera", description)
STEREO_REMAPS = (
    ("left/image_rect", "left_image", "/left/image_rect", "Rectified left image topic."),
    ("left/camera_info", "left_camera_info", "/left/camera_info", "Left camera_info topic."),
    ("right/image_rect", "right_image", "/right/image_rect", "Rectified right image topic."),
    ("right/camera_info", "right_camera_info", "/right/camera_info", "Right camera_info topic."),
)
# (node, switch argument, the file arguments it needs for "auto", {argument: shipped model kind used when it is empty})
SWITCHES = (
    ("mono_depth_node", "use_mono", ("mono_model_path",), {"mono_model_path": "mono_depth"}),
    ("descriptor_tracker_node", "use_tracker", ("descriptor_model_path", "reference_path"),
     {"descriptor_model_path": "descriptors"}),
)
PATH_ARGS = (
    ("mono_model_path", "Depth network of the mono node (.onnx, .engine/.plan, .pt2; empty: the shipped "
                        "relative-depth model)."),
    ("mono_description_path", "Its description (.json/.yaml); empty = the sidecar next to it."),
    ("descriptor_model_path", "Descriptor network of the tracker node (empty: the shipped descriptor model)."),
    ("descriptor_description_path", "Its description (.json/.yaml); empty = the sidecar next to it."),
    ("reference_path", "Keypoint reference file (.npz) made with the descriptor network."),
)


def _str(name):
    return ParameterValue(LaunchConfiguration(name), value_type=str)


def _common():
    """Parameters every node gets from the launch arguments."""
    return {"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
            "image_transport": _str("image_transport")}


def _env():
    """Environment every node gets from the launch arguments (managed: DEPTH_NODES_MANAGED)."""
    return {"DEPTH_NODES_MANAGED": LaunchConfiguration("managed")}


def _rviz_topics(cfg):
    return {"/mono/": namespace_prefix(cfg["mono_namespace"]), "/tracker/": namespace_prefix(cfg["tracker_namespace"]),
            "/stereo/": namespace_prefix(cfg["stereo_namespace"]), "/camera/image_raw": cfg["image"]}


def generate_launch_description():
    share = FindPackageShare("depth_nodes")
    cfg = LaunchConfiguration
    arguments = [
        DeclareLaunchArgument("mono_namespace", default_value="mono", description="Namespace of mono_depth_node."),
        DeclareLaunchArgument("tracker_namespace", default_value="tracker",
                              description="Namespace of descriptor_tracker_node."),
        DeclareLaunchArgument("stereo_namespace", default_value="stereo",
                              description="Namespace of stereo_depth_node."),
        DeclareLaunchArgument("mono_config", default_value=PathJoinSubstitution([share, "config", "mono_depth.yaml"]),
                              description="Parameter file of mono_depth_node."),
        DeclareLaunchArgument("tracker_config",
                              default_value=PathJoinSubstitution([share, "config", "descriptor_tracker.yaml"]),
                              description="Parameter file of descriptor_tracker_node."),
        DeclareLaunchArgument("stereo_config",
                              default_value=PathJoinSubstitution([share, "config", "stereo_depth.yaml"]),
                              description="Parameter file of stereo_depth_node."),
        DeclareLaunchArgument("tracker_use_depth", default_value="true",
                              description="Keypoints get 3D positions from depth_image."),
        DeclareLaunchArgument("use_mono", default_value="auto",
                              description="Start mono_depth_node: true, false, or auto (when mono_model_path "
                                          "exists, or is empty and a shipped mono depth model is installed)."),
        DeclareLaunchArgument("use_tracker", default_value="auto",
                              description="Start descriptor_tracker_node: true, false, or auto (when "
                                          "reference_path is given and exists, and descriptor_model_path exists "
                                          "or is empty and a shipped descriptor model is installed)."),
        DeclareLaunchArgument("use_stereo", default_value="true", description="Start stereo_depth_node."),
        DeclareLaunchArgument("camera", default_value="/camera",
                              description="Namespace of the camera's topics (the default of image, camera_info, "
                                          "sparse_depth)."),
        DeclareLaunchArgument("stereo_camera", default_value="/stereo",
                              description="Namespace of the stereo camera's topics (the default of left_image, "
                                          "left_camera_info, right_image, right_camera_info)."),
    ]
    arguments += common_arguments("perception.rviz", frame_text="a frame TF connects to every camera",
                                  several=True)
    arguments += [DeclareLaunchArgument(a, default_value=[cfg("camera"), d], description=t) for a, d, t in CAMERA_ARGS]
    arguments += [DeclareLaunchArgument(a, default_value=[cfg("stereo_camera"), d], description=t)
                  for _, a, d, t in STEREO_REMAPS]
    arguments += [DeclareLaunchArgument(a, default_value="", description=t) for a, t in PATH_ARGS]
    log = ["--ros-args", "--log-level", cfg("log_level")]

    mono = Node(
        package="depth_nodes", executable="mono_depth_node", name="mono_depth_node",
        namespace=cfg("mono_namespace"),
        parameters=[cfg("mono_config"),
                    {"model_path": _str("mono_model_path"), "description_path": _str("mono_description_path")},
                    _common()],
        remappings=[("image", cfg("image")), ("camera_info", cfg("camera_info")),
                    ("sparse_depth", cfg("sparse_depth"))],
        condition=switch_condition(*SWITCHES[0][1:]), arguments=log, additional_env=_env(),
        output="screen")
    tracker = Node(
        package="depth_nodes", executable="descriptor_tracker_node", name="descriptor_tracker_node",
        namespace=cfg("tracker_namespace"),
        parameters=[cfg("tracker_config"),
                    {"model_path": _str("descriptor_model_path"),
                     "description_path": _str("descriptor_description_path"),
                     "reference_path": _str("reference_path"),
                     "use_depth": ParameterValue(cfg("tracker_use_depth"), value_type=bool)},
                    _common()],
        remappings=[("image", cfg("image")), ("camera_info", cfg("camera_info")),
                    ("depth/image", cfg("depth_image"))],
        condition=switch_condition(*SWITCHES[1][1:]), arguments=log, additional_env=_env(),
        output="screen")
    stereo = Node(
        package="depth_nodes", executable="stereo_depth_node", name="stereo_depth_node",
        namespace=cfg("stereo_namespace"), parameters=[cfg("stereo_config"), _common()],
        remappings=[(topic, cfg(arg)) for topic, arg, _, _ in STEREO_REMAPS],
        condition=IfCondition(cfg("use_stereo")), arguments=log, additional_env=_env(), output="screen")
    return LaunchDescription(arguments + [switch_report_action(SWITCHES), mono, tracker, stereo,
                                          rviz_action("rviz_config", _rviz_topics)])
