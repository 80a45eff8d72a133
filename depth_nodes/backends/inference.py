"""One inference interface for every network backend (ONNX Runtime, torch ``.pt2``, TensorRT).

A pipeline loads a network with :func:`load_backend` and only ever calls the
:class:`InferenceBackend` methods, so the node does not change when the engine behind it does::

    backend = load_backend("model.onnx")            # suffix picks the backend
    backend.warmup()
    out = backend.infer({"image": nchw_float32})    # {"depth": (1, 1, H, W) float32}
    backend.close()

Backend choice (``backend="auto"``): ``.onnx`` -> ONNX Runtime, ``.engine``/``.plan`` -> TensorRT,
``.pt2`` (``torch.export``) and ``.pt`` (a training model file) -> torch. Heavy runtimes
(``onnxruntime``, ``torch``, ``tensorrt``) are imported only when their backend is created.

Arrays returned by ``infer`` may be buffers owned by the backend and reused by the next call
(no per-frame allocation); copy them if they must outlive the next ``infer``.

Every failure to load or run raises :class:`~depth_nodes.backends.base.BackendError` with one
line naming the file and the problem.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from depth_nodes.backends.base import BackendError, MissingRuntimeError
from depth_nodes.optional_deps import missing_package_message

__all__ = [
    "BACKENDS",
    "DEVICES",
    "SUFFIXES",
    "TensorSpec",
    "InferenceBackend",
    "backend_for_path",
    "bind_description",
    "resolve_description",
    "check_feeds",
    "check_input_size",
    "load_backend",
]

BACKENDS = ("auto", "onnxruntime", "tensorrt", "torch")
DEVICES = ("cpu", "cuda")
SUFFIXES = {".onnx": "onnxruntime", ".engine": "tensorrt", ".plan": "tensorrt", ".pt2": "torch",
            ".pt": "torch"}

Dim = int | str | None


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one network input or output.

    ``shape`` entries are ints for fixed dimensions and a name (``"batch"``) or ``None`` for
    dynamic ones; ``dtype`` is a numpy dtype name (``"float32"``, ``"float16"``, ``"int64"``).
    """

    name: str
    shape: tuple[Dim, ...]
    dtype: str

    def fixed(self, axis: int) -> int | None:
        """The size of ``axis`` when it is fixed, else ``None``."""
        d = self.shape[axis]
        return d if isinstance(d, int) and d > 0 else None

    def accepts(self, shape: Sequence[int]) -> bool:
        """``True`` when an array of ``shape`` fits this spec (same rank, fixed dims equal)."""
        return len(shape) == len(self.shape) and all(
            not (isinstance(d, int) and d > 0) or int(s) == d for s, d in zip(shape, self.shape))

    def __str__(self) -> str:
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}[{dims}]:{self.dtype}"


@runtime_checkable
class InferenceBackend(Protocol):
    """A loaded network. ``infer`` maps input name -> array to output name -> array."""

    name: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def warmup(self) -> None: ...

    def close(self) -> None: ...


def check_feeds(where: str, specs: Sequence[TensorSpec], feeds: Mapping[str, np.ndarray]) -> None:
    """Raise :class:`BackendError` unless ``feeds`` holds exactly the inputs ``specs`` names, with fitting shapes.

    ``where`` (the model file) starts the message.
    """
    names = {s.name for s in specs}
    if set(feeds) != names:
        raise BackendError(f"{where}: inputs {sorted(feeds)} given, the network takes {sorted(names)}")
    for spec in specs:
        arr = feeds[spec.name]
        if not spec.accepts(arr.shape):
            raise BackendError(f"{where}: input {spec.name!r} has shape {tuple(arr.shape)}, "
                               f"the network takes {spec}")
        if arr.dtype != np.dtype(spec.dtype):
            raise BackendError(f"{where}: input {spec.name!r} has dtype {arr.dtype}, the network takes {spec.dtype}")


def check_input_size(where: str, spec: TensorSpec, height: int, width: int, multiple: int = 1) -> None:
    """Raise :class:`BackendError` unless an NCHW input ``spec`` can take ``height x width`` images.

    Fixed spatial dimensions must equal ``height``/``width``; dynamic ones need ``height`` and
    ``width`` to be multiples of ``multiple``. This is the check that a node's configuration (or a
    model description) fits the network it loaded.
    """
    if len(spec.shape) != 4:
        raise BackendError(f"{where}: input {spec} is not NCHW (rank {len(spec.shape)})")
    for axis, size, label in ((2, height, "height"), (3, width, "width")):
        fixed = spec.fixed(axis)
        if fixed is not None and fixed != size:
            raise BackendError(f"{where}: network input {spec} has {label} {fixed}, configured {label} is {size}")
        if fixed is None and multiple > 1 and size % multiple:
            raise BackendError(f"{where}: {label} {size} is not a multiple of {multiple} (network input {spec})")


