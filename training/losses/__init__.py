"""Training losses as pure functions (kornia style: shapes and formulas in each docstring).

Modules:
    masking       masked_mean / as_mask (every loss ignores invalid pixels in every statistic)
    photometric   ssim, ssim_dissimilarity, photometric_error (SSIM 3x3 + L1, alpha 0.85), photometric_loss
    smoothness    edge_aware_smoothness (mean-normalised disparity), smoothness_weight (1e-3 / 2^s)
    reprojection  min_reprojection (+ auto-mask), reprojection_errors, identity_errors,
                  multiscale_reprojection_loss (Monodepth2 objective at full resolution)
    stereo        reconstruct_left / reconstruct_right, left_right_consistency, stereo_appearance_loss
    ssi           MiDaS scale/shift-invariant losses: ssi_mse_loss, trimmed_ssi_mae_loss,
                  gradient_matching_loss, ssi_loss (+ alignment helpers)
    silog         silog_loss (Eigen scale-invariant log loss)
"""
from .masking import as_mask, masked_mean
from .photometric import photometric_error, photometric_loss, ssim, ssim_dissimilarity
from .reprojection import (
    MinReprojection,
    SelfSupervisedLoss,
    identity_errors,
    min_reprojection,
    multiscale_reprojection_loss,
    reprojection_errors,
)
from .silog import silog_loss
from .smoothness import edge_aware_smoothness, smoothness_weight
from .ssi import (
    SSILossTerms,
    align_scale_shift,
    align_trimmed,
    compute_scale_shift,
    gradient_matching_loss,
    masked_median,
    normalise_median_deviation,
    ssi_loss,
    ssi_mse_loss,
    trimmed_ssi_mae_loss,
)
from .stereo import (
    left_right_consistency,
    reconstruct_left,
    reconstruct_right,
    shift_horizontal,
    stereo_appearance_loss,
)

__all__ = [
    "as_mask", "masked_mean",
    "ssim", "ssim_dissimilarity", "photometric_error", "photometric_loss",
    "edge_aware_smoothness", "smoothness_weight",
    "MinReprojection", "SelfSupervisedLoss", "min_reprojection", "reprojection_errors",
    "identity_errors", "multiscale_reprojection_loss",
    "shift_horizontal", "reconstruct_left", "reconstruct_right", "left_right_consistency",
    "stereo_appearance_loss",
    "SSILossTerms", "masked_median", "compute_scale_shift", "align_scale_shift", "align_trimmed",
    "normalise_median_deviation", "ssi_mse_loss", "trimmed_ssi_mae_loss", "gradient_matching_loss",
    "ssi_loss",
    "silog_loss",
]
