"""Dense descriptors on real image pairs related by a known homography (HPatches layout).

A sequence folder holds ``1.png`` .. ``N.png`` (or ``.ppm``/``.jpg``) and ``H_1_k`` (3x3 text): the
homography taking pixel coordinates of image 1 to image ``k``. Each image is resized to a network
size (longer side ``max_side``, both sides multiples of 32, separate x and y factors) and the
homography is carried along in the pixel-centre convention:

    S = [[s_x, 0, (s_x - 1) / 2], [0, s_y, (s_y - 1) / 2], [0, 0, 1]]    (x' + 0.5 = s_x (x + 0.5))
    H'_1k = S_k  H_1k  S_1^-1

Query pixels are FAST corners of image 1 (strongest first, at least ``min_separation`` apart) whose
true position in image ``k`` lies inside it. For every method, each query's descriptor is compared
with the descriptor of **every** pixel of image ``k`` (:func:`.descriptors.best_match`) and

    error = | uv(argmin_b |d_1(q) - d_k(b)|) - H'_1k(q) |      (pixels of the resized image k)

reported as the median and PCK@1/3/5/10 per pair, over the same query pixels for every method.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .descriptors import Describer, best_match, pck_summary

__all__ = ["HomographyPair", "HomographyError", "load_sequence", "scale_matrix", "query_pixels", "apply_homography",
           "evaluate_pairs", "format_pairs_table", "PAIR_THRESHOLDS"]

PAIR_THRESHOLDS = (1, 3, 5, 10)
_EXTS = (".png", ".ppm", ".jpg", ".jpeg")


class HomographyError(ValueError):
    """A sequence folder that cannot be read; the message names the file and the problem."""


@dataclass
class HomographyPair:
    """Images 1 and ``k`` (RGB uint8, network size) and ``H`` (3x3, resized pixels of 1 -> of k)."""

    name: str
    image_a: np.ndarray
    image_b: np.ndarray
    H: np.ndarray


def scale_matrix(sx: float, sy: float) -> np.ndarray:
    """Pixel-centre resize as a homography: ``x' = s_x (x + 0.5) - 0.5`` (module docstring)."""
    return np.array([[sx, 0.0, 0.5 * (sx - 1.0)], [0.0, sy, 0.5 * (sy - 1.0)], [0.0, 0.0, 1.0]])


def _network_size(h: int, w: int, max_side: int, multiple: int = 32) -> tuple[int, int]:
    s = min(1.0, max_side / max(h, w))
    return (max(multiple, int(round(h * s / multiple)) * multiple),
            max(multiple, int(round(w * s / multiple)) * multiple))


