"""Pixelwise distribution loss against hand-computed values and a brute-force reference."""
import math

import numpy as np
import pytest
import torch

from depth_training.losses.pixel_distribution import descriptor_logits, gaussian_targets, pixel_distribution_loss


def test_hand_computed_two_pixel_image():
    # D = 1, B is 1x2 with descriptors [0, 1]; the query (A's pixel 0) is 0; the true match is B's pixel 0.
    # eta = 1, sigma = 0: logits [0, -1], loss = -log softmax(0) = log(1 + e^-1)
    a = torch.zeros(1, 1, 1, 2, dtype=torch.float64)
    b = torch.tensor([[[[0.0, 1.0]]]], dtype=torch.float64)
    loss = pixel_distribution_loss(a, b, torch.tensor([[0]]), torch.tensor([[[0.0, 0.0]]]), eta=1.0, sigma=0.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-12)
    # eta = 0.5: logits [0, -4]
    loss = pixel_distribution_loss(a, b, torch.tensor([[0]]), torch.tensor([[[0.0, 0.0]]]), eta=0.5, sigma=0.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-4)), rel=1e-6)
    # the true match at pixel 1 instead: -log softmax(-1) = 1 + log(1 + e^-1)
    loss = pixel_distribution_loss(a, b, torch.tensor([[0]]), torch.tensor([[[1.2, -0.3]]]), eta=1.0, sigma=0.0)
    assert loss.item() == pytest.approx(1 + math.log(1 + math.exp(-1)), rel=1e-6)


def test_logits_are_negative_squared_distances_over_eta_squared():
    torch.manual_seed(0)
    q, d = torch.randn(2, 5, 3), torch.randn(2, 3, 4, 6)
    got = descriptor_logits(q, d, 0.7)
    ref = -torch.cdist(q, d.reshape(2, 3, -1).transpose(1, 2)).pow(2) / 0.49
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_gaussian_targets_formula_border_and_rounding():
    uv = torch.tensor([[2.3, 1.6], [0.0, 0.0]], dtype=torch.float64)
    flat, w = gaussian_targets(uv, 4, 5, 1.0, 2)
    assert flat.shape == w.shape == (2, 25)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, dtype=torch.float64))
    # first point: weights over the whole window, exp(-|p - uv|^2 / 2) normalised over the pixels inside
    ref = np.zeros((4, 5))
    for v in range(4):
        for u in range(5):
            if abs(u - 2) <= 2 and abs(v - 2) <= 2:  # window around the rounded centre (2, 2)
                ref[v, u] = math.exp(-((u - 2.3) ** 2 + (v - 1.6) ** 2) / 2)
    ref /= ref.sum()
    dense = np.zeros(20)
    np.add.at(dense, flat[0].numpy(), w[0].numpy())
    np.testing.assert_allclose(dense.reshape(4, 5), ref, rtol=1e-12, atol=1e-15)
    # second point, in the corner: nothing outside the image carries weight
    dense = np.zeros(20)
    np.add.at(dense, flat[1].numpy(), w[1].numpy())
    assert dense.reshape(4, 5)[3:, :].sum() == 0 and dense.reshape(4, 5)[:, 3:].sum() == 0
    assert dense[0] == dense.max()
    # sigma 0: all the mass on the rounded pixel, floor(x + 0.5) (2.5 -> 3, never truncated)
    flat, w = gaussian_targets(torch.tensor([[2.5, 1.49]]), 4, 5, 0.0, 1)
    assert flat[0, w[0].argmax()].item() == 1 * 5 + 3 and w[0].max().item() == 1.0


def test_matches_a_brute_force_cross_entropy():
    torch.manual_seed(1)
    b, d, h, w, n = 2, 4, 5, 7, 6
    da, db = torch.randn(b, d, h, w, dtype=torch.float64), torch.randn(b, d, h, w, dtype=torch.float64)
    match_a = torch.randint(0, h * w, (b, n))
    uv = torch.rand(b, n, 2, dtype=torch.float64) * torch.tensor([w - 1, h - 1], dtype=torch.float64)
    valid = torch.rand(b, n) > 0.3
    eta, sigma, radius = 0.8, 1.3, 3
    got = pixel_distribution_loss(da, db, match_a, uv, eta=eta, sigma=sigma, radius=radius, valid=valid)
    total, count = 0.0, 0
    for i in range(b):
        for k in range(n):
            if not valid[i, k]:
                continue
            va, ua = divmod(int(match_a[i, k]), w)
            q = da[i, :, va, ua]
            s = -((db[i] - q[:, None, None]) ** 2).sum(0) / eta ** 2          # (h, w)
            logp = s - torch.logsumexp(s.reshape(-1), 0)
            cu, cv = math.floor(uv[i, k, 0] + 0.5), math.floor(uv[i, k, 1] + 0.5)
            t = torch.zeros(h, w, dtype=torch.float64)
            for y in range(h):
                for x in range(w):
                    if abs(x - cu) <= radius and abs(y - cv) <= radius:
                        t[y, x] = math.exp(-((x - uv[i, k, 0]) ** 2 + (y - uv[i, k, 1]) ** 2) / (2 * sigma ** 2))
            t /= t.sum()
            total += float(-(t * logp).sum())
            count += 1
    assert got.item() == pytest.approx(total / count, rel=1e-10)


def test_minimum_is_reached_by_distinct_descriptors_and_a_step_separates_a_confuser():
    # B: pixel 0 is the true match, pixel 1 a confuser nearer to the query than the match
    a = torch.tensor([[[[0.0]]]])
    b = torch.tensor([[[[0.3, 0.1, 2.0]]]], requires_grad=True)
    loss = pixel_distribution_loss(a, b, torch.tensor([[0]]), torch.tensor([[[0.0, 0.0]]]), eta=0.5, sigma=0.0)
    loss.backward()
    g = b.grad[0, 0, 0]
    assert g[0] > 0 and g[1] < 0          # the match is pulled toward the query (0.3 -> smaller) ..
    assert abs(g[2]) < 1e-3 * abs(g[1])   # .. the confuser pushed away; a far pixel hardly matters
    far = torch.tensor([[[[0.0, 50.0, 60.0]]]])
    assert pixel_distribution_loss(a, far, torch.tensor([[0]]), torch.tensor([[[0.0, 0.0]]]),
                                   eta=0.5, sigma=0.0).item() < 1e-12


def test_invalid_matches_count_nowhere_and_bad_eta_is_refused():
    torch.manual_seed(2)
    da, db = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    ma, uv = torch.tensor([[1, 5]]), torch.tensor([[[1.0, 1.0], [2.0, 3.0]]])
    only_first = pixel_distribution_loss(da, db, ma[:, :1], uv[:, :1])
    masked = pixel_distribution_loss(da, db, ma, uv, valid=torch.tensor([[True, False]]))
    assert masked.item() == pytest.approx(only_first.item(), rel=1e-6)
    assert pixel_distribution_loss(da, db, ma, uv, valid=torch.zeros(1, 2, dtype=torch.bool)).item() == 0.0
    with pytest.raises(ValueError, match="eta"):
        pixel_distribution_loss(da, db, ma, uv, eta=0.0)
