"""A TF buffer built offline from recorded ``/tf`` and ``/tf_static`` messages.

The tree holds, per child frame, one parent and either one static transform (valid at every
time) or a time series of samples. ``lookup(target, source, t)`` composes the edges along the
tree, as tf2's ``lookupTransform(target, source, t)`` does, and returns ``T_target_source``
(``(4, 4)`` float64, maps points in ``source`` to ``target``). Each dynamic edge is
interpolated between its two bracketing samples: LERP for the translation and SLERP for the
rotation (:func:`~depth_training.kinematics.transforms.interpolate_transform`).

Unlike tf2 the buffer is not a cache of the last seconds: it holds the whole recording, so
lookups may be made in any order. Errors are never silently papered over:

* a time more than ``tolerance_ns`` before the first (after the last) sample of an edge raises
  :class:`TfExtrapolationError` (within the tolerance the end sample is used);
* two bracketing samples more than ``max_gap_ns`` apart raise :class:`TfGapError` (a dropout in
  the recording: interpolating across it would invent motion);
* unknown or disconnected frames raise :class:`TfConnectivityError`; a frame with two
  parents, or an edge both static and dynamic, raises :class:`TfTreeError`.

Quaternions are ``(x, y, z, w)`` (ROS order). Frame names lose a leading ``/`` (ROS 1 style).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from depth_training.kinematics.timeseries import ExtrapolationError, GapError, bracket, format_stamp
from depth_training.kinematics.transforms import interpolate_transform, invert_transform, make_transform

__all__ = [
    "TfError",
    "TfConnectivityError",
    "TfExtrapolationError",
    "TfGapError",
    "TfTreeError",
    "TfBuffer",
    "EdgeStats",
]


class TfError(LookupError):
    """A transform cannot be looked up; the message names the frames, the time and the reason."""


class TfConnectivityError(TfError):
    """A frame is unknown or the two frames are in different trees."""


class TfExtrapolationError(TfError, ExtrapolationError):
    """The time is outside the recorded samples of an edge by more than the tolerance."""


class TfGapError(TfExtrapolationError, GapError):
    """The two samples bracketing the time are further apart than ``max_gap_ns``."""


class TfTreeError(TfError):
    """The recorded transforms do not form a tree (two parents, static and dynamic edge)."""


def _frame(name: str) -> str:
    return name[1:] if name.startswith("/") else name


@dataclass
class _Edge:
    parent: str
    static: bool
    origin: str
    # static edge
    T: np.ndarray | None = None
    # dynamic edge: appended in arrival order, sorted lazily
    _stamps: list[int] = field(default_factory=list)
    _values: list[np.ndarray] = field(default_factory=list)
    stamps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))
    out_of_order: int = 0
    max_stamp: int | None = None

    def compact(self) -> None:
        """Move appended samples into the sorted arrays (stable; the last sample wins on equal stamps)."""
        if not self._stamps:
            return
        stamps = np.concatenate([self.stamps, np.asarray(self._stamps, dtype=np.int64)])
        values = np.concatenate([self.values, np.asarray(self._values, dtype=np.float64).reshape(-1, 7)])
        order = np.argsort(stamps, kind="stable")
        stamps, values = stamps[order], values[order]
        keep = np.ones(len(stamps), dtype=bool)
        keep[:-1] = stamps[1:] != stamps[:-1]  # last of each run of equal stamps
        self.stamps, self.values = stamps[keep], values[keep]
        self._stamps, self._values = [], []


@dataclass(frozen=True)
class EdgeStats:
    """Summary of one dynamic edge: sample count, time span and the largest gap between samples."""

    parent: str
    child: str
    count: int
    first_ns: int
    last_ns: int
    max_gap_ns: int
    max_gap_at_ns: int
    out_of_order: int


class TfBuffer:
    """Offline TF tree with interpolated lookups.

    Args:
        tolerance_ns: how far before the first / after the last sample of a dynamic edge a
            lookup may go (the end sample is then used). 0 = no extrapolation at all.
        max_gap_ns: largest allowed time between the two samples bracketing a lookup; ``None``
            disables the check.
        source: where the transforms came from (e.g. ``"run1.mcap: /tf"``), used in messages.
    """

    def __init__(self, *, tolerance_ns: int = 0, max_gap_ns: int | None = 500_000_000, source: str = "TF"):
        if tolerance_ns < 0:
            raise ValueError(f"tolerance_ns: must be >= 0, got {tolerance_ns}")
        if max_gap_ns is not None and max_gap_ns <= 0:
            raise ValueError(f"max_gap_ns: must be > 0 or None, got {max_gap_ns}")
        self.tolerance_ns = int(tolerance_ns)
        self.max_gap_ns = None if max_gap_ns is None else int(max_gap_ns)
        self.source = source
        self._edges: dict[str, _Edge] = {}

    # ------------------------------------------------------------------ filling
    def add(self, parent: str, child: str, stamp_ns: int, translation, rotation_xyzw, *,
            static: bool = False, origin: str = "") -> None:
        """Add one transform ``T_parent_child`` (translation ``(3,)`` m, rotation ``(x, y, z, w)``)."""
        parent, child = _frame(parent), _frame(child)
        where = f"{self.source}{': ' + origin if origin else ''}"
        if not parent or not child:
            raise TfTreeError(f"{where}: transform at {format_stamp(stamp_ns)} has an empty frame id "
                              f"(parent {parent!r}, child {child!r})")
        if parent == child:
            raise TfTreeError(f"{where}: transform at {format_stamp(stamp_ns)} maps frame {child!r} to itself")
        value = np.concatenate([np.asarray(translation, dtype=np.float64).reshape(3),
                                np.asarray(rotation_xyzw, dtype=np.float64).reshape(4)])
        if not np.all(np.isfinite(value)) or np.linalg.norm(value[3:]) < 1e-6:
            raise TfTreeError(f"{where}: transform {parent!r} -> {child!r} at {format_stamp(stamp_ns)} "
                              f"has a non-finite value or a zero quaternion: {value.tolist()}")
        edge = self._edges.get(child)
        if edge is None:
            edge = self._edges[child] = _Edge(parent=parent, static=static, origin=origin)
        elif edge.parent != parent:
            raise TfTreeError(
                f"{where}: frame {child!r} has two parents: {edge.parent!r} ({edge.origin or 'earlier'}) "
                f"and {parent!r} at {format_stamp(stamp_ns)}")
        elif edge.static != static:
            raise TfTreeError(
                f"{where}: edge {parent!r} -> {child!r} is published both as static and as dynamic transform")
        if static:
            edge.T = make_transform(value[:3], value[3:])  # the latest static transform wins (tf2)
        else:
            if edge.max_stamp is not None and stamp_ns < edge.max_stamp:
                edge.out_of_order += 1  # earlier than a sample already received
            edge.max_stamp = stamp_ns if edge.max_stamp is None else max(edge.max_stamp, int(stamp_ns))
            edge._stamps.append(int(stamp_ns))
            edge._values.append(value)

    def add_tf_message(self, msg, *, static: bool, origin: str = "") -> int:
        """Add every ``geometry_msgs/TransformStamped`` of a ``tf2_msgs/TFMessage``-like object.

        Returns the number of transforms added.
        """
        for tf in msg.transforms:
            stamp = tf.header.stamp
            tr, rot = tf.transform.translation, tf.transform.rotation
            self.add(tf.header.frame_id, tf.child_frame_id, int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec),
                     (tr.x, tr.y, tr.z), (rot.x, rot.y, rot.z, rot.w), static=static, origin=origin)
        return len(msg.transforms)

    # ------------------------------------------------------------------ queries
    @property
    def frames(self) -> set[str]:
        """All frame names (parents and children)."""
        return set(self._edges) | {e.parent for e in self._edges.values()}

    def parent(self, frame: str) -> str | None:
        """Parent of ``frame``, or ``None`` for a root / unknown frame."""
        edge = self._edges.get(_frame(frame))
        return edge.parent if edge else None

    def is_static(self, child: str) -> bool:
        return self._edges[_frame(child)].static

    def ancestors(self, frame: str) -> list[str]:
        """``[frame, parent, grandparent, ..., root]``.

        Raises:
            TfConnectivityError: unknown frame. TfTreeError: a cycle.
        """
        frame = _frame(frame)
        if frame not in self._edges and frame not in self.frames:
            known = ", ".join(sorted(self.frames)) or "none"
            raise TfConnectivityError(f"{self.source}: frame {frame!r} does not exist (known frames: {known})")
        chain = [frame]
        while (edge := self._edges.get(chain[-1])) is not None:
            if edge.parent in chain:
                raise TfTreeError(f"{self.source}: transform cycle through {' -> '.join(chain + [edge.parent])}")
            chain.append(edge.parent)
        return chain

    def root(self, frame: str) -> str:
        return self.ancestors(frame)[-1]

    def edge_stats(self) -> list[EdgeStats]:
        """Per dynamic edge: count, span, largest gap (and where), out-of-order arrivals."""
        out = []
        for child, edge in sorted(self._edges.items()):
            if edge.static:
                continue
            edge.compact()
            s = edge.stamps
            gaps = np.diff(s)
            k = int(np.argmax(gaps)) if len(gaps) else 0
            out.append(EdgeStats(edge.parent, child, len(s), int(s[0]), int(s[-1]),
                                 int(gaps[k]) if len(gaps) else 0, int(s[k]) if len(gaps) else int(s[0]),
                                 edge.out_of_order))
        return out

    def _edge_at(self, child: str, edge: _Edge, t: int, what: str) -> np.ndarray:
        """``T_parent_child`` at time ``t`` for one edge (static, exact, clamped or interpolated)."""
        if edge.static:
            return edge.T
        edge.compact()
        name = f"edge {edge.parent!r} -> {child!r}{' (' + edge.origin + ')' if edge.origin else ''}"
        i, j, alpha = bracket(edge.stamps, t, tolerance_ns=self.tolerance_ns, max_gap_ns=self.max_gap_ns,
                              what=what, name=name, extrapolation_error=TfExtrapolationError,
                              gap_error=TfGapError)
        va, vb = edge.values[i], edge.values[j]
        if i == j:
            return make_transform(va[:3], va[3:])
        return interpolate_transform(va[:3], va[3:], vb[:3], vb[3:], alpha)

    def _to_ancestor(self, chain: list[str], stop: str, t: int, what: str) -> np.ndarray:
        T = np.eye(4)
        for frame in chain:
            if frame == stop:
                break
            T = self._edge_at(frame, self._edges[frame], t, what) @ T
        return T

    def lookup(self, target: str, source: str, stamp_ns: int) -> np.ndarray:
        """``T_target_source`` at ``stamp_ns``: the pose of ``source`` in ``target``, ``(4, 4)``.

        ``p_target = T @ p_source``; composed as ``inv(T_anc_target) @ T_anc_source`` through the
        nearest common ancestor ``anc``.

        Raises:
            TfConnectivityError, TfExtrapolationError, TfGapError, TfTreeError.
        """
        target, source, t = _frame(target), _frame(source), int(stamp_ns)
        what = f"{self.source}: lookup of {source!r} in {target!r} at {format_stamp(t)}"
        if target == source:
            self.ancestors(source)
            return np.eye(4)
        chain_s, chain_t = self.ancestors(source), self.ancestors(target)
        in_t = set(chain_t)
        common = next((f for f in chain_s if f in in_t), None)
        if common is None:
            raise TfConnectivityError(
                f"{what}: frames are not connected ({source!r} is in the tree of {chain_s[-1]!r}, "
                f"{target!r} in the tree of {chain_t[-1]!r})")
        T_anc_source = self._to_ancestor(chain_s, common, t, what)
        T_anc_target = self._to_ancestor(chain_t, common, t, what)
        return invert_transform(T_anc_target) @ T_anc_source

    def can_transform(self, target: str, source: str, stamp_ns: int) -> bool:
        try:
            self.lookup(target, source, stamp_ns)
        except TfError:
            return False
        return True

    def time_range(self, target: str, source: str) -> tuple[int, int] | None:
        """``(first, last)`` stamp covered by every dynamic edge between the frames; ``None`` if all static."""
        chain_s, chain_t = self.ancestors(source), self.ancestors(target)
        frames = set(chain_s) ^ set(chain_t)
        lo, hi = None, None
        for f in frames:
            edge = self._edges.get(f)
            if edge is None or edge.static:
                continue
            edge.compact()
            lo = int(edge.stamps[0]) if lo is None else max(lo, int(edge.stamps[0]))
            hi = int(edge.stamps[-1]) if hi is None else min(hi, int(edge.stamps[-1]))
        return None if lo is None else (lo, hi)
