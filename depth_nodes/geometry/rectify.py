"""Lens distortion: rectify an image with the maps of its camera_info, or say why not.

A camera_info with non-zero ``D`` describes a distorted (``image_raw``) image; the pinhole maths
of the nodes holds only for the rectified one. As image_proc's rectify does, the rectified image
is the one of the projection matrix ``P`` (``K' = P[:, :3]``; ``K`` when ``P`` is unset) and the
rectification rotation ``R``: for every output pixel ``p``, the maps hold the raw pixel
``distort(K, D, R^-1 K'^-1 p)`` it samples (OpenCV ``initUndistortRectifyMap``; the fisheye
variant for ``equidistant``). The output camera_info then has ``D = 0``, ``K = K'``, ``R = I``.

:class:`RectifyCache` builds the maps once per calibration (keyed by its content) and
:func:`rectify` applies them (bilinear for images, nearest for depth, so no depth is invented
across edges). Distortion models: ``plumb_bob`` (5 coefficients), ``rational_polynomial`` (8),
``equidistant`` (4); any other model with a non-zero ``D`` is a :class:`RectifyError`, as are
binning and ROI with distortion (not handled here).
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

__all__ = ["DISTORTION_MODES", "MODELS", "RectifyError", "Rectification", "RectifyCache", "has_distortion",
           "rectify", "rectified_info"]

#: Values of the nodes' ``distortion`` parameter.
DISTORTION_MODES = ("rectify", "refuse")
#: distortion_model -> number of coefficients OpenCV takes.
MODELS = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}


class RectifyError(ValueError):
    """A calibration that cannot be rectified (unknown model, wrong D length, binning/ROI)."""


def _field(msg, *names):
    for n in names:
        if hasattr(msg, n):
            return getattr(msg, n)
    raise AttributeError(names[0])


def has_distortion(info) -> bool:
    """True when the camera_info's ``D`` has a non-zero coefficient."""
    d = np.asarray(_field(info, "d", "D"), np.float64)
    return bool(d.size and np.any(d != 0))


@dataclass(frozen=True)
class Rectification:
    """Maps ``(H, W)`` float32 (raw x, raw y of each output pixel) and the output intrinsics ``K``."""

    map_x: np.ndarray
    map_y: np.ndarray
    K: np.ndarray
    P: np.ndarray


def _key(info) -> tuple:
    return (str(_field(info, "distortion_model")), tuple(np.asarray(_field(info, "d", "D"), float).tolist()),
            tuple(np.asarray(_field(info, "k", "K"), float).tolist()),
            tuple(np.asarray(_field(info, "r", "R"), float).tolist()),
            tuple(np.asarray(_field(info, "p", "P"), float).tolist()), int(info.width), int(info.height))


def build_rectification(info) -> Rectification:
    """The maps of one calibration (see the module docstring). Raises :class:`RectifyError`."""
    import cv2

    model = str(_field(info, "distortion_model"))
    d = np.asarray(_field(info, "d", "D"), np.float64)
    if model not in MODELS:
        raise RectifyError(f"distortion_model {model!r} with non-zero D cannot be rectified (known: "
                           f"{', '.join(MODELS)})")
    if d.size < MODELS[model] or np.any(d[MODELS[model]:] != 0):
        raise RectifyError(f"d: {model} takes {MODELS[model]} coefficients, got {d.size}: {d.tolist()}")
    binning = (int(getattr(info, "binning_x", 0) or 0), int(getattr(info, "binning_y", 0) or 0))
    roi = getattr(info, "roi", None)
    if max(binning) > 1 or (roi is not None and int(getattr(roi, "width", 0) or 0) > 0):
        raise RectifyError("binning/roi with lens distortion is not supported: rectify upstream (image_proc)")
    w, h = int(info.width), int(info.height)
    K = np.asarray(_field(info, "k", "K"), np.float64).reshape(3, 3)
    R = np.asarray(_field(info, "r", "R"), np.float64).reshape(3, 3)
    P = np.asarray(_field(info, "p", "P"), np.float64).reshape(3, 4)
    if not np.any(R):
        R = np.eye(3)
    if not np.any(P[:, :3]):
        P = np.hstack([K, np.zeros((3, 1))])
    K_new = P[:, :3].copy()
    coeffs = d[:MODELS[model]]
    if model == "equidistant":
        mx, my = cv2.fisheye.initUndistortRectifyMap(K, coeffs, R, K_new, (w, h), cv2.CV_32FC1)
    else:
        mx, my = cv2.initUndistortRectifyMap(K, coeffs, R, K_new, (w, h), cv2.CV_32FC1)
    return Rectification(mx, my, K_new, P)


class RectifyCache:
    """:func:`build_rectification` memoised on the calibration's content (``maxsize`` newest).
    ``get`` returns ``None`` for a camera_info without distortion. Not thread-safe."""

    def __init__(self, maxsize: int = 4):
        self.maxsize = int(maxsize)
        self._maps: OrderedDict[tuple, Rectification] = OrderedDict()

    def get(self, info) -> Rectification | None:
        if not has_distortion(info):
            return None
        key = _key(info)
        rect = self._maps.get(key)
        if rect is None:
            rect = self._maps[key] = build_rectification(info)
            while len(self._maps) > self.maxsize:
                self._maps.popitem(last=False)
        else:
            self._maps.move_to_end(key)
        return rect


def rectify(image: np.ndarray, rect: Rectification, *, nearest: bool = False) -> np.ndarray:
    """``out[v, u] = image(map_x[v, u], map_y[v, u])``: bilinear, or nearest for depth (NaN and 0
    stay "no reading"; pixels mapped from outside the image are 0 / NaN)."""
    import cv2

    if image.shape[:2] != rect.map_x.shape:
        raise RectifyError(f"image is {image.shape[1]}x{image.shape[0]} but its camera_info "
                           f"{rect.map_x.shape[1]}x{rect.map_x.shape[0]}")
    border = float("nan") if image.dtype.kind == "f" else 0
    return cv2.remap(image, rect.map_x, rect.map_y, cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def rectified_info(info, rect: Rectification):
    """A copy of the camera_info describing the rectified image: ``D = 0``, ``K = K'``, ``R = I``."""
    out = copy.deepcopy(info)
    n = MODELS.get(str(info.distortion_model), len(info.d))
    out.d = [0.0] * n
    out.k = rect.K.reshape(-1).tolist()
    out.r = np.eye(3).reshape(-1).tolist()
    out.p = rect.P.reshape(-1).tolist()
    return out