def _read_image(path: Path, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise HomographyError(f"{path}: not a readable image")
    h, w = bgr.shape[:2]
    nh, nw = _network_size(h, w, max_side)
    rgb = cv2.cvtColor(cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return rgb, scale_matrix(nw / w, nh / h)


def _find_image(folder: Path, index: int) -> Path:
    for ext in _EXTS:
        if (folder / f"{index}{ext}").is_file():
            return folder / f"{index}{ext}"
    raise HomographyError(f"{folder}: no image {index} ({'/'.join(_EXTS)})")


def _read_h(path: Path) -> np.ndarray:
    try:
        H = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise HomographyError(f"{path}: not a 3x3 homography ({exc})") from None
    if H.shape != (3, 3) or not np.isfinite(H).all() or abs(np.linalg.det(H)) < 1e-12:
        raise HomographyError(f"{path}: not an invertible 3x3 homography (shape {H.shape})")
    return H


def load_sequence(folder: str | Path, max_side: int = 640, targets: list[int] | None = None) -> list[HomographyPair]:
    """Pairs ``1 -> k`` of a sequence folder, resized (module docstring); ``targets`` picks ``k``
    (default every ``H_1_k`` present)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HomographyError(f"{folder}: no such folder (--pairs)")
    ks = targets or sorted(int(p.name[4:]) for p in folder.glob("H_1_*") if p.name[4:].isdigit())
    if not ks:
        raise HomographyError(f"{folder}: no homography files H_1_k")
    a, sa = _read_image(_find_image(folder, 1), max_side)
    pairs = []
    for k in ks:
        b, sb = _read_image(_find_image(folder, k), max_side)
        H = sb @ _read_h(folder / f"H_1_{k}") @ np.linalg.inv(sa)
        pairs.append(HomographyPair(f"{folder.name} 1->{k}", a, b, H / H[2, 2]))
    return pairs


def apply_homography(H: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """``(N, 2)`` pixels -> ``(N, 2)`` pixels ``H [u, v, 1]^T`` dehomogenised."""
    p = np.c_[uv.astype(np.float64), np.ones(len(uv))] @ H.T
    return p[:, :2] / p[:, 2:3]


def query_pixels(pair: HomographyPair, count: int, *, min_separation: float = 4.0, fast_threshold: int = 20,
                 border: int = 4) -> np.ndarray:
    """Up to ``count`` FAST corners of image A ``(N, 2)`` int (``u, v``), strongest first, at least
    ``min_separation`` apart, ``border`` pixels inside A and mapping inside B."""
    grey = cv2.cvtColor(pair.image_a, cv2.COLOR_RGB2GRAY)
    kps = sorted(cv2.FastFeatureDetector_create(fast_threshold, True).detect(grey, None), key=lambda k: -k.response)
    h, w = grey.shape
    hb, wb = pair.image_b.shape[:2]
    chosen: list[tuple[int, int]] = []
    taken = np.zeros((h, w), bool)
    r = int(np.ceil(min_separation))
    for kp in kps:
        u, v = int(round(kp.pt[0])), int(round(kp.pt[1]))
        if not (border <= u < w - border and border <= v < h - border) or taken[v, u]:
            continue
        ub, vb = apply_homography(pair.H, np.array([[u, v]]))[0]
        if not (0 <= ub <= wb - 1 and 0 <= vb <= hb - 1):
            continue
        chosen.append((u, v))
        taken[max(0, v - r + 1):v + r, max(0, u - r + 1):u + r] = True
        if len(chosen) == count:
            break
    return np.array(chosen, np.int64).reshape(-1, 2)


def _summary(errors: np.ndarray) -> dict[str, float]:
    return pck_summary(errors, PAIR_THRESHOLDS)


def evaluate_pairs(pairs: list[HomographyPair], methods: dict[str, Describer], *, points: int = 300) -> dict:
    """``{"pairs": {pair: {method: summary}}, "overall": {method: summary}, "thresholds"}`` (module docstring)."""
    report: dict = {"pairs": {}, "overall": {}, "thresholds": list(PAIR_THRESHOLDS)}
    errors: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    cache: dict[tuple[str, int], tuple[torch.Tensor, bool]] = {}
    for pair in pairs:
        q = query_pixels(pair, points)
        truth = apply_homography(pair.H, q)
        row = {}
        for name, describe in methods.items():
            key = (name, id(pair.image_a))
            if key not in cache:  # image 1 is shared by every pair of a sequence
                cache[key] = describe(pair.image_a)
            desc_a, hamming = cache[key]
            desc_b, _ = describe(pair.image_b)
            idx, _ = best_match(desc_a[:, q[:, 1], q[:, 0]].T.contiguous(), desc_b, hamming=hamming)
            w = desc_b.shape[-1]
            found = np.c_[(idx % w).numpy(), (idx // w).numpy()].astype(np.float64)
            err = np.linalg.norm(found - truth, axis=1)
            errors[name].append(err)
            row[name] = _summary(err)
        report["pairs"][pair.name] = row
    for name in methods:
        report["overall"][name] = _summary(np.concatenate(errors[name]) if errors[name] else np.zeros(0))
    return report


def format_pairs_table(report: dict) -> str:
    """One line per pair and method: median error and PCK@1/3/5/10."""
    head = f"{'pair':<18} {'method':<16} {'median px':>9} " + " ".join(f"{'PCK@' + str(t):>7}" for t in PAIR_THRESHOLDS)
    lines = [head, "-" * len(head)]
    rows = list(report["pairs"].items()) + [("all pairs", report["overall"])]
    for pair, methods in rows:
        for name, s in methods.items():
            lines.append(f"{pair:<18} {name:<16} {s['median_px']:>9.2f} "
                         + " ".join(f"{s[f'pck@{t}']:>7.3f}" for t in PAIR_THRESHOLDS))
    return "\n".join(lines)
