"""TensorRT engine cache: an engine is reused only while nothing it depends on has changed.

Cache key (:func:`engine_cache_key`)::

    key = SHA-256(canonical JSON {"onnx_sha256": SHA-256 of the ONNX file,
                                  "gpu": "<device name> sm_<cc>",
                                  "tensorrt": tensorrt.__version__,
                                  "options": BuildOptions.as_dict()})

so a new ONNX export, another GPU model, a TensorRT upgrade or different build options (FP16,
INT8 and its calibration data, optimisation profiles, workspace) each give another key, and
the engine is rebuilt. Cached engines live at ``<cache_dir>/<onnx stem>-<key[:16]>.engine`` with
``<engine>.meta.json`` (every part of the key, the build time) and the model description
``<onnx stem>-<key[:16]>.json`` copied from the ONNX sidecar, so
:func:`~depth_nodes.backends.description.load_description` works on the engine too.

Nothing here imports ``tensorrt``: the build itself is a function passed to
:func:`ensure_engine` (:func:`depth_nodes.backends.tensorrt_backend.build_engine` by default).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from depth_nodes.backends.base import BackendError

__all__ = ["META_FORMAT", "BuildOptions", "EngineResult", "Profile", "engine_cache_key", "engine_meta_path",
           "ensure_engine", "parse_profile", "read_engine_meta", "sha256_file", "check_engine_meta"]

META_FORMAT = "depth_nodes.trt_engine/1"


@dataclass(frozen=True)
class Profile:
    """One optimisation-profile entry: input ``name`` with its min/opt/max shapes."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def __post_init__(self):
        if not (len(self.min) == len(self.opt) == len(self.max)):
            raise ValueError(f"profile {self.name}: min/opt/max shapes differ in rank")
        if any(not (a <= b <= c) or a < 1 for a, b, c in zip(self.min, self.opt, self.max)):
            raise ValueError(f"profile {self.name}: need 1 <= min <= opt <= max per dimension, got "
                             f"{self.min}, {self.opt}, {self.max}")


def parse_profile(text: str) -> Profile:
    """``"image:1x3x240x320:1x3x480x640:4x3x720x1280"`` -> :class:`Profile` (name:min:opt:max)."""
    parts = text.split(":")
    if len(parts) != 4:
        raise ValueError(f"profile {text!r}: expected NAME:MIN:OPT:MAX with shapes like 1x3x480x640")
    try:
        shapes = [tuple(int(d) for d in p.lower().split("x")) for p in parts[1:]]
    except ValueError as exc:
        raise ValueError(f"profile {text!r}: shapes must be integers joined by 'x'") from exc
    return Profile(parts[0], *shapes)


