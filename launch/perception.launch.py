"""Launch the three perception nodes together (and optionally rviz2 with every output).

    ros2 launch depth_nodes perception.launch.py \
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info \
        mono_model_path:=/models/depth.onnx \
        descriptor_model_path:=/models/descriptors.onnx reference_path:=/models/mug_keypoints.npz \
        left_image:=/stereo/left/image_rect right_image:=/stereo/right/image_rect \
        left_camera_info:=/stereo/left/camera_info right_camera_info:=/stereo/right/camera_info \
        use_rviz:=true

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

# (launch argument, default, description)
CAMERA_ARGS = (
    ("image", "/camera/image_raw", "Camera image for the mono depth and descriptor nodes."),
    ("camera_info", "/camera/camera_info", "camera_info of that camera."),
    ("sparse_depth", "/camera/sparse_depth", "Sparse metric depth for the mono node's scale_mode align."),
    ("depth_image", "/camera/depth/image", "Depth camera image registered to image (same stamps), for the tracker's 3D "
     "keypoints; /<mono_namespace>/depth/image = the mono node's depth, one frame late unless it arrives within the "
     "tracker's depth_wait_s."),
)
STEREO_REMAPS = (
    ("left/image_rect", "left_image", "/stereo/left/image_rect", "Rectified left image topic."),
    ("left/camera_info", "left_camera_info", "/stereo/left/camera_info", "Left camera_info topic."),
    ("right/image_rect", "right_image", "/stereo/right/image_rect", "Rectified right image topic."),
    ("right/camera_info", "right_camera_info", "/stereo/right/camera_info", "Right camera_info topic."),
)
PATH_ARGS = (
    ("mono_model_path", "Depth network of the mono node (.onnx, .engine/.plan, .pt2)."),
    ("mono_description_path", "Its description (.json/.yaml); empty = the sidecar next to it."),
    ("descriptor_model_path", "Descriptor network of the tracker node."),
    ("descriptor_description_path", "Its description (.json/.yaml); empty = the sidecar next to it."),
    ("reference_path", "Keypoint reference file (.npz) made with the descriptor network."),
)


def _str(name):
    return ParameterValue(LaunchConfiguration(name), value_type=str)


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
        DeclareLaunchArgument("use_stereo", default_value="true", description="Start stereo_depth_node."),
        DeclareLaunchArgument("use_rviz", default_value="false", description="Start rviz2 with every output."),
        DeclareLaunchArgument("rviz_config", default_value=PathJoinSubstitution([share, "rviz", "perception.rviz"]),
                              description="rviz2 configuration."),
        DeclareLaunchArgument("log_level", default_value="info", description="Log level of the nodes."),
    ]
    arguments += [DeclareLaunchArgument(a, default_value=d, description=t) for a, d, t in CAMERA_ARGS]
    arguments += [DeclareLaunchArgument(a, default_value=d, description=t) for _, a, d, t in STEREO_REMAPS]
    arguments += [DeclareLaunchArgument(a, default_value="", description=t) for a, t in PATH_ARGS]
    log = ["--ros-args", "--log-level", cfg("log_level")]

    mono = Node(
        package="depth_nodes", executable="mono_depth_node", name="mono_depth_node",
        namespace=cfg("mono_namespace"),
        parameters=[cfg("mono_config"),
                    {"model_path": _str("mono_model_path"), "description_path": _str("mono_description_path")}],
        remappings=[("image", cfg("image")), ("camera_info", cfg("camera_info")),
                    ("sparse_depth", cfg("sparse_depth"))],
        arguments=log, output="screen")
    tracker = Node(
        package="depth_nodes", executable="descriptor_tracker_node", name="descriptor_tracker_node",
        namespace=cfg("tracker_namespace"),
        parameters=[cfg("tracker_config"),
                    {"model_path": _str("descriptor_model_path"),
                     "description_path": _str("descriptor_description_path"),
                     "reference_path": _str("reference_path"),
                     "use_depth": ParameterValue(cfg("tracker_use_depth"), value_type=bool)}],
        remappings=[("image", cfg("image")), ("camera_info", cfg("camera_info")),
                    ("depth/image", cfg("depth_image"))],
        arguments=log, output="screen")
    stereo = Node(
        package="depth_nodes", executable="stereo_depth_node", name="stereo_depth_node",
        namespace=cfg("stereo_namespace"), parameters=[cfg("stereo_config")],
        remappings=[(topic, cfg(arg)) for topic, arg, _, _ in STEREO_REMAPS],
        condition=IfCondition(cfg("use_stereo")), arguments=log, output="screen")
    rviz = Node(
        package="rviz2", executable="rviz2", name="rviz2", arguments=["-d", cfg("rviz_config")],
        condition=IfCondition(cfg("use_rviz")), output="screen")
    return LaunchDescription(arguments + [mono, tracker, stereo, rviz])
