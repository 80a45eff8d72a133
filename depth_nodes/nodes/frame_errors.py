"""How a network node reports a frame it had to skip (one throttled line per kind of problem).

Shared by the mono depth and descriptor tracker nodes, whose latest-frame workers hand every
exception of a frame here; the node then serves the next frame.
"""
from __future__ import annotations

from depth_nodes.backends.base import BackendError
from depth_nodes.geometry.camera import CameraModelError
from depth_nodes.image_encodings import ImageConversionError
from depth_nodes.pipelines.depth_io import DepthIOError

__all__ = ["report_frame_error"]


def report_frame_error(reporter, exc: BaseException, stamp, input_errors: tuple[type[BaseException], ...]) -> None:
    """Report why the frame stamped ``stamp`` (a ``builtin_interfaces/Time``) was skipped.

    Kinds (the throttling keys of ``reporter.report(kind, message)``): ``image`` (undecodable or
    unusable image), ``camera_info``, ``input`` (the node's own input checks, ``input_errors``),
    ``backend`` (inference failed) and ``internal`` (anything else, with its type).
    """
    when = f"frame {stamp.sec}.{stamp.nanosec:09d}"
    if isinstance(exc, (ImageConversionError, DepthIOError)):
        reporter.report("image", f"skipping {when}: bad image: {exc}")
    elif isinstance(exc, CameraModelError):
        reporter.report("camera_info", f"skipping {when}: bad camera_info: {exc}")
    elif isinstance(exc, input_errors):
        reporter.report("input", f"skipping {when}: {exc}")
    elif isinstance(exc, BackendError):
        reporter.report("backend", f"skipping {when}: inference failed: {exc}")
    else:
        reporter.report("internal", f"skipping {when}: unexpected {type(exc).__name__}: {exc}")
