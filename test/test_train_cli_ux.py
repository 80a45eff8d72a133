"""Issue 12 items 2-3 (training side): progress on a terminal and piped, the end-of-run summary,
Ctrl-C as one line with exit 130 and the resume hint, numeric options checked by the parser,
output-path problems as one line."""
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

from depth_training.cli import main as depth_train
from train_modes_helpers import FAST, write_tiny_bag

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_bag(tmp_path_factory.mktemp("ux") / "tiny", frames=12)


def _cmd(bag, out, steps, *extra):
    return [sys.executable, "-m", "depth_training.cli", "supervised", "--dataset", str(bag), "--out", str(out), *FAST,
            "--steps", str(steps), "--batch-size", "2", "--val-every", "0", "--ckpt-every", "5", *extra]


def _read_until(fd, proc, needle: bytes, timeout=120.0) -> bytes:
    buf, end = b"", time.monotonic() + timeout
    while needle not in buf and time.monotonic() < end and proc.poll() is None:
        if select.select([fd], [], [], 0.5)[0]:
            try:
                buf += os.read(fd, 65536)
            except OSError:
                break
    return buf


def test_ctrl_c_on_a_terminal_shows_the_bar_then_one_line_and_the_rerun_resumes(tiny, tmp_path):
    out = tmp_path / "run"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a terminal has a size
    proc = subprocess.Popen(_cmd(tiny, out, 100000), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=ENV)
    os.close(slave)
    try:
        seen = _read_until(master, proc, b"/100000")  # the tqdm bar: "12/100000 [00:03<...,  3.2step/s]"
        seen += _read_until(master, proc, b"step/s", timeout=30)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=60)
        while select.select([master], [], [], 1.0)[0]:  # what it wrote before exiting
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = seen.decode(errors="replace")
    # a live tqdm bar: "  0%|          | 12/100000 [00:03<5:38:51,  4.92step/s]" (count, elapsed<ETA, rate)
    assert re.search(r"\| *\d+/100000 \[\d+:\d+<[\d:]+, +[\d.]+step/s", text), text[-2000:]
    assert rc == 130, text[-2000:]
    assert "Traceback" not in text
    last = [ln for ln in text.replace("\r", "\n").splitlines() if ln.strip()][-1]
    assert last.startswith("depth-train supervised: interrupted; checkpoint of step ") and \
        "rerun the same command to resume from step" in last, last
    step = int(last.rsplit(" ", 1)[1])
    assert step > 0 and (out / "checkpoints" / f"ckpt-{step:08d}.pt").is_file()
    # piped (not a terminal): no bar, plain lines, the summary; it resumes from the step the line named
    res = subprocess.run(_cmd(tiny, out, step + 2, "--log-every", "1"), capture_output=True, text=True, env=ENV,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "\r" not in res.stderr and "step/s" not in res.stderr.split("done:")[0].split("eta")[0]
    assert f"resuming from {out / 'checkpoints'}" in res.stderr and f"step {step + 2}/{step + 2}" in res.stderr
    summary = res.stderr[res.stderr.index("done: "):]
    assert f"done: step {step + 2} (resumed from step {step}), 2 steps in" in summary
    assert "no validation (--val-fraction 0" not in summary  # the default 0.2 validates
    assert "best validation:" in summary and "model_best.pt (step" in summary
    assert f"TensorBoard: tensorboard --logdir {out / 'tb'}" in summary
    assert "{" not in summary  # no raw dicts


def test_plain_progress_lines_come_periodically_without_a_terminal(caplog):
    import logging

    from depth_training.engine.monitor import Monitor

    caplog.set_level(logging.INFO, logger="depth_training")
    m = Monitor(None, progress=None, plain_period_s=0.0)  # pytest's stderr is not a terminal: no bar
    m.start(0, 10)
    for step in (1, 2, 3):
        m.advance(step, {"loss": 0.5})
    m.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert len(lines) == 3 and lines[-1].startswith("step 3/10 loss=0.5 ") and "steps/s eta" in lines[-1]
    assert m._bar is None


def test_summary_says_when_there_is_no_model_best(tiny, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="depth_training")
    assert depth_train(["supervised", "--dataset", str(tiny), "--out", str(tmp_path / "r"), *FAST, "--steps", "2",
                        "--batch-size", "2", "--val-every", "0", "--ckpt-every", "0", "--val-fraction", "0"]) == 0
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "no validation (--val-fraction 0 and no --val-bag): no model_best.pt; use model.pt" in text
    assert not (tmp_path / "r" / "model_best.pt").exists()


@pytest.mark.parametrize("argv,message", [
    (["supervised", "--dataset", "x", "--out", "o", "--lr", "-1"], "argument --lr: expected a positive number, got -1"),
    (["supervised", "--dataset", "x", "--out", "o", "--val-fraction", "1"], "argument --val-fraction: expected a number in [0, 1)"),
    (["mono", "--dataset", "x", "--out", "o", "--steps", "0"], "argument --steps: expected a positive integer, got 0"),
    (["mono", "--dataset", "x", "--out", "o", "--max-depth", "nan"], "argument --max-depth: expected a finite number"),
    (["mono", "--dataset", "x", "--out", "o", "--epoch-samples", "-5"], "argument --epoch-samples: expected a positive"),
    (["stereo", "--dataset", "x", "--out", "o", "--workers", "-1"], "argument --workers: expected an integer >= 0"),
    (["eval", "--model", "m.pt", "--tail", "0"], "argument --tail: expected a number in (0, 1]"),
    (["eval", "--model", "m.pt", "--batch-size", "0"], "argument --batch-size: expected a positive integer"),
    (["export", "--model", "m.pt", "--onnx", "x.onnx", "--opset", "-3"], "argument --opset: expected a positive"),
    (["info", "bag", "--max-gap", "0"], "argument --max-gap: expected a positive number, got 0"),
    (["sim", "--out", "o", "--rate", "-2"], "argument --rate: expected a positive number, got -2"),
])
def test_numeric_options_are_checked_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        depth_train(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_ctrl_c_in_other_commands_is_one_line(tiny, monkeypatch, capsys):
    import depth_training.bags.cli as bags_cli

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(bags_cli, "summarize_bag", interrupted)
    assert depth_train(["info", str(tiny)]) == 130
    assert capsys.readouterr().err.strip() == "depth-train info: interrupted"


def test_output_path_under_a_file_is_one_line(tiny, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    rc = depth_train(["supervised", "--dataset", str(tiny), "--out", str(tmp_path / "file" / "run"), *FAST,
                      "--steps", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and str(tmp_path / "file") in err and "Traceback" not in err


def test_messages_name_the_real_cause(tiny, tmp_path, capsys, caplog):
    import logging

    stereo = write_tiny_bag(tmp_path / "stereo", frames=12, stereo=True)
    # a typo in the stereo left topic is labelled "left", not "color"
    assert depth_train(["stereo", "--dataset", str(stereo), "--out", str(tmp_path / "s"), *FAST,
                        "--topics", "left=/stereo/left/typo"]) == 2
    err = capsys.readouterr().err
    assert "/stereo/left/typo (left): topic not in the bag" in err
    # a frame stride too long for the recording is blamed on the stride, with the span it needs
    assert depth_train(["mono", "--dataset", str(tiny), "--out", str(tmp_path / "m"), *FAST, "--frame-stride", "8",
                        "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "a sample spans 17 consecutive frames (offsets -8, +0, +8)" in err and "a smaller --frame-stride" in err
    # --val-fraction 0: no "validating on 12..11"; --val-bag with depth: no "without depth metrics" note
    caplog.set_level(logging.INFO, logger="depth_training")
    plain = write_tiny_bag(tmp_path / "plain", frames=12, depth=False)
    assert depth_train(["mono", "--dataset", str(plain), "--val-bag", str(tiny), "--out", str(tmp_path / "v"), *FAST,
                        "--steps", "1", "--ckpt-every", "0"]) == 0
    assert depth_train(["mono", "--dataset", str(plain), "--out", str(tmp_path / "z"), *FAST, "--steps", "1",
                        "--ckpt-every", "0", "--val-fraction", "0"]) == 0
    text = caplog.text
    assert "validating on 12..11" not in text and "training on all of them" in text
    assert "without depth metrics" not in text
    # eval: the frame selection is shown as the options, not as a dict
    np = pytest.importorskip("numpy")
    np.savez(tmp_path / "gt.npz", rgb=np.zeros((4, 64, 64, 3), np.uint8), depth=np.ones((4, 64, 64), np.float32))
    from depth_training.models import build_depth_net
    from depth_training.models.artifact import save_depth_model

    save_depth_model(tmp_path / "model.pt", build_depth_net("mobile", decoder_channels=(8, 16, 32, 64, 128)),
                     {"encoder": "mobile", "num_scales": 4, "decoder_channels": [8, 16, 32, 64, 128], "height": 64,
                      "width": 64, "min_depth": 0.1, "max_depth": 10.0, "output": "metric_depth"})
    assert depth_train(["eval", "--model", str(tmp_path / "model.pt"), "--npz", str(tmp_path / "gt.npz"),
                        "--frames", "10:20"]) == 2
    err = capsys.readouterr().err
    assert "the frame selection --frames 10:20 leaves no frame of 4" in err and "{" not in err


@pytest.mark.parametrize("option", ["--json", "--save-predictions", "--onnx"])
def test_eval_and_export_outputs_under_a_file_are_refused_before_the_work(tmp_path, capsys, option):
    import numpy as np

    from depth_training.models import build_depth_net
    from depth_training.models.artifact import save_depth_model

    save_depth_model(tmp_path / "model.pt", build_depth_net("mobile", decoder_channels=(8, 16, 32, 64, 128)),
                     {"encoder": "mobile", "num_scales": 4, "decoder_channels": [8, 16, 32, 64, 128], "height": 64,
                      "width": 64, "min_depth": 0.1, "max_depth": 10.0, "output": "metric_depth"})
    np.savez(tmp_path / "gt.npz", rgb=np.zeros((2, 64, 64, 3), np.uint8), depth=np.ones((2, 64, 64), np.float32))
    (tmp_path / "file").write_text("x")
    target = str(tmp_path / "file" / ("x.onnx" if option == "--onnx" else "out"))
    if option == "--onnx":
        argv = ["export", "--model", str(tmp_path / "model.pt"), "--onnx", target]
    else:
        argv = ["eval", "--model", str(tmp_path / "model.pt"), "--npz", str(tmp_path / "gt.npz"), option, target]
    assert depth_train(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == f"depth-train {argv[0]}: error: {option} {target}: {tmp_path / 'file'} is a file, " \
                                   f"so {target} cannot be created under it"
    assert "AbsRel" not in captured.out and "abs_rel" not in captured.out  # refused before evaluating


def test_ctrl_c_before_the_loop_says_what_rerunning_does(tiny, tmp_path, monkeypatch, capsys):
    import depth_training.modes.runner as runner

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "build_mode_data", interrupted)  # Ctrl-C while the frames are being cached
    rc = depth_train(["supervised", "--dataset", str(tiny), "--out", str(tmp_path / "r"), *FAST, "--steps", "2"])
    assert rc == 130
    assert capsys.readouterr().err.strip() == ("depth-train supervised: interrupted before the first checkpoint; "
                                               "rerun the same command to start again")
