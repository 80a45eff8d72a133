"""Depth metrics against hand-computed examples, for each alignment and the cap."""
import math

import numpy as np
import pytest
import torch

from depth_training.metrics import METRIC_NAMES, compute_depth_metrics, depth_errors


def _img(values):
    return torch.tensor(values, dtype=torch.float64).reshape(1, 1, 1, -1)


def test_errors_hand_values():
    e = depth_errors(torch.tensor([2.5, 3.0], dtype=torch.float64), torch.tensor([2.0, 4.0], dtype=torch.float64))
    assert e["abs_rel"].item() == pytest.approx((0.5 / 2 + 1 / 4) / 2)            # 0.25
    assert e["sq_rel"].item() == pytest.approx((0.25 / 2 + 1 / 4) / 2)            # 0.1875
    assert e["rmse"].item() == pytest.approx(math.sqrt((0.25 + 1) / 2))
    assert e["rmse_log"].item() == pytest.approx(math.sqrt((math.log(1.25) ** 2 + math.log(0.75) ** 2) / 2))
    # ratios 1.25 and 4/3: neither is < 1.25, both < 1.5625
    assert [e[k].item() for k in ("a1", "a2", "a3")] == [0.0, 1.0, 1.0]


def test_no_alignment_with_cap_and_invalid_ground_truth():
    gt = _img([2.0, 4.0, 100.0, 0.0, float("nan"), 70.0])
    pred = _img([2.5, 3.0, 1.0, 5.0, 5.0, 120.0])
    m = compute_depth_metrics(pred, gt, min_depth=1e-3, max_depth=80.0)
    # evaluated: gt 2, 4, 70 (100 is beyond the cap, 0 and NaN are no reading); pred 120 is clamped to 80
    assert m["num_images"] == 1
    assert m["abs_rel"] == pytest.approx((0.25 + 0.25 + 10 / 70) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt((0.25 + 1 + 100) / 3))
    assert m["a1"] == pytest.approx(1 / 3)        # only 80/70 = 1.143 < 1.25
    assert set(METRIC_NAMES) <= set(m)


def test_median_scaling_hand_value():
    gt = _img([1.0, 2.0, 3.0])
    pred = _img([1.0, 1.0, 1.0])
    m = compute_depth_metrics(pred, gt, alignment="median")
    # ratio = median(gt) / median(pred) = 2 -> pred 2, 2, 2
    assert m["abs_rel"] == pytest.approx((1 / 1 + 0 + 1 / 3) / 3)
    exact = compute_depth_metrics(0.37 * gt, gt, alignment="median")
    assert exact["abs_rel"] == pytest.approx(0.0, abs=1e-12) and exact["a1"] == 1.0
    # without alignment the same prediction is bad
    assert compute_depth_metrics(0.37 * gt, gt)["abs_rel"] == pytest.approx(0.63)


def test_median_scaling_uses_the_even_count_median_like_numpy():
    gt = _img([1.0, 2.0, 4.0, 8.0])
    pred = _img([1.0, 1.0, 2.0, 2.0])
    ratio = np.median([1, 2, 4, 8]) / np.median([1, 1, 2, 2])   # 3 / 1.5 = 2
    m = compute_depth_metrics(pred, gt, alignment="median")
    expected = np.mean(np.abs(ratio * np.array([1, 1, 2, 2]) - [1, 2, 4, 8]) / [1, 2, 4, 8])
    assert m["abs_rel"] == pytest.approx(expected)


def test_ssi_disparity_alignment_is_exact_for_affine_disparity():
    gt = _img([1.0, 2.0, 5.0, 10.0, 20.0])
    pred = 3.0 / gt + 0.2                       # relative inverse depth with unknown scale and shift
    m = compute_depth_metrics(pred, gt, alignment="ssi_disparity")
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-9) and m["a1"] == 1.0
    assert compute_depth_metrics(pred, gt, alignment="median")["abs_rel"] > 0.1


def test_ssi_disparity_alignment_hand_value_and_disparity_cap():
    gt = _img([1.0, 2.0, 4.0])                  # disparity 1, 0.5, 0.25
    pred = _img([2.0, 0.0, 0.0])
    # least squares of (2, 0, 0) -> (1, 0.5, 0.25): s = (1 - 0.375) / 2 = 0.3125, t = 0.375
    # aligned disparity (1, 0.375, 0.375) -> depth (1, 8/3, 8/3)
    m = compute_depth_metrics(pred, gt, alignment="ssi_disparity")
    assert m["abs_rel"] == pytest.approx((0 + (8 / 3 - 2) / 2 + (4 - 8 / 3) / 4) / 3)
    # a disparity below 1/max_depth (here: negative) becomes max_depth
    gt = _img([1.0, 2.0, 70.0])
    pred = _img([1.0, 0.4, -0.3])
    m = compute_depth_metrics(pred, gt, max_depth=80.0, alignment="ssi_disparity")
    assert math.isfinite(m["abs_rel"])
    s_t = np.linalg.lstsq(np.array([[1.0, 1], [0.4, 1], [-0.3, 1]]), 1 / np.array([1.0, 2.0, 70.0]), rcond=None)[0]
    disp = np.maximum(s_t[0] * np.array([1.0, 0.4, -0.3]) + s_t[1], 1 / 80)
    depth = np.clip(1 / disp, 1e-3, 80)
    assert m["abs_rel"] == pytest.approx(np.mean(np.abs(depth - [1, 2, 70]) / [1, 2, 70]))


def test_ssi_disparity_alignment_does_not_flip_an_inverted_prediction():
    gt = _img([1.0, 2.0, 5.0, 10.0, 20.0])
    inverted = -(3.0 / gt) + 0.2          # disparity ordering reversed
    m = compute_depth_metrics(inverted, gt, alignment="ssi_disparity")
    constant = compute_depth_metrics(torch.ones_like(gt), gt, alignment="ssi_disparity")
    assert m["abs_rel"] == pytest.approx(constant["abs_rel"]) and m["abs_rel"] > 0.5


def test_mean_over_images_not_over_pixels():
    gt = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]], dtype=torch.float64).reshape(2, 1, 1, 4)
    pred = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 9.0, 9.0, 9.0]], dtype=torch.float64).reshape(2, 1, 1, 4)
    m = compute_depth_metrics(pred, gt)
    assert m["abs_rel"] == pytest.approx((0.0 + 1.0) / 2)   # pooled pixels would give 1/5
    assert m["num_images"] == 2


def test_inputs_numpy_2d_masks_and_errors():
    gt = np.array([[2.0, 4.0], [8.0, 16.0]])
    pred = gt * 1.1
    m = compute_depth_metrics(pred, gt)
    assert m["abs_rel"] == pytest.approx(0.1)
    mask = np.array([[True, False], [False, False]])
    assert compute_depth_metrics(np.array([[2.2, 1.0], [1.0, 1.0]]), gt, mask=mask)["abs_rel"] == pytest.approx(0.1)
    empty = compute_depth_metrics(pred, gt, mask=np.zeros_like(mask))
    assert empty["num_images"] == 0 and math.isnan(empty["abs_rel"])
    with pytest.raises(ValueError, match="alignment"):
        compute_depth_metrics(pred, gt, alignment="scale")
    with pytest.raises(ValueError, match="non-finite"):
        compute_depth_metrics(np.full_like(gt, np.nan), gt)
    with pytest.raises(ValueError, match="shapes differ"):
        compute_depth_metrics(pred[:1], gt)
