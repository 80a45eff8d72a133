"""Camera and stereo geometry shared by nodes and training (numpy, ROS-free)."""
from depth_nodes.geometry.camera import CameraModelError, PinholeCamera
from depth_nodes.geometry.stereo import StereoGeometryError, depth_to_disparity, disparity_to_depth

__all__ = [
    "CameraModelError",
    "PinholeCamera",
    "StereoGeometryError",
    "depth_to_disparity",
    "disparity_to_depth",
]
