"""Seeds and random-number-generator state for reproducible (and resumable) training.

Three generators matter in a training process: Python's :mod:`random`, NumPy's legacy global
generator and torch's (CPU plus one per CUDA device). :func:`seed_everything` seeds all of them;
:func:`capture_rng_state` / :func:`restore_rng_state` move their state in and out of a checkpoint
as plain lists and tensors, so checkpoints load with ``torch.load(weights_only=True)``.

DataLoader workers: torch seeds each worker's torch generator with ``base_seed + worker_id``
(``base_seed`` comes from the loader's ``generator``); :func:`seed_worker` derives the worker's
NumPy and Python seeds from that, so augmentations in workers are reproducible too.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int, rank: int = 0) -> int:
    """Seed Python, NumPy and torch (all devices) with ``seed + rank``; returns the seed used.

    Each data-parallel rank gets its own stream (dropout masks differ per rank, as they should);
    the model weights are still identical on every rank because DDP broadcasts rank 0's.
    """
    s = int(seed) + int(rank)
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)  # also seeds every CUDA device
    return s


def seed_worker(worker_id: int) -> None:  # noqa: ARG001 - DataLoader passes the id
    """``worker_init_fn`` for DataLoaders: seed NumPy and Python from the worker's torch seed."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def loader_generator(seed: int, epoch: int = 0) -> torch.Generator:
    """A dedicated generator for a DataLoader (its worker ``base_seed``), a pure function of
    (seed, epoch); using one keeps the DataLoader from drawing on torch's global generator."""
    g = torch.Generator()
    g.manual_seed((int(seed) * 1_000_003 + int(epoch)) % 2**63)
    return g


def capture_rng_state() -> dict[str, Any]:
    """State of every global generator, as checkpoint-safe lists/tensors (no pickled objects)."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`. CUDA states are restored when both sides have them
    and the device count matches (a checkpoint moved to another machine keeps its CPU streams)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(int(x) for x in internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        (
            n["bit_generator"],
            n["key"].numpy().astype(np.uint32),
            int(n["pos"]),
            int(n["has_gauss"]),
            float(n["gauss"]),
        )
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
