"""Building output messages from pipeline results (PointCloud2, DisparityImage, CameraInfo)."""
from __future__ import annotations

import array

import numpy as np
from sensor_msgs.msg import CameraInfo, PointCloud2, PointField, RegionOfInterest
from stereo_msgs.msg import DisparityImage

from depth_nodes.image_encodings import byte_array
from depth_nodes.ros.image_conversion import numpy_to_image, set_byte_field

__all__ = ["cloud_to_msg", "disparity_to_msg", "camera_info_for", "MessageBuffer", "set_byte_field"]

_FIELD_NAMES = ("x", "y", "z", "rgb")


class MessageBuffer:
    """A reusable ``uint8[]`` message field: an ``array.array("B")`` with numpy views onto it.

    rclpy keeps ``uint8[]`` fields as ``array.array("B")`` and copies them into the middleware
    when ``publish`` is called, so once a message has been published its buffer can be filled
    with the next frame. Writing the next cloud straight into :meth:`view` and handing
    :attr:`data` to the message saves allocating and copying a multi-megabyte buffer per frame.
    Use one per publisher, from one thread.
    """

    def __init__(self) -> None:
        self.data = array.array("B")

    def view(self, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        """A writable C-contiguous array of ``shape``/``dtype`` backed by :attr:`data`."""
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if len(self.data) != nbytes:
            self.data = array.array("B", bytes(nbytes))
        return np.frombuffer(self.data, dtype=dtype).reshape(shape)


def cloud_to_msg(cloud: np.ndarray, header, buffer: MessageBuffer | None = None) -> PointCloud2:
    """Organized float32 cloud ``(H, W, 3|4)`` (see :mod:`depth_nodes.geometry.pointcloud`) -> PointCloud2.

    Fields ``x, y, z`` (and ``rgb``) are FLOAT32 at offsets 0/4/8/12, little-endian,
    ``is_dense = False`` (NaN points mark invalid pixels). If ``cloud`` is a view of ``buffer``
    (see :class:`MessageBuffer`), the buffer becomes the message data without a copy.
    """
    if cloud.dtype != np.float32 or cloud.ndim != 3 or cloud.shape[2] not in (3, 4):
        raise ValueError(f"cloud must be (H, W, 3|4) float32, got {cloud.shape} {cloud.dtype}")
    h, w, c = cloud.shape
    msg = PointCloud2()
    msg.header = header
    msg.height, msg.width = h, w
    msg.fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                  for i, n in enumerate(_FIELD_NAMES[:c])]
    msg.is_bigendian = False
    msg.point_step = 4 * c
    msg.row_step = msg.point_step * w
    msg.is_dense = False
    if buffer is not None and len(buffer.data) == cloud.nbytes and np.shares_memory(cloud, np.frombuffer(buffer.data, np.uint8)):
        set_byte_field(msg, "data", buffer.data)
    else:
        msg.data = byte_array(cloud)
    return msg


def disparity_to_msg(disparity: np.ndarray, header, *, f: float, baseline: float, doffs: float,
                     min_disparity: float, max_disparity: float, delta_d: float) -> DisparityImage:
    """stereo_msgs/DisparityImage following its definition.

    The published disparities are adjusted for the principal-point offset,
    ``d = x_l - x_r - (cx_l - cx_r)``, so that ``Z = f*T/d``; the search bounds are adjusted the
    same way. Invalid pixels are set below ``min_disparity`` (``min_disparity - 1``), as the
    message defines ("any disparity less than min_disparity is invalid").
    """
    d = disparity - np.float32(doffs)
    lo, hi = float(min_disparity - doffs), float(max_disparity - doffs)
    valid = np.isfinite(d)
    d = np.where(valid, d, np.float32(lo - 1.0)).astype(np.float32, copy=False)
    msg = DisparityImage()
    msg.header = header
    msg.image = numpy_to_image(d, "32FC1", header)
    msg.f = float(f)
    msg.t = float(baseline)
    rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
    if rows.size:
        msg.valid_window = RegionOfInterest(x_offset=int(cols[0]), y_offset=int(rows[0]),
                                            width=int(cols[-1] - cols[0] + 1), height=int(rows[-1] - rows[0] + 1))
    msg.min_disparity = lo
    msg.max_disparity = hi
    msg.delta_d = float(delta_d)
    return msg


def camera_info_for(info: CameraInfo, header) -> CameraInfo:
    """A copy of ``info`` with ``header`` (for ``depth/camera_info`` next to ``depth/image``)."""
    out = CameraInfo()
    out.header = header
    for name in ("height", "width", "distortion_model", "d", "k", "r", "p", "binning_x", "binning_y", "roi"):
        setattr(out, name, getattr(info, name))
    return out
