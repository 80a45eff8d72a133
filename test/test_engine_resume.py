"""Kill a real training process with SIGKILL mid-run, resume it, and get bit-identical weights
to an uninterrupted run with the same seed; the resumed run continues the data order exactly."""
import json
import os
import signal
import subprocess
import sys
import time

import torch

ARGS = ["--steps", "30", "--ckpt-every", "4", "--log-every", "100", "--seed", "7", "--threads", "1"]


def _cmd(out, *extra):
    return [sys.executable, "-m", "depth_training.engine.toy", "--out", str(out), *ARGS, *extra]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _trace(out):
    lines = [json.loads(x) for x in (out / "trace-rank0.jsonl").read_text().splitlines()]
    runs = list(dict.fromkeys(x["run"] for x in lines))
    return {r: [(x["source"], x["index"]) for x in lines if x["run"] == r] for r in runs}, runs


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    ref, victim = tmp_path / "ref", tmp_path / "victim"
    proc = subprocess.Popen(_cmd(victim, "--step-sleep", "0.08"), env=_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        latest = victim / "checkpoints" / "latest"
        while time.monotonic() < deadline:
            if latest.is_file() and latest.read_text().strip() >= "ckpt-00000012.pt":
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.02)
        else:
            raise AssertionError("the victim run never reached step 12")
        time.sleep(0.13)  # land somewhere inside a later step
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (victim / "final-rank0.pt").exists()

    # the uninterrupted reference run and the resumed run, side by side
    reference = subprocess.Popen(_cmd(ref), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    resumed = subprocess.run(_cmd(victim), env=_env(), capture_output=True, text=True, timeout=120)
    ref_err = reference.communicate(timeout=120)[1]
    assert reference.returncode == 0, ref_err
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads((victim / "result-rank0.json").read_text())
    start = result["resumed_from"]
    assert start is not None and 12 <= start < 30 and start % 4 == 0
    assert "resuming from" in resumed.stderr

    a = torch.load(ref / "final-rank0.pt")
    b = torch.load(victim / "final-rank0.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k

    ref_trace, _ = _trace(ref)
    (ref_batches,) = ref_trace.values()
    victim_trace, runs = _trace(victim)
    assert len(runs) == 2
    killed, after = victim_trace[runs[0]], victim_trace[runs[1]]
    assert killed == ref_batches[: len(killed)] and len(killed) > start  # work past the checkpoint was lost
    assert after == ref_batches[start:]  # ... and redone with exactly the same batches
