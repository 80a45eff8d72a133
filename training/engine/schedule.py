"""The learning-rate schedule of the training modes: x``gamma`` once ``drop_at`` of the steps are done.

Built from the command line at every start, so a run resumed with another ``--steps`` (or
``--lr-drop-at``) follows the new schedule; its state in a checkpoint is only the step count and
the base learning rates. (A ``StepLR`` keeps its ``step_size`` in the checkpoint: a run first
started with ``--steps 1000`` and resumed with ``--steps 4000`` dropped at step 750, not 3000.)
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

__all__ = ["DropSchedule", "drop_step"]


def drop_step(total_steps: int, drop_at: float) -> int:
    """The step from which the rate is multiplied by gamma: ``max(1, round(drop_at * total_steps))``."""
    return max(1, int(round(drop_at * total_steps)))


class DropSchedule(torch.optim.lr_scheduler.LambdaLR):
    """``lr(step) = base_lr * (gamma if step >= drop_step(total_steps, drop_at) else 1)``.

    Loads its own state and a ``StepLR`` state of older checkpoints (the step count and base
    rates are kept, the schedule is this one), and sets the optimizer's rates for the loaded step
    at once, so the first resumed batch already uses the new schedule.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, drop_at: float, gamma: float = 0.1):
        self.drop = drop_step(total_steps, drop_at)
        self.gamma = float(gamma)
        super().__init__(optimizer, self.factor)

    def factor(self, step: int) -> float:
        return self.gamma if step >= self.drop else 1.0

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.last_epoch = int(state_dict["last_epoch"])
        self.base_lrs = list(state_dict.get("base_lrs", self.base_lrs))
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * self.factor(self.last_epoch)
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]
