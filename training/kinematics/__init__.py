"""Camera poses from recordings: rigid transforms, an offline TF buffer, URDF forward kinematics.

* :mod:`.transforms` - quaternion ``(x, y, z, w)`` / ``(4, 4)`` matrix maths, SLERP.
* :mod:`.tf_buffer` - :class:`TfBuffer` from ``/tf`` + ``/tf_static`` with interpolated lookups.
* :mod:`.urdf_fk` - :class:`UrdfKinematics` (yourdfpy) and :class:`JointStateTrack`.
* :mod:`.camera_poses` - pose sources (TF / FK) and camera poses for every image of a bag.
"""
from depth_training.kinematics.tf_buffer import (
    TfBuffer,
    TfConnectivityError,
    TfError,
    TfExtrapolationError,
    TfGapError,
    TfTreeError,
)
from depth_training.kinematics.timeseries import ExtrapolationError, GapError
from depth_training.kinematics.transforms import (
    interpolate_transform,
    invert_transform,
    make_transform,
    matrix_to_quat,
    pose_error,
    quat_slerp,
    quat_to_matrix,
)
from depth_training.kinematics.urdf_fk import (
    JointStateExtrapolationError,
    JointStateGapError,
    JointStateTrack,
    UrdfError,
    UrdfKinematics,
)

__all__ = [
    "ExtrapolationError",
    "GapError",
    "JointStateExtrapolationError",
    "JointStateGapError",
    "JointStateTrack",
    "TfBuffer",
    "TfConnectivityError",
    "TfError",
    "TfExtrapolationError",
    "TfGapError",
    "TfTreeError",
    "UrdfError",
    "UrdfKinematics",
    "interpolate_transform",
    "invert_transform",
    "make_transform",
    "matrix_to_quat",
    "pose_error",
    "quat_slerp",
    "quat_to_matrix",
]
