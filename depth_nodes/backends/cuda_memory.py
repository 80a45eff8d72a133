"""Device and pinned-host memory for the TensorRT backend: through torch or cuda-python.

UNVERIFIED on a GPU in this project (no GPU machine was available); written against
``torch.cuda`` and cuda-python's runtime bindings (``cuda.bindings.runtime``, formerly
``cuda.cudart``).

Interface (:class:`CudaMemory`): ``device_buffer(nbytes) -> int`` (a device pointer kept alive
by the object), ``host_buffer(shape, dtype) -> np.ndarray`` (page-locked), ``h2d(ptr, host)``,
``d2h(host, ptr)`` (asynchronous on :attr:`stream`), ``synchronize()``, ``free()``. Tests inject
a host-memory fake with the same methods.
"""
from __future__ import annotations

import ctypes
from typing import Protocol

import numpy as np

from depth_nodes.backends.base import BackendError

__all__ = ["CudaMemory", "TorchCudaMemory", "CudaPythonMemory", "cuda_memory", "gpu_name"]


class CudaMemory(Protocol):
    stream: int

    def device_buffer(self, nbytes: int) -> int: ...

    def host_buffer(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray: ...

    def h2d(self, ptr: int, host: np.ndarray) -> None: ...

    def d2h(self, host: np.ndarray, ptr: int) -> None: ...

    def synchronize(self) -> None: ...

    def free(self) -> None: ...


class TorchCudaMemory:
    """Buffers and a stream from ``torch.cuda`` (device 0 unless given); copies are tensor ``copy_``."""

    def __init__(self, device: int = 0):
        import torch

        self._torch = torch
        self._device = torch.device("cuda", device)
        self._stream = torch.cuda.Stream(self._device)
        self.stream = int(self._stream.cuda_stream)
        self._dev: dict[int, object] = {}   # device pointer -> uint8 tensor
        self._pinned: dict[int, object] = {}  # host pointer -> pinned uint8 tensor

    def device_buffer(self, nbytes: int) -> int:
        t = self._torch.empty(max(int(nbytes), 1), dtype=self._torch.uint8, device=self._device)
        self._dev[int(t.data_ptr())] = t
        return int(t.data_ptr())

    def host_buffer(self, shape, dtype) -> np.ndarray:
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        t = self._torch.empty(max(n, 1), dtype=self._torch.uint8, pin_memory=True)
        self._pinned[int(t.data_ptr())] = t
        return t.numpy()[:n].view(np.dtype(dtype)).reshape(shape)

    def _tensors(self, ptr: int, host: np.ndarray):
        dev, pinned = self._dev.get(ptr), self._pinned.get(int(host.ctypes.data))
        if dev is None or pinned is None:
            raise BackendError("TorchCudaMemory copies only between buffers it allocated")
        return dev[:host.nbytes], pinned[:host.nbytes]

    def h2d(self, ptr: int, host: np.ndarray) -> None:
        dev, pinned = self._tensors(ptr, host)
        with self._torch.cuda.stream(self._stream):
            dev.copy_(pinned, non_blocking=True)

    def d2h(self, host: np.ndarray, ptr: int) -> None:
        dev, pinned = self._tensors(ptr, host)
        with self._torch.cuda.stream(self._stream):
            pinned.copy_(dev, non_blocking=True)

    def synchronize(self) -> None:
        self._stream.synchronize()

    def free(self) -> None:
        self._dev.clear()
        self._pinned.clear()


def _cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        from cuda import cudart  # type: ignore[no-redef]  # older cuda-python
    return cudart


class CudaPythonMemory:
    """Buffers and a stream from cuda-python's runtime API (``cudaMalloc``, ``cudaMallocHost``)."""

    def __init__(self):
        self._rt = _cudart()
        self.stream = int(self._call(self._rt.cudaStreamCreate()))
        self._device: list[int] = []
        self._host: list[int] = []

    def _call(self, result):
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise BackendError(f"CUDA error {err}")
        return rest[0] if len(rest) == 1 else rest

    def device_buffer(self, nbytes: int) -> int:
        ptr = int(self._call(self._rt.cudaMalloc(max(int(nbytes), 1))))
        self._device.append(ptr)
        return ptr

    def host_buffer(self, shape, dtype) -> np.ndarray:
        n = max(int(np.prod(shape)) * np.dtype(dtype).itemsize, 1)
        ptr = int(self._call(self._rt.cudaMallocHost(n)))
        self._host.append(ptr)
        raw = (ctypes.c_uint8 * n).from_address(ptr)
        return np.frombuffer(raw, dtype=np.uint8)[:int(np.prod(shape)) * np.dtype(dtype).itemsize] \
            .view(np.dtype(dtype)).reshape(shape)

    def h2d(self, ptr: int, host: np.ndarray) -> None:
        self._call(self._rt.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes,
                                            self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream))

    def d2h(self, host: np.ndarray, ptr: int) -> None:
        self._call(self._rt.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes,
                                            self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream))

    def synchronize(self) -> None:
        self._call(self._rt.cudaStreamSynchronize(self.stream))

    def free(self) -> None:
        for ptr in self._device:
            self._rt.cudaFree(ptr)
        for ptr in self._host:
            self._rt.cudaFreeHost(ptr)
        self._device.clear()
        self._host.clear()


def cuda_memory(where: str) -> CudaMemory:
    """cuda-python when installed, else torch with CUDA; :class:`BackendError` when neither."""
    try:
        return CudaPythonMemory()
    except ImportError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            return TorchCudaMemory()
    except ImportError:
        pass
    raise BackendError(f"{where}: TensorRT needs CUDA memory through cuda-python (pip install cuda-python) "
                       "or torch with CUDA; neither is available")


def gpu_name() -> str:
    """``"<device name> sm_<major><minor>"`` of CUDA device 0 (cuda-python, else torch)."""
    try:
        rt = _cudart()
        err, props = rt.cudaGetDeviceProperties(0)
        if int(err) == 0:
            name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
            return f"{name.strip(chr(0)).strip()} sm_{props.major}{props.minor}"
    except ImportError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return f"{torch.cuda.get_device_name(0)} sm_{major}{minor}"
    except ImportError:
        pass
    raise BackendError("no CUDA device found (needed to key and run TensorRT engines)")
