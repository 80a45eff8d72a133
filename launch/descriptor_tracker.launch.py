"""Launch descriptor_tracker_node (and optionally rviz2) for one camera.

    ros2 launch depth_nodes descriptor_tracker.launch.py model_path:=/models/descriptors.onnx \
        reference_path:=/models/mug_keypoints.npz camera:=/camera/color use_rviz:=true
    # with 3D positions from a depth image registered to the camera (a config file with use_depth: true):
    ros2 launch depth_nodes descriptor_tracker.launch.py ... config_file:=/my/tracker_3d.yaml \
        depth_image:=/camera/aligned_depth_to_color/image_raw camera_info:=/camera/color/camera_info

``camera`` names the camera's namespace: ``image`` and ``camera_info`` default to
``<camera>/image_raw`` and ``<camera>/camera_info``. ``use_sim_time:=true`` for a recording played
with ``depth-nodes play --clock``. Outputs appear as <namespace>/keypoints, <namespace>/keypoints/markers, <namespace>/keypoints/image
and <namespace>/descriptors/image. Every other parameter is in config_file (default: the
package's config/descriptor_tracker.yaml). rviz2 (use_rviz:=true) opens rviz/descriptor_tracker.rviz
with its topics and fixed frame set from the arguments.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from depth_nodes.launch_support import common_arguments, namespace_prefix, rviz_action

# (node's own topic name, launch argument that remaps it, default (<camera> + suffix), description)
INPUT_REMAPS = (
    ("image", "image", ("<camera>", "/image_raw"), "Camera image topic (rgb8, bgr8, rgba8, bgra8 or mono8)."),
    ("depth/image", "depth_image", ("depth/image",), "Depth image registered to the camera (use_depth)."),
    ("camera_info", "camera_info", ("<camera>", "/camera_info"), "camera_info of the camera (use_depth)."),
)
# (parameter, default, description): file paths given on the command line (they override config_file;
# everything else, e.g. use_depth, lost_threshold, is set in config_file)
MODEL_ARGS = (
    ("model_path", "", "Descriptor network: .onnx, .engine/.plan or .pt2 (required)."),
    ("description_path", "", "Model description (.json/.yaml); empty = the sidecar next to the model."),
    ("reference_path", "", "Keypoint reference file (.npz) made with the same model (required)."),
)


def _rviz_topics(cfg):
    return {"/tracker/": namespace_prefix(cfg["namespace"]), "/camera/image_raw": cfg["image"]}


def generate_launch_description():
    share = FindPackageShare("depth_nodes")
    cfg = LaunchConfiguration
    arguments = [
        DeclareLaunchArgument("namespace", default_value="tracker",
                              description="Namespace of the node and its topics."),
        DeclareLaunchArgument("camera", default_value="/camera",
                              description="Namespace of the camera's topics (the default of image, camera_info)."),
        DeclareLaunchArgument("config_file",
                              default_value=PathJoinSubstitution([share, "config", "descriptor_tracker.yaml"]),
                              description="Parameter file (/**: ros__parameters:)."),
    ]
    arguments += common_arguments("descriptor_tracker.rviz")
    arguments += [DeclareLaunchArgument(arg, default_value=[cfg("camera") if p == "<camera>" else p for p in default],
                                        description=text)
                  for _, arg, default, text in INPUT_REMAPS]
    arguments += [DeclareLaunchArgument(name, default_value=default, description=text)
                  for name, default, text in MODEL_ARGS]

    node = Node(
        package="depth_nodes",
        executable="descriptor_tracker_node",
        name="descriptor_tracker_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("config_file"),
                    # typed, so that an empty path stays a string
                    {name: ParameterValue(LaunchConfiguration(name), value_type=str) for name, _, _ in MODEL_ARGS},
                    {"use_sim_time": ParameterValue(cfg("use_sim_time"), value_type=bool),
                     "image_transport": ParameterValue(cfg("image_transport"), value_type=str)}],
        remappings=[(topic, LaunchConfiguration(arg)) for topic, arg, _, _ in INPUT_REMAPS],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
        additional_env={"DEPTH_NODES_MANAGED": cfg("managed")},
        output="screen",
    )
    return LaunchDescription(arguments + [node, rviz_action("rviz_config", _rviz_topics)])
