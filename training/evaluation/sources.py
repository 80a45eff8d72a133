"""Where evaluation frames (colour image + ground-truth depth) come from.

Three sources, each returning :class:`EvalFrames` for a :class:`~.selection.FrameSelection`:

* :func:`load_bag_frames` - a recording with a colour and a depth topic (``sensor_msgs/Image`` or
  ``CompressedImage``, e.g. an RGB-D camera with depth registered to colour). Colour images are the
  reference stream; each is paired with the depth image nearest in header stamp within
  ``tolerance_s`` (:class:`~depth_training.bags.SyncedSamples`). Depth is decoded to float32
  metres with NaN for "no reading" (``16UC1`` millimetres and ``32FC1`` metres are accepted).
* :func:`load_sim_groundtruth_frames` - a simulator recording's ``NAME.groundtruth.npz``
  (:mod:`depth_training.sim.groundtruth`): depth is its exact ``depth_m`` (wrist camera, no
  sensor holes, no millimetre rounding) or, with ``camera="stereo_left"``, the exact depth of the
  left stereo camera (``stereo_left_depth_m``); the images of that camera are read from the bag
  ``NAME`` next to it (or the bag given), matched to ``stamps_ns`` by exact header stamp.
* :func:`load_generic_npz_frames` - any ``.npz`` with these keys:

  ======================  ==========================  =============================================
  key                     shape, dtype                meaning
  ======================  ==========================  =============================================
  ``rgb``                 ``(N, H, W, 3)`` uint8      colour images, RGB channel order
  ``depth``               ``(N, H, W)`` float         depth in metres; NaN, inf and ``<= 0`` invalid
  ``stamps_ns`` optional  ``(N,)`` int64              stamps, copied into the report
  ======================  ==========================  =============================================

:func:`load_frames_from_npz` tells the two ``.npz`` kinds apart (a simulator file has
``format_version`` and ``depth_m``).

Frames are numbered in stamp order of the colour images (see :mod:`.selection`), so the same
selection names the same frames in a bag and in its ground-truth file. The selected frames are
held in memory (``7 H W`` bytes each: 2.1 MB at 640x480); a bag is read only around them.
Every problem raises :class:`EvalSourceError` (a :class:`~depth_training.cli.UserError`) or a
:class:`~depth_training.bags.BagError` naming the file (and topic) and what is wrong.
"""
from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from depth_training.bags import BagWarning, SyncedSamples, StreamSpec, format_stamp, open_bag
from depth_training.bags.decode import check_image_kind_types
from depth_training.cli import UserError
from depth_training.evaluation.selection import FrameSelection

__all__ = [
    "EvalFrames",
    "EvalSourceError",
    "GENERIC_NPZ_KEYS",
    "check_frame_arrays",
    "load_bag_frames",
    "load_sim_groundtruth_frames",
    "load_generic_npz_frames",
    "load_frames_from_npz",
    "sim_bag_of",
    "SIM_CAMERAS",
    "concatenate_frames",
]

GENERIC_NPZ_KEYS = ("rgb", "depth")
_SIM_KEYS = ("format_version", "depth_m", "stamps_ns")
_SIM_SUFFIX = ".groundtruth.npz"
# simulator camera -> (its depth in the ground-truth file, the topic of its images in the bag)
SIM_CAMERAS = {"color": ("depth_m", "/camera/color/image_raw"),
               "stereo_left": ("stereo_left_depth_m", "/stereo/left/image_rect")}
# extra log time read before/after the selected colour messages, so their partners are in view
_WINDOW_MARGIN_NS = 2_000_000_000


class EvalSourceError(UserError):
    """Evaluation data that cannot be used; the message names the file (and topic) and the problem."""


@dataclass
class EvalFrames:
    """The selected frames of one source.

    Attributes:
        rgb: ``(N, H, W, 3)`` uint8 RGB.
        depth: ``(N, H, W)`` float32 ground-truth depth in metres, NaN where unknown.
        indices: ``(N,)`` int64 frame index of each in the source (see :mod:`.selection`).
        stamps_ns: ``(N,)`` int64 header stamps, or ``None`` when the source has none.
        source: description for the report (kind, path, topics, frame counts, selection).
    """

    rgb: np.ndarray
    depth: np.ndarray
    indices: np.ndarray
    stamps_ns: np.ndarray | None
    source: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.depth.shape[0])


