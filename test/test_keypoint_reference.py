"""Keypoint reference files: round trip, no pickle, clear errors, model check."""
import numpy as np
import pytest

from depth_nodes.keypoints.reference import (
    KeypointReference, ReferenceFileError, check_reference_model, load_reference, save_reference)


def _ref(k=3, d=4, sha="a" * 64):
    rng = np.random.default_rng(0)
    return KeypointReference(descriptors=rng.normal(size=(k, d)), pixels=rng.uniform(0, 50, (k, 2)),
                             names=[f"kp{i}" for i in range(k)], model_sha256=sha,
                             input_size=(96, 128), descriptor_dim=d, image_size=(120, 160))


def test_round_trip(tmp_path):
    ref = _ref()
    p = save_reference(tmp_path / "sub" / "ref.npz", ref)
    back = load_reference(p)
    np.testing.assert_array_equal(back.descriptors, ref.descriptors)
    np.testing.assert_array_equal(back.pixels, ref.pixels)
    assert back.names == ref.names and back.model_sha256 == ref.model_sha256
    assert back.input_size == (96, 128) and back.image_size == (120, 160) and back.descriptor_dim == 4
    assert back.descriptors.dtype == np.float32
    assert not list((tmp_path / "sub").glob(".*tmp"))


def test_model_check_names_both_models(tmp_path):
    ref = _ref(sha="a" * 64)
    check_reference_model(ref, "a" * 64, 4, "ref.npz")
    with pytest.raises(ReferenceFileError, match=r"ref.npz: .*made with model aaaaaaaaaaaa, this node runs model bbbbbbbbbbbb"):
        check_reference_model(ref, "b" * 64, 4, "ref.npz")
    with pytest.raises(ReferenceFileError, match="16-dim"):
        check_reference_model(ref, "a" * 64, 16, "ref.npz")


def test_bad_files(tmp_path):
    with pytest.raises(ReferenceFileError, match="not found"):
        load_reference(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ReferenceFileError, match="junk.npz"):
        load_reference(junk)
    obj = tmp_path / "pickle.npz"
    np.savez(obj, format=np.array(["x", None], dtype=object))
    with pytest.raises(ReferenceFileError, match="pickle.npz"):
        load_reference(obj)
    other = tmp_path / "other.npz"
    np.savez(other, format=np.array("something/1"))
    with pytest.raises(ReferenceFileError, match="format"):
        load_reference(other)
    with pytest.raises(ReferenceFileError, match="names"):
        KeypointReference(descriptors=np.zeros((2, 3)), pixels=np.zeros((2, 2)), names=["a", "a"],
                          model_sha256="x", input_size=(1, 1), descriptor_dim=3, image_size=(1, 1))
