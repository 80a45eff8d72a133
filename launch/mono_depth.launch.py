"""Launch mono_depth_node (and optionally rviz2) for one camera.

    ros2 launch depth_nodes mono_depth.launch.py model_path:=/models/depth.onnx \
        camera:=/camera/color use_rviz:=true fixed_frame:=camera_color_optical_frame
    # the shipped relative-depth model (no model_path), in metres from a depth camera:
    ros2 launch depth_nodes mono_depth.launch.py camera:=/camera/color config_file:=/my/mono_align.yaml \
        sparse_depth:=/camera/depth/image_rect_raw          # (the file sets scale_mode: align)
    # a relative model aligned to a depth camera every frame:
    ros2 launch depth_nodes mono_depth.launch.py model_path:=/models/midas.onnx \
        description_path:=/models/midas.yaml config_file:=/my/mono_align.yaml \
        sparse_depth:=/camera/depth/image_rect_raw          # (the file sets scale_mode: align)
    # a recording played with `depth-nodes play BAG --clock`: use_sim_time:=true

``camera`` names the camera's namespace; ``image``, ``camera_info`` and ``sparse_depth`` default to
``<camera>/image_raw``, ``<camera>/camera_info`` and ``<camera>/sparse_depth`` and can each be set.
Outputs appear as <namespace>/depth/image, <namespace>/depth/points, <namespace>/depth/colorized
and <namespace>/depth/camera_info (<namespace>/depth/relative_inverse with scale_mode:=relative).
Every other parameter is in config_file (default: the package's config/mono_depth.yaml).
rviz2 (use_rviz:=true) opens rviz/mono_depth.rviz with its topics and fixed frame set from the
arguments.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from depth_nodes.launch_support import common_arguments, namespace_prefix, rviz_action

# (node's own topic name, launch argument that remaps it, default under <camera>, description)
INPUT_REMAPS = (
    ("image", "image", "/image_raw", "Camera image topic (rgb8, bgr8, rgba8, bgra8 or mono8)."),
    ("camera_info", "camera_info", "/camera_info", "camera_info topic of the image."),
    ("sparse_depth", "sparse_depth", "/sparse_depth",
     "Sparse/partial metric depth registered to the image (scale_mode align)."),
)
# (parameter, default, description): file paths given on the command line (they override config_file;
# everything else, e.g. scale_mode, backend, device, is set in config_file)
MODEL_ARGS = (
    ("model_path", "", "Depth network: .onnx, .engine/.plan or .pt2 (empty: the shipped relative-depth model; "
                       "scale_mode auto = relative, align for metres)."),
    ("description_path", "", "Model description (.json/.yaml); empty = the sidecar next to the model."),
)


def _rviz_topics(cfg):
    return {"/mono/": namespace_prefix(cfg["namespace"]), "/camera/image_raw": cfg["image"]}


def generate_launch_description():
    share = FindPackageShare("depth_nodes")
    cfg = LaunchConfiguration
    arguments = [
        DeclareLaunchArgument("namespace", default_value="mono", description="Namespace of the node and its topics."),
        DeclareLaunchArgument("camera", default_value="/camera",
                              description="Namespace of the camera's topics (the default of image, camera_info, "
                                          "sparse_depth)."),
        DeclareLaunchArgument("config_file",
                              default_value=PathJoinSubstitution([share, "config", "mono_depth.yaml"]),
                              description="Parameter file (/**: ros__parameters:)."),
    ]
    arguments += common_arguments("mono_depth.rviz")
    arguments += [DeclareLaunchArgument(arg, default_value=[cfg("camera"), suffix], description=text)
                  for _, arg, suffix, text in INPUT_REMAPS]
    arguments += [DeclareLaunchArgument(name, default_value=default, description=text)
                  for name, default, text in MODEL_ARGS]

    node = Node(
        package="depth_nodes",
        executable="mono_depth_node",
        name="mono_depth_node",
        namespace=cfg("namespace"),
        parameters=[cfg("config_file"),
                    # typed, so that an empty path stays a string
                    {name: ParameterValue(cfg(name), value_type=str) for name, _, _ in MODEL_ARGS},
                    {"use_sim_time": ParameterValue(cfg("use_sim_time"), value_type=bool),
                     "image_transport": ParameterValue(cfg("image_transport"), value_type=str)}],
        remappings=[(topic, cfg(arg)) for topic, arg, _, _ in INPUT_REMAPS],
        arguments=["--ros-args", "--log-level", cfg("log_level")],
        additional_env={"DEPTH_NODES_MANAGED": cfg("managed")},
        output="screen",
    )
    return LaunchDescription(arguments + [node, rviz_action("rviz_config", _rviz_topics)])
