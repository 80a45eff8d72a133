"""Atomic, resumable checkpoints.

A checkpoint is one ``torch.save`` file holding everything needed to continue a run exactly:
model, optimizer, LR scheduler and GradScaler state, the step/epoch counters, the RNG states
(:mod:`.seeding`) and the run's config. Layout of a checkpoint directory::

    ckpt-00001200.pt     the state (torch zip format)
    ckpt-00001200.json   sidecar: {"step", "epoch", "bytes", "sha256"} - written after the .pt
    latest               text file: the name of the newest complete checkpoint

Every file is written as ``<name>.tmp`` in the same directory, flushed, fsync'ed and then
``os.replace``'d over its final name (and the directory fsync'ed), so a run killed at any
instant leaves either the old file or the new one, never a torn one. :meth:`CheckpointManager.load_latest`
still checks size and SHA-256 against the sidecar and that ``torch.load`` succeeds (a disk that
lost data, a file copied half-way); a bad checkpoint is reported and the next older one is used.

Files load with ``torch.load(weights_only=True)``: the state holds tensors and plain Python
values only, so no pickled code runs when a checkpoint is read.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .safe_load import UnsafeFileError, safe_torch_load
from .seeding import capture_rng_state, restore_rng_state

LOG = logging.getLogger("depth_training.checkpoint")
_NAME = re.compile(r"^ckpt-(\d{8,})\.pt$")
FORMAT_VERSION = 1


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare module inside DistributedDataParallel / DataParallel / ``torch.compile`` wrappers."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    while True:
        if isinstance(model, (DistributedDataParallel, DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, torch.nn.Module):
            model = model._orig_mod
        else:
            return model


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    """Write ``path`` atomically: ``write(fileobj)`` fills ``<path>.tmp``, then fsync + rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _plain_value(value: Any) -> Any:
    """JSON fallback: numpy scalars/arrays and tensors become numbers/lists, anything else its ``str``."""
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalar/array, torch tensor
        return value.tolist()
    return str(value)


def _jsonable(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Round-trip the config through JSON so the checkpoint holds plain values only."""
    if config is None:
        return {}
    try:
        return json.loads(json.dumps(dict(config), default=_plain_value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint config is not JSON-serialisable: {exc}") from exc


def training_state(
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scaler: Any | None = None,
    *,
    epoch: int = 0,
    config: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything needed to resume at ``step``, as a dict of tensors and plain values."""
    return {
        "format": FORMAT_VERSION,
        "step": int(step),
        "epoch": int(epoch),
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "rng": capture_rng_state(),
        "config": _jsonable(config),
        "extra": dict(extra or {}),
    }


def restore_training_state(
    state: Mapping[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scaler: Any | None = None,
    *,
    restore_rng: bool = True,
) -> int:
    """Load ``state`` (from :func:`training_state`) into the live objects; returns its step."""
    unwrap(model).load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and scaler.is_enabled() and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    if restore_rng and state.get("rng") is not None:
        restore_rng_state(state["rng"])
    return int(state["step"])


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    step: int


class CheckpointManager:
    """Saves numbered checkpoints into one directory, keeps the newest ``keep_last``, and finds
    the newest complete one on resume.

    Only the main rank should call :meth:`save` (see :mod:`.distributed`); every rank may call
    :meth:`load_latest`.
    """

    def __init__(self, directory: str | os.PathLike, keep_last: int = 3):
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {keep_last}")
        self.directory = Path(directory)
        self.keep_last = int(keep_last)

    # -- listing -------------------------------------------------------------------------
    def path_for(self, step: int) -> Path:
        return self.directory / f"ckpt-{int(step):08d}.pt"

    def list(self) -> list[CheckpointInfo]:
        """Checkpoint files present (complete or not), oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for p in self.directory.iterdir():
            m = _NAME.match(p.name)
            if m:
                found.append(CheckpointInfo(p, int(m.group(1))))
        return sorted(found, key=lambda c: c.step)

    # -- saving --------------------------------------------------------------------------
    def save(self, state: Mapping[str, Any]) -> Path:
        """Write ``state`` (see :func:`training_state`) atomically, update ``latest``, prune."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob("*.tmp"):  # left by a writer that was killed
            stale.unlink(missing_ok=True)
        path = self.path_for(state["step"])
        atomic_write(path, lambda f: torch.save(dict(state), f))
        sidecar = {
            "step": int(state["step"]),
            "epoch": int(state.get("epoch", 0)),
            "bytes": path.stat().st_size,
            "sha256": sha256_file(path),
        }
        atomic_write_bytes(path.with_suffix(".json"), json.dumps(sidecar, indent=1).encode())
        atomic_write_bytes(self.directory / "latest", (path.name + "\n").encode())
        self._prune()
        return path

    def _prune(self) -> None:
        for info in self.list()[: -self.keep_last]:
            info.path.unlink(missing_ok=True)
            info.path.with_suffix(".json").unlink(missing_ok=True)

    # -- loading -------------------------------------------------------------------------
    def verify(self, path: Path) -> str | None:
        """``None`` when ``path`` is a complete checkpoint, else the reason it is not."""
        sidecar = path.with_suffix(".json")
        if not path.is_file():
            return "file is missing"
        if not sidecar.is_file():
            return f"no sidecar {sidecar.name} (the save did not finish)"
        try:
            meta = json.loads(sidecar.read_text())
            expected_bytes, expected_sha = int(meta["bytes"]), str(meta["sha256"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return f"unreadable sidecar {sidecar.name}: {exc}"
        size = path.stat().st_size
        if size != expected_bytes:
            return f"truncated: {size} bytes, sidecar says {expected_bytes}"
        if sha256_file(path) != expected_sha:
            return "corrupt: SHA-256 does not match its sidecar"
        return None

    def load_latest(self, map_location: Any = "cpu") -> dict[str, Any] | None:
        """The newest complete checkpoint's state, or ``None`` when there is none.

        Candidates are the file named by ``latest`` first, then every ``ckpt-*.pt`` newest
        first. Each incomplete or corrupt one is reported with a warning naming the file and
        the problem, then skipped.
        """
        candidates = [c.path for c in reversed(self.list())]
        pointer = self.directory / "latest"
        if pointer.is_file():
            named = self.directory / pointer.read_text().strip()
            if named in candidates:
                candidates.remove(named)
            candidates.insert(0, named)
        for path in candidates:
            problem = self.verify(path)
            if problem is None:
                try:
                    state = safe_torch_load(path, map_location=map_location)
                except UnsafeFileError as exc:
                    problem = str(exc).split(": ", 1)[1]
                except Exception as exc:  # noqa: BLE001 - any load failure means "unusable"
                    problem = f"torch.load failed: {exc}"
                else:
                    if not isinstance(state, dict):
                        problem = f"not a checkpoint (holds a {type(state).__name__})"
                    elif state.get("format") != FORMAT_VERSION:
                        problem = f"unknown checkpoint format {state.get('format')!r}"
                    else:
                        LOG.info("resuming from %s (step %d)", path, state["step"])
                        return state
            LOG.warning("ignoring checkpoint %s: %s", path, problem)
        return None
