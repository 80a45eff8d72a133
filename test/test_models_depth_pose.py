"""Depth network (4-scale sigmoid disparities), inference wrapper and pose network."""
import pytest
import torch

from depth_training.geometry_torch import disp_to_depth, pose_vec_to_matrix
from depth_training.models import DepthInference, build_depth_net, build_pose_net

torch.set_num_threads(2)


@pytest.mark.parametrize("encoder", ["resnet18", "mobile"])
@pytest.mark.parametrize("size", [(64, 64), (96, 128)])
def test_depth_net_outputs_four_sigmoid_disparities(encoder, size):
    net = build_depth_net(encoder).eval()
    h, w = size
    with torch.no_grad():
        disps = net(torch.rand(2, 3, h, w))
    assert [tuple(d.shape) for d in disps] == [(2, 1, h // 2 ** s, w // 2 ** s) for s in range(4)]
    for d in disps:
        assert d.min() > 0 and d.max() < 1


def test_depth_net_full_kitti_size_forward():
    net = build_depth_net("resnet18").eval()
    with torch.no_grad():
        disps = net(torch.rand(1, 3, 192, 640))
    assert tuple(disps[0].shape) == (1, 1, 192, 640) and tuple(disps[3].shape) == (1, 1, 24, 80)


def test_depth_net_rejects_sizes_that_are_not_multiples_of_32():
    net = build_depth_net("mobile")
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.rand(1, 3, 60, 64))


def test_depth_net_options():
    net = build_depth_net("mobile", num_scales=2, decoder_channels=(8, 16, 32, 64, 128)).eval()
    with torch.no_grad():
        disps = net(torch.rand(1, 3, 64, 64))
    assert [tuple(d.shape) for d in disps] == [(1, 1, 64, 64), (1, 1, 32, 32)]


def test_inference_wrapper_returns_scale_zero():
    torch.manual_seed(0)
    net = build_depth_net("mobile").eval()
    x = torch.rand(3, 3, 64, 96)
    with torch.no_grad():
        full = net(x)[0]
        disp = DepthInference(net)(x)
        depth = DepthInference(net, output="depth", min_depth=0.1, max_depth=80.0)(x)
    assert disp.shape == (3, 1, 64, 96)
    torch.testing.assert_close(disp, full)
    torch.testing.assert_close(depth, disp_to_depth(full, 0.1, 80.0)[1])
    with pytest.raises(ValueError):
        DepthInference(net, output="points")


def test_training_steps_reduce_a_loss():
    torch.manual_seed(0)
    net = build_depth_net("mobile")
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)   # Monodepth2's learning rate
    x = torch.rand(2, 3, 64, 64)
    losses = []
    for _ in range(5):
        loss = sum((d - 0.2).abs().mean() for d in net(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


@pytest.mark.parametrize("encoder", ["resnet18", "mobile"])
def test_pose_net_shapes_and_small_initial_motion(encoder):
    net = build_pose_net(encoder).eval()
    a, b = torch.rand(3, 3, 64, 96), torch.rand(3, 3, 64, 96)
    with torch.no_grad():
        axis_angle, translation = net(a, b)
    assert axis_angle.shape == (3, 3) and translation.shape == (3, 3)
    assert axis_angle.abs().max() < 0.5 and translation.abs().max() < 0.5   # 0.01-scaled output


def test_pose_net_transform_inverts_for_earlier_sources():
    torch.manual_seed(0)
    net = build_pose_net("mobile").eval()
    target, source = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        later = net.transform(target, source, source_is_later=True)
        earlier = net.transform(target, source, source_is_later=False)
        aa, t = net(source, target)                            # the network sees (earlier, later)
        aa2, t2 = net(target, source)
    torch.testing.assert_close(later, pose_vec_to_matrix(aa2, t2))
    torch.testing.assert_close(earlier @ pose_vec_to_matrix(aa, t), torch.eye(4).expand(2, 4, 4), atol=1e-6, rtol=0)
