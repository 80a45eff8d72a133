"""Parameters that several nodes declare with the same name, default, range and text.

Each node's ``PARAMS`` table splices these in where they belong, so the nodes, their generated
parameter files (``config/*.yaml``) and their docs cannot drift apart on them.
"""
from __future__ import annotations

from depth_nodes.backends.inference import BACKENDS, DEVICES
from depth_nodes.ros.params import ParamSpec
from depth_nodes.ros.qos import QOS_CHOICES
from depth_nodes.ros.qos_auto import INPUT_QOS_CHOICES

__all__ = ["MODEL_RUNTIME_PARAMS", "TIME_JUMP_PARAM", "QOS_PARAMS", "SILENT_INPUT_PARAM"]

#: after ``model_path`` (whose text names each node's own model)
MODEL_RUNTIME_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("description_path", "", "Model description (.json sidecar or .yaml); empty = X.json next to the model."),
    ParamSpec("backend", "auto", "Inference backend (auto = by file suffix).", choices=BACKENDS),
    ParamSpec("device", "cpu", "Device to run the network on.", choices=DEVICES),
)

TIME_JUMP_PARAM = ParamSpec(
    "time_jump_s", 1.0, "A frame stamped this much (s) before the last one processed means time went back "
    "(looping recording, simulator reset): start over; smaller reorderings are skipped.", 1e-3, 3600.0)

QOS_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("input_qos", "auto", "QoS of the camera subscriptions (auto: the reliability of each topic's "
              "publishers).", choices=INPUT_QOS_CHOICES),
    ParamSpec("input_qos_depth", 2, "History depth of the camera subscriptions.", 1, 100),
    ParamSpec("output_qos", "reliable", "QoS of the published topics.", choices=QOS_CHOICES),
    ParamSpec("output_qos_depth", 2, "History depth of the published topics.", 1, 100),
)

SILENT_INPUT_PARAM = ParamSpec(
    "silent_input_s", 2.0, "Report an input on which nothing arrived for this long (seconds; at least 1): "
    "its publishers, or the image_transport/depth_transport that would fix a type mismatch.", 1.0, 3600.0)
