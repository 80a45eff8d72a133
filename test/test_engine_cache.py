"""Engine cache keys and build records (depth_nodes.backends.engine_cache) without TensorRT: every
part of every optimisation profile is in the key, and the build record is checked field by field."""
import hashlib
import json

import pytest

from depth_nodes.backends.base import BackendError
from depth_nodes.backends.engine_cache import (BuildOptions, Profile, check_engine_meta, engine_cache_key,
                                               engine_meta_path, ensure_engine, parse_profile, read_engine_meta,
                                               sha256_file)

GPU = "NVIDIA RTX 4090 sm_89"


def _key(**kw):
    base = dict(fp16=True, workspace_mb=512, profiles=(parse_profile("image:1x3x64x96:2x3x64x96:4x3x64x96"),))
    return engine_cache_key("a" * 64, GPU, "10.9.0", BuildOptions(**{**base, **kw}))


@pytest.mark.parametrize("profile", ["image:1x3x64x96:3x3x64x96:4x3x64x96",   # opt
                                     "image:2x3x64x96:2x3x64x96:4x3x64x96",   # min
                                     "image:1x3x64x96:2x3x64x96:5x3x64x96",   # max
                                     "input:1x3x64x96:2x3x64x96:4x3x64x96"])  # name
def test_every_part_of_a_profile_is_in_the_key(profile):
    assert _key(profiles=(parse_profile(profile),)) != _key()


