"""How many CPU threads torch uses in a training or evaluation process.

torch's own default is every core. On a machine shared with other jobs (or with loader worker
processes) its threads then wait for each other at every operation: measured on a 2-core VM at
load ~13, ``--threads 2`` trained at 0.35-0.98 images/s where ``--threads 1`` trained at 5.7-19
images/s. The default here takes the cores that are idle when the run starts instead.
"""
from __future__ import annotations

import logging
import os

__all__ = ["default_threads", "apply_threads", "THREADS_HELP"]

LOG = logging.getLogger("depth_training")
THREADS_HELP = ("torch CPU threads (default 0 = the cores idle at start: usable cores minus the 1-minute load "
                "average, divided among the processes of a torchrun node, at least 1; torch's own choice, every "
                "core, is many times slower when other jobs share them)")


def default_threads(cores: int, load: float, local_processes: int = 1) -> int:
    """Threads for one process: ``max(1, floor((cores - load) / local_processes))``.

    ``cores``: CPUs this process may run on; ``load``: the 1-minute load average (runnable
    processes, this one not yet counted); ``local_processes``: training processes on this machine.
    """
    idle = cores - max(0.0, load)
    return max(1, int(idle // max(1, local_processes)))


def apply_threads(requested: int) -> int:
    """Set torch's intra-op threads to ``requested`` (> 0) or :func:`default_threads`; returns the number."""
    import torch

    if requested > 0:
        n = requested
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        n = default_threads(cores, load, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
        LOG.info("torch CPU threads: %d (%d cores, load average %.1f; --threads N to choose)", n, cores, load)
    torch.set_num_threads(n)
    return n
