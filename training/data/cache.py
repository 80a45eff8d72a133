"""Decode-once sample cache: one memory-mappable ``.npy`` file per field.

Reading a bag means decompressing images, resizing them and looking up poses - far too slow to
redo every epoch. :func:`ensure_cache` does it once per (source, preprocessing) and stores the
samples as fixed-shape arrays; training then reads them with ``np.load(mmap_mode="r")``, which
costs a memory copy per sample (see :class:`depth_training.data.cached_dataset.CachedDataset`).

A cache directory ``<root>/<name>-<key>/`` holds ``<field>.npy`` of shape ``(N, *field_shape)``
for every field of the samples, and ``meta.json`` (written last) with the field dtypes/shapes,
the sample count, the source path, the preprocessing parameters and the source's fingerprint
(size and mtime of every file of the bag). ``key`` hashes (source path, parameters), so changing
the topics, image size or preprocessing builds a separate cache, and a cache whose fingerprint no
longer matches its source (the bag was re-recorded) is stale and gets rebuilt in place.

Writes are atomic: a cache is built in ``<root>/.tmp-<name>-<key>-<host>-<pid>-<random>/`` and
renamed into place when complete. A build that fails cleans up after itself; one killed outright
leaves its temp directory, which the next build on that host removes once the process is gone.
A cache directory with a missing/unreadable ``meta.json`` or a field file whose header or size
disagrees with it is reported and rebuilt.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from numpy.lib import format as npy_format

from depth_training.cli import UserError

LOG = logging.getLogger("depth_training.cache")
FORMAT_VERSION = 1
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class CacheError(Exception):
    """A cache directory that cannot be used as it is (the message says why)."""


@dataclass(frozen=True)
class FieldSpec:
    dtype: np.dtype
    shape: tuple[int, ...]  # per sample


@dataclass(frozen=True)
class CacheInfo:
    """A complete, validated cache directory."""

    directory: Path
    count: int
    fields: dict[str, FieldSpec]
    source: str | None
    params: dict[str, Any]
    fingerprint: list

    def field_path(self, name: str) -> Path:
        return self.directory / f"{name}.npy"


# -- keys and fingerprints ----------------------------------------------------------------
def source_fingerprint(source: str | os.PathLike) -> list[list]:
    """``[[relative path, size, mtime_ns], ...]`` for a file or every file under a directory."""
    src = Path(source)
    if src.is_file():
        st = src.stat()
        return [[".", st.st_size, st.st_mtime_ns]]
    if src.is_dir():
        out = []
        for p in sorted(src.rglob("*")):
            if p.is_file():
                st = p.stat()
                out.append([p.relative_to(src).as_posix(), st.st_size, st.st_mtime_ns])
        return out
    raise UserError(f"{src}: no such file or directory")


def canonical_json(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except TypeError as exc:
        raise ValueError(f"cache parameters must be JSON-serialisable: {exc}") from exc


def cache_key(source: str | os.PathLike | None, params: Mapping[str, Any]) -> str:
    """20 hex digits of SHA-256 over (absolute source path, parameters)."""
    src = str(Path(source).expanduser().resolve()) if source is not None else None
    return hashlib.sha256(canonical_json({"source": src, "params": dict(params)}).encode()).hexdigest()[:20]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "cache"


# -- writing ------------------------------------------------------------------------------
class _NpyAppender:
    """Writes an ``.npy`` file one row at a time; the header's row count is fixed up at the end.

    NumPy pads ``.npy`` headers so the leading dimension can grow in place
    (``numpy.lib.format.GROWTH_AXIS_MAX_DIGITS``); we rely on that and check it.
    """

    def __init__(self, path: Path, spec: FieldSpec):
        self.path, self.spec, self.count = path, spec, 0
        self.file = open(path, "wb")
        self.header_len = self._write_header(0)

    def _write_header(self, rows: int) -> int:
        self.file.seek(0)
        d = {"descr": npy_format.dtype_to_descr(self.spec.dtype), "fortran_order": False, "shape": (rows, *self.spec.shape)}
        npy_format.write_array_header_1_0(self.file, d)
        return self.file.tell()

    def append(self, row: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(row, dtype=self.spec.dtype).tobytes())
        self.count += 1

    def finish(self) -> None:
        end = self.file.tell()
        if self._write_header(self.count) != self.header_len:
            raise RuntimeError(f"{self.path}: .npy header changed size while growing")
        self.file.seek(end)
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()


def _as_row(name: str, value: Any, i: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"sample {i}: field {name!r} has unsupported type {arr.dtype} (numeric arrays only)")
    return arr


def _check_row(name: str, arr: np.ndarray, spec: FieldSpec, i: int) -> None:
    if arr.shape != spec.shape:
        raise ValueError(f"sample {i}: field {name!r} has shape {arr.shape}, earlier samples {spec.shape}")
    if arr.dtype != spec.dtype and not np.can_cast(arr.dtype, spec.dtype, "safe"):
        raise ValueError(f"sample {i}: field {name!r} has dtype {arr.dtype}, earlier samples {spec.dtype}")


def write_cache(
    samples: Iterable[Mapping[str, Any]],
    directory: str | os.PathLike,
    *,
    source: str | os.PathLike | None = None,
    params: Mapping[str, Any] | None = None,
    fingerprint: list | None = None,
) -> CacheInfo:
    """Write ``samples`` (dicts of equally-shaped numeric arrays) as a cache at ``directory``.

    The cache is assembled in a temporary sibling directory and renamed into place, replacing
    whatever was at ``directory``. Field shapes and dtypes are fixed by the first sample; a later
    sample that differs raises ``ValueError`` naming the sample and field.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".tmp-{directory.name}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    writers: dict[str, _NpyAppender] = {}
    try:
        count = 0
        for i, sample in enumerate(samples):
            rows = {k: _as_row(k, v, i) for k, v in sample.items()}
            if i == 0:
                if not rows:
                    raise ValueError("sample 0 has no fields")
                for k, arr in rows.items():
                    if not _FIELD_NAME.match(k):
                        raise ValueError(f"field name {k!r} cannot be a file name (use letters, digits, _ . -)")
                    writers[k] = _NpyAppender(tmp / f"{k}.npy", FieldSpec(arr.dtype, arr.shape))
            elif rows.keys() != writers.keys():
                raise ValueError(f"sample {i} has fields {sorted(rows)}, earlier samples {sorted(writers)}")
            for k, arr in rows.items():
                _check_row(k, arr, writers[k].spec, i)
                writers[k].append(arr)
            count += 1
        if count == 0:
            raise ValueError("no samples to cache")
        for w in writers.values():
            w.finish()
        meta = {
            "format": FORMAT_VERSION,
            "count": count,
            "fields": {k: {"dtype": w.spec.dtype.str, "shape": list(w.spec.shape)} for k, w in writers.items()},
            "source": str(source) if source is not None else None,
            "params": dict(params or {}),
            "fingerprint": fingerprint if fingerprint is not None else [],
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        with open(tmp / "meta.json", "w") as f:
            f.write(json.dumps(meta, indent=1, sort_keys=True))
            f.flush()
            os.fsync(f.fileno())
        _swap_into_place(tmp, directory)
    except BaseException:
        for w in writers.values():
            w.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return open_cache(directory)


def _swap_into_place(tmp: Path, directory: Path) -> None:
    old = None
    if directory.exists():
        old = directory.parent / f".old-{directory.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.replace(directory, old)
    try:
        os.replace(tmp, directory)
    except OSError:
        # another process put a cache there in the meantime: keep theirs if it is valid
        try:
            open_cache(directory)
        except CacheError:
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# -- reading ------------------------------------------------------------------------------
def open_cache(directory: str | os.PathLike) -> CacheInfo:
    """Validate a cache directory and describe it; raises :class:`CacheError` with the reason."""
    directory = Path(directory)
    meta_path = directory / "meta.json"
    if not meta_path.is_file():
        raise CacheError(f"{directory}: no meta.json (the cache was never completed)")
    try:
        meta = json.loads(meta_path.read_text())
        count = int(meta["count"])
        fields = {k: FieldSpec(np.dtype(v["dtype"]), tuple(int(s) for s in v["shape"])) for k, v in meta["fields"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CacheError(f"{meta_path}: unreadable ({exc})") from exc
    if meta.get("format") != FORMAT_VERSION:
        raise CacheError(f"{meta_path}: format {meta.get('format')!r}, expected {FORMAT_VERSION}")
    for name, spec in fields.items():
        path = directory / f"{name}.npy"
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CacheError(f"{path}: unreadable ({exc})") from exc
        if arr.shape != (count, *spec.shape) or arr.dtype != spec.dtype:
            raise CacheError(
                f"{path}: holds {arr.dtype}{list(arr.shape)}, meta.json says {spec.dtype}{[count, *spec.shape]}"
            )
        del arr
    return CacheInfo(directory, count, fields, meta.get("source"), dict(meta.get("params", {})), meta.get("fingerprint", []))


def _remove_dead_temp_dirs(root: Path, dirname: str) -> None:
    host = socket.gethostname()
    for p in root.glob(f".tmp-{dirname}-{host}-*"):
        try:
            pid = int(p.name[len(f".tmp-{dirname}-{host}-") :].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            LOG.info("removing %s, left by an interrupted cache build", p)
            shutil.rmtree(p, ignore_errors=True)
        except (ValueError, PermissionError, IndexError):
            continue


def ensure_cache(
    root: str | os.PathLike,
    source: str | os.PathLike | None,
    params: Mapping[str, Any],
    make_samples: Callable[[], Iterable[Mapping[str, Any]]],
    *,
    name: str | None = None,
) -> CacheInfo:
    """The cache for (``source``, ``params``) under ``root``, built with ``make_samples()`` if
    missing, stale or broken. A valid cache is reused without calling ``make_samples`` (the
    source is only ``stat``-ed, never read).

    Under DDP, call it on rank 0 first (``distributed.main_process_first``) so the others reuse
    the result instead of decoding the bag too.
    """
    root = Path(root)
    key = cache_key(source, params)
    label = _safe_name(name or (Path(source).name if source is not None else "cache"))
    directory = root / f"{label}-{key}"
    fingerprint = source_fingerprint(source) if source is not None else []
    if directory.exists():
        try:
            info = open_cache(directory)
        except CacheError as exc:
            LOG.warning("rebuilding cache: %s", exc)
        else:
            if info.fingerprint == fingerprint:
                return info
            LOG.warning("rebuilding cache %s: %s changed since it was cached", directory, source)
    root.mkdir(parents=True, exist_ok=True)
    _remove_dead_temp_dirs(root, directory.name)
    LOG.info("building cache %s from %s", directory, source if source is not None else "samples")
    return write_cache(make_samples(), directory, source=source, params=params, fingerprint=fingerprint)
