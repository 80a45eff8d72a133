"""TensorRT backend (``.engine``/``.plan``) and engine builder, TensorRT 10 API.

UNVERIFIED: TensorRT cannot be installed on the development machines of this project and no GPU
was available, so this module has only run against the fakes in ``test/test_backend_tensorrt.py``
(which check the call sequence, shape checks, buffer reuse and error paths, not TensorRT itself).
It is written against the TensorRT 10 Python API: tensor-name I/O (``num_io_tensors``,
``get_tensor_name``, ``get_tensor_mode``, ``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``), never the removed binding-index API.

Runtime: the engine is deserialized once; per input shape, device buffers and page-locked host
buffers are allocated once and reused for every later frame of that shape (no per-frame
allocation). ``infer`` copies inputs host->device, runs on one CUDA stream, copies outputs
device->host into the pinned buffers (overwritten by the next ``infer``) and synchronises once.

Builder (:func:`build_engine`): ONNX parser, ``BuilderFlag.FP16``, optional ``BuilderFlag.INT8``
with an ``IInt8EntropyCalibrator2`` over preprocessed frames (its calibration cache file is
read when present and written after calibration), one optimisation profile for dynamic inputs,
``set_memory_pool_limit(MemoryPoolType.WORKSPACE, ...)``, ``build_serialized_network``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from depth_nodes.backends.base import BackendError, MissingRuntimeError
from depth_nodes.backends.engine_cache import BuildOptions, check_engine_meta
from depth_nodes.backends.inference import TensorSpec, check_feeds

__all__ = ["TensorRTBackend", "build_engine", "engine_from_onnx", "import_tensorrt", "make_calibrator",
           "DEFAULT_CACHE_DIR"]

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "depth_nodes" / "engines"


def import_tensorrt(where: str = "TensorRT"):
    """``import tensorrt`` or :class:`MissingRuntimeError` saying how to get it."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise MissingRuntimeError(f"{where}: the TensorRT backend needs the tensorrt package (NVIDIA's wheels, "
                           "`pip install tensorrt` with CUDA 12/13 drivers); use the .onnx with "
                           "onnxruntime instead") from exc
    return trt


