"""Launch descriptor_tracker_node (and optionally rviz2) for one camera.

    ros2 launch depth_nodes descriptor_tracker.launch.py model_path:=/models/descriptors.onnx \
        reference_path:=/models/mug_keypoints.npz image:=/camera/color/image_raw use_rviz:=true
    # with 3D positions from a depth image registered to the camera (a config file with use_depth: true):
    ros2 launch depth_nodes descriptor_tracker.launch.py ... config_file:=/my/tracker_3d.yaml \
        depth_image:=/camera/aligned_depth_to_color/image_raw camera_info:=/camera/color/camera_info

Outputs appear as <namespace>/keypoints, <namespace>/keypoints/markers, <namespace>/keypoints/image
and <namespace>/descriptors/image. Every other parameter is in config_file (default: the
package's config/descriptor_tracker.yaml).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

# (node's own topic name, launch argument that remaps it, description)
INPUT_REMAPS = (
    ("image", "image", "Camera image topic (rgb8, bgr8, rgba8, bgra8 or mono8)."),
    ("depth/image", "depth_image", "Depth image registered to the camera (use_depth)."),
    ("camera_info", "camera_info", "camera_info of the camera (use_depth)."),
)
# (parameter, default, description): file paths given on the command line (they override config_file;
# everything else, e.g. use_depth, lost_threshold, is set in config_file)
MODEL_ARGS = (
    ("model_path", "", "Descriptor network: .onnx, .engine/.plan or .pt2 (required)."),
    ("description_path", "", "Model description (.json/.yaml); empty = the sidecar next to the model."),
    ("reference_path", "", "Keypoint reference file (.npz) made with the same model (required)."),
)


def generate_launch_description():
    share = FindPackageShare("depth_nodes")
    arguments = [
        DeclareLaunchArgument("namespace", default_value="tracker",
                              description="Namespace of the node and its topics."),
        DeclareLaunchArgument("config_file",
                              default_value=PathJoinSubstitution([share, "config", "descriptor_tracker.yaml"]),
                              description="Parameter file (/**: ros__parameters:)."),
        DeclareLaunchArgument("use_rviz", default_value="false", description="Start rviz2 with the outputs."),
        DeclareLaunchArgument("rviz_config",
                              default_value=PathJoinSubstitution([share, "rviz", "perception.rviz"]),
                              description="rviz2 configuration."),
        DeclareLaunchArgument("log_level", default_value="info", description="Node log level."),
    ]
    arguments += [DeclareLaunchArgument(arg, default_value=topic, description=text)
                  for topic, arg, text in INPUT_REMAPS]
    arguments += [DeclareLaunchArgument(name, default_value=default, description=text)
                  for name, default, text in MODEL_ARGS]

    node = Node(
        package="depth_nodes",
        executable="descriptor_tracker_node",
        name="descriptor_tracker_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("config_file"),
                    # typed, so that an empty path stays a string
                    {name: ParameterValue(LaunchConfiguration(name), value_type=str) for name, _, _ in MODEL_ARGS}],
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
