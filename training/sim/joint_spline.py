"""Piecewise quintic Hermite joint trajectories (C2) with locally chosen waypoint velocities.

Segment ``k`` runs from ``(t_k, q_k, v_k, a_k = 0)`` to ``(t_{k+1}, q_{k+1}, v_{k+1}, 0)``. With
``s = (t - t_k) / T_k``, ``T_k = t_{k+1} - t_k``:

    q(t) = h0(s) q_k + h1(s) T_k v_k + h4(s) T_k v_{k+1} + h5(s) q_{k+1}
    h0 = 1 - 10 s^3 + 15 s^4 - 6 s^5      h1 = s - 6 s^3 + 8 s^4 - 3 s^5
    h4 = -4 s^3 + 7 s^4 - 3 s^5           h5 = 10 s^3 - 15 s^4 + 6 s^5

Positions and velocities are continuous by construction and the acceleration is 0 at every
waypoint on both sides, so ``q`` is C2. Because segment ``k`` depends only on its own end states,
a planner can validate a trajectory segment by segment while it is being built.

Waypoint velocities (:func:`waypoint_velocity`) follow PCHIP's (Fritsch-Butland) rule per joint:
0 where the neighbouring slopes change sign (no overshoot past a waypoint), else their harmonic
mean.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Rows: h0, h1, h4, h5; columns: coefficients of s^0 .. s^5.
_BASIS = np.array([
    [1.0, 0.0, 0.0, -10.0, 15.0, -6.0],
    [0.0, 1.0, 0.0, -6.0, 8.0, -3.0],
    [0.0, 0.0, 0.0, -4.0, 7.0, -3.0],
    [0.0, 0.0, 0.0, 10.0, -15.0, 6.0],
])


def _basis(s: np.ndarray, order: int) -> np.ndarray:
    """``d^order h_i / ds^order`` at ``s`` (N,) -> (N, 4)."""
    coeffs = _BASIS
    for _ in range(order):
        coeffs = coeffs[:, 1:] * np.arange(1, coeffs.shape[1])
    powers = s[:, None] ** np.arange(coeffs.shape[1])
    return powers @ coeffs.T


def waypoint_velocity(q_prev: np.ndarray, q: np.ndarray, q_next: np.ndarray, dt_prev: float, dt_next: float) -> np.ndarray:
    """PCHIP-style velocity at ``q`` (6,): with slopes ``a = (q - q_prev)/dt_prev``,
    ``b = (q_next - q)/dt_next``: ``v = 2ab/(a + b)`` where ``ab > 0``, else 0."""
    a, b = (q - q_prev) / dt_prev, (q_next - q) / dt_next
    same = a * b > 0
    v = np.zeros_like(a)
    v[same] = 2.0 * a[same] * b[same] / (a[same] + b[same])
    return v


@dataclass
class JointTrajectory:
    """``q(t)`` for ``t`` in ``[0, duration]``: knots ``knot_times`` (K,), ``waypoints`` (K, J),
    ``knot_velocities`` (K, J); times outside the range are clamped."""

    knot_times: np.ndarray
    waypoints: np.ndarray
    knot_velocities: np.ndarray

    def __post_init__(self) -> None:
        self.knot_times = np.asarray(self.knot_times, dtype=np.float64)
        self.waypoints = np.asarray(self.waypoints, dtype=np.float64)
        self.knot_velocities = np.asarray(self.knot_velocities, dtype=np.float64)
        k = len(self.knot_times)
        if k < 2 or np.any(np.diff(self.knot_times) <= 0):
            raise ValueError("JointTrajectory: need >= 2 strictly increasing knot times")
        if self.waypoints.shape[0] != k or self.knot_velocities.shape != self.waypoints.shape:
            raise ValueError(f"JointTrajectory: {k} knots but waypoints {self.waypoints.shape}, "
                             f"velocities {self.knot_velocities.shape}")

    @property
    def duration(self) -> float:
        return float(self.knot_times[-1] - self.knot_times[0])

    def _evaluate(self, t, order: int) -> np.ndarray:
        scalar = np.ndim(t) == 0
        t = np.clip(np.atleast_1d(np.asarray(t, dtype=np.float64)), self.knot_times[0], self.knot_times[-1])
        k = np.clip(np.searchsorted(self.knot_times, t, side="right") - 1, 0, len(self.knot_times) - 2)
        dt = self.knot_times[k + 1] - self.knot_times[k]
        h = _basis((t - self.knot_times[k]) / dt, order)
        q0, q1 = self.waypoints[k], self.waypoints[k + 1]
        v0, v1 = self.knot_velocities[k] * dt[:, None], self.knot_velocities[k + 1] * dt[:, None]
        out = h[:, :1] * q0 + h[:, 1:2] * v0 + h[:, 2:3] * v1 + h[:, 3:4] * q1
        out /= dt[:, None] ** order
        return out[0] if scalar else out

    def positions(self, t) -> np.ndarray:
        """``q(t)``: times (N,) -> (N, J); a scalar time gives (J,)."""
        return self._evaluate(t, 0)

    def velocities(self, t) -> np.ndarray:
        """``dq/dt`` at ``t``: (N,) -> (N, J)."""
        return self._evaluate(t, 1)

    def accelerations(self, t) -> np.ndarray:
        """``d^2q/dt^2`` at ``t``: (N,) -> (N, J)."""
        return self._evaluate(t, 2)
