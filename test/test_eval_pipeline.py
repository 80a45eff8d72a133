"""The evaluation pipeline without a recording: oracle predictions, resizing, baselines, selection, report."""
import numpy as np
import pytest
import torch
from torch import nn

from depth_training.evaluation import cli as eval_cli
from depth_training.evaluation.baselines import ConstantPredictor, constant_depth, untrained_network
from depth_training.evaluation.evaluate import evaluate_predictor
from depth_training.evaluation.predict import NetworkPredictor
from depth_training.evaluation.report import format_table, json_safe
from depth_training.evaluation.selection import FrameSelection, parse_range, tail_start
from depth_training.evaluation.sources import EvalFrames, EvalSourceError, check_frame_arrays
from depth_training.geometry_torch import disp_to_depth
from depth_training.metrics import ALIGNMENTS

torch.set_num_threads(2)

CONFIG = {"encoder": "mobile", "num_scales": 4, "decoder_channels": [8, 16, 32, 64, 128], "height": 64,
          "width": 96, "min_depth": 0.1, "max_depth": 10.0, "output": "relative_depth"}


def _frames(n=7, h=30, w=40, seed=0) -> EvalFrames:
    """Random colour, depth in [0.5, 4] m with a NaN hole and an out-of-range patch per frame."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 4.0, (n, h, w)).astype(np.float32)
    depth[:, :3, :5] = np.nan
    depth[:, -2:, -4:] = 50.0  # beyond the 10 m cap: not evaluated
    rgb = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    return EvalFrames(rgb, depth, np.arange(n), None, {"kind": "test"})


class _Replay:
    """A predictor that hands out consecutive slices of ``pred (N, H, W)`` for consecutive batches of ``frames``."""

    def __init__(self, frames: EvalFrames, pred: np.ndarray):
        self.frames, self.pred, self.pos = frames, pred, 0

    def __call__(self, rgb):
        assert np.array_equal(rgb, self.frames.rgb[self.pos:self.pos + len(rgb)])  # batches come in order
        out = self.pred[self.pos:self.pos + len(rgb)]
        self.pos += len(rgb)
        return out


def _eval(frames, f, alignment, batch_size=3, max_depth=10.0):
    """Metrics of the prediction ``f(ground truth)``."""
    return evaluate_predictor(_Replay(frames, f(frames.depth)), frames, alignment=alignment, min_depth=1e-3,
                              max_depth=max_depth, batch_size=batch_size)


def _valid(g, max_depth=10.0):
    return np.isfinite(g) & (g > 1e-3) & (g < max_depth)


@pytest.mark.parametrize("alignment", ["none", "median"])
def test_ground_truth_as_prediction_is_perfect(alignment):
    frames = _frames()
    m = _eval(frames, lambda g: np.nan_to_num(g, nan=1.0), alignment)
    assert m["num_images"] == 7
    for name in ("abs_rel", "sq_rel", "rmse", "rmse_log"):
        assert m[name] == pytest.approx(0.0, abs=1e-6), name
    assert m["a1"] == m["a2"] == m["a3"] == 1.0


def test_ten_percent_too_far_is_abs_rel_0_1_unaligned_and_exact_after_median_scaling():
    frames = _frames()
    f = lambda g: np.nan_to_num(g, nan=1.0) * 1.1  # noqa: E731
    none = _eval(frames, f, "none")
    assert none["abs_rel"] == pytest.approx(0.1, rel=1e-5)
    assert none["rmse_log"] == pytest.approx(np.log(1.1), rel=1e-5)
    # rmse = 0.1 sqrt(mean d*^2) per image, averaged over images
    per_image = [0.1 * np.sqrt(np.mean(g[_valid(g)].astype(np.float64) ** 2)) for g in frames.depth]
    assert none["rmse"] == pytest.approx(np.mean(per_image), rel=1e-5)
    assert none["a1"] == 1.0  # 1.1 < 1.25
    median = _eval(frames, f, "median")
    assert median["abs_rel"] == pytest.approx(0.0, abs=1e-6) and median["a1"] == 1.0


def test_affine_disparity_is_exact_with_ssi_alignment_only():
    frames = _frames()
    f = lambda g: 0.3 / np.nan_to_num(g, nan=1.0) + 0.05  # noqa: E731
    assert _eval(frames, f, "ssi_disparity")["abs_rel"] == pytest.approx(0.0, abs=1e-5)
    assert _eval(frames, lambda g: f(g) * 4.0, "median")["abs_rel"] > 0.3  # disparity is not depth


@pytest.mark.parametrize("batch_size", [1, 2, 7, 50])
def test_batched_means_equal_the_whole_set_mean(batch_size):
    frames = _frames()
    noisy = frames.depth * np.random.default_rng(1).uniform(0.7, 1.4, frames.depth.shape).astype(np.float32)
    whole = _eval(frames, lambda g: noisy, "median", batch_size=len(frames))
    assert whole["abs_rel"] > 0.05 and whole["num_images"] == 7
    m = _eval(frames, lambda g: noisy, "median", batch_size=batch_size)
    for k, v in whole.items():
        assert m[k] == pytest.approx(v, rel=1e-12), k


def test_frames_without_evaluated_pixels_are_not_counted():
    frames = _frames(n=3)
    frames.depth[1] = np.nan
    m = _eval(frames, lambda g: np.nan_to_num(g, nan=1.0), "none")
    assert m["num_images"] == 2


def test_prediction_of_the_wrong_shape_is_refused():
    frames = _frames(n=2)
    with pytest.raises(ValueError, match="prediction has shape"):
        evaluate_predictor(lambda rgb: np.ones((2, 10, 10)), frames, alignment="none", min_depth=1e-3, max_depth=10.0)


class _GrayNet(nn.Module):
    """A stand-in network whose scale-0 "disparity" is the mean of the input channels (scale 1: its negative)."""

    def forward(self, x):
        assert x.shape[-2:] == (64, 96)
        gray = x.mean(1, keepdim=True)
        return [gray, 1.0 - gray[..., ::2, ::2]]


def test_prediction_is_resized_to_the_ground_truth_resolution_without_shifting_it():
    h, w = 72, 100  # not the network's 64x96, and another aspect ratio
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    ramps = np.stack([u / (w - 1), v / (h - 1)])  # frame 0 rises along x, frame 1 along y
    rgb = np.repeat(np.round(ramps * 255)[..., None], 3, axis=-1).astype(np.uint8)
    depth_pred = NetworkPredictor(_GrayNet(), CONFIG, "median")
    disp = depth_pred.disparity(rgb).numpy()
    assert disp.shape == (2, h, w)
    # bilinear down- and up-sampling gives a ramp back (within 0.6/255 here, at the borders); nearest-neighbour
    # resampling is off by 4/255, a flipped, transposed or cropped image by far more
    np.testing.assert_allclose(disp, rgb[..., 0] / 255.0, atol=1.0 / 255)
    # depth alignments get disp_to_depth of the resized disparity, ssi gets the disparity itself
    expected_depth = disp_to_depth(torch.from_numpy(disp), 0.1, 10.0)[1].numpy()
    np.testing.assert_allclose(depth_pred(rgb), expected_depth, rtol=1e-6)
    np.testing.assert_allclose(NetworkPredictor(_GrayNet(), CONFIG, "ssi_disparity")(rgb), disp, rtol=1e-6)


def test_constant_baseline_matches_a_hand_computation():
    frames = _frames()
    g = frames.depth.astype(np.float64)
    c = np.median(g[_valid(g)])
    assert constant_depth(frames.depth, 1e-3, 10.0) == pytest.approx(c)
    m = evaluate_predictor(ConstantPredictor(c, "none"), frames, alignment="none", min_depth=1e-3, max_depth=10.0,
                           batch_size=4)
    c32 = float(np.float32(c))
    abs_rel = np.mean([np.mean(np.abs(c32 - gi[_valid(gi)]) / gi[_valid(gi)]) for gi in g])
    a1 = np.mean([np.mean(np.maximum(c32 / gi[_valid(gi)], gi[_valid(gi)] / c32) < 1.25) for gi in g])
    assert m["abs_rel"] == pytest.approx(abs_rel, rel=1e-9) and m["a1"] == pytest.approx(a1, rel=1e-9)
    # with median scaling any constant becomes the per-image ground-truth median
    med = evaluate_predictor(ConstantPredictor(123.0, "median"), frames, alignment="median", min_depth=1e-3,
                             max_depth=10.0)
    abs_rel_med = np.mean([np.mean(np.abs(np.median(gi[_valid(gi)]) - gi[_valid(gi)]) / gi[_valid(gi)]) for gi in g])
    assert med["abs_rel"] == pytest.approx(abs_rel_med, rel=1e-9)
    # with scale-and-shift alignment it becomes the per-image harmonic mean
    ssi = evaluate_predictor(ConstantPredictor(2.0, "ssi_disparity"), frames, alignment="ssi_disparity",
                             min_depth=1e-3, max_depth=10.0)
    hm = [1.0 / np.mean(1.0 / gi[_valid(gi)]) for gi in g]
    abs_rel_hm = np.mean([np.mean(np.abs(h - gi[_valid(gi)]) / gi[_valid(gi)]) for h, gi in zip(hm, g)])
    assert ssi["abs_rel"] == pytest.approx(abs_rel_hm, rel=1e-6)


def test_untrained_baseline_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b, c = untrained_network(CONFIG, 0), untrained_network(CONFIG, 0), untrained_network(CONFIG, 1)
    assert torch.equal(torch.get_rng_state(), state)
    pa, pb, pc = (dict(n.state_dict()) for n in (a, b, c))
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert not all(torch.equal(pa[k], pc[k]) for k in pa)
    assert not a.training


def test_frame_selection_tail_range_and_stride():
    assert tail_start(10, 0.2) == 8 and tail_start(7, 0.2) == 5 and tail_start(5, 1.0) == 0
    assert FrameSelection(tail=0.2).indices(10).tolist() == [8, 9]
    assert FrameSelection(tail=0.3).indices(10).tolist() == [7, 8, 9]
    assert FrameSelection(start=2, stop=9, every=3).indices(20).tolist() == [2, 5, 8]
    assert FrameSelection(start=5, tail=0.5, every=2).indices(8).tolist() == [5, 7]
    assert FrameSelection(stop=100).indices(4).tolist() == [0, 1, 2, 3]
    assert FrameSelection(start=9).indices(4).tolist() == []
    assert parse_range("3:7") == (3, 7) and parse_range("3:") == (3, None) and parse_range(":7") == (0, 7)
    assert parse_range("4") == (4, 5)
    for bad in (dict(every=0), dict(tail=0.0), dict(tail=1.5), dict(start=-1)):
        with pytest.raises(ValueError):
            FrameSelection(**bad)
    with pytest.raises(ValueError, match="frames"):
        parse_range("a:b")


def test_frame_arrays_are_validated_with_the_source_named():
    rgb, depth = np.zeros((2, 4, 5, 3), np.uint8), np.zeros((2, 4, 5), np.float64)
    assert check_frame_arrays(rgb, depth, "x.npz")[1].dtype == np.float32
    with pytest.raises(EvalSourceError, match=r"x\.npz: rgb \(2, 4, 5, 3\) and depth \(2, 4, 6\) do not match"):
        check_frame_arrays(rgb, np.zeros((2, 4, 6)), "x.npz")
    with pytest.raises(EvalSourceError, match="x.npz: rgb must be uint8"):
        check_frame_arrays(rgb.astype(np.float32), depth, "x.npz")
    with pytest.raises(EvalSourceError, match="x.npz: depth must be float metres"):
        check_frame_arrays(rgb, depth.astype(np.uint16), "x.npz")


def test_table_and_json_values():
    row = {"abs_rel": 0.1234567, "sq_rel": 0.01, "rmse": 0.2, "rmse_log": 0.3, "a1": 0.9, "a2": 0.95, "a3": 1.0,
           "num_images": 12}
    table = format_table({"model": row, "constant": {**row, "abs_rel": float("nan")}}, {"constant": "constant (1 m)"})
    lines = table.splitlines()
    assert lines[0].split() == ["AbsRel", "SqRel", "RMSE", "RMSE", "log", "d1", "d2", "d3", "frames"]
    assert lines[1].split() == ["model", "0.1235", "0.0100", "0.2000", "0.3000", "0.9000", "0.9500", "1.0000", "12"]
    assert lines[2].split()[:4] == ["constant", "(1", "m)", "-"]
    assert json_safe({"a": [np.float32(1.5), float("nan")], "b": np.int64(3)}) == {"a": [1.5, None], "b": 3}


def test_cli_alignment_choices_are_the_metrics_alignments():
    assert eval_cli._ALIGNMENTS == ALIGNMENTS


def test_tail_is_the_training_modes_held_out_tail():
    holdout = pytest.importorskip("depth_training.modes.holdout")
    for n in range(1, 60):
        for fraction in (0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 0.7):
            assert tail_start(n, fraction) == holdout.tail_start(n, fraction), (n, fraction)
