"""Ground-truth sidecar of a simulated recording: ``<bag>.groundtruth.npz`` next to the bag directory.

The file holds what no real bag has, so training code that reads only the bag cannot depend on it.
It is a standard ``.npz`` (a zip of ``.npy`` arrays, no pickles); load it with
:func:`load_groundtruth`. ``N`` images (colour, depth and both stereo images share the same stamps),
``M`` joint-state samples, ``K`` objects (static objects first, then the distractor if any),
images ``H x W`` (colour and stereo cameras have the same size).

=====================================  ============  =====================================================
key                                    shape, dtype  meaning
=====================================  ============  =====================================================
format_version                         (), int64     1
seed                                   (), int64     episode seed
stamps_ns                              (N,) int64    header stamps of the image messages
T_world_color_optical                  (N,4,4) f64   pose of ``camera_color_optical_frame`` (REP 103)
T_world_stereo_left_optical            (4,4) f64     fixed; ``stereo_left_optical_frame``
T_world_stereo_right_optical           (4,4) f64     fixed; = left @ translate(baseline, 0, 0)
T_world_base                           (4,4) f64     fixed; ``base_link``
depth_m                                (N,H,W) f32   exact optical-z depth of the colour camera (NaN: no surface)
stereo_left_depth_m                    (N,H,W) f32   exact depth of the left stereo camera
object_ids                             (N,H,W) i16   object label per colour pixel, 0 = background/robot
joint_names                            (6,) str      ``joint1`` .. ``joint6``
joint_positions                        (N,6) f64     joint positions at the image stamps (rad)
joint_stamps_ns                        (M,) int64    header stamps of ``/joint_states`` and ``/tf``
joint_state_positions                  (M,6) f64     positions published on ``/joint_states``
T_world_color_optical_at_joint_stamps  (M,4,4) f64   colour camera pose at the joint-state stamps
K_color, K_stereo                      (3,3) f64     pinhole intrinsics (pixel-centre convention, see camera_model)
baseline_m                             (), f64       stereo baseline
width, height                          (), int64     image size
object_labels                          (K,) int16    label of each object in ``object_ids``
object_names, object_shapes            (K,) str      e.g. ``object2_box``; MuJoCo geom type
object_sizes                           (K,3) f64     MuJoCo geom ``size`` (unused entries NaN)
object_is_distractor                   (K,) bool     True for the moving distractor
object_poses                           (N,K,4,4) f64 ``T_world_object`` at the image stamps
depth_sensor                           (5,) f64      min_range_m, max_range_m, edge_rel_threshold, edge_dilate_px, dropout
=====================================  ============  =====================================================
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
# Keys a writer may add next to the fields of GroundTruth (readers ignore them): ``variety_json``, the
# JSON summary of a varied episode (:meth:`.variety.Variety.summary`).
OPTIONAL_KEYS = frozenset({"variety_json"})


class GroundTruthError(ValueError):
    """The sidecar is missing, unreadable or inconsistent; the message names the file and the key."""


@dataclass
class GroundTruth:
    """The sidecar's arrays (see the module docstring for shapes and meaning)."""

    format_version: int
    seed: int
    stamps_ns: np.ndarray
    T_world_color_optical: np.ndarray
    T_world_stereo_left_optical: np.ndarray
    T_world_stereo_right_optical: np.ndarray
    T_world_base: np.ndarray
    depth_m: np.ndarray
    stereo_left_depth_m: np.ndarray
    object_ids: np.ndarray
    joint_names: np.ndarray
    joint_positions: np.ndarray
    joint_stamps_ns: np.ndarray
    joint_state_positions: np.ndarray
    T_world_color_optical_at_joint_stamps: np.ndarray
    K_color: np.ndarray
    K_stereo: np.ndarray
    baseline_m: float
    width: int
    height: int
    object_labels: np.ndarray
    object_names: np.ndarray
    object_shapes: np.ndarray
    object_sizes: np.ndarray
    object_is_distractor: np.ndarray
    object_poses: np.ndarray
    depth_sensor: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.stamps_ns.shape[0])


_SCALARS = {"format_version": int, "seed": int, "baseline_m": float, "width": int, "height": int}


def _expected_shapes(n: int, m: int, k: int, h: int, w: int) -> dict[str, tuple[int, ...]]:
    return {
        "stamps_ns": (n,), "T_world_color_optical": (n, 4, 4), "T_world_stereo_left_optical": (4, 4),
        "T_world_stereo_right_optical": (4, 4), "T_world_base": (4, 4), "depth_m": (n, h, w),
        "stereo_left_depth_m": (n, h, w), "object_ids": (n, h, w), "joint_names": (6,), "joint_positions": (n, 6),
        "joint_stamps_ns": (m,), "joint_state_positions": (m, 6), "T_world_color_optical_at_joint_stamps": (m, 4, 4),
        "K_color": (3, 3), "K_stereo": (3, 3), "object_labels": (k,), "object_names": (k,), "object_shapes": (k,),
        "object_sizes": (k, 3), "object_is_distractor": (k,), "object_poses": (n, k, 4, 4), "depth_sensor": (5,),
    }


