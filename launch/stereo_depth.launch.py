"""Launch stereo_depth_node (and optionally rviz2) for one rectified stereo camera.

    ros2 launch depth_nodes stereo_depth.launch.py namespace:=stereo camera:=/camera \
        use_rviz:=true fixed_frame:=camera_left_optical_frame
    # or each topic:
    ros2 launch depth_nodes stereo_depth.launch.py \
        left_image:=/camera/left/image_rect right_image:=/camera/right/image_rect \
        left_camera_info:=/camera/left/camera_info right_camera_info:=/camera/right/camera_info

``camera`` names the stereo camera's namespace: the inputs default to
``<camera>/left/image_rect``, ``<camera>/left/camera_info``, ``<camera>/right/image_rect`` and
``<camera>/right/camera_info``. Outputs appear as <namespace>/disparity, <namespace>/depth/image,
<namespace>/depth/camera_info and <namespace>/points2. rviz2 (use_rviz:=true) opens
rviz/stereo_depth.rviz with its topics and fixed frame set from the arguments.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from depth_nodes.launch_support import common_arguments, namespace_prefix, rviz_action

# (node's own topic name, launch argument that remaps it, description)
INPUT_REMAPS = (
    ("left/image_rect", "left_image", "Rectified left image topic."),
    ("left/camera_info", "left_camera_info", "Left camera_info topic (rectified model in P)."),
    ("right/image_rect", "right_image", "Rectified right image topic."),
    ("right/camera_info", "right_camera_info", "Right camera_info topic (P[0,3] = -fx*baseline)."),
)


def _rviz_topics(cfg):
    return {"/stereo/left/image_rect": cfg["left_image"], "/stereo/": namespace_prefix(cfg["namespace"])}


def generate_launch_description():
    share = FindPackageShare("depth_nodes")
    cfg = LaunchConfiguration
    arguments = [
        DeclareLaunchArgument("namespace", default_value="stereo",
                              description="Namespace of the node and its topics."),
        DeclareLaunchArgument("camera", default_value="/stereo",
                              description="Namespace of the stereo camera's topics (the default of the four inputs)."),
        DeclareLaunchArgument("config_file",
                              default_value=PathJoinSubstitution([share, "config", "stereo_depth.yaml"]),
                              description="Parameter file (/**: ros__parameters:)."),
    ]
    arguments += common_arguments("stereo_depth.rviz", fixed_frame="left_optical_frame",
                                  frame_text="the left camera's optical frame, or one TF connects it to")
    arguments += [DeclareLaunchArgument(arg, default_value=[cfg("camera"), "/" + topic], description=text)
                  for topic, arg, text in INPUT_REMAPS]

    node = Node(
        package="depth_nodes",
        executable="stereo_depth_node",
        name="stereo_depth_node",
        namespace=cfg("namespace"),
        parameters=[cfg("config_file"),
                    {"use_sim_time": ParameterValue(cfg("use_sim_time"), value_type=bool),
                     "image_transport": ParameterValue(cfg("image_transport"), value_type=str)}],
        remappings=[(topic, cfg(arg)) for topic, arg, _ in INPUT_REMAPS],
        arguments=["--ros-args", "--log-level", cfg("log_level")],
        additional_env={"DEPTH_NODES_MANAGED": cfg("managed")},
        output="screen",
    )
    return LaunchDescription(arguments + [node, rviz_action("rviz_config", _rviz_topics)])
