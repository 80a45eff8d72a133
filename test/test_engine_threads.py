"""Issue 20 item 10: torch's default thread count (every core) made training crawl on a shared
machine (0.98 images/s with 2 threads against 5.7 with 1 at load ~13 on 2 cores); the default is
now the idle cores, and ``--help`` says so."""
import os

import pytest
import torch

from depth_training.cli import build_parser
from depth_training.engine import threads
from depth_training.engine.threads import apply_threads, default_threads


@pytest.mark.parametrize("cores, load, procs, expected", [
    (2, 13.0, 1, 1),     # the loaded development VM: one thread, never zero
    (16, 0.4, 1, 15),    # an idle workstation: the idle cores
    (16, 0.0, 4, 4),     # torchrun with 4 processes on the node: shared out
    (8, 2.5, 1, 5),
    (1, 0.0, 1, 1),
])
def test_default_threads_are_the_idle_cores(cores, load, procs, expected):
    assert default_threads(cores, load, procs) == expected


def test_apply_threads_uses_the_load_unless_told(monkeypatch, caplog):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
        monkeypatch.setattr(os, "getloadavg", lambda: (3.2, 1.0, 1.0))
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
        with caplog.at_level("INFO", logger="depth_training"):
            assert apply_threads(0) == 2 and torch.get_num_threads() == 2
        assert "torch CPU threads: 2 (6 cores, load average 3.2" in caplog.text
        assert apply_threads(3) == 3 and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("command", ["supervised", "mono", "stereo", "descriptors", "eval-descriptors", "keypoints"])
def test_help_says_what_the_default_is(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "cores idle at start" in text and "torch's choice" not in text, command
    assert threads.THREADS_HELP.split(" (")[0] in text
