"""Launch mono_depth_node (and optionally rviz2) for one camera.

    ros2 launch depth_nodes mono_depth.launch.py model_path:=/models/depth.onnx \
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info use_rviz:=true
    # a relative model aligned to a depth camera every frame:
    ros2 launch depth_nodes mono_depth.launch.py model_path:=/models/midas.onnx \
        description_path:=/models/midas.yaml config_file:=/my/mono_align.yaml \
        sparse_depth:=/camera/depth/image_rect_raw          # (the file sets scale_mode: align)

Outputs appear as <namespace>/depth/image, <namespace>/depth/points, <namespace>/depth/colorized
and <namespace>/depth/camera_info (<namespace>/depth/relative_inverse with scale_mode:=relative).
Every other parameter is in config_file (default: the package's config/mono_depth.yaml).
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
    ("camera_info", "camera_info", "camera_info topic of the image."),
    ("sparse_depth", "sparse_depth", "Sparse/partial metric depth registered to the image (scale_mode align)."),
)
# (parameter, default, description): file paths given on the command line (they override config_file;
# everything else, e.g. scale_mode, backend, device, is set in config_file)
MODEL_ARGS = (
    ("model_path", "", "Depth network: .onnx, .engine/.plan or .pt2 (required)."),
    ("description_path", "", "Model description (.json/.yaml); empty = the sidecar next to the model."),
)


def generate_launch_description():
    share = FindPackageShare("depth_nodes")
    arguments = [
        DeclareLaunchArgument("namespace", default_value="mono", description="Namespace of the node and its topics."),
        DeclareLaunchArgument("config_file",
                              default_value=PathJoinSubstitution([share, "config", "mono_depth.yaml"]),
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
        executable="mono_depth_node",
        name="mono_depth_node",
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
