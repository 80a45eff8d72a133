"""Folders of real images with ground truth, described by a small manifest (``depth-train eval --images``).

A folder holds colour images and, for each, a ground-truth depth or stereo-disparity image
registered to it. A manifest (YAML or JSON; ``manifest.yaml``/``.yml``/``.json`` inside the folder,
or a file given with ``--manifest``, e.g. ``config/real_eval/*.yaml`` for the shared real frames)
says how to read them::

    format: depth_nodes.real_eval/1
    name: tum_fr1_desk
    ground_truth:
      kind: depth          # depth: metres = value * scale | disparity: pixels = value * scale
      scale: 0.0002        # stored value -> metres (depth) or pixels (disparity); 0 / NaN = unknown
      focal_baseline: 1.0  # disparity only: depth = focal_baseline / d (fx * B in pixel metres;
                           # default 1: depth in units of fx * B, enough for scale-invariant metrics)
    intrinsics: {fx: 520.9, fy: 521.0, cx: 325.1, cy: 249.7}   # optional, checked against the images
    min_depth: 0.1         # optional evaluation range (ground truth outside it is not evaluated,
    max_depth: 10.0        #   aligned predictions are clamped to it); default 1e-3 .. 10
    frames:
      - {color: 1_color.png, gt: 1_depth.png}          # paths relative to the image folder
      - {name: desk2, color: 2_color.png, gt: 2_depth.png}

Colour: any 8-bit image OpenCV reads (grey or BGR(A) files -> RGB). Ground truth: a 16-bit or
8-bit PNG/TIFF, a float image, or an ``.npy`` array ``(H, W)`` (read without pickle). Disparity
ground truth becomes depth ``focal_baseline / (scale * value)``, so aligning the prediction in
inverse depth is aligning it in disparity space (the MiDaS protocol for disparity benchmarks).

Public API:
    MANIFEST_FORMAT, MANIFEST_NAMES
    RealFrame(name, rgb (H,W,3) uint8, depth (H,W) float32 NaN = unknown, ...)
    RealSet(name, root, manifest, kind, frames, min_depth, max_depth, intrinsics)
    find_manifest(folder) -> Path
    read_manifest(path) -> dict
    load_real_set(folder, manifest=None) -> RealSet
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np

from depth_nodes.structured_files import read_yaml_or_json
from depth_training.evaluation.sources import EvalSourceError

__all__ = ["MANIFEST_FORMAT", "MANIFEST_NAMES", "GT_KINDS", "RealFrame", "RealSet", "find_manifest", "read_manifest",
           "load_real_set", "gt_to_depth"]

MANIFEST_FORMAT = "depth_nodes.real_eval/1"
MANIFEST_NAMES = ("manifest.yaml", "manifest.yml", "manifest.json")
GT_KINDS = ("depth", "disparity")
_TOP_KEYS = {"format", "name", "description", "ground_truth", "intrinsics", "min_depth", "max_depth", "frames"}
_GT_KEYS = {"kind", "scale", "focal_baseline"}
_FRAME_KEYS = {"name", "color", "gt"}
DEFAULT_MIN_DEPTH, DEFAULT_MAX_DEPTH = 1e-3, 10.0


@dataclass
class RealFrame:
    """One evaluation frame: ``rgb`` ``(H, W, 3)`` uint8 RGB, ``depth`` ``(H, W)`` float32 (NaN = unknown)."""

    name: str
    rgb: np.ndarray
    depth: np.ndarray
    color_path: str
    gt_path: str


@dataclass
class RealSet:
    """The frames of one folder and how to evaluate them (see module docstring)."""

    name: str
    root: str
    manifest: str
    kind: str
    frames: list[RealFrame]
    min_depth: float
    max_depth: float
    intrinsics: dict | None = None
    ground_truth: dict = field(default_factory=dict)

    def describe(self) -> dict:
        """JSON-ready description for the report (no pixel data)."""
        return {"name": self.name, "root": self.root, "manifest": self.manifest, "ground_truth": self.ground_truth,
                "intrinsics": self.intrinsics, "min_depth": self.min_depth, "max_depth": self.max_depth,
                "frames": [{"name": f.name, "color": f.color_path, "gt": f.gt_path,
                            "height": int(f.depth.shape[0]), "width": int(f.depth.shape[1])} for f in self.frames]}


def find_manifest(folder: str | Path) -> Path:
    """The manifest inside ``folder`` (first of :data:`MANIFEST_NAMES`); :class:`EvalSourceError` if none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvalSourceError(f"{folder}: no such image folder")
    for name in MANIFEST_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise EvalSourceError(f"{folder}: no manifest ({', '.join(MANIFEST_NAMES)}) in the folder; write one or "
                          f"give it with --manifest (format: depth-train eval --help)")


