"""MiDaS scale/shift-invariant losses: alignment, invariance, trimming and gradient matching."""
import pytest
import torch

from depth_training.losses import (align_scale_shift, align_trimmed, compute_scale_shift, gradient_matching_loss,
                                   masked_median, normalise_median_deviation, ssi_loss, ssi_mse_loss,
                                   trimmed_ssi_mae_loss)

torch.set_num_threads(2)


def _smooth_disparity(b=2, h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 1, 4, 4, generator=g, dtype=torch.float64)
    return 0.2 + torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


def test_least_squares_scale_shift_hand_value():
    pred = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64).reshape(1, 1, 1, 3)
    target = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64).reshape(1, 1, 1, 3)
    s, t = compute_scale_shift(pred, target)
    # cov(p, d) / var(p) = 3 / 2, t = mean(d) - s mean(p) = 7/3 - 3/2
    assert s.item() == pytest.approx(1.5) and t.item() == pytest.approx(7 / 3 - 1.5)
    # residuals (-1/6, 1/3, -1/6): sum of squares 1/6, loss = (1/6) / (2 * 3)
    assert ssi_mse_loss(pred, target).item() == pytest.approx(1 / 36)


def test_alignment_recovers_scale_and_shift_and_ignores_invalid_pixels():
    pred = _smooth_disparity()
    target = 2.5 * pred + 0.3
    mask = torch.rand(pred.shape, generator=torch.Generator().manual_seed(1)) > 0.3
    target_bad = torch.where(mask, target, torch.full_like(target, float("nan")))
    pred_bad = torch.where(mask, pred, torch.full_like(pred, 1e6))
    s, t = compute_scale_shift(pred_bad, target_bad, mask)
    torch.testing.assert_close(s, torch.full((2,), 2.5, dtype=torch.float64))
    torch.testing.assert_close(t, torch.full((2,), 0.3, dtype=torch.float64))
    assert ssi_mse_loss(pred_bad, target_bad, mask).item() < 1e-20


def test_alignment_is_stable_in_float32_for_offset_predictions():
    x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(13))
    pred = 100.0 + 0.01 * x                     # float32, tiny spread on a large offset
    target = 2.0 * x + 1.0
    aligned = align_scale_shift(pred, target)
    assert (aligned - target).abs().max().item() < 0.01 * target.std().item()


def test_degenerate_constant_prediction():
    pred = torch.full((1, 1, 2, 2), 0.7, dtype=torch.float64)
    target = torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=torch.float64).reshape(1, 1, 2, 2)
    s, t = compute_scale_shift(pred, target)
    assert s.item() == 0.0 and t.item() == pytest.approx(3.0)
    assert torch.isfinite(align_scale_shift(pred, target)).all()


@pytest.mark.parametrize("variant", ["mse", "trimmed"])
def test_ssi_losses_are_invariant_to_scale_and_shift_of_the_prediction(variant):
    target = _smooth_disparity(seed=2)
    pred = _smooth_disparity(seed=3)
    base = ssi_loss(pred, target, variant=variant)
    moved = ssi_loss(4.0 * pred - 1.5, target, variant=variant)
    assert base.total.item() > 1e-3
    assert moved.total.item() == pytest.approx(base.total.item(), rel=1e-6)
    assert moved.data.item() == pytest.approx(base.data.item(), rel=1e-6)


def test_inverted_prediction_is_not_explained_away_by_the_trimmed_loss():
    target = _smooth_disparity(seed=14)
    pred = 2.0 * target + 1.0
    assert trimmed_ssi_mae_loss(pred, target).item() < 1e-12
    inverted = trimmed_ssi_mae_loss(-pred, target).item()
    unrelated = trimmed_ssi_mae_loss(_smooth_disparity(seed=15), target).item()
    assert inverted > unrelated > 0.05
    # MiDaS' least-squares alignment accepts a negative scale (documented), the positive fit does not
    assert ssi_mse_loss(-pred, target).item() < 1e-12
    s, t = compute_scale_shift(-pred, target, positive=True)
    assert torch.all(s == 0)
    torch.testing.assert_close(t, target.mean(dim=(1, 2, 3)))


def test_masked_median_ignores_invalid_entries():
    x = torch.tensor([[5.0, 1.0, 3.0, 100.0], [2.0, 8.0, 4.0, 6.0], [1.0, 2.0, 3.0, 4.0]])
    valid = torch.tensor([[True, True, True, False], [True, True, True, True], [False] * 4])
    assert masked_median(x, valid).tolist() == [3.0, 4.0, 0.0]   # lower median for an even count


