"""Edge-aware smoothness on mean-normalised disparity."""
import math

import pytest
import torch

from depth_training.losses import edge_aware_smoothness, smoothness_weight

torch.set_num_threads(2)


def _step(h=4, w=8, lo=1.0, hi=2.0):
    d = torch.full((1, 1, h, w), lo, dtype=torch.float64)
    d[..., w // 2:] = hi
    return d


def test_constant_disparity_has_zero_smoothness_loss():
    img = torch.rand(2, 3, 6, 7, dtype=torch.float64)
    assert edge_aware_smoothness(torch.full((2, 1, 6, 7), 0.37, dtype=torch.float64), img).item() == 0.0


def test_step_hand_value_and_edge_weighting():
    d = _step()
    # mean disparity 1.5 -> normalised 2/3 and 4/3; one jump of 2/3 per row among W-1 = 7 x-differences
    flat = torch.full((1, 3, 4, 8), 0.5, dtype=torch.float64)
    expected = (2 / 3) / 7
    assert edge_aware_smoothness(d, flat).item() == pytest.approx(expected, rel=1e-6)
    edge = flat.clone()
    edge[..., 4:] = 1.0  # an image edge of 0.5 where the disparity jumps
    assert edge_aware_smoothness(d, edge).item() == pytest.approx(expected * math.exp(-0.5), rel=1e-6)
    # an image edge elsewhere does not help
    other = flat.clone()
    other[..., 2:] = 1.0
    assert edge_aware_smoothness(d, other).item() == pytest.approx(expected, rel=1e-6)


def test_mean_normalisation_removes_global_scale():
    d = torch.rand(2, 1, 6, 8, dtype=torch.float64) + 0.1
    img = torch.rand(2, 3, 6, 8, dtype=torch.float64)
    assert edge_aware_smoothness(0.1 * d, img).item() == pytest.approx(edge_aware_smoothness(d, img).item(), rel=1e-5)
    assert edge_aware_smoothness(0.1 * d, img, normalise=False).item() == pytest.approx(
        0.1 * edge_aware_smoothness(d, img, normalise=False).item())


def test_mask_leaves_invalid_pixels_out_of_the_mean_and_the_gradients():
    d = torch.rand(1, 1, 5, 6, dtype=torch.float64) + 0.5
    img = torch.rand(1, 3, 5, 6, dtype=torch.float64)
    mask = torch.ones(1, 1, 5, 6, dtype=torch.bool)
    mask[..., -1] = False
    garbage = d.clone()
    garbage[..., -1] = 1e6
    expected = edge_aware_smoothness(d[..., :-1], img[..., :-1])
    assert edge_aware_smoothness(garbage, img, mask).item() == pytest.approx(expected.item(), rel=1e-9)


def test_smoothness_weight_per_scale():
    assert [smoothness_weight(s) for s in range(4)] == pytest.approx([1e-3, 5e-4, 2.5e-4, 1.25e-4])


def test_normalisation_adds_eps_to_the_mean():
    """``d* = d / (mean + eps)``: a map whose mean is eps gives ``d / (2 eps)``, finite."""
    disp = torch.linspace(0.0, 2e-7, 12, dtype=torch.float64).reshape(1, 1, 3, 4)  # mean 1e-7 = eps
    image = torch.zeros(1, 3, 3, 4, dtype=torch.float64)
    got = edge_aware_smoothness(disp, image)
    expected = edge_aware_smoothness(disp / 2e-7, image, normalise=False)
    assert torch.isfinite(got) and got.item() == pytest.approx(expected.item(), rel=1e-9)
