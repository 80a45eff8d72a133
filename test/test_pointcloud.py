"""Organized clouds and PointCloud2 bytes, decoded with an independent reader."""
import numpy as np
import pytest
from std_msgs.msg import Header

from depth_nodes.geometry.camera import PinholeCamera
from depth_nodes.geometry.pointcloud import cloud_dtype, organized_points, pack_rgb, unpack_rgb
from depth_nodes.ros.messages import cloud_to_msg

K = np.array([[300.0, 0, 31.5], [0, 300.0, 23.5], [0, 0, 1]])
CAM = PinholeCamera(64, 48, K)
rng = np.random.default_rng(1)


def read_cloud(msg):
    """Independent PointCloud2 reader: a numpy structured dtype from the message's fields."""
    fmt = {7: "f4"}
    endian = ">" if msg.is_bigendian else "<"
    dtype = np.dtype({"names": [f.name for f in msg.fields],
                      "formats": [endian + fmt[f.datatype] for f in msg.fields],
                      "offsets": [f.offset for f in msg.fields], "itemsize": msg.point_step})
    assert msg.row_step == msg.point_step * msg.width
    return np.frombuffer(bytes(msg.data), dtype=dtype).reshape(msg.height, msg.width)


def test_rgb_packing_is_rvizs():
    packed = pack_rgb(np.array([[255, 128, 1]], np.uint8))
    assert packed.view(np.uint32)[0] == 0xFF8001
    rgb = rng.integers(0, 256, (5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(unpack_rgb(pack_rgb(rgb)), rgb)


def test_cloud_message_matches_geometry():
    depth = rng.uniform(0.5, 5.0, (48, 64)).astype(np.float32)
    depth[3, 4] = np.nan
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    cloud = organized_points(CAM, depth, rgb)
    msg = cloud_to_msg(cloud, Header(frame_id="cam"))
    assert (msg.height, msg.width, msg.point_step, msg.is_dense) == (48, 64, 16, False)
    rec = read_cloud(msg)
    v, u = np.mgrid[0:48, 0:64]
    np.testing.assert_allclose(rec["x"], (u - 31.5) / 300 * depth, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(rec["y"], (v - 23.5) / 300 * depth, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(rec["z"], depth, equal_nan=True)
    assert np.isnan(rec["x"][3, 4]) and np.isnan(rec["z"][3, 4])
    np.testing.assert_array_equal(unpack_rgb(rec["rgb"]), rgb)
    assert cloud.view(cloud_dtype(True)).shape == (48, 64, 1)


def test_decimation_and_depth_limits():
    depth = np.linspace(0.1, 10, 48 * 64, dtype=np.float32).reshape(48, 64)
    cloud = organized_points(CAM, depth, decimation=3, min_depth=1.0, max_depth=5.0)
    assert cloud.shape == (16, 22, 3)
    z = cloud[..., 2]
    sub = depth[::3, ::3]
    inside = (sub >= 1.0) & (sub <= 5.0)
    np.testing.assert_allclose(z[inside], sub[inside])
    assert np.all(np.isnan(cloud[~inside]))
    # decimated points are the full-resolution points at the kept pixels
    full = CAM.depth_to_points(depth)
    np.testing.assert_allclose(cloud[inside], full[::3, ::3][inside], rtol=1e-6)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="camera is 64x48"):
        organized_points(CAM, np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError, match="decimation"):
        organized_points(CAM, np.zeros((48, 64), np.float32), decimation=0)


def test_writing_into_a_reused_message_buffer_gives_the_same_cloud_without_a_copy():
    from depth_nodes.ros.messages import MessageBuffer

    depth = rng.uniform(0.5, 5.0, (48, 64)).astype(np.float32)
    depth[7, 9] = np.nan
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    expected = organized_points(CAM, depth, rgb, max_depth=4.0)
    buffer = MessageBuffer()
    for _ in range(2):  # the second frame reuses the first one's buffer
        out = buffer.view((48, 64, 4))
        first_data = buffer.data
        cloud = organized_points(CAM, depth, rgb, max_depth=4.0, out=out)
        assert cloud is out and buffer.data is first_data
        msg = cloud_to_msg(cloud, Header(frame_id="cam"), buffer)
        assert msg.data is buffer.data  # handed over, not copied
        np.testing.assert_array_equal(read_cloud(msg)["z"], expected[..., 2])
        np.testing.assert_array_equal(read_cloud(msg)["rgb"].view(np.uint32), expected[..., 3].view(np.uint32))
    with pytest.raises(ValueError, match="out must be"):
        organized_points(CAM, depth, rgb, out=np.empty((48, 64, 3), np.float32))


def test_grey_images_colour_the_cloud_grey():
    from depth_nodes.backends.base import StereoMatcher  # noqa: F401  (pipeline import check)
    from depth_nodes.pipelines.stereo import StereoFrame, StereoPipeline

    grey = rng.integers(0, 256, (48, 64), dtype=np.uint8)
    pipe = StereoPipeline(matcher=None)
    frame = StereoFrame(grey, grey, CAM, CAM)
    assert pipe.cloud_shape(frame) == (48, 64, 4)
    rgb = pipe._cloud_rgb(frame)
    packed = organized_points(CAM, np.ones((48, 64), np.float32), rgb)[..., 3]
    np.testing.assert_array_equal(unpack_rgb(packed), np.repeat(grey[..., None], 3, axis=2))
    pipe.decimation = 5
    assert pipe.cloud_shape(frame) == (10, 13, 4)


def test_asymmetric_camera_cloud_with_exact_limits_and_colour(tmp_path):
    """fx != fy, off-centre principal point, 160x90: each point is ``z K^-1 [u, v, 1]``; depths equal
    to the limits are kept; the PLY holds the finite points with their colour."""
    import cameras
    from depth_nodes.geometry.pointcloud import write_ply

    cam = cameras.camera()
    depth = np.full((90, 160), 2.0, np.float32)
    depth[10, 20], depth[11, 20], depth[12, 20], depth[13, 20] = 1.0, 0.999, 4.0, 4.001
    depth[0, 0] = np.nan
    rgb = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    cloud = organized_points(cam, depth, rgb, min_depth=1.0, max_depth=4.0)
    assert cloud.shape == (90, 160, 4) and cloud.dtype == np.float32 and cloud.flags.c_contiguous
    u, v = 150, 80
    np.testing.assert_allclose(cloud[v, u, :3], [(u - 97.3) / 230 * 2, (v - 52.6) / 170 * 2, 2.0], rtol=1e-6)
    assert cloud[10, 20, 2] == 1.0 and cloud[12, 20, 2] == 4.0  # on the limits: kept
    assert np.isnan(cloud[11, 20, :3]).all() and np.isnan(cloud[13, 20, :3]).all() and np.isnan(cloud[0, 0, :3]).all()
    np.testing.assert_array_equal(unpack_rgb(cloud[..., 3]), rgb)
    n = write_ply(tmp_path / "c.ply", cloud)
    assert n == 90 * 160 - 3
    data = (tmp_path / "c.ply").read_bytes()
    head, body = data.split(b"end_header\n", 1)
    assert head.decode().splitlines() == ["ply", "format binary_little_endian 1.0", f"element vertex {n}",
                                          "property float x", "property float y", "property float z",
                                          "property uchar red", "property uchar green", "property uchar blue"]
    rec = np.frombuffer(body, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    assert len(rec) == n and rec["z"][0] == 2.0 and (rec["x"][0], rec["y"][0]) == pytest.approx(
        (cloud[0, 1, 0], cloud[0, 1, 1]))  # (0, 0) is NaN: the first record is pixel (1, 0)
    assert tuple(rec[0])[3:] == tuple(rgb[0, 1])
    plain = organized_points(cam, depth)
    assert write_ply(tmp_path / "p.ply", plain) == 90 * 160 - 1
    assert b"property uchar red" not in (tmp_path / "p.ply").read_bytes().split(b"end_header")[0]
    assert len((tmp_path / "p.ply").read_bytes().split(b"end_header\n", 1)[1]) == 12 * (90 * 160 - 1)


def test_decimation_of_sizes_that_do_not_divide_and_bad_buffers():
    import cameras

    cam = cameras.camera()
    depth = rng.uniform(0.5, 5, (90, 160)).astype(np.float32)
    rgb = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    cloud = organized_points(cam, depth, rgb, decimation=7)
    assert cloud.shape == (13, 23, 4)
    np.testing.assert_allclose(cloud[..., :3], cam.depth_to_points(depth)[::7, ::7], rtol=1e-6)
    np.testing.assert_array_equal(unpack_rgb(cloud[..., 3]), rgb[::7, ::7])
    assert organized_points(cam, depth, max_depth=3.0)[..., 2][depth > 3.0].size and np.isnan(
        organized_points(cam, depth, max_depth=3.0)[..., 2][depth > 3.0]).all()
    with pytest.raises(ValueError, match="rgb is 80x90 but depth is 160x90"):
        organized_points(cam, depth, rgb[:, :80])
    with pytest.raises(ValueError, match=r"out must be a C-contiguous float32 array of shape \(90, 160, 3\)"):
        organized_points(cam, depth, out=np.empty((90, 160, 4), np.float32))
    with pytest.raises(ValueError, match="out must be"):
        organized_points(cam, depth, out=np.empty((90, 160, 3), np.float64))
    with pytest.raises(ValueError, match="out must be"):
        organized_points(cam, depth, out=np.empty((160, 90, 3), np.float32).transpose(1, 0, 2))
    assert cloud_dtype(False).itemsize == 12 and cloud_dtype(True).names == ("x", "y", "z", "rgb")
    assert cloud_dtype(True).fields["rgb"][1] == 12
    np.testing.assert_array_equal(unpack_rgb(pack_rgb(rgb)), rgb)
    assert pack_rgb(np.array([1, 2, 3], np.uint8)).view(np.uint32) == (1 << 16) | (2 << 8) | 3


def test_colour_given_as_wider_integers_is_packed_the_same():
    import cameras

    cam = cameras.camera()
    depth = np.full((90, 160), 1.5, np.float32)
    rgb = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    np.testing.assert_array_equal(organized_points(cam, depth, rgb.astype(np.int32))[..., 3].view(np.uint32),
                                  organized_points(cam, depth, rgb)[..., 3].view(np.uint32))
