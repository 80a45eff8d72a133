"""What a training mode hands to the shared runner: a bundle of small functions, no trainer class.

A mode module (:mod:`.mono`, :mod:`.stereo`, :mod:`.supervised`) turns its command-line
arguments into a :class:`ModeSetup`; :func:`depth_training.modes.runner.run_mode` does the rest
(data, loop, validation, model file) the same way for all of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from depth_training.engine.loop import StepFn

from .recordings import Recording

__all__ = ["ModeSetup", "KeepFields", "DepthOnly", "depth_preview"]

EvaluateFn = Callable[[nn.Module, Mapping[str, Any]], "tuple[torch.Tensor | None, torch.Tensor | None]"]


@dataclass(frozen=True)
class ModeSetup:
    """One mode's pieces.

    Attributes:
        name: ``"mono"``, ``"stereo"`` or ``"supervised"`` (stored in the model config).
        output: the model's output kind (:data:`depth_training.models.artifact.OUTPUT_KINDS`).
        num_scales: decoder output scales the loss uses (and the model file records).
        plan: ``plan(bag_path) -> Recording``: checks a bag for this mode (raises ``UserError``).
        build_model: a fresh module with the depth network under ``.depth``.
        step: ``step(model, batch) -> (loss, logs)`` for :func:`depth_training.engine.loop.train`.
        evaluate: ``evaluate(net, batch) -> (loss or None, prediction B1HW or None)`` on an
            un-augmented validation batch; the prediction is what the metrics align
            (:func:`.tensors.prediction_for_metrics`).
        preview: ``preview(net, batch) -> {tag: array}`` for TensorBoard.
        frame_offsets, snippet_fields: frames per sample (snippets for video).
        train_fields: the cached fields a training batch needs (validation batches get all, e.g.
            the depth a self-supervised mode is only evaluated against).
        train_transform: augmentation of training samples (runs in the loader workers).
        provenance: extra model-config entries (pose source, loss, ...).
    """

    name: str
    output: str
    num_scales: int
    plan: Callable[[Path], Recording]
    build_model: Callable[[], nn.Module]
    step: StepFn
    evaluate: EvaluateFn
    preview: Callable[[nn.Module, Mapping[str, Any]], Mapping[str, Any]]
    frame_offsets: tuple[int, ...] = (0,)
    snippet_fields: tuple[str, ...] = ()
    train_fields: tuple[str, ...] = ()
    train_transform: Callable | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KeepFields:
    """``transform(sample, rng)`` for :class:`~depth_training.data.cached_dataset.CachedDataset`:
    keep only ``fields`` (those present), then apply ``then`` (e.g. an ``Augment``).

    Recordings mixed in one run may differ in optional fields (one has a depth topic, the other
    not); training batches must have the same keys in every sample.
    """

    fields: tuple[str, ...]
    then: Callable | None = None

    def __call__(self, sample: dict[str, Any], rng) -> dict[str, Any]:
        kept = {k: v for k, v in sample.items() if k in self.fields}
        return self.then(kept, rng) if self.then is not None else kept


class DepthOnly(nn.Module):
    """Holds the depth network as ``.depth`` (the prefix model files and checkpoints expect).

    ``forward(image)``: ``(B, 3, H, W)`` in ``[0, 1]`` -> the network's disparities, scale 0 first.
    """

    def __init__(self, depth: nn.Module):
        super().__init__()
        self.depth = depth

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        return self.depth(image)


def depth_preview(net: nn.Module, image: torch.Tensor, min_depth: float, max_depth: float) -> dict[str, Any]:
    """First image of a batch and its predicted depth (colourised by the monitor).

    Args:
        net: a module with ``.depth``; image: ``(B, 3, H, W)`` in ``[0, 1]``.
    """
    from depth_training.geometry_torch import disp_to_depth

    disp = net.depth(image[:1])[0]
    return {"sample/image": image[0], "sample/depth": disp_to_depth(disp, min_depth, max_depth)[1][0, 0]}
