"""Encoders defined in depth_training.models.encoders: output shapes at several sizes, init."""
import math

import pytest
import torch

from depth_training.models import available_encoders, build_encoder
from depth_training.models.encoders import BasicBlock, InvertedResidual

torch.set_num_threads(2)

CHANNELS = {"resnet18": (64, 64, 128, 256, 512), "resnet34": (64, 64, 128, 256, 512),
            "mobile": (16, 24, 32, 96, 320)}


def test_registry_lists_and_rejects_names():
    assert available_encoders() == ["mobile", "resnet18", "resnet34", "aliked", "disk", "xfeat"]
    with pytest.raises(ValueError, match="resnet18"):
        build_encoder("resnet50")
    with pytest.raises(ValueError, match="pose network"):  # pretrained on single RGB images
        build_encoder("xfeat", in_channels=6)


def test_pretrained_encoder_gives_the_backbone_pyramid():
    enc = build_encoder("xfeat").eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        feats = enc(x)
        assert [f.shape[1] for f in feats] == list(enc.num_ch_enc) == [8, 24, 64, 64, 64]
        assert [f.shape[-2:] for f in feats] == [(64 // s, 96 // s) for s in (2, 4, 8, 16, 32)]
        assert torch.equal(feats[2], enc.backbone(x))


@pytest.mark.parametrize("name", ["resnet18", "mobile", "resnet34"])
@pytest.mark.parametrize("size", [(64, 64), (96, 128), (32, 160)])
def test_feature_shapes_at_five_strides(name, size):
    enc = build_encoder(name).eval()
    assert tuple(enc.num_ch_enc) == CHANNELS[name]
    h, w = size
    with torch.no_grad():
        feats = enc(torch.rand(2, 3, h, w))
    assert [tuple(f.shape) for f in feats] == [
        (2, c, h // 2 ** (i + 1), w // 2 ** (i + 1)) for i, c in enumerate(CHANNELS[name])]


@pytest.mark.parametrize("name", ["resnet18", "mobile"])
def test_six_channel_input_for_the_pose_network(name):
    enc = build_encoder(name, in_channels=6).eval()
    with torch.no_grad():
        feats = enc(torch.rand(1, 6, 64, 96))
    assert tuple(feats[-1].shape) == (1, CHANNELS[name][-1], 2, 3)


def test_parameter_counts_are_those_of_the_architectures():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(build_encoder("resnet18")) == 11_176_512   # torchvision resnet18 without the fc layer
    assert 1.5e6 < count(build_encoder("mobile")) < 2.5e6     # MobileNetV2 body without the 1280-ch head


def test_initialisation_kaiming_and_zero_last_bn_in_residual_blocks():
    torch.manual_seed(0)
    enc = build_encoder("resnet18")
    blocks = [m for m in enc.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 8
    assert all(torch.count_nonzero(b.bn2.weight) == 0 and torch.all(b.bn1.weight == 1) for b in blocks)
    conv = enc.layer3[1].conv1.weight                       # 256 x 256 x 3 x 3, fan_out = 256 * 9
    assert conv.std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.02)
    mobile = build_encoder("mobile")
    res = [m for m in mobile.modules() if isinstance(m, InvertedResidual)]
    assert sum(m.use_residual for m in res) == 10
    for m in res:
        assert (torch.count_nonzero(m.block[-1].weight) == 0) == m.use_residual
    # with the residual branches zeroed, a fresh residual block is the identity map (after its input ReLU)
    x = torch.rand(1, 64, 8, 8)
    assert torch.equal(blocks[0].eval()(x), x)


def test_encoder_trains():
    enc = build_encoder("mobile")
    x = torch.rand(2, 3, 64, 64)
    feats = enc(x)
    sum(f.mean() for f in feats).backward()
    grads = [p.grad for p in enc.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