class TensorRTBackend:
    """A deserialized TensorRT engine behind the inference interface.

    Args:
        path: ``.engine``/``.plan`` file.
        device: must be ``"cuda"``.
        trt, cuda: the ``tensorrt`` module and a :class:`~depth_nodes.backends.cuda_memory.CudaMemory`
            (injected by tests; by default imported / chosen lazily).
        gpu: this machine's GPU name, to check the engine's build record (default: queried).
    """

    name = "tensorrt"

    def __init__(self, path: str | Path, device: str = "cuda", trt=None, cuda=None, gpu: str | None = None):
        self.path = Path(path)
        where = str(self.path)
        if device != "cuda":
            raise BackendError(f"{where}: TensorRT engines run on device 'cuda' only, got {device!r}")
        if not self.path.is_file():
            raise BackendError(f"{where}: no such engine file")
        self._trt = trt = trt or import_tensorrt(where)
        if gpu is None:
            from depth_nodes.backends.cuda_memory import gpu_name
            gpu = gpu_name()
        check_engine_meta(self.path, gpu, str(trt.__version__))
        if cuda is None:
            from depth_nodes.backends.cuda_memory import cuda_memory
            cuda = cuda_memory(where)
        self._cuda = cuda
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        data = self.path.read_bytes()
        engine = self._runtime.deserialize_cuda_engine(data) if data else None
        if engine is None:
            raise BackendError(f"{where}: TensorRT {trt.__version__} cannot deserialize this engine (corrupt, "
                               "or built with another TensorRT version or for another GPU); rebuild it with "
                               "`depth-nodes build-engine`")
        self.engine = engine
        self.context = engine.create_execution_context()
        if self.context is None:
            raise BackendError(f"{where}: cannot create an execution context (out of GPU memory?)")
        self.inputs: list[TensorSpec] = []
        self.outputs: list[TensorSpec] = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shape = tuple(int(d) if int(d) >= 0 else None for d in engine.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name
            spec = TensorSpec(name, shape, dtype)
            (self.inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else self.outputs).append(spec)
        self._buffers: dict[tuple, dict[str, tuple[int, np.ndarray]]] = {}
        self.last_latency_s = float("nan")

    def profile_range(self, name: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """``(min, opt, max)`` shapes of input ``name`` in optimisation profile 0."""
        lo, opt, hi = self.engine.get_tensor_profile_shape(name, 0)
        return tuple(lo), tuple(opt), tuple(hi)

    def _check_profile(self, name: str, shape: tuple[int, ...]) -> None:
        lo, _, hi = self.profile_range(name)
        if len(lo) == len(shape) and not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
            raise BackendError(f"{self.path}: input {name!r} shape {shape} is outside the engine's optimisation "
                               f"profile {lo}..{hi}; rebuild with a --profile that covers it")

    def _buffers_for(self, key: tuple, feeds: dict[str, np.ndarray]) -> dict[str, tuple[int, np.ndarray]]:
        bufs = self._buffers.get(key)
        if bufs is not None:
            return bufs
        bufs = {}
        for spec in self.inputs:
            arr = feeds[spec.name]
            bufs[spec.name] = (self._cuda.device_buffer(arr.nbytes), self._cuda.host_buffer(arr.shape, arr.dtype))
        for spec in self.outputs:
            shape = tuple(int(d) for d in self.context.get_tensor_shape(spec.name))
            if any(d < 0 for d in shape):
                raise BackendError(f"{self.path}: output {spec.name!r} shape {shape} unresolved after setting inputs")
            host = self._cuda.host_buffer(shape, np.dtype(spec.dtype))
            bufs[spec.name] = (self._cuda.device_buffer(host.nbytes), host)
        self._buffers[key] = bufs
        return bufs

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        where = str(self.path)
        check_feeds(where, self.inputs, feeds)
        for spec in self.inputs:
            shape = tuple(feeds[spec.name].shape)
            if any(d is None for d in spec.shape):
                self._check_profile(spec.name, shape)
            if not self.context.set_input_shape(spec.name, shape):
                raise BackendError(f"{where}: TensorRT refused input shape {shape} for {spec.name!r}")
        key = tuple((s.name, tuple(feeds[s.name].shape)) for s in self.inputs)
        bufs = self._buffers_for(key, feeds)
        cuda = self._cuda
        t0 = time.perf_counter()
        for spec in self.inputs:
            ptr, host = bufs[spec.name]
            np.copyto(host, feeds[spec.name])
            cuda.h2d(ptr, host)
        for name, (ptr, _) in bufs.items():
            self.context.set_tensor_address(name, ptr)
        if not self.context.execute_async_v3(cuda.stream):
            raise BackendError(f"{where}: TensorRT execution failed")
        for spec in self.outputs:
            ptr, host = bufs[spec.name]
            cuda.d2h(host, ptr)
        cuda.synchronize()
        self.last_latency_s = time.perf_counter() - t0
        return {spec.name: bufs[spec.name][1] for spec in self.outputs}

    def warmup(self) -> None:
        feeds = {}
        for s in self.inputs:
            shape = [d if d is not None else self.profile_range(s.name)[1][i] for i, d in enumerate(s.shape)]
            feeds[s.name] = np.zeros(shape, np.dtype(s.dtype))
        for _ in range(2):
            self.infer(feeds)

    def close(self) -> None:
        self._buffers.clear()
        self.context = None
        self.engine = None
        if self._cuda is not None:
            self._cuda.free()


def make_calibrator(trt, batches: Sequence[np.ndarray], cache_path: str | Path, cuda, input_name: str = "image"):
    """An ``IInt8EntropyCalibrator2`` feeding ``batches`` (NCHW float32, all one shape) to TensorRT.

    The calibration cache at ``cache_path`` is returned to TensorRT when it exists (so a rebuild
    skips calibration) and written after a calibration run.
    """
    cache_path = Path(cache_path)

    class _EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = list(batches)
            self._index = 0
            first = self._batches[0] if self._batches else np.zeros((1, 3, 1, 1), np.float32)
            self._host = cuda.host_buffer(first.shape, np.float32)
            self._device = cuda.device_buffer(self._host.nbytes)

        def get_batch_size(self):
            return int(self._host.shape[0])

        def get_batch(self, names):
            if self._index >= len(self._batches):
                return None
            np.copyto(self._host, self._batches[self._index])
            self._index += 1
            cuda.h2d(self._device, self._host)
            cuda.synchronize()
            return [int(self._device)]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache):
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cache_path.write_bytes(bytes(cache))

    return _EntropyCalibrator()


def build_engine(onnx_path: str | Path, engine_path: str | Path, options: BuildOptions, *,
                 calibration_batches: Iterable[np.ndarray] | None = None,
                 calibration_cache: str | Path | None = None, trt=None, log=print) -> None:
    """Parse ``onnx_path`` and write a serialized engine to ``engine_path`` (TensorRT 10).

    Raises:
        BackendError: tensorrt absent, ONNX parse errors (each listed), dynamic inputs without a
            profile, INT8 without calibration data, or a failed build.
    """
    trt = trt or import_tensorrt(str(onnx_path))
    where = str(onnx_path)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"{where}: TensorRT cannot parse this ONNX file: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_mb) << 20)
    if options.fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    dynamic = []
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if any(int(d) < 0 for d in tensor.shape):
            dynamic.append(tensor.name)
    profiles = {p.name: p for p in options.profiles}
    missing = [n for n in dynamic if n not in profiles]
    if missing:
        raise BackendError(f"{where}: inputs {missing} have dynamic dimensions; give a --profile NAME:MIN:OPT:MAX "
                           "for each")
    profile = None
    if profiles:
        profile = builder.create_optimization_profile()
        for p in profiles.values():
            profile.set_shape(p.name, p.min, p.opt, p.max)
        config.add_optimization_profile(profile)
    if options.int8:
        batches = list(calibration_batches or [])
        if not batches and not (calibration_cache and Path(calibration_cache).is_file()):
            raise BackendError(f"{where}: INT8 needs calibration frames or an existing calibration cache")
        from depth_nodes.backends.cuda_memory import cuda_memory
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = make_calibrator(trt, batches, calibration_cache or
                                                 Path(engine_path).with_suffix(".calib"), cuda_memory(where))
        if profile is not None:
            config.set_calibration_profile(profile)
    t0 = time.monotonic()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"{where}: TensorRT engine build failed (see the TensorRT log above)")
    Path(engine_path).write_bytes(bytes(serialized))
    log(f"TensorRT {trt.__version__}: built {engine_path} in {time.monotonic() - t0:.1f} s")


