"""Pre- and post-processing shared by every depth backend (numpy/OpenCV, ROS-free).

Forward (:func:`preprocess`), for a camera image of ``H x W`` and a
:class:`~depth_nodes.backends.description.ModelDescription` with box ``h_n x w_n``:

1. colour order: the image's encoding (``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8``) ->
   the network's ``channels``;
2. resize to ``h_r x w_r`` by the description's ``resize`` policy (:func:`letterbox_geometry`):

   * ``fit_inside_pad``: ``s = min(h_n / H, w_n / W)``, ``(h_r, w_r) = (round(H s), round(W s))``;
   * ``stretch``: ``(h_r, w_r) = (h_n, w_n)``;
   * ``short_side`` / ``long_side`` (the ``Resize`` transform of MiDaS and Depth Anything V2 with
     ``keep_aspect_ratio=True`` and ``resize_method`` ``lower_bound`` / ``upper_bound``):
     ``s = max`` / ``min(h_n / H, w_n / W)``, each side ``c(H s)``, ``c(W s)`` with
     ``c(x) = m * round(x / m)`` (NumPy's round, half to even; ``m`` = ``multiple``), then
     ``m * ceil(x / m)`` when that is below the box side (``short_side``) or ``m * floor(x / m)``
     when above it (``long_side``); no padding;

   interpolation ``auto``: :func:`resize_image` (area averaging when shrinking, INTER_LINEAR
   when growing) on the 8-bit image; ``linear``/``cubic``/``area``: that OpenCV interpolation
   on the float image ``pixel * scale`` (the references resize ``image / 255.0``);
3. pad (letterbox, ``fit_inside_pad`` and ``stretch``): to ``(h_n, w_n)`` for fixed-size
   networks, or up to the next multiple of ``multiple`` when ``dynamic``; with ``any_orientation``
   (a dynamic network whose box turns for an image of the other orientation, ``w_n x h_n`` for a
   portrait image in a landscape box) to the turned box, as a fixed-size network of that shape; the image sits at
   ``(top, left) = ((h_p - h_r) // 2, (w_p - w_r) // 2)``, padding is 0 after normalisation
   (the mean colour);
4. normalise: ``x_c = (pixel_c * scale - mean_c) / std_c`` -> ``(1, 3, h_p, w_p)`` float32 NCHW.

Back (:func:`postprocess_depth`): crop the ``(h_r, w_r)`` window, resize to ``H x W`` (pixel
centres map to pixel centres, so the short-side / stretch scales, which differ per axis, are
undone exactly: one value per camera pixel; bilinear, where MiDaS' ``run_onnx.py`` resizes its
output with INTER_CUBIC and Depth Anything V2 bilinearly with ``align_corners=True``: sub-pixel
smoothing differences only), and turn
the output kind into metric depth (metres, float32, NaN = invalid):

* ``metric_depth``: ``z = y``;
* ``relative_depth``: ``z = scale * y``;
* ``relative_inverse_depth``: ``z = 1 / (scale * y + shift)`` (``scale``/``shift`` from a scale
  recovery step; 1 and 0 give depth up to the network's unknown affine map);
* ``disparity`` (pixels of the network input): ``d = y / s_x`` with ``s_x = w_r / W``, then
  ``z = fx * baseline / d`` (``fx`` of the camera image).

Depth ``<= 0`` or non-finite, and metric depth outside the description's
``[min_depth, max_depth]``, become NaN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from depth_nodes.backends.description import ModelDescription
from depth_nodes.geometry.stereo import disparity_to_depth
from depth_nodes.image_encodings import COLOR_ENCODINGS, encoding_problem

__all__ = ["DepthIOError", "Letterbox", "letterbox_geometry", "reference_resize_size", "INTERPOLATION_FLAGS", "to_channels", "resize_image", "preprocess",
           "crop_output", "postprocess_depth"]

# encoding -> channel order of the array (None: single channel)
_ORDERS = {"rgb8": "RGB", "bgr8": "BGR", "rgba8": "RGBA", "bgra8": "BGRA", "mono8": None, "8uc1": None,
           "rgb": "RGB", "bgr": "BGR", "rgba": "RGBA", "bgra": "BGRA", "mono": None, "gray": None}
_CONVERSIONS = {("BGR", "RGB"): cv2.COLOR_BGR2RGB, ("RGB", "BGR"): cv2.COLOR_RGB2BGR,
                ("RGBA", "RGB"): cv2.COLOR_RGBA2RGB, ("RGBA", "BGR"): cv2.COLOR_RGBA2BGR,
                ("BGRA", "RGB"): cv2.COLOR_BGRA2RGB, ("BGRA", "BGR"): cv2.COLOR_BGRA2BGR,
                (None, "RGB"): cv2.COLOR_GRAY2RGB, (None, "BGR"): cv2.COLOR_GRAY2BGR}


# description interpolation -> OpenCV flag for the float resize ("auto": resize_image on uint8)
INTERPOLATION_FLAGS = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA}


class DepthIOError(ValueError):
    """An image or network output that does not fit the model description."""


@dataclass(frozen=True)
class Letterbox:
    """Where the camera image sits in the network input.

    The camera image (``src_height x src_width``) was resized to ``resized_height x resized_width``
    and placed at ``(top, left)`` in a ``net_height x net_width`` input.
    """

    src_height: int
    src_width: int
    resized_height: int
    resized_width: int
    top: int
    left: int
    net_height: int
    net_width: int

    @property
    def scale_x(self) -> float:
        """Horizontal scale network pixels / camera pixels, ``w_r / W``."""
        return self.resized_width / self.src_width

    @property
    def scale_y(self) -> float:
        """Vertical scale ``h_r / H``."""
        return self.resized_height / self.src_height


def reference_resize_size(height: int, width: int, box_height: int, box_width: int, multiple: int,
                          method: str) -> tuple[int, int]:
    """``(h_r, w_r)`` of the MiDaS / Depth Anything V2 ``Resize`` with ``keep_aspect_ratio=True``.

    ``method`` ``"lower_bound"`` (cover the box: ``s = max(box_h / H, box_w / W)``, sides not
    below the box) or ``"upper_bound"`` (fit inside: ``s = min(...)``, sides not above the box);
    each side ``m * round(x / m)`` (half to even), corrected to ``ceil`` / ``floor`` as the
    reference's ``constrain_to_multiple_of`` does (module docstring, step 2). At least ``m``.
    """
    if method not in ("lower_bound", "upper_bound"):
        raise ValueError(f"method must be lower_bound or upper_bound, got {method!r}")
    sh, sw = box_height / height, box_width / width
    s = max(sh, sw) if method == "lower_bound" else min(sh, sw)
    m = int(multiple)

    def constrain(x: float, box: int) -> int:
        y = int(np.round(x / m) * m)
        if method == "upper_bound" and y > box:
            y = int(np.floor(x / m) * m)
        if method == "lower_bound" and y < box:
            y = int(np.ceil(x / m) * m)
        return max(m, y)

    return constrain(s * height, box_height), constrain(s * width, box_width)


def letterbox_geometry(height: int, width: int, desc: ModelDescription) -> Letterbox:
    """The :class:`Letterbox` of a ``height x width`` camera image for ``desc`` (steps 2-3 above)."""
    if height < 1 or width < 1:
        raise DepthIOError(f"image size must be positive, got {height}x{width}")
    bh, bw = desc.height, desc.width  # the box; turned with a portrait image when the network takes both
    turned = desc.any_orientation
    if turned and (height > width) != (bh > bw) and bh != bw:
        bh, bw = bw, bh
    policy = desc.resize or ("fit_inside_pad" if desc.keep_aspect else "stretch")
    if policy in ("short_side", "long_side"):
        rh, rw = reference_resize_size(height, width, bh, bw, desc.multiple,
                                       "lower_bound" if policy == "short_side" else "upper_bound")
        return Letterbox(height, width, rh, rw, 0, 0, rh, rw)
    if policy == "fit_inside_pad":
        s = min(bh / height, bw / width)
        rh, rw = max(1, int(round(height * s))), max(1, int(round(width * s)))
        rh, rw = min(rh, bh), min(rw, bw)
    else:
        rh, rw = bh, bw
    if desc.dynamic and not turned:
        m = desc.multiple
        nh, nw = int(math.ceil(rh / m) * m), int(math.ceil(rw / m) * m)
    else:
        nh, nw = bh, bw
    return Letterbox(height, width, rh, rw, (nh - rh) // 2, (nw - rw) // 2, nh, nw)


def to_channels(image: np.ndarray, encoding: str, channels: str) -> np.ndarray:
    """``image`` (``(H, W)`` or ``(H, W, 3|4)`` uint8 in ``encoding`` order) -> ``(H, W, 3)`` in ``channels``.

    Returns ``image`` itself when no conversion is needed.
    """
    key = encoding.lower()
    if key not in _ORDERS:
        raise DepthIOError(encoding_problem(encoding, COLOR_ENCODINGS))
    order = _ORDERS[key]
    if image.dtype != np.uint8:
        raise DepthIOError(f"image must be uint8, got {image.dtype}")
    want = 2 if order is None else 3
    if image.ndim == 3 and order is None and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != want or (order is not None and image.shape[2] != len(order)):
        raise DepthIOError(f"image of shape {image.shape} does not match encoding {encoding!r}")
    if order == channels:
        return image
    return cv2.cvtColor(image, _CONVERSIONS[(order, channels)])


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an ``(H, W[, C])`` image to ``height x width``, antialiased when shrinking.

    Growing: ``cv2.INTER_LINEAR``. Shrinking by ``r = min(W / width, H / height)``: when ``r < 2``
    one ``cv2.INTER_AREA`` resize. When ``r >= 2``, first box-average ``k x k`` blocks with
    ``k`` the largest integer ``2 <= k <= floor(r)`` dividing both ``W`` and ``H``
    (``INTER_AREA``'s integer-factor path, an exact mean), then ``INTER_LINEAR`` for the remaining
    factor ``r / k`` (mostly below 2, where bilinear hardly aliases); with no such ``k``, one
    ``INTER_AREA``. A 640x480 ->
    256x192 resize takes 0.3 ms instead of 1.4 ms with one non-integer ``INTER_AREA``; on camera
    images the two differ by about 2 grey levels on average (``test_depth_io``).
    """
    src_h, src_w = image.shape[:2]
    if (src_h, src_w) == (height, width):
        return image
    if width >= src_w and height >= src_h:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    k = int(min(src_w / width, src_h / height))
    while k >= 2 and (src_w % k or src_h % k):
        k -= 1
    if k >= 2:
        image = cv2.resize(image, (src_w // k, src_h // k), interpolation=cv2.INTER_AREA)
        if image.shape[:2] == (height, width):
            return image
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def preprocess(image_hwc_uint8: np.ndarray, encoding_or_order: str, desc: ModelDescription,
               out: np.ndarray | None = None) -> tuple[np.ndarray, Letterbox]:
    """Camera image -> network input (see module docstring).

    Args:
        image_hwc_uint8: ``(H, W, 3|4)`` or ``(H, W)`` uint8.
        encoding_or_order: ROS encoding (``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8``) or
            ``"RGB"``/``"BGR"``.
        desc: the network's description.
        out: optional ``(1, 3, h_p, w_p)`` float32 buffer to fill (reused between frames).

    Returns:
        ``(x, letterbox)``: ``x`` ``(1, 3, h_p, w_p)`` float32, C-contiguous.
    """
    img = to_channels(np.asarray(image_hwc_uint8), encoding_or_order, desc.channels)
    lb = letterbox_geometry(img.shape[0], img.shape[1], desc)
    shape = (1, 3, lb.net_height, lb.net_width)
    if out is None or out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        out = np.zeros(shape, np.float32)
    elif (lb.resized_height, lb.resized_width) != (lb.net_height, lb.net_width):
        out.fill(0.0)
    std = np.asarray(desc.std, np.float32)
    offset = -np.asarray(desc.mean, np.float32) / std
    flag = INTERPOLATION_FLAGS.get(getattr(desc, "interpolation", "auto"))
    if flag is None:
        img = resize_image(img, lb.resized_width, lb.resized_height)
        gain = np.float32(desc.scale) / std
    else:  # as the references: resize the float image pixel * scale, then normalise
        img = np.multiply(img, np.float32(desc.scale), dtype=np.float32)
        if img.shape[:2] != (lb.resized_height, lb.resized_width):
            img = cv2.resize(img, (lb.resized_width, lb.resized_height), interpolation=flag)
        gain = np.float32(1.0) / std
    window = out[0, :, lb.top:lb.top + lb.resized_height, lb.left:lb.left + lb.resized_width]
    for c in range(3):  # per channel: uint8 plane -> float32 affine, written straight into NCHW
        np.multiply(img[:, :, c], gain[c], out=window[c], dtype=np.float32, casting="unsafe")
        window[c] += offset[c]
    return out, lb


def crop_output(output: np.ndarray, letterbox: Letterbox) -> np.ndarray:
    """``(1, C, h_p, w_p)``, ``(C, h_p, w_p)`` or ``(h_p, w_p)`` network output -> the image window.

    Returns a view ``(C, h_r, w_r)`` (or ``(h_r, w_r)`` for a 2-D output); no copy.
    """
    arr = np.asarray(output)
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise DepthIOError(f"network output has batch {arr.shape[0]}, expected 1")
        arr = arr[0]
    if arr.ndim not in (2, 3) or arr.shape[-2:] != (letterbox.net_height, letterbox.net_width):
        raise DepthIOError(f"network output of shape {np.shape(output)} does not match the network input "
                           f"{letterbox.net_height}x{letterbox.net_width}")
    return arr[..., letterbox.top:letterbox.top + letterbox.resized_height,
               letterbox.left:letterbox.left + letterbox.resized_width]


def postprocess_depth(output_nchw: np.ndarray, letterbox: Letterbox, desc: ModelDescription, *,
                      fx: float | None = None, baseline: float | None = None, scale: float = 1.0,
                      shift: float = 0.0, interpolation: str = "linear") -> np.ndarray:
    """Network depth output -> ``(H, W)`` float32 metric depth at camera resolution (module docstring).

    Args:
        output_nchw: ``(1, 1, h_p, w_p)`` (or ``(1, h_p, w_p)``, ``(h_p, w_p)``) network output.
        letterbox: from :func:`preprocess` of the same frame.
        desc: the network's description (its ``output_kind``, depth range).
        fx, baseline: camera focal length (pixels) and stereo baseline (metres), for ``disparity``.
        scale, shift: affine map for relative kinds (see module docstring).
        interpolation: ``"linear"`` or ``"nearest"`` for the resize to camera resolution.

    Returns:
        A new ``(H, W)`` float32 array (never aliases the backend's output buffer).
    """
    kind = desc.output_kind
    if kind == "descriptors":
        raise DepthIOError(f"{desc.source or desc.name}: a descriptors model has no depth output")
    window = crop_output(output_nchw, letterbox)
    if window.ndim == 3:
        if window.shape[0] != 1:
            raise DepthIOError(f"depth output has {window.shape[0]} channels, expected 1")
        window = window[0]
    window = window.astype(np.float32, copy=False)
    size = (letterbox.src_width, letterbox.src_height)
    if window.shape[::-1] != size:
        flag = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}[interpolation]
        y = cv2.resize(window, size, interpolation=flag)
    else:
        y = window.copy()
    if kind == "metric_depth":
        z = y
    elif kind == "relative_depth":
        z = y if scale == 1.0 else np.multiply(y, np.float32(scale), out=y)
    elif kind == "relative_inverse_depth":
        y *= np.float32(scale)
        y += np.float32(shift)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.divide(np.float32(1.0), y, out=y)
    else:  # disparity in network pixels
        if fx is None or baseline is None:
            raise DepthIOError(f"{desc.source or desc.name}: a disparity model needs fx and baseline")
        y *= np.float32(1.0 / letterbox.scale_x)
        z = disparity_to_depth(y, fx, baseline)
    bad = ~np.isfinite(z) | (z <= 0)
    if kind in ("metric_depth", "disparity"):
        if desc.min_depth is not None:
            bad |= z < desc.min_depth
        if desc.max_depth is not None:
            bad |= z > desc.max_depth
    z[bad] = np.nan
    return z
