"""SSIM + L1 photometric error against hand-computed values."""
import numpy as np
import pytest
import torch

from depth_training.losses import photometric_error, photometric_loss, ssim, ssim_dissimilarity

torch.set_num_threads(2)

C1, C2 = 0.01 ** 2, 0.03 ** 2


def _ssim_of_window(wx, wy):
    """SSIM of one 3x3 window from the definition (population statistics)."""
    mx, my = wx.mean(), wy.mean()
    vx, vy = ((wx - mx) ** 2).mean(), ((wy - my) ** 2).mean()
    cxy = ((wx - mx) * (wy - my)).mean()
    return (2 * mx * my + C1) * (2 * cxy + C2) / ((mx ** 2 + my ** 2 + C1) * (vx + vy + C2))


def test_ssim_3x3_centre_pixel_hand_value():
    x = torch.arange(9, dtype=torch.float64).reshape(1, 1, 3, 3) / 10
    y = 1.0 - x
    # centre window = the whole image: mu_x = 0.4, mu_y = 0.6, var_x = var_y = 0.6/9, cov = -0.6/9
    v = 0.6 / 9
    expected = (2 * 0.4 * 0.6 + C1) * (-2 * v + C2) / ((0.16 + 0.36 + C1) * (2 * v + C2))
    assert expected == pytest.approx(-0.91071, abs=1e-5)
    assert ssim(x, y)[0, 0, 1, 1].item() == pytest.approx(expected, rel=1e-10)


def test_ssim_uses_reflection_padding_at_the_border():
    rng = np.random.default_rng(0)
    x, y = rng.random((3, 3)), rng.random((3, 3))
    # reflection: the window around (0, 0) uses rows/cols [1, 0, 1]
    idx = np.ix_([1, 0, 1], [1, 0, 1])
    expected = _ssim_of_window(x[idx], y[idx])
    got = ssim(torch.from_numpy(x)[None, None], torch.from_numpy(y)[None, None])[0, 0, 0, 0].item()
    assert got == pytest.approx(expected, rel=1e-10)
    # replicate padding would give a different value (the test can tell them apart)
    rep = np.ix_([0, 0, 1], [0, 0, 1])
    assert abs(_ssim_of_window(x[rep], y[rep]) - expected) > 1e-3


def test_identical_images_give_zero_error():
    img = torch.rand(2, 3, 8, 10)
    assert torch.allclose(ssim(img, img), torch.ones_like(img), atol=1e-5)
    err = photometric_error(img, img)
    assert err.shape == (2, 1, 8, 10)
    assert err.abs().max().item() < 1e-6


def test_constant_images_hand_value():
    a, b = 0.2, 0.5
    x, y = torch.full((1, 3, 4, 4), a, dtype=torch.float64), torch.full((1, 3, 4, 4), b, dtype=torch.float64)
    s = (2 * a * b + C1) / (a * a + b * b + C1)  # variances are 0: the C2 factors cancel
    assert s == pytest.approx(0.2001 / 0.2901)
    torch.testing.assert_close(ssim_dissimilarity(x, y), torch.full_like(x, (1 - s) / 2))
    expected = 0.85 * (1 - s) / 2 + 0.15 * abs(a - b)
    assert expected == pytest.approx(0.176851, abs=1e-6)
    torch.testing.assert_close(photometric_error(x, y), torch.full((1, 1, 4, 4), expected, dtype=torch.float64))
    l1 = torch.full((1, 1, 4, 4), abs(a - b), dtype=torch.float64)
    torch.testing.assert_close(photometric_error(x, y, alpha=0.0), l1)


def test_photometric_loss_ignores_masked_pixels():
    x = torch.full((1, 3, 6, 6), 0.3)
    y = x.clone()
    y[..., :, 4:] = 0.9                       # differs only in the last two columns
    mask = torch.ones(1, 1, 6, 6, dtype=torch.bool)
    mask[..., :, 3:] = False                  # exclude them (and the column whose window sees them)
    assert photometric_loss(x, y, mask).item() < 1e-6
    full = photometric_error(x, y).mean().item()
    assert photometric_loss(x, y).item() == pytest.approx(full)
    assert full > 0.05
