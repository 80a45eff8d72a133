"""A test camera that tells the axes apart (issue 21): ``fx != fy``, the principal point off the
image centre in both axes, and a non-square image, so a formula that swaps ``x``/``y``, ``fx``/``fy``
or ``cx``/``cy``, or assumes a centred principal point, gives a different answer."""
from types import SimpleNamespace

import numpy as np

from depth_nodes.geometry.camera import PinholeCamera

WIDTH, HEIGHT = 160, 90  # centre (79.5, 44.5)
FX, FY, CX, CY = 230.0, 170.0, 97.3, 52.6
K = np.array([[FX, 0.0, CX], [0.0, FY, CY], [0.0, 0.0, 1.0]])


def camera(**kw) -> PinholeCamera:
    """The asymmetric camera (keyword arguments override ``PinholeCamera`` fields)."""
    return PinholeCamera(**{"width": WIDTH, "height": HEIGHT, "K": K, **kw})


def camera_info(**kw) -> SimpleNamespace:
    """A sensor_msgs/CameraInfo-like object of the asymmetric camera (fields overridable)."""
    base = dict(width=WIDTH, height=HEIGHT, k=K.reshape(-1).tolist(), d=[0.0] * 5,
                r=np.eye(3).reshape(-1).tolist(), p=np.hstack([K, np.zeros((3, 1))]).reshape(-1).tolist(),
                distortion_model="plumb_bob", binning_x=0, binning_y=0,
                roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0),
                header=SimpleNamespace(frame_id="asym_optical"))
    base.update(kw)
    return SimpleNamespace(**base)
