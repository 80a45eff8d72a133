"""Depth colourisation, progress/ETA formatting and TensorBoard output of the Monitor."""
import numpy as np
import pytest

from depth_training.engine.colorize import TURBO, apply_colormap, colorize_depth, turbo_lut
from depth_training.engine.monitor import Monitor, format_duration, to_preview


def test_turbo_lut_matches_opencv_turbo():
    lut = turbo_lut()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    cv2 = pytest.importorskip("cv2")
    ref = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_TURBO)[:, 0, ::-1]
    err = np.abs(lut.astype(int) - ref.astype(int))
    assert err.max() <= 7 and err.mean() < 2.0
    # blue dominates the low end, red the high end
    assert lut[10, 2] > lut[10, 0] and lut[240, 0] > lut[240, 2]


def test_apply_colormap_nan_black_and_clipping():
    out = apply_colormap(np.array([[np.nan, -1.0, 0.0, 1.0, 2.0]]))
    assert out.shape == (1, 5, 3)
    assert (out[0, 0] == 0).all()
    assert (out[0, 1] == TURBO[0]).all() and (out[0, 2] == TURBO[0]).all()
    assert (out[0, 3] == TURBO[-1]).all() and (out[0, 4] == TURBO[-1]).all()


def test_colorize_depth_near_red_far_blue_invalid_black():
    depth = np.tile(np.linspace(0.5, 20.0, 64, dtype=np.float32), (8, 1))
    depth[:, :4] = np.nan
    depth[:, 4:6] = 0.0
    img = colorize_depth(depth)
    assert img.shape == (8, 64, 3) and img.dtype == np.uint8
    assert (img[:, :6] == 0).all()
    near, far = img[0, 8].astype(int), img[0, 63].astype(int)
    assert near[0] > near[2]  # red-ish
    assert far[2] > far[0]  # blue-ish
    same = colorize_depth(depth, inverse=False)
    assert same[0, 8, 0] > same[0, 8, 2] and same[0, 63, 2] > same[0, 63, 0]


def test_colorize_all_invalid_is_black_and_bad_shape_raises():
    assert (colorize_depth(np.full((4, 5), np.nan)) == 0).all()
    assert (colorize_depth(np.zeros((4, 5))) == 0).all()
    with pytest.raises(ValueError, match="shape"):
        colorize_depth(np.zeros((2, 3, 4, 5)))


def test_to_preview_variants():
    assert to_preview(np.ones((1, 4, 5), np.float32)).shape == (4, 5, 3)
    chw = np.full((3, 4, 5), 0.5, np.float32)
    out = to_preview(chw)
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8 and out[0, 0, 0] == 128
    with pytest.raises(ValueError):
        to_preview(np.zeros((4, 5, 2)))


def test_format_duration():
    assert format_duration(3725.4) == "1:02:05"
    assert format_duration(float("nan")) == "?"
    assert format_duration(-1) == "?"


def test_monitor_writes_scalars_and_images(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    mon = Monitor(tmp_path / "tb", is_main=True, progress=False)
    assert not mon.show_bar
    mon.start(0, 10)
    for step in (1, 2):
        mon.scalars(step, {"loss": 1.0 / step, "lr": 0.1}, prefix="train/")
    mon.images(2, {"depth/pred": np.random.rand(6, 8).astype(np.float32) + 0.1, "rgb": np.zeros((6, 8, 3), np.uint8)})
    mon.close()
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert [e.value for e in acc.Scalars("train/loss")] == [1.0, 0.5]
    assert set(acc.Tags()["images"]) == {"depth/pred", "rgb"}
    img = acc.Images("depth/pred")[0]
    assert (img.width, img.height) == (8, 6)


def test_non_main_rank_writes_nothing_but_warns(tmp_path, caplog):
    mon = Monitor(tmp_path / "tb1", is_main=False, rank=3, progress=True)
    assert mon.writer is None and not mon.show_bar
    with caplog.at_level("INFO", logger="depth_training.train"):
        mon.info("quiet")
        mon.warning("loud")
    mon.close()
    messages = [r.getMessage() for r in caplog.records]
    assert "[rank 3] loud" in messages and "quiet" not in messages
    assert not (tmp_path / "tb1").exists()


def test_to_preview_accepts_tensors():
    import torch

    assert to_preview(torch.rand(1, 4, 5, dtype=torch.bfloat16) + 0.1).shape == (4, 5, 3)
    rgb = torch.zeros(4, 5, 3, dtype=torch.uint8)
    assert to_preview(rgb).dtype == np.uint8


def test_progress_bar_with_eta(capsys):
    mon = Monitor(None, progress=True)
    assert mon.show_bar
    mon.start(10, 20)
    for step in range(11, 16):
        mon.advance(step, {"loss": 0.5})
    assert mon.eta_s(15) > 0
    mon.log_line(15, {"loss": 0.5})
    mon.close()
    err = capsys.readouterr().err
    assert "15/20" in err and "loss=0.5" in err


def test_piped_progress_shows_slow_rates_with_their_digits(monkeypatch):
    """Issue 20 item 10: ``depth-train eval`` printed "0 batches/s" for a batch every 32 s."""
    import io

    from depth_training.engine import progress as progress_module

    clock = iter(range(0, 10_000, 32))  # every call: 32 s later (one batch per 32 s)
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: float(next(clock)))
    out = io.StringIO()
    list(progress_module.progress(range(3), total=10, desc="depth-train eval", unit="batches", stream=out,
                                  terminal=False))
    first = out.getvalue().splitlines()[0]
    assert first == "depth-train eval: 1/10 batches (10%), 0.0312 batches/s, eta 0:04:48", first
    assert progress_module.format_rate(3100.4, "messages") == "3100 messages/s"
    assert progress_module.format_rate(2.44, "batches") == "2.44 batches/s"