def load_groundtruth(path) -> GroundTruth:
    """Read and check a ``<bag>.groundtruth.npz``; raises :class:`GroundTruthError` naming file and key."""
    path = Path(path)
    if not path.is_file():
        raise GroundTruthError(f"{path}: ground-truth file not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise GroundTruthError(f"{path}: not a readable .npz file ({exc})") from exc
    names = [f.name for f in fields(GroundTruth)]
    missing = [name for name in names if name not in arrays]
    if missing:
        raise GroundTruthError(f"{path}: missing key(s) {', '.join(missing)}")
    version = int(arrays["format_version"])
    if version != FORMAT_VERSION:
        raise GroundTruthError(f"{path}: format_version {version} is not supported (expected {FORMAT_VERSION})")
    values = {name: (_SCALARS[name](arrays[name]) if name in _SCALARS else arrays[name]) for name in names}
    n, m = values["stamps_ns"].shape[0], values["joint_stamps_ns"].shape[0]
    k = values["object_labels"].shape[0]
    for name, shape in _expected_shapes(n, m, k, values["height"], values["width"]).items():
        if values[name].shape != shape:
            raise GroundTruthError(f"{path}: key {name} has shape {values[name].shape}, expected {shape}")
    if n and np.any(np.diff(values["stamps_ns"]) <= 0):
        raise GroundTruthError(f"{path}: key stamps_ns is not strictly increasing")
    return GroundTruth(**values)


class GroundTruthWriter:
    """Collects the per-frame arrays in memory-mapped temporaries (bounded RAM), then writes the
    ``.npz`` atomically (temp file + rename) in :meth:`finish`. :meth:`abort` removes everything."""

    def __init__(self, path, n_frames: int, height: int, width: int, n_objects: int) -> None:
        self.path = Path(path)
        self._tmpdir = tempfile.TemporaryDirectory(prefix=".gt-", dir=self.path.parent)
        d = Path(self._tmpdir.name)

        def mm(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
            return np.lib.format.open_memmap(d / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)

        self.frames = {
            "depth_m": mm("depth_m", (n_frames, height, width), np.float32),
            "stereo_left_depth_m": mm("stereo_left_depth_m", (n_frames, height, width), np.float32),
            "object_ids": mm("object_ids", (n_frames, height, width), np.int16),
        }
        self.small = {
            "stamps_ns": np.zeros(n_frames, dtype=np.int64),
            "T_world_color_optical": np.zeros((n_frames, 4, 4)),
            "joint_positions": np.zeros((n_frames, 6)),
            "object_poses": np.zeros((n_frames, n_objects, 4, 4)),
        }

    def set_frame(self, i: int, *, stamp_ns: int, T_world_color_optical, depth_m, stereo_left_depth_m, object_ids,
                  joint_positions, object_poses) -> None:
        """Store frame ``i``'s arrays (shapes as in the module docstring, without the N axis)."""
        self.small["stamps_ns"][i] = stamp_ns
        self.small["T_world_color_optical"][i] = T_world_color_optical
        self.small["joint_positions"][i] = joint_positions
        self.small["object_poses"][i] = object_poses
        self.frames["depth_m"][i] = depth_m
        self.frames["stereo_left_depth_m"][i] = stereo_left_depth_m
        self.frames["object_ids"][i] = object_ids

    def finish(self, **static) -> Path:
        """Write all arrays plus ``static`` (the remaining keys) and return the file path."""
        arrays = {**self.small, **self.frames, "format_version": np.int64(FORMAT_VERSION), **static}
        names = {f.name for f in fields(GroundTruth)}
        if not names <= set(arrays) <= names | OPTIONAL_KEYS:
            raise ValueError(f"GroundTruthWriter.finish: keys missing {sorted(names - set(arrays))}, "
                             f"unknown {sorted(set(arrays) - names - OPTIONAL_KEYS)}")
        fd, tmp = tempfile.mkstemp(prefix=".gt-", suffix=".npz.part", dir=self.path.parent)
        os.close(fd)
        try:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
                for name, value in arrays.items():
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                        np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            self.abort()
        return self.path

    def abort(self) -> None:
        """Drop the temporaries (idempotent)."""
        for arr in self.frames.values():
            if hasattr(arr, "_mmap") and arr._mmap is not None:
                arr._mmap.close()
        self.frames = {}
        self._tmpdir.cleanup()
