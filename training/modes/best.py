"""``<out>/model_best.pt``: the weights of the best validation so far (model selection).

Small recordings overfit: the validation error of a run often bottoms out long before its last
step. :class:`BestModelKeeper` wraps a run's validation function; whenever the chosen validation
value improves (lower is better for every choice), it writes the depth network with its config,
the step and all validation values to ``model_best.pt`` (atomically, rank 0 only, as validation
runs there). ``model.pt`` stays the final state.

Metric choices (``--keep-best``):

* ``auto`` (default): ``abs_rel`` when the validation recordings have depth to score against,
  otherwise the validation ``loss`` (the mode's own loss on held-out frames, e.g. the
  photometric error of a self-supervised mode);
* ``loss``, ``abs_rel``, ``rmse``, ``rmse_log``, ``sq_rel``: that value;
* ``none``: no ``model_best.pt``.

Select on recordings that you do not also report results on: with ``--val-bag`` the selection
uses a recording of its own, and the test recordings stay unseen.

A resumed run continues from the best value recorded in ``validation.jsonl`` (when
``model_best.pt`` exists), so an interrupted run keeps its best model.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:  # the CLI imports the choices without paying for torch
    import torch

__all__ = ["KEEP_BEST_CHOICES", "BestModelKeeper"]

LOG = logging.getLogger("depth_training.modes")
KEEP_BEST_CHOICES = ("auto", "loss", "abs_rel", "sq_rel", "rmse", "rmse_log", "none")

ValFn = Callable[["torch.nn.Module", int], "dict[str, float]"]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class BestModelKeeper:
    """Wraps ``val_fn`` (see module docstring).

    Args:
        path: where the best model goes (``<out>/model_best.pt``).
        metric: one of :data:`KEEP_BEST_CHOICES` except ``"none"``.
        config: the run's model config (:func:`depth_training.modes.runner.model_config`).
        writer: writes another kind of model (``writer(path, net, config)``); then ``metric`` may be
            any validation value (e.g. the descriptors' ``median_px``).
        previous: validation records of this run so far (``validation.jsonl``), used only when
            ``path`` exists (resume).
    """

    def __init__(self, path: Path, metric: str, config: Mapping[str, Any], previous: Sequence[Mapping] = (),
                 writer: "Callable[[Path, torch.nn.Module, dict], None] | None" = None):
        if metric == "none" or (writer is None and metric not in KEEP_BEST_CHOICES):
            raise ValueError(f"metric: expected one of {KEEP_BEST_CHOICES[:-1]}, got {metric!r}")
        self.path, self.requested, self.config = Path(path), metric, dict(config)
        self.writer = writer  # (path, net, config) -> None; default: the depth network of ``net.depth``
        self.metric: str | None = None if metric == "auto" else metric
        self.best: float | None = None
        self.best_step: int | None = None
        self._warned = False
        if self.path.is_file():
            for record in previous:
                self._consider(record, int(record.get("step", -1)), save=None)

    def _resolve(self, values: Mapping[str, Any]) -> str:
        if self.metric is None:
            self.metric = "abs_rel" if _finite(values.get("abs_rel")) else "loss"
        elif self.metric not in values and self.metric != "loss" and not self._warned:
            LOG.warning("validation reports no %s (its recordings have no depth to score against): "
                        "model_best.pt is chosen by the validation loss instead", self.metric)
            self._warned = True
        return self.metric if self.metric in values else "loss"

    def _consider(self, values: Mapping[str, Any], step: int, save: "torch.nn.Module | None") -> bool:
        key = self._resolve(values)
        value = values.get(key)
        if not _finite(value) or (self.best is not None and value >= self.best):
            return False
        self.best, self.best_step = float(value), step
        if save is not None:
            from depth_training.models.artifact import save_depth_model

            config = {**self.config, "step": step, "val": dict(values), "selected_by": key}
            if self.writer is not None:
                self.writer(self.path, save, config)
            else:
                save_depth_model(self.path, save.depth, config)
            LOG.info("best validation %s so far (%.4g at step %d): wrote %s", key, value, step, self.path)
        return True

    def wrap(self, val_fn: ValFn) -> ValFn:
        """``val_fn`` that also keeps :attr:`path` up to date; ``net`` must have ``.depth``."""

        def val_and_keep(net: "torch.nn.Module", step: int) -> dict[str, float]:
            values = val_fn(net, step)
            self._consider(values, step, save=net)
            return values

        return val_and_keep
