"""TensorRT backend, builder and engine cache, without TensorRT: the engine cache keys, shape checks,
buffer reuse and error paths run against injected fakes of the ``tensorrt`` module and of CUDA memory.
These fakes check our side of the TensorRT 10 calls, not TensorRT itself (that path is unverified)."""
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from depth_nodes.backends.base import BackendError
from depth_nodes.backends.description import load_description
from depth_nodes.backends.engine_cache import (BuildOptions, Profile, engine_cache_key, engine_meta_path,
                                               ensure_engine, parse_profile, read_engine_meta)
from depth_nodes.backends.tensorrt_backend import TensorRTBackend, build_engine
from depth_nodes.cli import main as depth_nodes

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None
REPO_MODELS = Path(__file__).resolve().parents[1] / "config" / "models"
GPU = "Fake GPU sm_87"


# -- fakes -----------------------------------------------------------------------------------------
class FakeCuda:
    """Host memory pretending to be a device: pointers index numpy byte arrays."""

    stream = 77

    def __init__(self):
        self.mem, self.next, self.allocs, self.syncs = {}, 4096, 0, 0

    def device_buffer(self, nbytes):
        self.allocs += 1
        ptr, self.next = self.next, self.next + 4096 + nbytes
        self.mem[ptr] = np.zeros(nbytes, np.uint8)
        return ptr

    def host_buffer(self, shape, dtype):
        self.allocs += 1
        return np.zeros(shape, dtype)

    def h2d(self, ptr, host):
        self.mem[ptr][:host.nbytes] = host.reshape(-1).view(np.uint8)

    def d2h(self, host, ptr):
        host.reshape(-1).view(np.uint8)[:] = self.mem[ptr][:host.nbytes]

    def synchronize(self):
        self.syncs += 1

    def free(self):
        self.mem.clear()


class FakeContext:
    def __init__(self, engine):
        self.engine, self.shapes, self.addresses, self.runs = engine, {}, {}, []

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        b = self.shapes["image"][0]
        return (b, 1, 8, 12) if name == "depth" else self.shapes[name]

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr

    def execute_async_v3(self, stream):
        cuda = self.engine.cuda
        shape = self.shapes["image"]
        x = cuda.mem[self.addresses["image"]][:int(np.prod(shape)) * 4].view(np.float32).reshape(shape)
        y = 2.0 * x.mean(axis=1, keepdims=True)  # the fake network
        cuda.mem[self.addresses["depth"]][:y.nbytes] = y.reshape(-1).view(np.uint8)
        self.runs.append(stream)
        return True


class FakeEngine:
    TENSORS = [("image", (-1, 3, 8, 12), "INPUT"), ("depth", (-1, 1, 8, 12), "OUTPUT")]

    def __init__(self, cuda):
        self.cuda, self.num_io_tensors, self.context = cuda, 2, None

    def get_tensor_name(self, i):
        return self.TENSORS[i][0]

    def _t(self, name):
        return next(t for t in self.TENSORS if t[0] == name)

    def get_tensor_shape(self, name):
        return self._t(name)[1]

    def get_tensor_dtype(self, name):
        return "FLOAT"

    def get_tensor_mode(self, name):
        return self._t(name)[2]

    def get_tensor_profile_shape(self, name, profile):
        return (1, 3, 8, 12), (1, 3, 8, 12), (4, 3, 8, 12)

    def create_execution_context(self):
        self.context = FakeContext(self)
        return self.context


def fake_trt(cuda, version="10.9.0.34"):
    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            return FakeEngine(cuda) if data.startswith(b"FAKEENGINE") else None

    class Logger:
        WARNING = 2

        def __init__(self, level):
            pass

    return SimpleNamespace(__version__=version, Runtime=Runtime, Logger=Logger,
                           TensorIOMode=SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT"),
                           nptype=lambda dt: np.float32)


@pytest.fixture()
def engine_file(tmp_path):
    p = tmp_path / "m.engine"
    p.write_bytes(b"FAKEENGINE" + bytes(100))
    return p


