"""What a training run shows: TensorBoard events, a progress bar with ETA, plain log lines.

One :class:`Monitor` per process. On the main rank it owns a
:class:`~torch.utils.tensorboard.SummaryWriter` (scalars, learning rate, images) and a tqdm bar;
on other ranks it only forwards warnings (prefixed with the rank) to the log, so a bad batch on
rank 3 is still reported. The bar is shown only when stderr is a terminal; otherwise progress
goes to plain log lines (``step 1200/50000 loss=0.1234 ... eta 1:02:03``) every ``log_every``
steps, which is what a batch-job log wants.
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .colorize import colorize_depth

LOG = logging.getLogger("depth_training.train")


def ensure_log_handler(level: int = logging.INFO) -> None:
    """Give the ``depth_training`` logger a stderr handler if the application configured none."""
    root = logging.getLogger("depth_training")
    if not root.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(level)


def format_duration(seconds: float) -> str:
    """``3725.4`` -> ``"1:02:05"``; negative or non-finite -> ``"?"``."""
    if not np.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def format_scalars(values: Mapping[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in values.items())


def to_preview(array: np.ndarray) -> np.ndarray:
    """Turn an array into an (H, W, 3) uint8 preview.

    (H, W) or (1, H, W) float -> colourised depth; (H, W, 3) / (3, H, W) uint8 or float in [0, 1]
    -> RGB image. Torch tensors (any device/dtype) are accepted.
    """
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu()
        array = array.numpy() if array.dtype == torch.uint8 else array.float().numpy()
    a = np.asarray(array)
    if a.ndim == 2 or (a.ndim == 3 and a.shape[0] == 1):
        return colorize_depth(a)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
        a = np.transpose(a, (1, 2, 0))
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"cannot show an array of shape {a.shape} as an image")
    if a.dtype != np.uint8:
        a = np.round(np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    return a


class Monitor:
    """Logging sink for one process.

    Args:
        log_dir: TensorBoard directory (main rank only); ``None`` for no events.
        is_main: whether this process is rank 0.
        rank: shown in warnings from other ranks.
        progress: ``True``/``False`` forces the tqdm bar on/off; ``None`` = only on a TTY.
        plain_period_s: without a bar, a plain ``step N/T, R steps/s, eta`` line at least this
            often (besides the ``log_every`` lines), so a piped run is never silent for long.
    """

    def __init__(
        self,
        log_dir: str | Path | None = None,
        *,
        is_main: bool = True,
        rank: int = 0,
        progress: bool | None = None,
        plain_period_s: float = 30.0,
    ):
        ensure_log_handler()
        self.is_main = is_main
        self.rank = rank
        self.writer = None
        if is_main and log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(log_dir))
        if progress is None:
            progress = sys.stderr.isatty()
        self.show_bar = bool(progress) and is_main
        self._bar = None
        self._redirect = None
        self._t0 = time.monotonic()
        self._start_step = 0
        self._total = 0
        self.plain_period_s = float(plain_period_s)
        self._last_line = time.monotonic()
        self._sums: dict[str, float] = {}  # advance() values since the last line / bar refresh
        self._counts: dict[str, int] = {}

    # -- progress ------------------------------------------------------------------------
    def start(self, start_step: int, total_steps: int) -> None:
        self._t0, self._start_step, self._total = time.monotonic(), start_step, total_steps
        self._last_line = self._t0
        if self.show_bar:
            from tqdm import tqdm

            from tqdm.contrib.logging import logging_redirect_tqdm

            self._bar = tqdm(
                total=total_steps, initial=start_step, unit="step", dynamic_ncols=True, smoothing=0.05
            )
            consoles = [
                lg for lg in (logging.getLogger(), logging.getLogger("depth_training"))
                if any(type(h) is logging.StreamHandler for h in lg.handlers)
            ]
            self._redirect = logging_redirect_tqdm(consoles)
            self._redirect.__enter__()

    def eta_s(self, step: int) -> float:
        done = step - self._start_step
        if done <= 0:
            return float("nan")
        return (time.monotonic() - self._t0) / done * (self._total - step)

    def advance(self, step: int, postfix: Mapping[str, float] | None = None) -> None:
        """Step ``step`` is done; ``postfix``: its values (e.g. ``{"loss": ...}``; none for a skipped batch).

        The bar shows the latest step's values, a plain line the mean over the steps since the last
        line (non-finite values are left out; a value no step
        had is not shown, never as ``nan``).
        """
        for k, v in (postfix or {}).items():
            if np.isfinite(v):
                self._sums[k] = self._sums.get(k, 0.0) + float(v)
                self._counts[k] = self._counts.get(k, 0) + 1
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            if self._sums:
                self._bar.set_postfix({k: f"{v:.4g}" for k, v in self._pop_means().items()}, refresh=False)
        elif self.is_main and time.monotonic() - self._last_line >= self.plain_period_s:
            done, elapsed = step - self._start_step, time.monotonic() - self._t0
            rate = f"{done / elapsed:.2f} steps/s" if elapsed > 0 else "? steps/s"
            means = self._pop_means()
            loss = f" loss={means['loss']:.4g}" if "loss" in means else ""
            self.info(f"step {step}/{self._total}{loss} {rate} eta {format_duration(self.eta_s(step))}")

    def _pop_means(self) -> dict[str, float]:
        means = {k: self._sums[k] / self._counts[k] for k in self._sums}
        self._sums, self._counts = {}, {}
        return means

    # -- text ----------------------------------------------------------------------------
    def _emit(self, level: int, msg: str) -> None:
        LOG.log(level, msg)  # while the bar is shown, console handlers write through tqdm

    def info(self, msg: str) -> None:
        if self.is_main:
            self._emit(logging.INFO, msg)
            self._last_line = time.monotonic()

    def warning(self, msg: str) -> None:
        """Warnings are shown from every rank."""
        self._emit(logging.WARNING, msg if self.is_main else f"[rank {self.rank}] {msg}")

    def log_line(self, step: int, values: Mapping[str, float]) -> None:
        """The periodic plain line: ``step N/T k=v ... eta H:MM:SS``."""
        self.info(f"step {step}/{self._total} {format_scalars(values)} eta {format_duration(self.eta_s(step))}")
        self._last_line = time.monotonic()
        self._sums, self._counts = {}, {}  # the next progress line shows the steps after this one

    # -- TensorBoard ---------------------------------------------------------------------
    def scalars(self, step: int, values: Mapping[str, float], prefix: str = "") -> None:
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(prefix + k, float(v), step)

    def images(self, step: int, images: Mapping[str, Any]) -> None:
        """Log previews: each value goes through :func:`to_preview` (depth maps get colourised)."""
        if self.writer is not None:
            for tag, array in images.items():
                self.writer.add_image(tag, to_preview(array), step, dataformats="HWC")

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)
            self._redirect = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
