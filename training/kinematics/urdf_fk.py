"""Forward kinematics from a URDF (parsed by ``yourdfpy``) and recorded joint states.

* :class:`UrdfKinematics` loads a URDF string (``/robot_description``) or file and gives
  ``T_root_link`` for a link from joint positions (``yourdfpy.URDF.get_transform``). Only the
  actuated joints on the chain from the root to the link are needed; mimic joints follow their
  leader as yourdfpy implements them.
* :class:`JointStateTrack` keeps one time series per joint from ``sensor_msgs/JointState``
  messages (publishers may split joints over several messages) and interpolates positions at
  any stamp: linear, ``q(t) = q_a + alpha (q_b - q_a)``, with the difference wrapped to
  ``[-pi, pi)`` for continuous joints; extrapolation beyond a tolerance and gaps longer than
  ``max_gap_ns`` raise errors naming the joint, topic and time.
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from depth_training.kinematics.timeseries import ExtrapolationError, GapError, bracket, format_stamp

__all__ = [
    "UrdfError",
    "JointStateExtrapolationError",
    "JointStateGapError",
    "UrdfKinematics",
    "JointStateTrack",
]


class UrdfError(ValueError):
    """The URDF cannot be parsed, lacks a link, or joint positions are missing for a chain."""


class JointStateExtrapolationError(ExtrapolationError):
    """A joint position is asked for outside its recorded samples (beyond the tolerance)."""


class JointStateGapError(JointStateExtrapolationError, GapError):
    """The samples bracketing the time are further apart than ``max_gap_ns``."""


class UrdfKinematics:
    """Forward kinematics of one URDF.

    Args:
        urdf_xml: the URDF document.
        source: where it came from (file name or ``"<bag>: /robot_description"``), for messages.
    """

    def __init__(self, urdf_xml: str, *, source: str = "URDF"):
        import yourdfpy

        self.source = source
        if not urdf_xml or not urdf_xml.strip():
            raise UrdfError(f"{source}: the robot description is empty")
        try:
            self._urdf = yourdfpy.URDF.load(
                io.StringIO(urdf_xml), build_scene_graph=True, load_meshes=False,
                build_collision_scene_graph=False, load_collision_meshes=False)
        except Exception as exc:  # lxml / yourdfpy raise many types for bad XML
            raise UrdfError(f"{source}: cannot parse URDF: {type(exc).__name__}: {exc}") from None
        self.root: str = self._urdf.base_link
        self._joint_of_child = {j.child: j for j in self._urdf.joint_map.values()}

    @classmethod
    def from_file(cls, path: str | Path) -> "UrdfKinematics":
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise UrdfError(f"{path}: cannot read URDF: {exc.strerror or exc}") from None
        return cls(text, source=str(path))

    @property
    def links(self) -> list[str]:
        return list(self._urdf.link_map)

    @property
    def actuated_joint_names(self) -> list[str]:
        return list(self._urdf.actuated_joint_names)

    def joint_type(self, joint: str) -> str:
        return self._urdf.joint_map[joint].type

    def chain(self, link: str) -> list[str]:
        """Names of the joints from the root down to ``link`` (root side first)."""
        if link not in self._urdf.link_map:
            raise UrdfError(f"{self.source}: link {link!r} is not in the URDF "
                            f"(links: {', '.join(sorted(self._urdf.link_map))})")
        joints = []
        while link != self.root:
            joint = self._joint_of_child.get(link)
            if joint is None:
                raise UrdfError(f"{self.source}: link {link!r} is not connected to the root {self.root!r}")
            joints.append(joint.name)
            link = joint.parent
        return joints[::-1]

    def required_joints(self, link: str) -> list[str]:
        """Actuated joints whose positions determine ``T_root_link`` (mimic joints -> their leader)."""
        out: list[str] = []
        for name in self.chain(link):
            joint = self._urdf.joint_map[name]
            if joint.type == "fixed":
                continue
            leader = joint.mimic.joint if joint.mimic is not None else name
            if leader not in out:
                out.append(leader)
        return out

    def link_pose(self, link: str, positions: Mapping[str, float]) -> np.ndarray:
        """``T_root_link`` ``(4, 4)`` for joint ``positions`` (radians / metres by joint name).

        Raises:
            UrdfError: unknown link, or a required joint missing from ``positions``.
        """
        needed = self.required_joints(link)
        missing = [j for j in needed if j not in positions]
        if missing:
            raise UrdfError(f"{self.source}: no position for joint(s) {', '.join(missing)} "
                            f"on the chain {self.root!r} -> {link!r}")
        cfg = {j: float(positions[j]) for j in needed}
        if cfg:
            self._urdf.update_cfg(cfg)
        return np.array(self._urdf.get_transform(link, self.root), dtype=np.float64)


class JointStateTrack:
    """Joint positions over time, one sorted series per joint name.

    Args:
        tolerance_ns: how far outside the samples a lookup may go (clamped to the end sample).
        max_gap_ns: largest allowed time between bracketing samples (``None`` = no check).
        source: e.g. ``"run1.mcap: /joint_states"``, used in messages.
    """

    def __init__(self, *, tolerance_ns: int = 0, max_gap_ns: int | None = 500_000_000, source: str = "joint states"):
        self.tolerance_ns = int(tolerance_ns)
        self.max_gap_ns = None if max_gap_ns is None else int(max_gap_ns)
        self.source = source
        self._raw: dict[str, list[tuple[int, float]]] = {}
        self._series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.out_of_order = 0
        self.without_positions = 0
        self._max_stamp: dict[str, int] = {}

    def add(self, stamp_ns: int, names: Iterable[str], positions: Iterable[float]) -> None:
        """Add one JointState sample (``names`` and ``positions`` of equal length)."""
        names, positions = list(names), [float(p) for p in positions]
        if names and not positions:
            self.without_positions += 1  # velocity/effort-only message: no position information
            return
        if len(names) != len(positions):
            raise UrdfError(f"{self.source}: message at {format_stamp(stamp_ns)} has {len(names)} names "
                            f"but {len(positions)} positions")
        for name, q in zip(names, positions):
            if not np.isfinite(q):
                raise UrdfError(f"{self.source}: joint {name!r} has a non-finite position {q} "
                                f"at {format_stamp(stamp_ns)}")
            series = self._raw.setdefault(name, [])
            if series and stamp_ns < self._max_stamp.get(name, stamp_ns):
                self.out_of_order += 1  # earlier than a sample already received
            self._max_stamp[name] = max(self._max_stamp.get(name, stamp_ns), int(stamp_ns))
            series.append((int(stamp_ns), q))
            self._series.pop(name, None)

    def add_message(self, msg) -> None:
        """Add a ``sensor_msgs/JointState``-like message (uses ``header.stamp``, ``name``, ``position``)."""
        stamp = msg.header.stamp
        self.add(int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec), msg.name, msg.position)

    @property
    def names(self) -> set[str]:
        return set(self._raw)

    def series(self, joint: str) -> tuple[np.ndarray, np.ndarray]:
        """``(stamps_ns (N,) int64, positions (N,) float64)`` sorted by stamp (last wins on ties)."""
        if joint not in self._raw:
            raise UrdfError(f"{self.source}: joint {joint!r} never appears "
                            f"(joints recorded: {', '.join(sorted(self._raw)) or 'none'})")
        cached = self._series.get(joint)
        if cached is None:
            arr = np.array(self._raw[joint], dtype=[("t", np.int64), ("q", np.float64)])
            arr = arr[np.argsort(arr["t"], kind="stable")]
            keep = np.ones(len(arr), dtype=bool)
            keep[:-1] = arr["t"][1:] != arr["t"][:-1]
            cached = self._series[joint] = (arr["t"][keep].copy(), arr["q"][keep].copy())
        return cached

    def positions_at(self, stamp_ns: int, joints: Iterable[str], continuous: Iterable[str] = ()) -> dict[str, float]:
        """Interpolated positions of ``joints`` at ``stamp_ns``.

        ``q(t) = q_a + alpha * d`` with ``alpha = (t - a) / (b - a)`` and ``d = q_b - q_a``
        (wrapped to ``[-pi, pi)`` for joints in ``continuous``).

        Raises:
            UrdfError: a joint never recorded. JointStateExtrapolationError / JointStateGapError.
        """
        cont = set(continuous)
        out = {}
        for joint in joints:
            stamps, values = self.series(joint)
            i, j, alpha = bracket(stamps, int(stamp_ns), tolerance_ns=self.tolerance_ns,
                                  max_gap_ns=self.max_gap_ns,
                                  what=f"{self.source}: joint {joint!r} at {format_stamp(stamp_ns)}",
                                  name=f"joint {joint!r}", extrapolation_error=JointStateExtrapolationError,
                                  gap_error=JointStateGapError)
            d = values[j] - values[i]
            if joint in cont:
                d = (d + np.pi) % (2 * np.pi) - np.pi
            out[joint] = float(values[i] + alpha * d)
        return out