# -- runtime ---------------------------------------------------------------------------------------
def test_engine_io_from_tensor_names_and_buffers_reused_between_frames(engine_file):
    cuda = FakeCuda()
    b = TensorRTBackend(engine_file, trt=fake_trt(cuda), cuda=cuda, gpu=GPU)
    assert [(s.name, s.shape, s.dtype) for s in b.inputs] == [("image", (None, 3, 8, 12), "float32")]
    assert [(s.name, s.shape) for s in b.outputs] == [("depth", (None, 1, 8, 12))]
    rng = np.random.default_rng(0)
    x1, x2 = (rng.random((1, 3, 8, 12), dtype=np.float32) for _ in range(2))
    y1 = b.infer({"image": x1})["depth"]
    np.testing.assert_allclose(y1, 2 * x1.mean(axis=1, keepdims=True), rtol=1e-6)
    allocs = cuda.allocs
    y2 = b.infer({"image": x2})["depth"]
    assert cuda.allocs == allocs and y2 is y1  # same shape: no new device or pinned host buffer
    np.testing.assert_allclose(y2, 2 * x2.mean(axis=1, keepdims=True), rtol=1e-6)
    ctx = b.context
    assert ctx.runs == [77, 77] and set(ctx.addresses) == {"image", "depth"} and ctx.shapes["image"] == (1, 3, 8, 12)
    x3 = rng.random((3, 3, 8, 12), dtype=np.float32)  # a new batch size inside the profile: new buffers once
    np.testing.assert_allclose(b.infer({"image": x3})["depth"], 2 * x3.mean(axis=1, keepdims=True), rtol=1e-6)
    assert cuda.allocs == allocs + 4
    with pytest.raises(BackendError, match=r"m\.engine: input 'image' shape \(5, 3, 8, 12\) is outside the engine's "
                                           r"optimisation profile \(1, 3, 8, 12\)\.\.\(4, 3, 8, 12\)"):
        b.infer({"image": np.zeros((5, 3, 8, 12), np.float32)})
    with pytest.raises(BackendError, match=r"m\.engine: input 'image' has shape \(1, 3, 8, 8\)"):
        b.infer({"image": np.zeros((1, 3, 8, 8), np.float32)})
    b.warmup()
    b.close()


def test_engine_errors_name_the_file(engine_file, tmp_path):
    cuda = FakeCuda()
    bad = tmp_path / "bad.engine"
    bad.write_bytes(b"not an engine")
    with pytest.raises(BackendError, match=r"bad\.engine: TensorRT 10\.9\.0\.34 cannot deserialize this engine"):
        TensorRTBackend(bad, trt=fake_trt(cuda), cuda=cuda, gpu=GPU)
    with pytest.raises(BackendError, match=r"nope\.engine: no such engine file"):
        TensorRTBackend(tmp_path / "nope.engine", trt=fake_trt(cuda), cuda=cuda, gpu=GPU)
    with pytest.raises(BackendError, match="device 'cuda' only"):
        TensorRTBackend(engine_file, device="cpu", trt=fake_trt(cuda), cuda=cuda, gpu=GPU)
    meta = {"format": "depth_nodes.trt_engine/1", "gpu": "NVIDIA Orin sm_87", "tensorrt": "10.3.0", "onnx": "m.onnx"}
    engine_meta_path(engine_file).write_text(json.dumps(meta))
    with pytest.raises(BackendError, match=r"m\.engine: built for GPU 'NVIDIA Orin sm_87', this machine has "
                                           r"'Fake GPU sm_87'; built with TensorRT 10\.3\.0, this machine has "
                                           r"10\.9\.0\.34; rebuild it with `depth-nodes build-engine m\.onnx`"):
        TensorRTBackend(engine_file, trt=fake_trt(cuda), cuda=cuda, gpu=GPU)
    meta.update(gpu=GPU, tensorrt="10.9.0.34")
    engine_meta_path(engine_file).write_text(json.dumps(meta))
    TensorRTBackend(engine_file, trt=fake_trt(cuda), cuda=cuda, gpu=GPU)  # matching record: loads


