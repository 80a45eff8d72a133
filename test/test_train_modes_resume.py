"""Kill ``depth-train supervised`` with SIGKILL mid-run and run the same command again: it resumes
from the last complete checkpoint and ends with exactly the weights of an uninterrupted run; running
the command once more after the end only rewrites ``model.pt``."""
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from depth_training.cli import main as depth_train
from depth_training.models.artifact import load_depth_model
from train_modes_helpers import FAST, write_tiny_bag


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    return write_tiny_bag(tmp_path_factory.mktemp("resume") / "tiny", frames=16)


def _args(bag, out):
    return ["supervised", "--dataset", str(bag), "--out", str(out), *FAST, "--width", "64", "--steps", "16",
            "--ckpt-every", "4", "--val-every", "8", "--log-every", "100"]


def _subprocess(bag, out, **kw):
    return subprocess.Popen([sys.executable, "-m", "depth_training.cli", *_args(bag, out)],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_sigkill_then_same_command_resumes_to_the_uninterrupted_result(bag, tmp_path, caplog):
    ref, victim = tmp_path / "ref", tmp_path / "victim"
    reference = _subprocess(bag, ref)  # the uninterrupted run, alongside
    proc = _subprocess(bag, victim, start_new_session=True)
    try:
        latest = victim / "checkpoints" / "latest"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if latest.is_file() and latest.read_text().strip() >= "ckpt-00000008.pt":
                break
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.01)
        else:
            raise AssertionError("the run never reached step 8")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (victim / "model.pt").exists()
    ref_err = reference.communicate(timeout=300)[1]
    assert reference.returncode == 0, ref_err

    caplog.set_level(logging.INFO, logger="depth_training")
    assert depth_train(_args(bag, victim)) == 0  # the very same command
    resumed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("resumed from step")]
    assert len(resumed) == 1, caplog.text
    start = int(resumed[0].split()[3])
    assert 8 <= start < 16 and start % 4 == 0
    assert "validation before training" not in caplog.text  # only a fresh run has a step-0 baseline

    net_ref, cfg_ref = load_depth_model(ref / "model.pt")
    net_res, cfg_res = load_depth_model(victim / "model.pt")
    assert cfg_ref["step"] == cfg_res["step"] == 16
    for (k, a), (_, b) in zip(net_ref.state_dict().items(), net_res.state_dict().items()):
        assert torch.equal(a, b), k

    # the finished run, started again: nothing left to train, model.pt is written again all the same
    (victim / "model.pt").unlink()
    caplog.clear()
    assert depth_train(_args(bag, victim)) == 0
    assert "resumed from step 16" in caplog.text
    net_again, cfg_again = load_depth_model(victim / "model.pt")
    assert cfg_again["step"] == 16 and cfg_again["output"] == "relative_disparity"
    for (k, a), (_, b) in zip(net_ref.state_dict().items(), net_again.state_dict().items()):
        assert torch.equal(a, b), k
