"""Reading recorded bags for training (rosbag2 MCAP / sqlite3, ROS 1), with ``rosbags``.

* :func:`open_bag` - open any supported recording; errors name the file.
* :func:`summarize_bag` / :class:`BagSummary` - topics, counts, rates, time span and what each
  training mode can use (``depth-train info``).
* :class:`SyncedSamples` - time-synchronised, decoded samples (streamed).
* :class:`BagWriter` - write small recordings from numpy data.
"""
from depth_training.bags.decode import CameraInfoTrack
from depth_training.bags.errors import (
    BagDecodeError,
    BagError,
    BagOpenError,
    BagReadError,
    BagTopicError,
    BagWarning,
    format_stamp,
)
from depth_training.bags.reader import Bag, RawMessage, TopicMeta, open_bag
from depth_training.bags.summary import BagSummary, ModeReport, TopicConfig, TopicSummary, summarize_bag
from depth_training.bags.sync import Frame, StreamSpec, SyncedSample, SyncedSamples, SyncStats
from depth_training.bags.writer import BagWriter

__all__ = [
    "Bag",
    "BagDecodeError",
    "BagError",
    "BagOpenError",
    "BagReadError",
    "BagSummary",
    "BagTopicError",
    "BagWarning",
    "BagWriter",
    "CameraInfoTrack",
    "Frame",
    "ModeReport",
    "RawMessage",
    "StreamSpec",
    "SyncStats",
    "SyncedSample",
    "SyncedSamples",
    "TopicConfig",
    "TopicMeta",
    "TopicSummary",
    "format_stamp",
    "open_bag",
    "summarize_bag",
]