@pytest.mark.skipif(HAVE_TRT, reason="tensorrt is installed: the missing-package message cannot be shown")
def test_without_tensorrt_the_error_says_what_to_install(engine_file, tmp_path, capsys):
    with pytest.raises(BackendError, match=r"m\.engine: the TensorRT backend needs the tensorrt package"):
        TensorRTBackend(engine_file, gpu=GPU)
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    assert depth_nodes(["build-engine", str(tmp_path / "m.onnx"), "--cache-dir", str(tmp_path / "c")]) == 2
    assert "m.onnx: the TensorRT backend needs the tensorrt package" in capsys.readouterr().err


# -- cache -----------------------------------------------------------------------------------------
def test_cache_key_changes_when_and_only_when_a_part_changes():
    opts = BuildOptions(fp16=True, workspace_mb=512, profiles=(parse_profile("image:1x3x64x96:1x3x64x96:4x3x64x96"),))
    base = engine_cache_key("a" * 64, GPU, "10.9.0", opts)
    same = BuildOptions(fp16=True, workspace_mb=512, profiles=(Profile("image", (1, 3, 64, 96), (1, 3, 64, 96),
                                                                       (4, 3, 64, 96)),))
    assert engine_cache_key("a" * 64, GPU, "10.9.0", same) == base
    variants = [("b" * 64, GPU, "10.9.0", opts), ("a" * 64, "NVIDIA Orin sm_87", "10.9.0", opts),
                ("a" * 64, GPU, "10.10.0", opts),
                ("a" * 64, GPU, "10.9.0", BuildOptions(fp16=False, workspace_mb=512, profiles=opts.profiles)),
                ("a" * 64, GPU, "10.9.0", BuildOptions(fp16=True, workspace_mb=1024, profiles=opts.profiles)),
                ("a" * 64, GPU, "10.9.0", BuildOptions(fp16=True, workspace_mb=512)),
                ("a" * 64, GPU, "10.9.0", BuildOptions(fp16=True, workspace_mb=512, profiles=opts.profiles, int8=True,
                                                       calibration_sha256="c" * 64)),
                ("a" * 64, GPU, "10.9.0", BuildOptions(fp16=True, workspace_mb=512, profiles=opts.profiles, int8=True,
                                                       calibration_sha256="d" * 64))]
    keys = [engine_cache_key(*v) for v in variants]
    assert base not in keys and len(set(keys)) == len(keys)
    with pytest.raises(ValueError, match="int8 needs calibration data"):
        BuildOptions(int8=True)
    with pytest.raises(ValueError, match="expected NAME:MIN:OPT:MAX"):
        parse_profile("image:1x3x8x8")
    with pytest.raises(ValueError, match="min <= opt <= max"):
        parse_profile("image:4x3x8x8:1x3x8x8:4x3x8x8")


