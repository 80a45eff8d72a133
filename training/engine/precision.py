"""Mixed precision: ``torch.autocast`` + ``GradScaler``, on CUDA only.

``bf16`` autocasts to bfloat16 and needs no loss scaling; ``fp16`` autocasts to float16 and
scales the loss with a :class:`torch.amp.GradScaler` (steps whose scaled gradients overflow are
skipped by the scaler, which then lowers the scale). On the CPU both fall back to full precision
(with an info line): CPU autocast is slower than fp32 for these convolutional nets.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch

LOG = logging.getLogger("depth_training.train")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
CHOICES = ("none", "bf16", "fp16")


@dataclass
class Precision:
    """How forward/backward run. ``dtype is None`` means plain fp32."""

    device_type: str
    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler

    @property
    def name(self) -> str:
        return {None: "none", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def resolve_precision(amp: str | None, device: torch.device | str) -> Precision:
    """``amp`` in ``{None, "none", "bf16", "fp16"}`` for ``device`` -> :class:`Precision`."""
    device = torch.device(device)
    key = "none" if amp in (None, "", "none", "fp32", "off") else str(amp).lower()
    if key not in CHOICES:
        raise ValueError(f"unknown mixed-precision mode {amp!r}; expected one of {', '.join(CHOICES)}")
    if key != "none" and device.type != "cuda":
        LOG.info("mixed precision %s requested on %s: running in fp32 (AMP is CUDA-only)", key, device)
        key = "none"
    if key == "bf16" and not torch.cuda.is_bf16_supported():
        raise ValueError("bf16 mixed precision requested but this GPU does not support bfloat16; use fp16")
    dtype = _DTYPES.get(key)
    scaler = torch.amp.GradScaler(device.type, enabled=(key == "fp16"))
    return Precision(device.type, dtype, scaler)
