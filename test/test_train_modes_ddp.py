"""A real training mode under torchrun: ``depth-train supervised`` on 2 CPU ranks (gloo, loopback)."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from depth_training.models.artifact import load_depth_model
from train_modes_helpers import FAST, history, write_tiny_bag


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_supervised_mode_trains_on_two_ranks_and_writes_one_model(tmp_path):
    bag = write_tiny_bag(tmp_path / "tiny", frames=16)
    out = tmp_path / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--nnodes=1", "--nproc_per_node=2", "--rdzv-backend=c10d",
           f"--rdzv-endpoint=127.0.0.1:{_free_port()}", "--max-restarts=0",
           "-m", "depth_training.cli", "supervised", "--dataset", str(bag), "--out", str(out), "--cpu",
           "--loss", "silog", "--steps", "12", "--val-every", "6", "--ckpt-every", "6", *FAST]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "MASTER_ADDR": "127.0.0.1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    log = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, log
    # rank 0 alone writes checkpoints, the validation history and the model file
    assert sorted(p.name for p in (out / "checkpoints").glob("*.pt")) == ["ckpt-00000006.pt", "ckpt-00000012.pt"]
    assert [h["step"] for h in history(out)] == [0, 6, 12], log
    assert proc.stderr.count("wrote: " + str(out / "model.pt")) == 1, log  # the end-of-run summary, rank 0 only
    net, cfg = load_depth_model(out / "model.pt")
    assert cfg["step"] == 12 and cfg["mode"] == "supervised"
    # model_best.pt: the validation low of the history, also written by rank 0 only
    best_step = min(history(out), key=lambda h: h["abs_rel"])["step"]
    assert load_depth_model(out / "model_best.pt")[1]["step"] == best_step
    # the model file holds the final weights, the same as the last checkpoint's
    ckpt_net, _ = load_depth_model(out / "checkpoints" / "ckpt-00000012.pt")
    for (k, v), (_, v2) in zip(net.state_dict().items(), ckpt_net.state_dict().items()):
        assert torch.equal(v, v2), k
