"""Issue 20 item 10: a run resumed with another ``--steps`` kept the old learning-rate schedule
(``StepLR`` stores its step size in the checkpoint). Real training steps, a real checkpoint."""
import pytest
import torch

from depth_training.data.loader import EpochLoader
from depth_training.data.mixing import MixingSampler
from depth_training.engine.checkpoint import CheckpointManager, restore_training_state
from depth_training.engine.loop import train
from depth_training.engine.schedule import DropSchedule, drop_step
from depth_training.engine.toy import TinyDepthNet, build_data, depth_step


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _run(mixed, ckpt_dir, steps, lrs):
    sampler = MixingSampler.for_mixed(mixed, [0.7, 0.3], 24, seed=0)
    data = EpochLoader(mixed, sampler, batch_size=4, seed=0)
    torch.manual_seed(0)
    model = TinyDepthNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = DropSchedule(opt, steps, 0.75)

    def step(m, batch):
        lrs.append(opt.param_groups[0]["lr"])
        return depth_step(m, batch)

    train(model, opt, step, data, max_steps=steps, scheduler=sched, checkpoints=CheckpointManager(ckpt_dir),
          ckpt_every=4, log_every=100)


def test_resuming_with_more_steps_follows_the_new_schedule(tmp_path):
    mixed = build_data(tmp_path / "cache", height=16, width=20, frames=12)
    first, second = [], []
    _run(mixed, tmp_path / "ckpt", 8, first)        # drops at step 6 of 8
    assert first == pytest.approx([1e-3] * 6 + [1e-4] * 2)
    _run(mixed, tmp_path / "ckpt", 16, second)      # resumed at 8 with --steps 16: drops at 12, not 6
    assert second == pytest.approx([1e-3] * 4 + [1e-4] * 4)


def test_a_steplr_checkpoint_resumes_on_the_new_schedule():
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    old = torch.optim.lr_scheduler.StepLR(opt, step_size=6, gamma=0.1)
    for _ in range(7):
        opt.step()
        old.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4)
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": old.state_dict(), "step": 7}
    opt2 = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = DropSchedule(opt2, 40, 0.75)
    assert restore_training_state(state, model, opt2, sched, restore_rng=False) == 7
    assert sched.last_epoch == 7 and opt2.param_groups[0]["lr"] == pytest.approx(1e-3)  # 7 < 30
    assert drop_step(40, 0.75) == 30 and drop_step(1, 0.5) == 1
