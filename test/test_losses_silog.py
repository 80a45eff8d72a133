"""Eigen scale-invariant log loss."""
import math

import pytest
import torch

from depth_training.losses import silog_loss

torch.set_num_threads(2)


def test_hand_values_for_each_lambda():
    pred = torch.tensor([1.0, math.e], dtype=torch.float64).reshape(1, 1, 1, 2)
    target = torch.ones_like(pred)
    # g = (0, 1): mean(g^2) = 1/2, mean(g)^2 = 1/4
    assert silog_loss(pred, target, lambd=0.0).item() == pytest.approx(0.5)
    assert silog_loss(pred, target, lambd=0.5).item() == pytest.approx(0.375)
    assert silog_loss(pred, target, lambd=1.0).item() == pytest.approx(0.25)
    assert silog_loss(pred, target, lambd=1.0, sqrt=True).item() == pytest.approx(0.5)


def test_fully_scale_invariant_with_lambda_one():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 1, 5, 6, generator=g, dtype=torch.float64) * 10 + 1
    pred = torch.rand(2, 1, 5, 6, generator=g, dtype=torch.float64) * 10 + 1
    a = silog_loss(pred, target, lambd=1.0).item()
    assert silog_loss(7.3 * pred, target, lambd=1.0).item() == pytest.approx(a, rel=1e-10)
    assert silog_loss(7.3 * pred, target, lambd=0.5).item() > silog_loss(pred, target, lambd=0.5).item() + 0.5


def test_invalid_pixels_and_per_image_mean():
    pred = torch.tensor([[1.0, math.e, 5.0], [math.e, 1.0, 1.0]], dtype=torch.float64).reshape(2, 1, 1, 3)
    target = torch.tensor([[1.0, 1.0, float("nan")], [1.0, 0.0, 1.0]], dtype=torch.float64).reshape(2, 1, 1, 3)
    # image 0: g = (0, 1) -> 0.375 ; image 1: g = (1, 0) (middle pixel has gt 0) -> 0.375 ; image mean 0.375
    assert silog_loss(pred, target).item() == pytest.approx(0.375)
    mask = torch.tensor([[True, True, True], [True, False, False]]).reshape(2, 1, 1, 3)
    # image 1 keeps only g = (1): 1 - 0.5 * 1 = 0.5 ; mean over images (0.375 + 0.5) / 2, not pixel-weighted
    assert silog_loss(pred, target, mask).item() == pytest.approx((0.375 + 0.5) / 2)
    empty = torch.zeros_like(mask)
    assert silog_loss(pred, target, empty).item() == 0.0


def test_gradient_is_finite_with_invalid_ground_truth():
    pred = torch.tensor([[2.0, 3.0, 4.0]], dtype=torch.float64).reshape(1, 1, 1, 3).requires_grad_(True)
    target = torch.tensor([[1.0, float("nan"), 0.0]], dtype=torch.float64).reshape(1, 1, 1, 3)
    silog_loss(pred, target, lambd=0.0).backward()
    # only pixel 0 is valid: d/dp (log p)^2 = 2 log(2) / 2
    assert pred.grad.flatten().tolist() == pytest.approx([math.log(2.0), 0.0, 0.0])