def check_frame_arrays(rgb: np.ndarray, depth: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``rgb (N, H, W, 3) uint8`` and ``depth (N, H, W)`` float; returns ``(rgb, depth float32)``.

    Raises:
        EvalSourceError: naming ``where`` and the offending shape or dtype.
    """
    rgb, depth = np.asarray(rgb), np.asarray(depth)
    if rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise EvalSourceError(f"{where}: rgb must be (N, H, W, 3), got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise EvalSourceError(f"{where}: rgb must be uint8, got {rgb.dtype}")
    if depth.ndim != 3:
        raise EvalSourceError(f"{where}: depth must be (N, H, W) metres, got shape {depth.shape}")
    if not np.issubdtype(depth.dtype, np.floating):
        raise EvalSourceError(f"{where}: depth must be float metres, got {depth.dtype}")
    if depth.shape != rgb.shape[:3]:
        raise EvalSourceError(f"{where}: rgb {rgb.shape} and depth {depth.shape} do not match: need the same "
                              f"number of frames and the same height and width (depth registered to colour)")
    return rgb, depth.astype(np.float32, copy=False)


def _empty_selection(where: str, n: int, selection: FrameSelection) -> EvalSourceError:
    return EvalSourceError(f"{where}: the frame selection {selection.text()} leaves no frame of {n}")


# ---------------------------------------------------------------------------------------------- bags
def _reference_stamps(bag, topic: str) -> tuple[np.ndarray, np.ndarray]:
    """``(stamps_ns, log_ns)`` of ``topic``'s messages, sorted by stamp, duplicates dropped (first kept).

    Reads only the serialised headers (no image decoding).
    """
    pairs = [(bag.header_stamp_ns(raw), raw.log_ns) for raw in bag.raw_messages([topic])]
    if not pairs:
        raise EvalSourceError(f"{bag.name}: {topic}: no messages recorded")
    arr = np.array(pairs, dtype=np.int64)
    stamps, first = np.unique(arr[:, 0], return_index=True)
    return stamps, arr[first, 1]


def _read_samples(bag, streams: list[StreamSpec], wanted: np.ndarray, log_ns: np.ndarray,
                  tolerance_s: float) -> dict[int, object]:
    """Synced samples whose reference stamp is in ``wanted`` -> ``{stamp: SyncedSample}``.

    Only the log-time window around the wanted reference messages is read. Warnings about frames
    outside the selection are not the user's concern and are dropped; missing partners of selected
    frames are reported by the caller.
    """
    wanted_set = set(int(s) for s in wanted)
    start, stop = int(log_ns.min()) - _WINDOW_MARGIN_NS, int(log_ns.max()) + _WINDOW_MARGIN_NS + 1
    samples = SyncedSamples(bag, streams, tolerance_s=tolerance_s, start_ns=max(start, 0), stop_ns=stop)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BagWarning)
        for sample in samples:
            if sample.stamp_ns in wanted_set:
                out[sample.stamp_ns] = sample
    return out


def load_bag_frames(path: str | Path, color_topic: str, depth_topic: str, selection: FrameSelection, *,
                    color_info: str | None = None, tolerance_s: float = 0.015) -> EvalFrames:
    """Colour + depth frames from a bag (see module docstring).

    Args:
        color_info: optional camera_info topic of the colour camera; image sizes are checked against it.
        tolerance_s: largest ``|stamp(depth) - stamp(colour)|`` of a pair.

    Selected colour frames without a depth partner are left out (counted in ``source["unmatched"]``
    and warned about); none matched, or images of different sizes, raise :class:`EvalSourceError`.
    """
    with open_bag(path) as bag:
        check_image_kind_types(bag, color_topic, "color")
        check_image_kind_types(bag, depth_topic, "depth")
        stamps, log_ns = _reference_stamps(bag, color_topic)
        idx = selection.indices(len(stamps))
        if not len(idx):
            raise _empty_selection(f"{bag.name}: {color_topic}", len(stamps), selection)
        streams = [StreamSpec("color", color_topic, "color", color_info), StreamSpec("depth", depth_topic, "depth")]
        got = _read_samples(bag, streams, stamps[idx], log_ns[idx], tolerance_s)
        keep = [int(i) for i in idx if int(stamps[i]) in got]
        if not keep:
            raise EvalSourceError(f"{bag.name}: {depth_topic}: no depth image within {tolerance_s} s of any of the "
                                  f"{len(idx)} selected colour images on {color_topic}")
        rgb = [got[int(stamps[i])]["color"].image for i in keep]
        depth = [got[int(stamps[i])]["depth"].image for i in keep]
        for i, c, d in zip(keep, rgb, depth):
            if c.shape[:2] != d.shape or c.shape[:2] != rgb[0].shape[:2]:
                raise EvalSourceError(
                    f"{bag.name}: frame {i} at {format_stamp(int(stamps[i]))}: colour ({color_topic}) is "
                    f"{c.shape[1]}x{c.shape[0]}, depth ({depth_topic}) is {d.shape[1]}x{d.shape[0]}, first colour "
                    f"image {rgb[0].shape[1]}x{rgb[0].shape[0]}: evaluation needs depth registered to colour, "
                    f"one image size")
        unmatched = len(idx) - len(keep)
        if unmatched:
            warnings.warn(BagWarning(f"{bag.name}: {depth_topic}: {unmatched} of the {len(idx)} selected colour "
                                     f"images have no depth image within {tolerance_s} s; they are not evaluated"),
                          stacklevel=2)
        source = {"kind": "bag", "path": str(path), "color_topic": color_topic, "depth_topic": depth_topic,
                  "color_info": color_info, "tolerance_s": tolerance_s, "frames_total": int(len(stamps)),
                  "frames_selected": int(len(idx)), "unmatched": int(unmatched), "selection": selection.describe()}
        keep_arr = np.array(keep, dtype=np.int64)
        return EvalFrames(np.stack(rgb), np.stack(depth).astype(np.float32), keep_arr, stamps[keep_arr], source)


# ------------------------------------------------------------------------------------------ npz files
def sim_bag_of(groundtruth_path: str | Path) -> Path:
    """The bag next to a simulator ground-truth file: ``DIR/NAME.groundtruth.npz`` -> ``DIR/NAME``."""
    p = Path(groundtruth_path)
    if not p.name.endswith(_SIM_SUFFIX):
        raise EvalSourceError(f"{p}: a simulator ground-truth file is named NAME{_SIM_SUFFIX}; give its bag with --bag")
    return p.with_name(p.name[: -len(_SIM_SUFFIX)])


def load_sim_groundtruth_frames(path: str | Path, selection: FrameSelection, *, bag: str | Path | None = None,
                                color_topic: str | None = None, color_info: str | None = None,
                                camera: str = "color") -> EvalFrames:
    """Exact ground-truth depth of ``camera`` (:data:`SIM_CAMERAS`) from a simulator
    ``.groundtruth.npz``, its images from the bag (``color_topic``, default the camera's topic)."""
    from depth_training.sim.groundtruth import GroundTruthError, load_groundtruth

    if camera not in SIM_CAMERAS:
        raise EvalSourceError(f"{path}: unknown simulator camera {camera!r}; choose from {', '.join(SIM_CAMERAS)}")
    depth_key, default_topic = SIM_CAMERAS[camera]
    color_topic = color_topic or default_topic

    try:
        gt = load_groundtruth(path)
    except GroundTruthError as exc:
        raise EvalSourceError(str(exc)) from None
    bag_path = Path(bag) if bag is not None else sim_bag_of(path)
    if not bag_path.exists():
        raise EvalSourceError(f"{path}: holds no colour images and its bag {bag_path} does not exist (give --bag)")
    idx = selection.indices(gt.num_frames)
    if not len(idx):
        raise _empty_selection(str(path), gt.num_frames, selection)
    wanted = gt.stamps_ns[idx]
    with open_bag(bag_path) as b:
        check_image_kind_types(b, color_topic, "color")
        stamps, log_ns = _reference_stamps(b, color_topic)
        pos = np.searchsorted(stamps, wanted)
        found = (pos < len(stamps)) & (stamps[np.minimum(pos, len(stamps) - 1)] == wanted)
        if not found.all():
            missing = int(wanted[~found][0])
            raise EvalSourceError(f"{b.name}: {color_topic}: no colour image stamped {format_stamp(missing)} "
                                  f"(frame {int(idx[~found][0])} of {path}); is this the bag of that ground truth?")
        got = _read_samples(b, [StreamSpec("color", color_topic, "color", color_info)], wanted, log_ns[pos],
                            tolerance_s=0.0)
    rgb = np.stack([got[int(s)]["color"].image for s in wanted])
    where = f"{path} + {bag_path}: {color_topic}"
    rgb, depth = check_frame_arrays(rgb, getattr(gt, depth_key)[idx], where)
    source = {"kind": "sim_groundtruth", "path": str(path), "bag": str(bag_path), "camera": camera,
              "depth_key": depth_key, "color_topic": color_topic,
              "color_info": color_info, "frames_total": gt.num_frames, "frames_selected": int(len(idx)),
              "unmatched": 0, "selection": selection.describe()}
    return EvalFrames(rgb, depth, idx, wanted.astype(np.int64), source)


def _npz_keys(path: Path) -> list[str]:
    if not path.is_file():
        raise EvalSourceError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return list(npz.files)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise EvalSourceError(f"{path}: not a readable .npz file ({exc})") from None


def load_generic_npz_frames(path: str | Path, selection: FrameSelection) -> EvalFrames:
    """Frames from an ``.npz`` with ``rgb``, ``depth`` (and optional ``stamps_ns``), see module docstring."""
    path = Path(path)
    keys = _npz_keys(path)
    missing = [k for k in GENERIC_NPZ_KEYS if k not in keys]
    if missing:
        raise EvalSourceError(f"{path}: missing key(s) {', '.join(missing)} (has {', '.join(keys) or 'none'}); "
                              f"expected rgb (N,H,W,3) uint8 and depth (N,H,W) float metres")
    try:
        with np.load(path, allow_pickle=False) as npz:
            rgb_raw, depth_raw = npz["rgb"], npz["depth"]
            stamps = npz["stamps_ns"].astype(np.int64) if "stamps_ns" in keys else None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:  # object arrays need pickle: refused
        raise EvalSourceError(f"{path}: not a readable .npz file ({exc})") from None
    rgb, depth = check_frame_arrays(rgb_raw, depth_raw, str(path))
    if stamps is not None and stamps.shape != (rgb.shape[0],):
        raise EvalSourceError(f"{path}: stamps_ns has shape {stamps.shape}, expected ({rgb.shape[0]},)")
    idx = selection.indices(rgb.shape[0])
    if not len(idx):
        raise _empty_selection(str(path), rgb.shape[0], selection)
    source = {"kind": "npz", "path": str(path), "frames_total": int(rgb.shape[0]), "frames_selected": int(len(idx)),
              "unmatched": 0, "selection": selection.describe()}
    return EvalFrames(rgb[idx], depth[idx], idx, None if stamps is None else stamps[idx], source)


def load_frames_from_npz(path: str | Path, selection: FrameSelection, *, bag: str | Path | None = None,
                         color_topic: str | None = None, color_info: str | None = None,
                         camera: str | None = None) -> EvalFrames:
    """A simulator ``.groundtruth.npz`` (images of ``camera`` from ``bag``) or a generic ``.npz``, told
    apart by their keys."""
    path = Path(path)
    keys = _npz_keys(path)
    if all(k in keys for k in _SIM_KEYS):
        return load_sim_groundtruth_frames(path, selection, bag=bag, color_topic=color_topic, color_info=color_info,
                                           camera=camera or "color")
    if camera is not None:
        raise EvalSourceError(f"{path}: not a simulator ground-truth file (no {', '.join(_SIM_KEYS)}); "
                              f"--sim-camera only applies to those")
    if bag is not None:
        raise EvalSourceError(f"{path}: not a simulator ground-truth file (no {', '.join(_SIM_KEYS)}); a generic "
                              f".npz carries its own rgb images, so --bag is not used with it")
    return load_generic_npz_frames(path, selection)


def concatenate_frames(parts: list[EvalFrames]) -> EvalFrames:
    """Several sources evaluated as one set (e.g. the held-out recordings of a test set).

    Frames keep their order (source by source); all must have the same image size. The
    ``source`` is ``{"kind": "multiple", "sources": [...], "path": "a, b", ...}`` with the frame
    counts summed and each part's own description (and indices) in ``sources``.
    """
    if len(parts) == 1:
        return parts[0]
    shape = parts[0].depth.shape[1:]
    for part in parts[1:]:
        if part.depth.shape[1:] != shape:
            raise EvalSourceError(
                f"{part.source.get('path')}: frames are {part.depth.shape[2]}x{part.depth.shape[1]} but those of "
                f"{parts[0].source.get('path')} are {shape[1]}x{shape[0]}: evaluate them separately")
    stamps = None if any(p.stamps_ns is None for p in parts) else np.concatenate([p.stamps_ns for p in parts])
    source = {"kind": "multiple", "path": ", ".join(str(p.source.get("path")) for p in parts),
              "frames_total": sum(int(p.source.get("frames_total", len(p))) for p in parts),
              "frames_selected": sum(int(p.source.get("frames_selected", len(p))) for p in parts),
              "unmatched": sum(int(p.source.get("unmatched", 0)) for p in parts),
              "sources": [{**p.source, "frames_evaluated": len(p), "indices": p.indices.tolist()} for p in parts]}
    return EvalFrames(np.concatenate([p.rgb for p in parts]), np.concatenate([p.depth for p in parts]),
                      np.concatenate([p.indices for p in parts]), stamps, source)