def read_manifest(path: str | Path) -> dict:
    """Parse a manifest file (YAML or JSON by suffix) into a mapping; errors name the file."""
    path = Path(path)
    doc = read_yaml_or_json(path, EvalSourceError, default="yaml", what="manifest")
    if not isinstance(doc, Mapping):
        raise EvalSourceError(f"{path}: a manifest is a mapping, found {type(doc).__name__}")
    return dict(doc)


def _number(value: Any, where: str, key: str, positive: bool = True) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise EvalSourceError(f"{where}: {key} must be a number, got {value!r}") from None
    if not math.isfinite(out) or (positive and out <= 0):
        raise EvalSourceError(f"{where}: {key} must be a {'positive ' if positive else ''}finite number, got {value!r}")
    return out


def _check_keys(where: str, what: str, doc: Mapping, known: set[str]) -> None:
    unknown = sorted(set(doc) - known)
    if unknown:
        raise EvalSourceError(f"{where}: unknown {what} key(s) {unknown} (known: {sorted(known)})")


def _read_color(path: Path) -> np.ndarray:
    if not path.is_file():
        raise EvalSourceError(f"{path}: no such colour image")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise EvalSourceError(f"{path}: not an image OpenCV can read")
    if img.dtype != np.uint8:
        raise EvalSourceError(f"{path}: colour images must be 8-bit, got {img.dtype}")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    code = {3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}.get(img.shape[2])
    if code is None:
        raise EvalSourceError(f"{path}: colour image with {img.shape[2]} channels")
    return cv2.cvtColor(img, code)


def _read_gt(path: Path) -> np.ndarray:
    if not path.is_file():
        raise EvalSourceError(f"{path}: no such ground-truth file")
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise EvalSourceError(f"{path}: not a readable .npy array ({exc})") from None
    else:
        arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise EvalSourceError(f"{path}: not an image OpenCV can read")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise EvalSourceError(f"{path}: ground truth must be one channel of numbers (H, W), got {arr.shape} {arr.dtype}")
    return arr


def gt_to_depth(raw: np.ndarray, kind: str, scale: float, focal_baseline: float = 1.0) -> np.ndarray:
    """Stored ground truth ``(H, W)`` -> depth ``(H, W)`` float32, NaN where unknown.

    ``depth``: ``z = scale * v``; ``disparity``: ``d = scale * v``, ``z = focal_baseline / d``.
    Unknown: ``v`` not finite or ``<= 0``.
    """
    v = np.asarray(raw, dtype=np.float64) * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        valid = np.isfinite(v) & (v > 0)
        z = np.where(valid, v if kind == "depth" else focal_baseline / np.where(valid, v, 1.0), np.nan)
    return z.astype(np.float32)


def _intrinsics(doc: Any, where: str) -> dict | None:
    if doc is None:
        return None
    if not isinstance(doc, Mapping) or set(doc) != {"fx", "fy", "cx", "cy"}:
        raise EvalSourceError(f"{where}: intrinsics must be a mapping with fx, fy, cx, cy, got {doc!r}")
    return {k: _number(doc[k], where, f"intrinsics.{k}", positive=k in ("fx", "fy")) for k in ("fx", "fy", "cx", "cy")}