def test_engine_is_rebuilt_when_the_onnx_tensorrt_or_options_change(tmp_path):
    onnx = tmp_path / "depth.onnx"
    onnx.write_bytes(b"onnx v1")
    (tmp_path / "depth.json").write_text(json.dumps({
        "format": "depth_nodes.onnx_depth/1", "input": {"name": "image", "shape": ["batch", 3, 64, 96]},
        "output": {"name": "depth", "kind": "depth"}, "height": 64, "width": 96, "depth_is_metric": True,
        "min_depth": 0.1, "max_depth": 10.0}))
    builds, lines = [], []

    def build(src, dst, opts):
        builds.append(opts)
        dst.write_bytes(b"FAKEENGINE" + src.read_bytes())

    cache = tmp_path / "cache"
    kw = dict(gpu=GPU, build=build, log=lines.append)
    r1 = ensure_engine(onnx, cache, BuildOptions(), tensorrt_version="10.9.0", **kw)
    assert r1.built and len(builds) == 1 and "building TensorRT engine" in lines[0] and "built" in lines[-1]
    assert read_engine_meta(r1.path)["key"] == r1.key
    assert load_description(r1.path).output_kind == "metric_depth"  # the sidecar travels with the engine
    r2 = ensure_engine(onnx, cache, BuildOptions(), tensorrt_version="10.9.0", **kw)
    assert not r2.built and r2.path == r1.path and len(builds) == 1
    r3 = ensure_engine(onnx, cache, BuildOptions(), tensorrt_version="10.10.0", **kw)
    assert r3.built and r3.path != r1.path and "differs in tensorrt" in r3.reason
    r4 = ensure_engine(onnx, cache, BuildOptions(fp16=False), tensorrt_version="10.10.0", **kw)
    assert r4.built and "differs in options" in r4.reason
    onnx.write_bytes(b"onnx v2")
    r5 = ensure_engine(onnx, cache, BuildOptions(fp16=False), tensorrt_version="10.10.0", **kw)
    assert r5.built and "onnx_sha256" in r5.reason and len(builds) == 4
    r5.path.write_bytes(b"FAKEENGINE tampered")  # an engine that is not the one recorded: rebuilt
    assert ensure_engine(onnx, cache, BuildOptions(fp16=False), tensorrt_version="10.10.0", **kw).built

    def failing(src, dst, opts):
        raise BackendError(f"{src}: TensorRT engine build failed")

    before = sorted(p.name for p in cache.iterdir())
    with pytest.raises(BackendError, match="build failed"):
        ensure_engine(onnx, cache, BuildOptions(workspace_mb=7), tensorrt_version="10.10.0", gpu=GPU, build=failing,
                      log=lines.append)
    assert sorted(p.name for p in cache.iterdir()) == before  # nothing half-written left behind


# -- builder ---------------------------------------------------------------------------------------
def _fake_builder_trt(parse_ok=True, dynamic=True, build_ok=True):
    calls = []

    class Tensor:
        name, shape = "image", ((-1, 3, 64, 96) if dynamic else (1, 3, 64, 96))

    class Network:
        num_inputs = 1

        def get_input(self, i):
            return Tensor()

    class Parser:
        num_errors = 0 if parse_ok else 1

        def __init__(self, network, logger):
            pass

        def parse(self, data):
            calls.append(("parse", len(data)))
            return parse_ok

        def get_error(self, i):
            return "node Conv_3: unsupported"

    class Profile_:
        def set_shape(self, name, lo, opt, hi):
            calls.append(("set_shape", name, lo, opt, hi))

    class Config:
        def set_memory_pool_limit(self, pool, size):
            calls.append(("workspace", pool, size))

        def set_flag(self, flag):
            calls.append(("flag", flag))

        def add_optimization_profile(self, p):
            calls.append(("add_profile",))

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            calls.append(("create_network", flags))
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile_()

        def build_serialized_network(self, network, config):
            calls.append(("build",))
            return b"FAKEENGINE serialized" if build_ok else None

    class Logger:
        WARNING = 2

        def __init__(self, level):
            pass

    trt = SimpleNamespace(__version__="10.9.0", Builder=Builder, OnnxParser=Parser, Logger=Logger,
                          MemoryPoolType=SimpleNamespace(WORKSPACE="WORKSPACE"),
                          BuilderFlag=SimpleNamespace(FP16="FP16", INT8="INT8"))
    return trt, calls