def test_normalisation_hand_values():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 100.0], dtype=torch.float64).reshape(1, 1, 1, 5)
    # median 3; deviations 2 1 0 1 97; robust: mean of the 4 smallest = 1; paper: mean of all = 20.2
    robust = normalise_median_deviation(x, trim=0.2)
    assert robust.flatten().tolist() == pytest.approx([-2, -1, 0, 1, 97])
    paper = normalise_median_deviation(x, robust_scale=False)
    assert paper.flatten().tolist() == pytest.approx([v / 20.2 for v in (-2, -1, 0, 1, 97)])


def test_trimmed_loss_hand_values():
    pred = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64).reshape(1, 1, 1, 5)
    target = torch.tensor([1.0, 2.0, 3.0, 4.0, 50.0], dtype=torch.float64).reshape(1, 1, 1, 5)
    # robust: pred_hat = target_hat = (-2, -1, 0, 1) on the inliers; the one outlier residual is trimmed
    assert trimmed_ssi_mae_loss(pred, target).item() == pytest.approx(0.0, abs=1e-12)
    assert trimmed_ssi_mae_loss(pred, target, refine_steps=0).item() == pytest.approx(0.0, abs=1e-12)
    # the paper's loss: s(pred) = 6/5, s(target) = 51/5 -> residuals 2r, r, 0, r, (trimmed), r = |1/1.2 - 1/10.2|
    r = abs(1 / 1.2 - 1 / 10.2)
    paper = trimmed_ssi_mae_loss(pred, target, robust_scale=False, refine_steps=0).item()
    assert paper == pytest.approx((2 * r + r + r) / 10)
    # a least-trimmed-squares refit of the paper's maps realigns the inliers exactly
    assert trimmed_ssi_mae_loss(pred, target, robust_scale=False).item() == pytest.approx(0.0, abs=1e-12)


def test_trimmed_refinement_selects_the_inliers():
    pred_hat = torch.arange(10, dtype=torch.float64).reshape(1, 1, 1, 10)
    target_hat = 2.0 * pred_hat - 1.0
    target_hat[..., 4] = 40.0    # one gross outlier (10 %)
    refined = align_trimmed(pred_hat, target_hat, trim=0.2, steps=2)
    inliers = torch.ones(10, dtype=torch.bool)
    inliers[4] = False
    torch.testing.assert_close(refined.flatten()[inliers], target_hat.flatten()[inliers])


def _public_midas_trimmed_loss(prediction, target, mask, trim=0.2):
    """What the public MiDaS code computes (re-expressed here to show the difference): the median
    runs over ``mask * x`` (zeros included), the scale over all valid pixels, and the attempted
    trimming ``sorted(...)[:k]`` slices the (values, indices) pair, so nothing is trimmed."""
    def normalise(x):
        m = torch.median((mask * x).reshape(x.shape[0], -1), dim=1).values.reshape(-1, 1, 1, 1)
        x = x - m
        s = (mask * x.abs()).sum((1, 2, 3)) / mask.sum((1, 2, 3))
        return x / s.clamp(min=1e-6).reshape(-1, 1, 1, 1)

    res = (normalise(prediction) - normalise(target))[mask.bool()].abs()
    values, _ = torch.sort(res.reshape(-1))[: int(len(res) * (1.0 - trim))]  # the slice keeps both parts
    return values.sum() / (2 * mask.sum())


def _with_outliers(target, magnitude, frac=0.1, seed=4):
    g = torch.Generator().manual_seed(seed)
    out = target.clone()
    flat = out.reshape(out.shape[0], -1)
    n = int(frac * flat.shape[1])
    for i in range(out.shape[0]):
        idx = torch.randperm(flat.shape[1], generator=g)[:n]
        flat[i, idx] = magnitude
    return out


