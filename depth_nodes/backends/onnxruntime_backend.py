"""ONNX Runtime backend for ``.onnx`` networks.

Execution providers: on ``device="cuda"`` TensorRT then CUDA, whichever this onnxruntime build
has (``BackendError`` when it has neither); on ``"cpu"`` the CPU provider. ``providers`` overrides.

Inference goes through an ``IOBinding``: the input is bound in place (no copy on the CPU
provider), and outputs are bound to buffers that are allocated once per input shape and reused
for every later frame of that shape (on CUDA the outputs stay on the device and are copied to
host once, into the reused buffer). Returned arrays are therefore overwritten by the next
``infer`` call.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from depth_nodes.backends.base import BackendError
from depth_nodes.backends.inference import TensorSpec, check_feeds

__all__ = ["OnnxRuntimeBackend", "ort_dtype", "select_providers"]

_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(uint8)": "uint8",
              "tensor(int8)": "int8", "tensor(bool)": "bool"}
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def ort_dtype(type_str: str, where: str) -> str:
    """onnxruntime type string (``"tensor(float)"``) -> numpy dtype name."""
    if type_str not in _ORT_TYPES:
        raise BackendError(f"{where}: unsupported tensor type {type_str}")
    return _ORT_TYPES[type_str]


def select_providers(device: str, available: Sequence[str], where: str) -> list:
    """Providers for ``device`` among ``available`` (TensorRT, CUDA for cuda; CPU for cpu).

    The TensorRT provider gets FP16 and its own engine cache (``~/.cache/depth_nodes/ort_trt``), so
    it does not rebuild at every start (unverified here: no GPU).
    """
    if device == "cpu":
        return ["CPUExecutionProvider"]
    gpu = [p for p in GPU_PROVIDERS if p in available]
    if not gpu:
        raise BackendError(f"{where}: device 'cuda' requested but this onnxruntime has no GPU provider "
                           f"(available: {list(available)}; install onnxruntime-gpu)")
    cache = str(Path.home() / ".cache" / "depth_nodes" / "ort_trt")
    trt_options = {"trt_fp16_enable": True, "trt_engine_cache_enable": True, "trt_engine_cache_path": cache}
    return [(p, trt_options) if p == "TensorrtExecutionProvider" else p for p in gpu] + ["CPUExecutionProvider"]


def _spec(arg, where: str) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else (d or None) for d in arg.shape)
    return TensorSpec(arg.name, shape, ort_dtype(arg.type, where))


class OnnxRuntimeBackend:
    """An ``onnxruntime.InferenceSession`` behind the
    :class:`~depth_nodes.backends.inference.InferenceBackend` interface."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, device: str = "cpu", providers: Sequence[str] | None = None,
                 threads: int | None = None, spin: bool = False):
        import onnxruntime as ort

        self.path = Path(path)
        self.providers: list[str] = []
        where = str(self.path)
        if not self.path.is_file():
            raise BackendError(f"{where}: no such model file")
        self.device = device
        chosen = list(providers) if providers else select_providers(device, ort.get_available_providers(), where)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = int(threads)
        if not spin:
            # ORT's worker threads busy-wait after every run by default; in a node they then take
            # the cores from DDS and the Python callbacks that pre/post-process the next frame.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(where, sess_options=opts, providers=chosen)
        except Exception as exc:  # InvalidProtobuf, Fail, InvalidGraph, NoSuchFile ...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"{where}: not a loadable ONNX model ({first})") from exc
        self.providers = self.session.get_providers()
        self.inputs = [_spec(a, where) for a in self.session.get_inputs()]
        self.outputs = [_spec(a, where) for a in self.session.get_outputs()]
        self._on_gpu = any(p in GPU_PROVIDERS for p in self.providers)
        self._binding = self.session.io_binding()
        self._out_buffers: dict[tuple, list[np.ndarray]] = {}
        self._ort = ort
        self.last_latency_s = float("nan")

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch; see the module docstring for buffer reuse."""
        where = str(self.path)
        check_feeds(where, self.inputs, feeds)
        b = self._binding
        b.clear_binding_inputs()
        b.clear_binding_outputs()
        key = tuple((k, v.shape) for k, v in sorted(feeds.items()))
        for spec in self.inputs:
            arr = np.ascontiguousarray(feeds[spec.name])
            b.bind_cpu_input(spec.name, arr)
        buffers = self._out_buffers.get(key)
        t0 = time.perf_counter()
        try:
            for i, spec in enumerate(self.outputs):
                if self._on_gpu:  # stays on the device until the one host copy below
                    b.bind_output(spec.name, "cuda")
                elif buffers is not None:  # written in place into last frame's buffer
                    buf = buffers[i]
                    b.bind_output(spec.name, "cpu", element_type=buf.dtype, shape=buf.shape,
                                  buffer_ptr=buf.ctypes.data)
                else:
                    b.bind_output(spec.name, "cpu")
            self.session.run_with_iobinding(b)
            if self._on_gpu:
                host = b.copy_outputs_to_cpu()
        except Exception as exc:
            raise BackendError(f"{where}: inference failed ({str(exc).strip().splitlines()[0]})") from exc
        self.last_latency_s = time.perf_counter() - t0
        if self._on_gpu:
            return {spec.name: arr for spec, arr in zip(self.outputs, host)}
        if buffers is None:  # first frame of this shape: keep its outputs as the buffers for the next ones
            buffers = [np.array(v.numpy(), copy=True) for v in b.get_outputs()]
            self._out_buffers[key] = buffers
        return {spec.name: buf for spec, buf in zip(self.outputs, buffers)}

    def warmup(self) -> None:
        """Run twice on zeros of the input shapes (dynamic dimensions as 1)."""
        feeds = {s.name: np.zeros([d if isinstance(d, int) and d > 0 else 1 for d in s.shape], np.dtype(s.dtype))
                 for s in self.inputs}
        for _ in range(2):
            self.infer(feeds)

    def close(self) -> None:
        self._out_buffers.clear()
        self._binding = None
        self.session = None

    def __repr__(self) -> str:
        return f"OnnxRuntimeBackend({str(self.path)!r}, providers={self.providers})"