def engine_from_onnx(onnx_path: str | Path, device: str = "cuda", cache_dir: str | Path | None = None,
                     build_options: BuildOptions | None = None, log=print, trt=None, cuda=None,
                     gpu: str | None = None, build=None) -> TensorRTBackend:
    """The TensorRT backend for ``onnx_path``: the cached engine, or one built now (a node's first start).

    The cache key and layout are :mod:`depth_nodes.backends.engine_cache`'s; ``log`` gets why a build
    happens and how long it took. ``build`` replaces :func:`build_engine` (tests).
    """
    from depth_nodes.backends.engine_cache import ensure_engine

    where = str(onnx_path)
    if device != "cuda":
        raise BackendError(f"{where}: TensorRT engines run on device 'cuda' only, got {device!r}")
    trt = trt or import_tensorrt(where)
    if gpu is None:
        from depth_nodes.backends.cuda_memory import gpu_name
        gpu = gpu_name()
    opts = build_options or BuildOptions()
    result = ensure_engine(onnx_path, cache_dir or DEFAULT_CACHE_DIR, opts, gpu=gpu,
                           tensorrt_version=str(trt.__version__),
                           build=build or (lambda src, dst, o: build_engine(src, dst, o, trt=trt, log=log)), log=log)
    return TensorRTBackend(result.path, device=device, trt=trt, cuda=cuda, gpu=gpu)
