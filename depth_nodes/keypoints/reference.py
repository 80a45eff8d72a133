"""Keypoint reference files: the descriptors of named points on an object, for the tracker node.

A reference file is written by ``depth-train keypoints`` (training side) and loaded by the
keypoint tracker node (runtime side). It is a plain NPZ (no pickle, ``allow_pickle=False`` on
load) holding:

=================  ==============  ===================================================
key                dtype / shape   meaning
=================  ==============  ===================================================
``format``         str             ``"depth_nodes.keypoint_reference/1"``
``descriptors``    float32 (K, D)  descriptor of each keypoint
``pixels``         float32 (K, 2)  ``(u, v)`` of each keypoint in the reference image
``names``          str (K,)        one name per keypoint (unique, non-empty)
``model_sha256``   str             SHA-256 of the descriptor model file that made them
``input_size``     int64 (2,)      ``(H, W)`` the network ran at
``descriptor_dim`` int64 ()        ``D``
``image_size``     int64 (2,)      ``(H, W)`` of the reference image
=================  ==============  ===================================================

Descriptors are only comparable when made by the same network, so :func:`check_reference_model`
refuses a reference made by another model with a message naming both hashes.
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "FORMAT",
    "KeypointReference",
    "ReferenceFileError",
    "save_reference",
    "load_reference",
    "check_reference_model",
]

FORMAT = "depth_nodes.keypoint_reference/1"


class ReferenceFileError(ValueError):
    """A keypoint reference file is missing, malformed, or made with another model."""


@dataclass
class KeypointReference:
    """Reference keypoints: ``descriptors`` (K, D) float32, ``pixels`` (K, 2) float32 ``(u, v)``."""

    descriptors: np.ndarray
    pixels: np.ndarray
    names: list[str]
    model_sha256: str
    input_size: tuple[int, int]
    descriptor_dim: int
    image_size: tuple[int, int]
    extra: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.descriptors = np.asarray(self.descriptors, dtype=np.float32)
        self.pixels = np.asarray(self.pixels, dtype=np.float32)
        self.names = [str(n) for n in self.names]
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        self.descriptor_dim = int(self.descriptor_dim)
        problem = self.problem()
        if problem:
            raise ReferenceFileError(problem)

    @property
    def num_keypoints(self) -> int:
        return int(self.descriptors.shape[0])

    def problem(self) -> str | None:
        """A one-line description of what is inconsistent, or ``None``."""
        d, p = self.descriptors, self.pixels
        if d.ndim != 2 or d.shape[0] < 1:
            return f"descriptors must be (K, D) with K >= 1, got shape {d.shape}"
        k = d.shape[0]
        if d.shape[1] != self.descriptor_dim:
            return f"descriptors have {d.shape[1]} columns but descriptor_dim is {self.descriptor_dim}"
        if p.shape != (k, 2):
            return f"pixels must be ({k}, 2), got shape {p.shape}"
        if len(self.names) != k:
            return f"{len(self.names)} names for {k} keypoints"
        if any(not n for n in self.names) or len(set(self.names)) != k:
            return "keypoint names must be unique and non-empty"
        if not np.all(np.isfinite(d)) or not np.all(np.isfinite(p)):
            return "descriptors and pixels must be finite"
        if min(self.input_size) < 1 or min(self.image_size) < 1:
            return f"input_size {self.input_size} and image_size {self.image_size} must be positive"
        if not self.model_sha256:
            return "model_sha256 is empty"
        return None


def save_reference(path: str | os.PathLike, ref: KeypointReference) -> Path:
    """Write ``ref`` to ``path`` (NPZ, no pickle) atomically: temp file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "format": np.array(FORMAT),
        "descriptors": ref.descriptors.astype(np.float32),
        "pixels": ref.pixels.astype(np.float32),
        "names": np.array(ref.names, dtype=np.str_),
        "model_sha256": np.array(ref.model_sha256),
        "input_size": np.array(ref.input_size, dtype=np.int64),
        "descriptor_dim": np.array(ref.descriptor_dim, dtype=np.int64),
        "image_size": np.array(ref.image_size, dtype=np.int64),
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_reference(path: str | os.PathLike) -> KeypointReference:
    """Read a reference file; any problem raises :class:`ReferenceFileError` naming ``path``."""
    path = Path(path)
    if not path.is_file():
        raise ReferenceFileError(f"{path}: keypoint reference file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ReferenceFileError(f"{path}: not a keypoint reference file (NPZ): {exc}") from None
    fmt = str(data.get("format", ""))
    if fmt != FORMAT:
        raise ReferenceFileError(f"{path}: format is {fmt!r}, expected {FORMAT!r}")
    missing = [k for k in ("descriptors", "pixels", "names", "model_sha256", "input_size",
                           "descriptor_dim", "image_size") if k not in data]
    if missing:
        raise ReferenceFileError(f"{path}: missing field(s) {', '.join(missing)}")
    try:
        return KeypointReference(
            descriptors=data["descriptors"],
            pixels=data["pixels"],
            names=[str(n) for n in np.atleast_1d(data["names"])],
            model_sha256=str(data["model_sha256"]),
            input_size=tuple(int(x) for x in data["input_size"]),
            descriptor_dim=int(data["descriptor_dim"]),
            image_size=tuple(int(x) for x in data["image_size"]),
        )
    except ReferenceFileError as exc:
        raise ReferenceFileError(f"{path}: {exc}") from None
    except (TypeError, ValueError, IndexError) as exc:
        raise ReferenceFileError(f"{path}: malformed field: {exc}") from None


def check_reference_model(ref: KeypointReference, model_sha256: str, descriptor_dim: int,
                          where: str) -> None:
    """Refuse a reference made by another model than the one running.

    ``where`` names the reference (its path) in the message. Raises :class:`ReferenceFileError`.
    """
    if model_sha256 and ref.model_sha256 != model_sha256:
        raise ReferenceFileError(
            f"{where}: keypoints were made with model {ref.model_sha256[:12]}, this node runs model "
            f"{model_sha256[:12]}; re-run depth-train keypoints with this model")
    if int(descriptor_dim) != ref.descriptor_dim:
        raise ReferenceFileError(
            f"{where}: keypoints have {ref.descriptor_dim}-dim descriptors, this node's model gives "
            f"{int(descriptor_dim)}-dim ones")