@dataclass(frozen=True)
class BuildOptions:
    """What an engine build depends on besides the ONNX file, GPU and TensorRT version."""

    fp16: bool = True
    int8: bool = False
    workspace_mb: int = 1024
    profiles: tuple[Profile, ...] = ()
    calibration_sha256: str | None = None
    extra: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self):
        if self.workspace_mb < 1:
            raise ValueError(f"workspace_mb must be >= 1, got {self.workspace_mb}")
        if self.int8 and not self.calibration_sha256:
            raise ValueError("int8 needs calibration data (calibration_sha256 of the frames or cache)")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["profiles"] = [{"name": p.name, "min": list(p.min), "opt": list(p.opt), "max": list(p.max)}
                         for p in self.profiles]
        d["extra"] = [list(kv) for kv in self.extra]
        return d


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def engine_cache_key(onnx_sha256: str, gpu: str, tensorrt_version: str, options: BuildOptions) -> str:
    """SHA-256 hex of the canonical JSON of the four parts (module docstring)."""
    doc = {"onnx_sha256": onnx_sha256, "gpu": gpu, "tensorrt": tensorrt_version, "options": options.as_dict()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def engine_meta_path(engine_path: str | os.PathLike) -> Path:
    """``X.engine`` -> ``X.engine.meta.json``."""
    p = Path(engine_path)
    return p.with_name(p.name + ".meta.json")


def read_engine_meta(engine_path: str | os.PathLike) -> dict | None:
    """The engine's build record, or ``None`` when there is none (an engine built elsewhere)."""
    path = engine_meta_path(engine_path)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BackendError(f"{path}: unreadable engine build record ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
        raise BackendError(f"{path}: not an engine build record (format {META_FORMAT})")
    return meta


def check_engine_meta(engine_path: str | os.PathLike, gpu: str, tensorrt_version: str) -> None:
    """Raise :class:`BackendError` when the engine's build record names another GPU or TensorRT."""
    meta = read_engine_meta(engine_path)
    if meta is None:
        return
    problems = []
    if meta.get("gpu") != gpu:
        problems.append(f"built for GPU {meta.get('gpu')!r}, this machine has {gpu!r}")
    if meta.get("tensorrt") != tensorrt_version:
        problems.append(f"built with TensorRT {meta.get('tensorrt')}, this machine has {tensorrt_version}")
    if problems:
        raise BackendError(f"{engine_path}: {'; '.join(problems)}; rebuild it with "
                           f"`depth-nodes build-engine {meta.get('onnx', 'MODEL.onnx')}`")


@dataclass
class EngineResult:
    path: Path
    key: str
    built: bool
    build_seconds: float
    reason: str


Builder = Callable[[Path, Path, BuildOptions], None]


def ensure_engine(onnx_path: str | os.PathLike, cache_dir: str | os.PathLike, options: BuildOptions, *,
                  gpu: str, tensorrt_version: str, build: Builder, log: Callable[[str], None] = print
                  ) -> EngineResult:
    """The cached engine for ``onnx_path`` and ``options``, building it on a cache miss.

    Args:
        gpu, tensorrt_version: this machine's GPU and TensorRT (parts of the key).
        build: ``build(onnx_path, engine_tmp_path, options)`` writes a serialized engine.
        log: receives one line on a miss (why) and one after the build (its time).

    Raises:
        BackendError: the ONNX file is missing or the build fails (nothing is left in the cache).
    """
    onnx_path, cache_dir = Path(onnx_path), Path(cache_dir)
    if not onnx_path.is_file():
        raise BackendError(f"{onnx_path}: no such ONNX file")
    onnx_sha = sha256_file(onnx_path)
    key = engine_cache_key(onnx_sha, gpu, tensorrt_version, options)
    engine = cache_dir / f"{onnx_path.stem}-{key[:16]}.engine"
    meta_path = engine_meta_path(engine)
    if engine.is_file() and meta_path.is_file():
        meta = read_engine_meta(engine)
        if meta and meta.get("key") == key and meta.get("engine_sha256") == sha256_file(engine):
            return EngineResult(engine, key, False, 0.0, "cache hit")
    reason = "no cached engine for this ONNX file, GPU, TensorRT version and build options"
    others = sorted(cache_dir.glob(f"{onnx_path.stem}-*.engine")) if cache_dir.is_dir() else []
    if others:
        old = read_engine_meta(others[-1]) or {}
        changed = [part for part, now in (("onnx_sha256", onnx_sha), ("gpu", gpu), ("tensorrt", tensorrt_version),
                                          ("options", options.as_dict())) if old.get(part) != now]
        if changed:
            reason = f"cached engine {others[-1].name} differs in {', '.join(changed)}"
    log(f"building TensorRT engine {engine} from {onnx_path} ({reason})")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = engine.with_name(f".{engine.name}.{os.getpid()}.tmp")
    t0 = time.monotonic()
    try:
        build(onnx_path, tmp, options)
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise BackendError(f"{onnx_path}: TensorRT build produced no engine")
        os.replace(tmp, engine)
    finally:
        tmp.unlink(missing_ok=True)
    seconds = time.monotonic() - t0
    meta = {"format": META_FORMAT, "key": key, "onnx": str(onnx_path), "onnx_sha256": onnx_sha, "gpu": gpu,
            "tensorrt": tensorrt_version, "options": options.as_dict(), "build_seconds": seconds,
            "engine_sha256": sha256_file(engine)}
    tmp_meta = meta_path.with_name(meta_path.name + ".tmp")
    tmp_meta.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp_meta, meta_path)
    sidecar = onnx_path.with_suffix(".json")
    if sidecar.is_file():
        shutil.copyfile(sidecar, engine.with_suffix(".json"))
    log(f"built {engine} in {seconds:.1f} s")
    return EngineResult(engine, key, True, seconds, reason)
