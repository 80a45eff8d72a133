"""Data-parallel training through torchrun: 2 CPU processes (gloo) on loopback."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_ranks_agree_and_learn(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    port = _free_port()
    cmd = [
        str(torchrun), "--nnodes=1", "--nproc_per_node=2", "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{port}", "--max-restarts=0",
        "-m", "depth_training.engine.toy", "--out", str(tmp_path), "--cpu",
        "--steps", "30", "--ckpt-every", "10", "--log-every", "5", "--seed", "3",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "MASTER_ADDR": "127.0.0.1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    w0 = torch.load(tmp_path / "final-rank0.pt")
    w1 = torch.load(tmp_path / "final-rank1.pt")
    assert not any(k.startswith("module.") for k in w0)
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k

    r0 = json.loads((tmp_path / "result-rank0.json").read_text())
    r1 = json.loads((tmp_path / "result-rank1.json").read_text())
    assert r0["step"] == r1["step"] == 30 and r0["skipped"] == 0
    assert r0["last"]["loss"] == r1["last"]["loss"]  # logged loss is the mean over ranks

    # the loss falls: first logged value (step 5) vs the last (step 30), read from the log lines
    losses = [float(line.split("loss=")[1].split()[0]) for line in proc.stderr.splitlines()
              if "depth_training.train: step " in line and "loss=" in line]
    assert len(losses) == 6 and losses[-1] < 0.7 * losses[0], losses

    # only rank 0 writes checkpoints / events; each rank saw its own half of every batch
    assert [p.name for p in sorted((tmp_path / "checkpoints").glob("*.pt"))] == [
        "ckpt-00000010.pt", "ckpt-00000020.pt", "ckpt-00000030.pt"]
    t0 = [json.loads(x) for x in (tmp_path / "trace-rank0.jsonl").read_text().splitlines()]
    t1 = [json.loads(x) for x in (tmp_path / "trace-rank1.jsonl").read_text().splitlines()]
    assert len(t0) == len(t1) == 30
    assert any(a["index"] != b["index"] or a["source"] != b["source"] for a, b in zip(t0, t1))
