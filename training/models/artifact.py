"""The trained depth model as one file: weights + everything needed to use them.

Training modes write ``<out>/model.pt`` with :func:`save_depth_model`; ``depth-train eval`` and the
ONNX export read it (or a training checkpoint) with :func:`load_depth_model`.

File layout (``torch.save`` of a dict)::

    {"format": "depth_nodes.depth_model/1",
     "config": {...},                 # see REQUIRED_KEYS / OUTPUT_KINDS below
     "state_dict": DepthNet.state_dict()}

``config`` keys:

* ``encoder`` (``"resnet18"|"resnet34"|"mobile"``), ``num_scales``, ``decoder_channels``;
* ``height``, ``width``: the input size the network was trained at (multiples of 32);
* ``min_depth``, ``max_depth``: the range of :func:`~depth_training.geometry_torch.disp_to_depth`;
* ``output``: what ``disp_to_depth(net(image)[0])[1]`` means (:data:`OUTPUT_KINDS`):
  ``"metric_depth"`` (stereo with a known baseline, SI-log on metric depth),
  ``"relative_depth"`` (monocular self-supervised: correct up to one scale per image or sequence),
  ``"relative_disparity"`` (SSI-trained: the sigmoid output is inverse depth up to scale and shift);
* ``mode``: the training mode that produced it, plus free-form provenance (``bags``, ``step`` ...).

A training checkpoint (:mod:`depth_training.engine.checkpoint`) is accepted too when its
``config`` holds the keys above under ``"model"``; its ``model`` state dict is either the
``DepthNet``'s or a wrapper's whose depth network sits under the ``depth.`` prefix.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import torch

from depth_training.engine.checkpoint import _jsonable, atomic_write
from depth_training.engine.safe_load import UnsafeFileError, safe_torch_load
from depth_training.models.depth_decoder import DepthNet

FORMAT = "depth_nodes.depth_model/1"
OUTPUT_KINDS = ("metric_depth", "relative_depth", "relative_disparity")
REQUIRED_KEYS = ("encoder", "num_scales", "decoder_channels", "height", "width", "min_depth",
                 "max_depth", "output")
# The evaluation alignment that suits each kind of output (see depth_training.metrics).
DEFAULT_ALIGNMENT = {"metric_depth": "none", "relative_depth": "median",
                     "relative_disparity": "ssi_disparity"}


class ModelFileError(ValueError):
    """A model file that cannot be used; the message names the file and the problem."""


def check_model_config(config: Mapping[str, Any], where: str = "config") -> dict[str, Any]:
    """Validate ``config`` (see module docstring); returns a plain-dict copy."""
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise ModelFileError(f"{where}: missing model config keys {missing}")
    cfg = dict(config)
    if cfg["output"] not in OUTPUT_KINDS:
        raise ModelFileError(f"{where}: output must be one of {OUTPUT_KINDS}, got {cfg['output']!r}")
    for key in ("height", "width"):
        if int(cfg[key]) <= 0 or int(cfg[key]) % 32:
            raise ModelFileError(f"{where}: {key}={cfg[key]} is not a positive multiple of 32")
    if not 0 < float(cfg["min_depth"]) < float(cfg["max_depth"]):
        raise ModelFileError(f"{where}: need 0 < min_depth < max_depth, got {cfg['min_depth']}, {cfg['max_depth']}")
    cfg["decoder_channels"] = [int(c) for c in cfg["decoder_channels"]]
    return cfg


def build_from_config(config: Mapping[str, Any]) -> DepthNet:
    """A fresh :class:`DepthNet` with the architecture that ``config`` describes."""
    return DepthNet(str(config["encoder"]), int(config["num_scales"]), tuple(config["decoder_channels"]))


def save_depth_model(path: str | os.PathLike, net: torch.nn.Module, config: Mapping[str, Any]) -> None:
    """Write ``net`` (a :class:`DepthNet`, possibly DDP-wrapped) and ``config`` atomically to ``path``."""
    from depth_training.engine.checkpoint import unwrap

    cfg = _jsonable(check_model_config(config, str(path)))  # plain values: loads with weights_only=True
    state = {k: v.detach().cpu() for k, v in unwrap(net).state_dict().items()}
    atomic_write(path, lambda f: torch.save({"format": FORMAT, "config": cfg, "state_dict": state}, f))


def _depth_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if any(k.startswith("depth.") for k in state):
        return {k[len("depth."):]: v for k, v in state.items() if k.startswith("depth.")}
    return dict(state)


def load_depth_model(path: str | os.PathLike, map_location: Any = "cpu") -> tuple[DepthNet, dict[str, Any]]:
    """Load a model file or a training checkpoint -> ``(DepthNet in eval mode, config)``.

    The file is read with ``torch.load(weights_only=True)``: nothing in it can run code.

    Raises:
        ModelFileError: the file is missing, unreadable, of another format, needs Python objects
            beyond tensors and plain values (refused unread), or its weights do not fit the
            architecture its config names.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: no such model file")
    try:
        blob = safe_torch_load(path, map_location=map_location)
    except UnsafeFileError as exc:
        raise ModelFileError(str(exc)) from None
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise ModelFileError(f"{path}: not a readable torch file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(blob, dict):
        raise ModelFileError(f"{path}: expected a dict, found {type(blob).__name__}")
    if blob.get("format") == FORMAT:
        config, state = blob.get("config") or {}, blob.get("state_dict") or {}
    elif "model" in blob and isinstance(blob.get("config"), dict) and "model" in blob["config"]:
        config, state = blob["config"]["model"], _depth_state(blob["model"])
    else:
        raise ModelFileError(f"{path}: neither a depth model file ({FORMAT}) nor a training checkpoint "
                             "with a 'model' config")
    cfg = check_model_config(config, path)
    net = build_from_config(cfg)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: weights do not match a {cfg['encoder']} DepthNet: {exc}") from exc
    return net.eval(), cfg
