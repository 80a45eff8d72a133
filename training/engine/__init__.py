"""Training engine: a thin loop plus the machinery every mode needs.

* :mod:`.loop` - ``train(model, optimizer, step_fn, data, ...)``, :class:`SkipBatch`
* :mod:`.checkpoint` - atomic checkpoints, resume from the newest complete one
* :mod:`.distributed` - torchrun / DDP set-up and the few collectives the loop needs
* :mod:`.monitor` - TensorBoard, progress bar with ETA, log lines; :mod:`.colorize` depth previews
* :mod:`.precision` - AMP (bf16/fp16) on CUDA; :mod:`.seeding` - seeds and RNG state
* :mod:`.toy` - a tiny depth-regression run used by tests, benchmarks and smoke runs
"""
from .checkpoint import CheckpointManager, restore_training_state, training_state, unwrap
from .distributed import DistContext, init_distributed, teardown, wrap_model
from .loop import EpochData, SkipBatch, TrainingAborted, TrainResult, train
from .monitor import Monitor
from .precision import Precision, resolve_precision
from .seeding import seed_everything, seed_worker

__all__ = [
    "CheckpointManager",
    "DistContext",
    "EpochData",
    "Monitor",
    "Precision",
    "SkipBatch",
    "TrainResult",
    "TrainingAborted",
    "init_distributed",
    "resolve_precision",
    "restore_training_state",
    "seed_everything",
    "seed_worker",
    "teardown",
    "train",
    "training_state",
    "unwrap",
    "wrap_model",
]
