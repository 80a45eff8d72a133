"""Loading a library's renamed state dict into our backbone with one clear error when it does not fit."""
from __future__ import annotations

import torch
from torch import nn

from .base import BackboneError

__all__ = ["load_exact"]


def load_exact(net: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """``net.load_state_dict(state, strict=True)``, raising :class:`BackboneError` ``"<what>: weights do
    not fit ..."`` (the first missing/unexpected keys, or the first shape mismatch) on one line."""
    ours = net.state_dict()
    missing, unexpected = sorted(set(ours) - set(state)), sorted(set(state) - set(ours))
    if missing or unexpected:
        raise BackboneError(f"{what}: weights do not fit (missing {missing[:3]}, unexpected {unexpected[:3]})")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise BackboneError(f"{what}: weights do not fit ({str(exc).splitlines()[-1].strip()})") from None