def test_key_is_the_sha256_of_the_canonical_json_and_reads_extra_options():
    opts = BuildOptions(workspace_mb=64, extra=(("builder_optimization_level", "5"),))
    doc = {"onnx_sha256": "ab", "gpu": GPU, "tensorrt": "10.9.0", "options": opts.as_dict()}
    assert engine_cache_key("ab", GPU, "10.9.0", opts) == hashlib.sha256(
        json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert opts.as_dict()["extra"] == [["builder_optimization_level", "5"]]
    profile = BuildOptions(profiles=(parse_profile("image:1x3x8x8:1x3x16x16:2x3x32x32"),)).as_dict()["profiles"]
    assert profile == [{"name": "image", "min": [1, 3, 8, 8], "opt": [1, 3, 16, 16], "max": [2, 3, 32, 32]}]
    assert _key(extra=(("k", "v"),)) != _key() and _key(extra=(("k", "w"),)) != _key(extra=(("k", "v"),))
    assert _key(calibration_sha256="c" * 64) != _key()


def test_profiles_parse_and_refuse_bad_shapes():
    p = parse_profile("pixels:1X3x8x8:1x3x16x16:2x3x32x32")
    assert p == Profile("pixels", (1, 3, 8, 8), (1, 3, 16, 16), (2, 3, 32, 32))
    assert parse_profile("a:1x1:1x1:1x1").opt == (1, 1)  # min == opt == max is allowed
    with pytest.raises(ValueError, match=r"profile 'a:1x1:1x1:1x1:1x1': expected NAME:MIN:OPT:MAX"):
        parse_profile("a:1x1:1x1:1x1:1x1")
    with pytest.raises(ValueError, match=r"profile 'a:1xb:1x1:1x1': shapes must be integers joined by 'x'"):
        parse_profile("a:1xb:1x1:1x1")
    with pytest.raises(ValueError, match="profile a: min/opt/max shapes differ in rank"):
        parse_profile("a:1x1:1x1x1:1x1")
    with pytest.raises(ValueError, match="profile a: min/opt/max shapes differ in rank"):
        parse_profile("a:1x1:1x1:1x1x1")
    with pytest.raises(ValueError, match=r"profile a: need 1 <= min <= opt <= max per dimension, got \(1, 2\)"):
        parse_profile("a:1x2:1x2:1x1")
    with pytest.raises(ValueError, match="need 1 <= min"):
        parse_profile("a:0x1:1x1:1x1")
    with pytest.raises(ValueError, match="workspace_mb must be >= 1, got 0"):
        BuildOptions(workspace_mb=0)
    assert BuildOptions(workspace_mb=1, int8=True, calibration_sha256="c").int8


def _builder(calls, payload=b"engine bytes"):
    def build(onnx, tmp, options):
        calls.append((onnx, tmp, options))
        tmp.write_bytes(payload)
    return build


def test_build_record_cache_hit_and_the_reason_for_a_rebuild(tmp_path):
    onnx = tmp_path / "net.onnx"
    onnx.write_bytes(b"onnx v1")
    (tmp_path / "net.json").write_text("{}")
    cache, calls, lines = tmp_path / "engines" / "cache", [], []  # created with its parents
    opts = BuildOptions(workspace_mb=64)
    first = ensure_engine(onnx, cache, opts, gpu=GPU, tensorrt_version="10.9.0", build=_builder(calls), log=lines.append)
    assert first.built and first.reason == "no cached engine for this ONNX file, GPU, TensorRT version and build options"
    assert first.path == cache / f"net-{first.key[:16]}.engine" and first.path.read_bytes() == b"engine bytes"
    assert (cache / f"net-{first.key[:16]}.json").read_text() == "{}"
    meta = read_engine_meta(first.path)
    assert meta["key"] == first.key and meta["onnx_sha256"] == sha256_file(onnx) and meta["gpu"] == GPU
    assert meta["tensorrt"] == "10.9.0" and meta["engine_sha256"] == sha256_file(first.path)
    assert meta["options"] == opts.as_dict() and meta["onnx"] == str(onnx) and meta["build_seconds"] >= 0
    assert engine_meta_path(first.path).name == first.path.name + ".meta.json"
    assert len(lines) == 2 and lines[0].startswith(f"building TensorRT engine {first.path}")
    assert lines[1].startswith(f"built {first.path} in ") and lines[1].endswith(" s")
    assert calls[0][0] == onnx and calls[0][2] == opts and calls[0][1].parent == cache  # the builder gets the options
    again = ensure_engine(onnx, cache, opts, gpu=GPU, tensorrt_version="10.9.0", build=_builder(calls))
    assert (again.built, again.reason, again.path, len(calls)) == (False, "cache hit", first.path, 1)
    first.path.write_bytes(b"corrupted")  # the engine no longer matches its record: rebuilt
    assert ensure_engine(onnx, cache, opts, gpu=GPU, tensorrt_version="10.9.0", build=_builder(calls)).built
    onnx.write_bytes(b"onnx v2")
    new_onnx = ensure_engine(onnx, cache, opts, gpu=GPU, tensorrt_version="10.9.0", build=_builder(calls))
    assert new_onnx.built and new_onnx.key != first.key and new_onnx.reason.endswith("differs in onnx_sha256")
    other = ensure_engine(onnx, cache, opts, gpu="Orin", tensorrt_version="10.9.0", build=_builder(calls),
                          log=lines.append)
    assert other.built and other.reason.endswith("differs in gpu")
    with pytest.raises(BackendError, match="TensorRT build produced no engine"):
        ensure_engine(onnx, cache, opts, gpu="x", tensorrt_version="1", build=_builder([], payload=b""))
    assert not list(cache.glob(".*.tmp"))
    with pytest.raises(BackendError, match="missing.onnx: no such ONNX file"):
        ensure_engine(tmp_path / "missing.onnx", cache, opts, gpu=GPU, tensorrt_version="1", build=_builder([]))


def test_check_engine_meta_names_what_differs(tmp_path):
    engine = tmp_path / "m.engine"
    assert read_engine_meta(engine) is None
    check_engine_meta(engine, GPU, "10.9.0")  # no record: nothing to check
    engine_meta_path(engine).write_text(json.dumps({"format": "depth_nodes.trt_engine/1", "gpu": GPU,
                                                    "tensorrt": "10.9.0", "onnx": "m.onnx"}))
    check_engine_meta(engine, GPU, "10.9.0")
    with pytest.raises(BackendError, match=r"built for GPU '.*', this machine has 'Orin'; .*`depth-nodes build-engine "
                                           r"m.onnx`"):
        check_engine_meta(engine, "Orin", "10.9.0")
    with pytest.raises(BackendError, match=r"m.engine: built with TensorRT 10.9.0, this machine has 10.10.0; rebuild"):
        check_engine_meta(engine, GPU, "10.10.0")
    engine_meta_path(engine).write_text("{not json")
    with pytest.raises(BackendError, match="unreadable engine build record"):
        read_engine_meta(engine)
    engine_meta_path(engine).write_text(json.dumps({"format": "other"}))
    with pytest.raises(BackendError, match=r"not an engine build record \(format depth_nodes.trt_engine/1\)"):
        read_engine_meta(engine)