def load_real_set(folder: str | Path, manifest: str | Path | None = None) -> RealSet:
    """Read every frame a manifest lists (see module docstring).

    Args:
        folder: the image folder (frame paths are relative to it).
        manifest: the manifest file; default :func:`find_manifest` of ``folder``.

    Raises:
        EvalSourceError: naming the manifest or image file and the problem (unknown keys, missing
            files, colour and ground truth of different sizes, principal point outside the image).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise EvalSourceError(f"{folder}: no such image folder")
    path = Path(manifest) if manifest is not None else find_manifest(folder)
    where = str(path)
    doc = read_manifest(path)
    if doc.get("format") != MANIFEST_FORMAT:
        raise EvalSourceError(f"{where}: format must be {MANIFEST_FORMAT!r}, got {doc.get('format')!r}")
    _check_keys(where, "manifest", doc, _TOP_KEYS)
    gt = doc.get("ground_truth")
    if not isinstance(gt, Mapping):
        raise EvalSourceError(f"{where}: needs a ground_truth mapping (kind, scale)")
    _check_keys(where, "ground_truth", gt, _GT_KEYS)
    kind = gt.get("kind")
    if kind not in GT_KINDS:
        raise EvalSourceError(f"{where}: ground_truth.kind must be one of {GT_KINDS}, got {kind!r}")
    scale = _number(gt.get("scale", 1.0), where, "ground_truth.scale")
    if "focal_baseline" in gt and kind != "disparity":
        raise EvalSourceError(f"{where}: ground_truth.focal_baseline only applies to kind disparity")
    focal_baseline = _number(gt.get("focal_baseline", 1.0), where, "ground_truth.focal_baseline")
    min_depth = _number(doc.get("min_depth", DEFAULT_MIN_DEPTH), where, "min_depth")
    max_depth = _number(doc.get("max_depth", DEFAULT_MAX_DEPTH), where, "max_depth")
    if not min_depth < max_depth:
        raise EvalSourceError(f"{where}: need min_depth < max_depth, got {min_depth}, {max_depth}")
    intrinsics = _intrinsics(doc.get("intrinsics"), where)
    entries = doc.get("frames")
    if not isinstance(entries, list) or not entries:
        raise EvalSourceError(f"{where}: frames must be a non-empty list of {{color: FILE, gt: FILE}}")
    frames = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or "color" not in entry or "gt" not in entry:
            raise EvalSourceError(f"{where}: frames[{i}] must be a mapping with color and gt, got {entry!r}")
        _check_keys(f"{where}: frames[{i}]", "frame", entry, _FRAME_KEYS)
        color_path, gt_path = folder / str(entry["color"]), folder / str(entry["gt"])
        rgb, raw = _read_color(color_path), _read_gt(gt_path)
        if rgb.shape[:2] != raw.shape:
            raise EvalSourceError(f"{gt_path}: ground truth is {raw.shape[1]}x{raw.shape[0]} but {color_path} is "
                                  f"{rgb.shape[1]}x{rgb.shape[0]}: it must be registered to the colour image")
        if intrinsics is not None and not (0 <= intrinsics["cx"] < rgb.shape[1] and 0 <= intrinsics["cy"] < rgb.shape[0]):
            raise EvalSourceError(f"{where}: principal point ({intrinsics['cx']}, {intrinsics['cy']}) lies outside "
                                  f"the {rgb.shape[1]}x{rgb.shape[0]} image {color_path}")
        name = str(entry.get("name") or Path(str(entry["color"])).stem)
        frames.append(RealFrame(name, rgb, gt_to_depth(raw, kind, scale, focal_baseline), str(color_path),
                                str(gt_path)))
    set_name = str(doc.get("name") or folder.name)
    return RealSet(set_name, str(folder), where, kind, frames, min_depth, max_depth, intrinsics,
                   {"kind": kind, "scale": scale, **({"focal_baseline": focal_baseline} if kind == "disparity" else {})})
