"""Pixel-contrastive loss against hand-computed values."""
import pytest
import torch

from depth_training.losses.pixel_contrastive import (
    LossWeights, cross_object_loss, gather_descriptors, hard_negative_mean, match_loss, nonmatch_hinge,
    pixel_contrastive_loss)


def _desc():
    # D = 2, H = 1, W = 3: pixel k's descriptor is column k
    a = torch.tensor([[[[0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]]]])  # a0=(0,0) a1=(1,0) a2=(0,1)
    b = torch.tensor([[[[0.0, 0.3, 0.1]], [[0.0, 0.4, 0.0]]]])  # b0=(0,0) b1=(.3,.4) b2=(.1,0)
    return a, b


def test_gather_reads_flat_indices():
    a, _ = _desc()
    g = gather_descriptors(a, torch.tensor([[2, 1]]))
    assert g.tolist() == [[[0.0, 1.0], [1.0, 0.0]]]


def test_terms_match_hand_computed_values():
    a, b = _desc()
    out = pixel_contrastive_loss(
        a, b, torch.tensor([[0, 1]]), torch.tensor([[0, 2]]),
        nonmatch_obj=torch.tensor([[[1, 2], [0, 1]]]), nonmatch_obj_valid=torch.ones(1, 2, 2, dtype=torch.bool),
        nonmatch_bg=torch.tensor([[[2, 0], [2, 2]]]), nonmatch_bg_valid=torch.tensor([[[False, True], [True, True]]]),
        weights=LossWeights(margin=0.5, object=2.0, background=0.5))
    # match: (|a0-b0|^2 + |a1-b2|^2) / 2 = (0 + 0.81) / 2
    assert out["match"].item() == pytest.approx(0.405)
    # object: a0 vs b1 (dist 0.5 -> 0), a0 vs b2 (0.1 -> 0.16), a1 vs b0 (1 -> 0), a1 vs b1 (0.806 -> 0):
    # sum 0.16 over ONE hard negative (a plain mean would give 0.04)
    assert out["object"].item() == pytest.approx(0.16, abs=1e-5) and out["hard_object"].item() == 1
    # background: a0 vs b2 is invalid (too close) and ignored; a0 vs b0 (0 -> 0.25); a1 vs b2 (0.9 -> 0) twice
    assert out["background"].item() == pytest.approx(0.25, abs=1e-5) and out["hard_background"].item() == 1
    assert out["total"].item() == pytest.approx(0.405 + 2 * 0.16 + 0.5 * 0.25, abs=1e-5)


def test_hinge_and_hard_negative_scaling():
    h = nonmatch_hinge(torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]),
                       torch.tensor([[0.2, 0.0], [0.0, 0.6], [0.0, 0.0]]), margin=0.5)
    assert h.tolist() == pytest.approx([0.09, 0.0, 0.25], abs=1e-5)
    value, hard = hard_negative_mean(h)
    assert value.item() == pytest.approx((0.09 + 0.25) / 2, abs=1e-5) and hard.item() == 2
    value, hard = hard_negative_mean(torch.zeros(4))
    assert value.item() == 0.0 and hard.item() == 0  # no division by zero
    # the gradient exists where the descriptors coincide
    x = torch.zeros(1, 2, requires_grad=True)
    nonmatch_hinge(x, torch.zeros(1, 2)).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert match_loss(torch.zeros(0, 2), torch.zeros(0, 2)).item() == 0.0


def test_cross_object_pairs_only_different_scenes():
    a = torch.zeros(2, 2, 1, 2)
    b = torch.zeros(2, 2, 1, 2)
    a[0, :, 0, 0] = torch.tensor([0.0, 0.0])
    b[1, :, 0, 1] = torch.tensor([0.3, 0.0])  # 0.3 from a[0] pixel 0 -> (0.5 - 0.3)^2 = 0.04
    a[1, :, 0, 1] = torch.tensor([1.0, 0.0])
    b[0, :, 0, 0] = torch.tensor([0.0, 1.0])  # sqrt(2) from a[1] pixel 1 -> 0
    obj_a, obj_b = torch.tensor([[0], [1]]), torch.tensor([[0], [1]])
    loss, hard = cross_object_loss(a, b, obj_a, obj_b, torch.tensor([0, 1]), margin=0.5)
    assert loss.item() == pytest.approx(0.04, abs=1e-5) and hard.item() == 1
    loss, hard = cross_object_loss(a, b, obj_a, obj_b, torch.tensor([3, 3]), margin=0.5)
    assert loss.item() == 0.0 and hard.item() == 0


def test_cross_object_loss_uses_the_papers_margin_by_default():
    from depth_training.losses.pixel_contrastive import cross_object_loss

    desc_a = torch.zeros(2, 2, 1, 2)
    desc_b = torch.zeros(2, 2, 1, 2)
    desc_b[1, 0] = 0.3  # sample 1's object pixels in B sit 0.3 away from sample 0's in A
    idx = torch.tensor([[0, 1], [0, 1]])
    loss, hard = cross_object_loss(desc_a, desc_b, idx, idx, torch.tensor([0, 1]))
    # pairs (0, 1): distance 0.3 -> (0.5 - 0.3)^2; pairs (1, 0): distance 0 -> 0.5^2; 4 hard negatives
    assert hard.item() == 4 and loss.item() == pytest.approx((2 * 0.2 ** 2 + 2 * 0.5 ** 2) / 4, rel=1e-5)
