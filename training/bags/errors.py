"""Errors and warnings raised while reading recordings.

Every message names the file, and where it applies the topic and the time, so a bad recording
is reported as ``"<file>: <topic>: <problem> at t=<stamp>"`` rather than discovered as a crash
later. :class:`BagError` is a :class:`depth_training.cli.UserError`, so ``depth-train`` prints
it without a traceback and exits with status 2.
"""
from __future__ import annotations

from depth_training.cli import UserError
from depth_training.kinematics.timeseries import format_stamp

__all__ = [
    "BagError",
    "BagOpenError",
    "BagReadError",
    "BagTopicError",
    "BagDecodeError",
    "BagWarning",
    "format_stamp",
]


class BagError(UserError):
    """A recording cannot be used as asked; the message names file, topic, time and problem."""


class BagOpenError(BagError):
    """The file is missing, truncated, corrupt or not a bag."""


class BagReadError(BagError):
    """Reading or deserialising a message failed part-way through the file."""


class BagTopicError(BagError):
    """A topic is missing, has the wrong type or has no usable messages."""


class BagDecodeError(BagError):
    """A message was read but its content cannot be used (unknown encoding, bad size, bad K)."""


class BagWarning(UserWarning):
    """Something in the recording is suspicious but usable (out-of-order stamps, dropped frames)."""
