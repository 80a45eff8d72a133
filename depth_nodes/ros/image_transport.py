"""image_transport-style inputs: ``raw`` Image topics or their ``compressed``/``compressedDepth`` ones.

As ROS 2's image_transport does, the transport picks the topic from the (remapped) base name:
``raw`` subscribes to ``<base>`` (sensor_msgs/Image), ``compressed`` to ``<base>/compressed``
(sensor_msgs/CompressedImage, JPEG/PNG) and ``compressedDepth`` to ``<base>/compressedDepth``
(sensor_msgs/CompressedImage, :mod:`depth_nodes.compressed_depth`). Messages are decoded in the
node's worker (:func:`decode_input`), so frames that are dropped are never decoded.

:func:`mismatch_hint` is the pure diagnosis of a silent input whose topic carries the other
message type (a CompressedImage topic remapped onto an Image input, or the reverse): it names
the parameter (and remapping) that fixes it.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from depth_nodes.image_encodings import ImageConversionError, decode_compressed, encoding_problem
from depth_nodes.ros.image_conversion import image_to_numpy

__all__ = ["IMAGE_TRANSPORTS", "DEPTH_TRANSPORTS", "SUFFIX", "TYPE_NAME", "message_type", "topic_for",
           "decode_input", "mismatch_hint"]

IMAGE_TRANSPORTS = ("raw", "compressed")
DEPTH_TRANSPORTS = ("raw", "compressedDepth")
SUFFIX = {"raw": "", "compressed": "/compressed", "compressedDepth": "/compressedDepth"}
TYPE_NAME = {"raw": "sensor_msgs/msg/Image", "compressed": "sensor_msgs/msg/CompressedImage",
             "compressedDepth": "sensor_msgs/msg/CompressedImage"}


def message_type(transport: str) -> type:
    return Image if transport == "raw" else CompressedImage


def topic_for(node, base: str, transport: str) -> str:
    """The topic to subscribe: ``base`` itself for ``raw`` (remapped like any topic), else the
    remapped and resolved base plus ``/compressed`` or ``/compressedDepth``."""
    if transport == "raw":
        return base
    return node.resolve_topic_name(base) + SUFFIX[transport]


def decode_input(msg, accepted: tuple[str, ...] | None = None) -> tuple[np.ndarray, str]:
    """An Image or CompressedImage -> ``(array, encoding)`` (JPEG/PNG colour comes as ``bgr8``,
    compressedDepth as ``32FC1`` metres or ``16UC1`` mm). ``accepted``: the input's encodings
    (default: any); another one is an :class:`ImageConversionError` naming them."""
    if isinstance(msg, Image):
        return image_to_numpy(msg, accepted), msg.encoding
    array, encoding = decode_compressed(msg)
    if problem := encoding_problem(encoding, accepted):
        raise ImageConversionError(f"{problem} (decoded from a {msg.format!r} CompressedImage)")
    return array, encoding


def mismatch_hint(base: str, param: str, transport: str, choices: Sequence[str],
                  types_on: Callable[[str], set[str]]) -> str | None:
    """Why nothing arrives on an input, when the graph shows the image on another transport.

    Args:
        base: the input's resolved base topic (``/camera/image_raw``).
        param: the parameter that chooses its transport (``image_transport``).
        transport: its current value; ``choices``: all values.
        types_on: topic -> message type names published on it (from the graph).

    Returns one line naming ``param`` (and the remapping, when the base itself was remapped onto
    a transport's topic), or ``None`` when the graph shows nothing better.
    """
    subscribed = base + SUFFIX[transport]
    want = TYPE_NAME[transport]
    if want in types_on(subscribed):
        return None
    for other in choices:
        if other == transport:
            continue
        topic = base + SUFFIX[other]
        if TYPE_NAME[other] in types_on(topic):
            return (f"nothing arrives on {subscribed} ({want}, {param}: {transport}) but {topic} carries "
                    f"{TYPE_NAME[other]}: set -p {param}:={other}")
        suffix = SUFFIX[other]
        if suffix and base.endswith(suffix) and TYPE_NAME[other] in types_on(base):
            return (f"{base} carries {TYPE_NAME[other]} but this node takes {want} there ({param}: {transport}): "
                    f"set -p {param}:={other} and remap the input to {base[:-len(suffix)]} (the base topic, as "
                    "image_transport does)")
    found = types_on(subscribed)
    if found:
        return (f"{subscribed} carries {', '.join(sorted(found))} but this node takes {want} there ({param}: "
                f"{transport}, one of {', '.join(choices)})")
    return None