def test_trimmed_loss_is_unaffected_by_outliers_in_ten_percent_of_pixels():
    pred = _smooth_disparity(seed=5)
    noise = 0.05 * torch.randn(pred.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    target = 3.0 * pred + 0.7 + noise           # an imperfect prediction: clean loss > 0
    mask = torch.ones_like(pred)
    clean = trimmed_ssi_mae_loss(pred, target, mask).item()
    magnitudes = (10.0, 1e3, 1e6)
    ours = [trimmed_ssi_mae_loss(pred, _with_outliers(target, m), mask).item() for m in magnitudes]
    public = [_public_midas_trimmed_loss(pred, _with_outliers(target, m), mask).item() for m in magnitudes]
    # ours: the outlier magnitude does not matter at all, and the loss stays at the clean value
    assert ours[0] == pytest.approx(ours[1], rel=1e-9) and ours[1] == pytest.approx(ours[2], rel=1e-9)
    assert ours[0] == pytest.approx(clean, rel=0.05)
    # an exact prediction stays exact: the outliers are trimmed and the inliers realigned
    exact = [trimmed_ssi_mae_loss(pred, _with_outliers(3.0 * pred + 0.7, m), mask).item() for m in magnitudes]
    assert max(exact) < 1e-12
    # the public computation keeps the outliers: far larger, and growing with their magnitude
    assert public[0] > 10 * clean
    assert public[0] < public[1] < public[2]
    # without the refinement, the outliers' shift of the median leaves a bias (magnitude-independent)
    no_refine = [trimmed_ssi_mae_loss(pred, _with_outliers(target, m), mask, refine_steps=0).item() for m in magnitudes]
    assert no_refine[0] == pytest.approx(no_refine[2], rel=1e-9)
    assert no_refine[0] > 1.5 * clean


def test_trimmed_loss_ignores_invalid_pixels_in_every_statistic():
    pred = _smooth_disparity(seed=6)
    target = _smooth_disparity(seed=12)
    mask = torch.ones_like(pred, dtype=torch.bool)
    mask[..., :6, :] = False      # 37.5 % invalid
    cropped = trimmed_ssi_mae_loss(pred[..., 6:, :], target[..., 6:, :]).item()
    zeros = trimmed_ssi_mae_loss(pred, torch.where(mask, target, torch.zeros_like(target)), mask).item()
    nans = trimmed_ssi_mae_loss(pred, torch.where(mask, target, torch.full_like(target, float("nan"))), mask).item()
    junk = trimmed_ssi_mae_loss(torch.where(mask, pred, torch.full_like(pred, 1e4)), target, mask).item()
    assert cropped > 0.05
    assert zeros == pytest.approx(cropped, rel=1e-12) and nans == zeros and junk == pytest.approx(cropped, rel=1e-12)
    # the public computation takes its medians over the masked-out zeros too
    public_masked = _public_midas_trimmed_loss(pred, torch.where(mask, target, torch.zeros_like(target)), mask.double())
    public_cropped = _public_midas_trimmed_loss(pred[..., 6:, :], target[..., 6:, :], torch.ones_like(pred[..., 6:, :]))
    assert abs(public_masked.item() - public_cropped.item()) > 0.05 * public_cropped.item()


def test_gradient_matching_hand_value():
    pred = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64).reshape(1, 1, 2, 2)
    target = torch.zeros_like(pred)
    # |dx R| = 1 (row 0), |dy R| = 1 (column 1), M = 4 -> 0.5; the 1x1 second scale adds 0
    assert gradient_matching_loss(pred, target, num_scales=1).item() == pytest.approx(0.5)
    assert gradient_matching_loss(pred, target, num_scales=2).item() == pytest.approx(0.5)
    mask = torch.tensor([[True, False], [True, True]]).reshape(1, 1, 2, 2)
    # only the differences between valid pixels: column 0 (0-0) and row 1 (0-0)
    assert gradient_matching_loss(pred, target, mask, num_scales=1).item() == 0.0


@pytest.mark.parametrize("variant", ["mse", "trimmed"])
def test_gradient_matching_vanishes_for_scale_and_shift_only_differences(variant):
    target = _smooth_disparity(h=32, w=32, seed=7)
    pred = (target - 0.3) / 2.0
    terms = ssi_loss(pred, target, variant=variant)
    assert terms.gradient.item() < 1e-10 and terms.data.item() < 1e-10
    other = ssi_loss(_smooth_disparity(h=32, w=32, seed=8), target, variant=variant)
    assert other.gradient.item() > 1e-3
    assert other.total.item() == pytest.approx(other.data.item() + 0.5 * other.gradient.item())


def test_ssi_loss_gradients_are_finite_with_nan_ground_truth():
    target = _smooth_disparity(seed=9)
    target[..., 0, :] = float("nan")
    pred = _smooth_disparity(seed=10).requires_grad_(True)
    for variant in ("mse", "trimmed"):
        pred.grad = None
        ssi_loss(pred, target, variant=variant).total.backward()
        assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_without_gradient_matching_the_loss_is_the_data_term_and_near_constant_predictions_are_degenerate():
    g = torch.Generator().manual_seed(3)
    pred = torch.rand(2, 1, 8, 8, generator=g, dtype=torch.float64)
    target = 3.0 * pred + 1.0 + 0.1 * torch.rand(2, 1, 8, 8, generator=g, dtype=torch.float64)
    terms = ssi_loss(pred, target, variant="mse", grad_weight=0.0)
    assert terms.gradient.item() == 0.0 and terms.total.item() == terms.data.item() > 0
    flat = 1000.0 + 1e-13 * torch.rand(2, 1, 8, 8, generator=g, dtype=torch.float64)  # constant up to rounding
    scale, shift = compute_scale_shift(flat, target)
    assert (scale == 0).all()
    torch.testing.assert_close(shift, target.mean(dim=(1, 2, 3)))
