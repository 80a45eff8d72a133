"""Launch stereo_depth_node (and optionally rviz2) for one rectified stereo camera.

    ros2 launch depth_nodes stereo_depth.launch.py namespace:=stereo \
        left_image:=/camera/left/image_rect right_image:=/camera/right/image_rect \
        left_camera_info:=/camera/left/camera_info right_camera_info:=/camera/right/camera_info \
        use_rviz:=true

Outputs appear as <namespace>/disparity, <namespace>/depth/image, <namespace>/depth/camera_info
and <namespace>/points2.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

# (node's own topic name, launch argument that remaps it, description)
INPUT_REMAPS = (
    ("left/image_rect", "left_image", "Rectified left image topic."),
    ("left/camera_info", "left_camera_info", "Left camera_info topic (rectified model in P)."),
    ("right/image_rect", "right_image", "Rectified right image topic."),
    ("right/camera_info", "right_camera_info", "Right camera_info topic (P[0,3] = -fx*baseline)."),
)


def generate_launch_description():
    share = FindPackageShare("depth_nodes")
    arguments = [
        DeclareLaunchArgument("namespace", default_value="stereo",
                              description="Namespace of the node and its topics."),
        DeclareLaunchArgument("config_file",
                              default_value=PathJoinSubstitution([share, "config", "stereo_depth.yaml"]),
                              description="Parameter file (/**: ros__parameters:)."),
        DeclareLaunchArgument("use_rviz", default_value="false", description="Start rviz2 with the outputs."),
        DeclareLaunchArgument("rviz_config",
                              default_value=PathJoinSubstitution([share, "rviz", "stereo_depth.rviz"]),
                              description="rviz2 configuration."),
        DeclareLaunchArgument("log_level", default_value="info", description="Node log level."),
    ]
    arguments += [DeclareLaunchArgument(arg, default_value=topic, description=text)
                  for topic, arg, text in INPUT_REMAPS]

    node = Node(
        package="depth_nodes",
        executable="stereo_depth_node",
        name="stereo_depth_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("config_file")],
        remappings=[(topic, LaunchConfiguration(arg)) for topic, arg, _ in INPUT_REMAPS],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
        output="screen",
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", LaunchConfiguration("rviz_config")],
        condition=IfCondition(LaunchConfiguration("use_rviz")),
        output="screen",
    )
    return LaunchDescription(arguments + [node, rviz])