def test_builder_uses_the_tensorrt_10_calls_and_reports_problems(tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx bytes")
    trt, calls = _fake_builder_trt()
    prof = parse_profile("image:1x3x64x96:1x3x64x96:2x3x64x96")
    build_engine(onnx, tmp_path / "m.engine", BuildOptions(workspace_mb=256, profiles=(prof,)), trt=trt,
                 log=lambda s: None)
    assert (tmp_path / "m.engine").read_bytes() == b"FAKEENGINE serialized"
    assert calls == [("create_network", 0), ("parse", 10), ("workspace", "WORKSPACE", 256 << 20), ("flag", "FP16"),
                     ("set_shape", "image", (1, 3, 64, 96), (1, 3, 64, 96), (2, 3, 64, 96)), ("add_profile",),
                     ("build",)]
    trt, _ = _fake_builder_trt()
    with pytest.raises(BackendError, match=r"m\.onnx: inputs \['image'\] have dynamic dimensions; give a --profile"):
        build_engine(onnx, tmp_path / "x.engine", BuildOptions(), trt=trt)
    trt, _ = _fake_builder_trt(parse_ok=False)
    with pytest.raises(BackendError, match=r"m\.onnx: TensorRT cannot parse this ONNX file: node Conv_3: unsupported"):
        build_engine(onnx, tmp_path / "x.engine", BuildOptions(), trt=trt)
    trt, _ = _fake_builder_trt(dynamic=False, build_ok=False)
    with pytest.raises(BackendError, match=r"m\.onnx: TensorRT engine build failed"):
        build_engine(onnx, tmp_path / "x.engine", BuildOptions(), trt=trt)
    trt, _ = _fake_builder_trt(dynamic=False)
    with pytest.raises(BackendError, match=r"INT8 needs calibration frames or an existing calibration cache"):
        build_engine(onnx, tmp_path / "x.engine", BuildOptions(int8=True, calibration_sha256="e" * 64), trt=trt)


def test_a_node_given_an_onnx_file_builds_the_engine_once_then_loads_it_from_the_cache(tmp_path):
    from depth_nodes.backends.inference import load_backend, resolve_description

    onnx = tmp_path / "depth.onnx"
    onnx.write_bytes(b"onnx v1")
    cuda, lines, builds = FakeCuda(), [], []

    def build(src, dst, opts):
        builds.append(src)
        dst.write_bytes(b"FAKEENGINE" + src.read_bytes())

    kw = dict(backend="tensorrt", device="cuda", cache_dir=tmp_path / "cache", trt=fake_trt(cuda), cuda=cuda, gpu=GPU,
              build=build, log=lines.append)
    b = load_backend(onnx, **kw)
    assert b.name == "tensorrt" and b.path.suffix == ".engine" and len(builds) == 1
    assert any("building TensorRT engine" in line for line in lines) and lines[-1].startswith("built ")
    load_backend(onnx, **kw)
    assert len(builds) == 1  # second start: cache hit
    desc = load_description(tmp_path / "depth.onnx", REPO_MODELS / "depth_anything_v2_small.yaml")
    with pytest.raises(BackendError, match="dynamic size, network input"):
        resolve_description(b, desc)  # the fake engine's input is 8x12 fixed
    assert resolve_description(b, desc.__class__(height=8, width=12, output_kind="metric_depth", input_name="",
                                                 output_name="")).output_name == "depth"


def test_build_engine_command_builds_once_then_reports_a_cache_hit(tmp_path, monkeypatch, capsys):
    import depth_nodes.backends.cuda_memory as cuda_memory
    import depth_nodes.backends.tensorrt_backend as tensorrt_backend

    trt, calls = _fake_builder_trt(dynamic=False)
    monkeypatch.setattr(tensorrt_backend, "import_tensorrt", lambda where="": trt)
    monkeypatch.setattr(cuda_memory, "gpu_name", lambda: GPU)
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx bytes")
    args = ["build-engine", str(onnx), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "m.engine"),
            "--workspace-mb", "64"]
    assert depth_nodes(args) == 0
    out = capsys.readouterr().out
    assert "building TensorRT engine" in out and "built in" in out and "copied to" in out
    assert (tmp_path / "m.engine").read_bytes() == b"FAKEENGINE serialized"
    assert read_engine_meta(tmp_path / "m.engine")["options"]["workspace_mb"] == 64
    assert ("workspace", "WORKSPACE", 64 << 20) in calls
    assert depth_nodes(args) == 0 and "cache hit" in capsys.readouterr().out
    assert depth_nodes(args[:2] + ["--profile", "image:1x3"]) == 2
    assert "expected NAME:MIN:OPT:MAX" in capsys.readouterr().err
    assert depth_nodes(args[:2] + ["--int8"]) == 2  # no calibration data, no sidecar description
    assert "m.json: no model description" in capsys.readouterr().err