def _pick(where: str, kind: str, wanted: str, specs: Sequence[TensorSpec]) -> TensorSpec:
    by_name = {s.name: s for s in specs}
    if wanted in by_name:
        return by_name[wanted]
    if len(specs) == 1:  # unnamed in the description, or a public model naming it differently
        return specs[0]
    raise BackendError(f"{where}: the description names {kind} {wanted!r}, the network has {sorted(by_name)}")


def bind_description(backend: InferenceBackend, desc, where: str | None = None) -> tuple[TensorSpec, TensorSpec]:
    """``(input spec, output spec)`` of ``backend`` that ``desc`` (a ModelDescription) refers to.

    Names are matched exactly; a network with a single input (output) uses it whatever the
    description calls it. Raises :class:`BackendError` when the network's fixed input size is
    not the description's, when a dynamic description meets a fixed-size network, or when the
    output is not 4-D/3-D.
    """
    where = where or str(getattr(backend, "path", backend.name))
    inp = _pick(where, "input", desc.input_name, backend.inputs)
    out = _pick(where, "output", desc.output_name, backend.outputs)
    if len(inp.shape) != 4:
        raise BackendError(f"{where}: network input {inp} is not NCHW")
    fixed = (inp.fixed(2), inp.fixed(3))
    if desc.dynamic and fixed != (None, None):
        raise BackendError(f"{where}: the description says dynamic size, network input {inp} is fixed")
    if not desc.dynamic:
        check_input_size(where, inp, desc.height, desc.width, desc.multiple)
    if inp.fixed(1) not in (None, 3):
        raise BackendError(f"{where}: network input {inp} does not take 3 channels")
    if len(out.shape) not in (3, 4):
        raise BackendError(f"{where}: network output {out} is not (B, C, H, W) or (B, H, W)")
    return inp, out


def resolve_description(backend: InferenceBackend, desc, where: str | None = None):
    """``desc`` with ``input_name``/``output_name`` set to the network's tensors (checked by
    :func:`bind_description`), so ``backend.infer({desc.input_name: x})[desc.output_name]`` works for
    public-model YAMLs that leave the names empty or name them differently."""
    from dataclasses import replace

    inp, out = bind_description(backend, desc, where)
    return replace(desc, input_name=inp.name, output_name=out.name)


def backend_for_path(path: str | os.PathLike, backend: str = "auto") -> str:
    """The backend name for ``path`` (its suffix when ``backend == "auto"``)."""
    if backend not in BACKENDS:
        raise BackendError(f"{path}: backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise BackendError(f"{path}: unknown model file type {suffix or '(no suffix)'!r}; "
                           f"expected one of {sorted(SUFFIXES)}")
    return SUFFIXES[suffix]


def load_backend(path: str | os.PathLike, backend: str = "auto", device: str = "cpu",
                 **options) -> InferenceBackend:
    """Load the network in ``path`` with ``backend`` on ``device``.

    Args:
        path: ``.onnx``, ``.engine``/``.plan``, ``.pt2`` or ``.pt`` file.
        backend: ``"auto"`` (by suffix), ``"onnxruntime"``, ``"tensorrt"`` or ``"torch"``.
        device: ``"cpu"`` or ``"cuda"`` (TensorRT needs ``"cuda"``).
        options: passed to the backend's constructor (e.g. ``providers``/``threads`` for ONNX
            Runtime, ``half``/``compile`` for torch). ``backend="tensorrt"`` with an ``.onnx`` file
            takes the cached engine or builds it first (logged with its time; options
            ``cache_dir``, ``build_options``, ``log``: see ``tensorrt_backend.engine_from_onnx``).

    Raises:
        BackendError: unknown backend/device, missing, unreadable or corrupt file, runtime absent.
    """
    path = Path(path)
    name = backend_for_path(path, backend)
    if device not in DEVICES:
        raise BackendError(f"{path}: device must be one of {DEVICES}, got {device!r}")
    if not path.is_file():
        raise BackendError(f"{path}: no such model file")
    try:
        if name == "onnxruntime":
            from depth_nodes.backends.onnxruntime_backend import OnnxRuntimeBackend
            return OnnxRuntimeBackend(path, device=device, **options)
        if name == "torch":
            from depth_nodes.backends.torch_backend import TorchBackend
            return TorchBackend(path, device=device, **options)
        from depth_nodes.backends.tensorrt_backend import TensorRTBackend, engine_from_onnx
        if path.suffix.lower() == ".onnx":  # build on first use, or take the cached engine
            return engine_from_onnx(path, device=device, **options)
        return TensorRTBackend(path, device=device, **options)
    except ModuleNotFoundError as exc:  # the backend's runtime is not installed: one line naming it
        message = missing_package_message(exc)
        if message is None:
            raise
        raise MissingRuntimeError(f"{path}: the {name} backend {message}") from exc
