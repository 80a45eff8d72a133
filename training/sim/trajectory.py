"""Smooth joint-space trajectories that keep the wrist camera looking at the tabletop.

1. Viewpoints: a random walk on a spherical shell around the look target (azimuth sweeps back and
   forth over 75-285 degrees, 180 = the robot's side, in steps of 20-50 degrees, elevation 30-72 degrees, radius 0.30-0.48 m), so an episode sees the objects from
   many directions.
2. Inverse kinematics per viewpoint (:func:`solve_view_ik`): bounded least squares on the joint
   positions, residuals = camera position error, weighted rotation error against an upright
   look-at frame, and a small pull towards the previous waypoint (short, unsurprising motions).
3. A C2 piecewise quintic Hermite curve through the waypoints (:mod:`.joint_spline`), at rest at
   both ends, timed so the average joint speed on a segment stays below ``max_joint_speed``.
4. Validation at 25 Hz (:func:`check_configuration`): joint limits, links above the table, camera
   away from the objects and the robot's own base, optical axis within ``max_view_angle_deg`` of
   the look target, arm clear of the moving distractor. Checked segment by segment while the
   waypoints are added (a candidate waypoint that breaks a rule is re-drawn).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from .arm import COLOR_OPTICAL_FRAME, ArmSpec, forward_kinematics
from .joint_spline import JointTrajectory, waypoint_velocity
from .scene import SceneSpec, footprint_radius
from .transforms import invert_transform, look_at_optical, transform_points

# Frames whose connecting segments are checked for clearance (the moving part of the arm).
_AZ_MIN, _AZ_MAX = np.deg2rad(75.0), np.deg2rad(285.0)  # azimuth range of the viewpoint walk
_CHAIN = ("link2", "link3", "link4", "link5", "link6", COLOR_OPTICAL_FRAME)


def _rotation_residual(R: np.ndarray, R_goal: np.ndarray, roll_weight: float) -> np.ndarray:
    """``[w (x - x*), w (y - y*), (z - z*)]`` over the optical axes (columns): the viewing direction z
    counts fully, the roll (x, y) with ``roll_weight``. (9,)"""
    d = R - R_goal
    return np.concatenate([roll_weight * d[:, 0], roll_weight * d[:, 1], d[:, 2]])


def solve_view_ik(arm: ArmSpec, T_base_goal: np.ndarray, q_init: np.ndarray, q_prev: np.ndarray,
                  roll_weight: float = 0.3, reg_weight: float = 0.02) -> tuple[np.ndarray, float, float]:
    """Joint positions (6,) that put ``camera_color_optical_frame`` at ``T_base_goal`` (4,4).

    Minimises ``|t(q) - t*|^2 + |rot residual|^2 + reg^2 |q - q_prev|^2`` within the joint limits
    (scipy ``least_squares``, trf). Returns ``(q, position_error_m, view_axis_error_rad)``.
    """
    lo, hi = arm.lower, arm.upper

    def residual(q: np.ndarray) -> np.ndarray:
        T = forward_kinematics(arm, q)[COLOR_OPTICAL_FRAME]
        return np.concatenate([T[:3, 3] - T_base_goal[:3, 3], _rotation_residual(T[:3, :3], T_base_goal[:3, :3], roll_weight),
                               reg_weight * (q - q_prev)])

    x0 = np.clip(q_init, lo + 1e-6, hi - 1e-6)
    sol = least_squares(residual, x0, bounds=(lo, hi), xtol=1e-10, ftol=1e-10, max_nfev=400)
    T = forward_kinematics(arm, sol.x)[COLOR_OPTICAL_FRAME]
    pos_err = float(np.linalg.norm(T[:3, 3] - T_base_goal[:3, 3]))
    axis_err = float(np.arccos(np.clip(T[:3, 2] @ T_base_goal[:3, 2], -1.0, 1.0)))
    return sol.x, pos_err, axis_err


def _segment_points(poses: dict[str, np.ndarray], T_world_base: np.ndarray, step: float = 0.02) -> np.ndarray:
    """Points every ``step`` metres along the segments joining the ``_CHAIN`` frame origins (world, (P,3))."""
    origins = [poses[name][:3, 3] for name in _CHAIN]
    pts = []
    for a, b in zip(origins[:-1], origins[1:]):
        n = max(2, int(np.ceil(np.linalg.norm(b - a) / step)) + 1)
        pts.append(a + np.linspace(0.0, 1.0, n)[:, None] * (b - a))
    return transform_points(T_world_base, np.concatenate(pts))


def check_configuration(arm: ArmSpec, scene: SceneSpec, q: np.ndarray, max_view_angle_deg: float = 30.0) -> str | None:
    """``None`` if ``q`` (6,) is acceptable, else the reason (str).

    Rules: within joint limits; arm points >= 5 cm above the table top (z = 0); camera >= 8 cm
    above it and >= (footprint radius + 8 cm) from each static object's centre; arm points >= 12 cm
    from the base's vertical axis below 0.3 m; angle between optical z and the direction to
    ``scene.look_target`` <= ``max_view_angle_deg``.
    """
    if np.any(q < arm.lower - 1e-9) or np.any(q > arm.upper + 1e-9):
        return "joint limit"
    poses = forward_kinematics(arm, q)
    pts = _segment_points(poses, scene.T_world_base)
    if pts[:, 2].min() < 0.05:
        return "arm too close to the table"
    base_xy = scene.T_world_base[:2, 3]
    near_base = (np.linalg.norm(pts[:, :2] - base_xy, axis=1) < 0.12) & (pts[:, 2] < 0.3)
    if np.any(near_base[len(pts) // 3 :]):  # the first segment (upper arm) starts at the shoulder
        return "arm folds onto its base"
    T_cam = scene.T_world_base @ poses[COLOR_OPTICAL_FRAME]
    cam = T_cam[:3, 3]
    if cam[2] < 0.08:
        return "camera too low"
    for obj in scene.objects:
        if np.linalg.norm(cam - obj.pose[:3, 3]) < footprint_radius(obj.shape, obj.size) + 0.08:
            return f"camera too close to {obj.name}"
    to_target = scene.look_target - cam
    cos = T_cam[:3, 2] @ to_target / np.linalg.norm(to_target)
    if cos < np.cos(np.deg2rad(max_view_angle_deg)):
        return "look target leaves the view"
    return None


def _viewpoint(scene: SceneSpec, az: float, el: float, radius: float, jitter: np.ndarray,
               aim: np.ndarray | None = None) -> np.ndarray:
    """``T_world_optical`` (4,4) on the shell: eye = target + r (cos el cos az, cos el sin az, sin el), looking at
    the target (plus ``aim`` (3,), which turns the view without moving the eye)."""
    target = scene.look_target + jitter
    eye = target + radius * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    return look_at_optical(eye, target if aim is None else target + aim)


def _waypoint(arm: ArmSpec, scene: SceneSpec, rng: np.random.Generator, q_prev: np.ndarray, state: list[float],
              first: bool, elevation_deg: tuple[float, float] = (30.0, 72.0),
              aim_offset_m: float = 0.0) -> np.ndarray | None:
    """Draw viewpoints near ``state = [az, el, r, sweep_dir]`` until one has an accepted IK solution; updates ``state``."""
    T_base_world = invert_transform(scene.T_world_base)
    for _ in range(12):
        if first:
            az, el, r = state[:3]
        else:
            # Sweep: keep the azimuth direction (state[3]) and turn back at the ends of the range.
            if rng.uniform() < 0.15 or not _AZ_MIN + 0.2 < state[0] + state[3] * 0.35 < _AZ_MAX - 0.2:
                state[3] = -state[3]
            step = rng.uniform(np.deg2rad(20), np.deg2rad(50)) * state[3]
            az = float(np.clip(state[0] + step, _AZ_MIN, _AZ_MAX))
            el = float(np.clip(state[1] + rng.uniform(-0.25, 0.25), np.deg2rad(elevation_deg[0]), np.deg2rad(elevation_deg[1])))
            r = float(np.clip(state[2] + rng.uniform(-0.08, 0.08), 0.30, 0.48))
        jitter = rng.uniform(-0.03, 0.03, size=3) * (0.0 if first else 1.0)
        aim = rng.uniform(-aim_offset_m, aim_offset_m, size=3) if aim_offset_m > 0 and not first else None
        goal = T_base_world @ _viewpoint(scene, az, el, r, jitter, aim)
        inits = [q_prev] + [rng.uniform(arm.lower, arm.upper) * 0.6 for _ in range(3)]
        best = None
        for q0 in inits:
            q, pos_err, axis_err = solve_view_ik(arm, goal, q0, q_prev)
            if pos_err > 3e-3 or axis_err > np.deg2rad(1.5) or check_configuration(arm, scene, q) is not None:
                continue
            if best is None or np.abs(q - q_prev).max() < np.abs(best - q_prev).max():
                best = q
            if q0 is q_prev:
                break  # the solution reached from the previous waypoint is the natural one
        if best is not None:
            state[:3] = [az, el, r]
            return best
        first = False
    return None


def _segment_failure(arm: ArmSpec, scene: SceneSpec, t0: float, t1: float, q0, v0, q1, v1,
                     rate_hz: float = 25.0) -> str | None:
    """Check one Hermite segment ``(t0, q0, v0) -> (t1, q1, v1)`` at ``rate_hz`` (both ends included)."""
    seg = JointTrajectory(np.array([t0, t1]), np.stack([q0, q1]), np.stack([v0, v1]))
    for t in np.append(np.arange(t0, t1, 1.0 / rate_hz), t1):
        reason = _sample_failure(arm, scene, seg.positions(t), t)
        if reason is not None:
            return f"t={t:.2f}s: {reason}"
    return None


def _sample_failure(arm: ArmSpec, scene: SceneSpec, q: np.ndarray, t: float) -> str | None:
    reason = check_configuration(arm, scene, q)
    if reason is None and distractor_clearance(arm, scene, q, t) < 0.06:
        reason = "arm meets the distractor"
    return reason


def plan_trajectory(arm: ArmSpec, scene: SceneSpec, duration: float, seed: int, max_joint_speed: float = 0.35,
                    attempts: int = 10, tries_per_waypoint: int = 8,
                    elevation_deg: tuple[float, float, float] = (30.0, 72.0, 55.0),
                    aim_offset_m: float = 0.0) -> JointTrajectory:
    """A validated trajectory of at least ``duration`` seconds for ``scene``, reproducible from ``seed``.

    Waypoints are added one at a time. Adding ``q_{k+1}`` fixes the velocity at ``q_k``
    (:func:`~.joint_spline.waypoint_velocity`), which completes segment ``k-1``; the candidate is
    accepted only if that segment and the provisional last segment (ending at rest) pass the
    checks, so the cost grows linearly with the duration. Segment ``k`` lasts
    ``max(1.5 s, max_j |dq_j| / max_joint_speed)``. ``elevation_deg = (min, max, start)``: the viewpoint
    walk's elevation range above the look target and its first value (degrees); ``aim_offset_m``: each
    viewpoint after the first looks at the target plus a uniform offset of up to this much per axis (the
    framing varies; the view axis stays within ``check_configuration``'s angle of the target). Raises ``RuntimeError`` if planning gets stuck
    ``attempts`` times.
    """
    if duration <= 0:
        raise ValueError(f"plan_trajectory: duration must be > 0, got {duration}")
    rng = np.random.default_rng([seed, 7])
    home = np.array([0.0, 0.4, 1.4, 0.0, 1.2, 0.0])
    zero = np.zeros(len(arm.revolute))
    last_reason = "no waypoint reachable"
    for _ in range(attempts):
        # [azimuth, elevation, radius, sweep direction]; azimuth 180 deg = the robot's side.
        state = [np.deg2rad(180.0) + rng.uniform(-0.3, 0.3), np.deg2rad(elevation_deg[2]), 0.4,
                 rng.choice([-1.0, 1.0])]
        q = _waypoint(arm, scene, rng, home, state, first=True, elevation_deg=elevation_deg[:2],
                      aim_offset_m=aim_offset_m)
        if q is None:
            continue
        qs, ts, vs = [q], [0.0], [zero]
        while ts[-1] < duration:
            for _ in range(tries_per_waypoint):
                trial = list(state)
                cand = _waypoint(arm, scene, rng, qs[-1], trial, first=False, elevation_deg=elevation_deg[:2],
                                aim_offset_m=aim_offset_m)
                if cand is None:
                    break
                dt = max(1.5, float(np.abs(cand - qs[-1]).max()) / max_joint_speed)
                v_last = zero if len(qs) == 1 else waypoint_velocity(qs[-2], qs[-1], cand, ts[-1] - ts[-2], dt)
                reason = None
                if len(qs) > 1:
                    reason = _segment_failure(arm, scene, ts[-2], ts[-1], qs[-2], vs[-2], qs[-1], v_last)
                if reason is None:
                    reason = _segment_failure(arm, scene, ts[-1], ts[-1] + dt, qs[-1], v_last, cand, zero)
                if reason is None:
                    state[:] = trial
                    vs[-1] = v_last
                    qs.append(cand)
                    ts.append(ts[-1] + dt)
                    vs.append(zero)
                    break
                last_reason = reason
            else:
                break  # every candidate failed: start over
            if cand is None:
                break
        if ts[-1] >= duration:
            return JointTrajectory(np.array(ts), np.array(qs), np.array(vs))
    raise RuntimeError(f"plan_trajectory: no valid trajectory for seed {seed} after {attempts} attempts ({last_reason})")


def distractor_clearance(arm: ArmSpec, scene: SceneSpec, q: np.ndarray, t: float) -> float:
    """Smallest distance (m) between the arm's chain points and the distractor's surface at time ``t``
    (``inf`` without a distractor); the distractor is bounded by its footprint radius."""
    if scene.distractor is None or scene.distractor_path is None:
        return float("inf")
    centre = scene.distractor_path.pose_at(t)[:3, 3]
    pts = _segment_points(forward_kinematics(arm, q), scene.T_world_base)
    r = footprint_radius(scene.distractor.shape, scene.distractor.size)
    return float(np.linalg.norm(pts - centre, axis=1).min() - r)


def validate_trajectory(arm: ArmSpec, scene: SceneSpec, traj: JointTrajectory, rate_hz: float = 25.0) -> str | None:
    """``None`` if every sample at ``rate_hz`` passes :func:`check_configuration` and keeps the arm
    >= 6 cm from the moving distractor, else the first failure."""
    for t in np.append(np.arange(0.0, traj.duration, 1.0 / rate_hz), traj.duration):
        reason = _sample_failure(arm, scene, traj.positions(t), t)
        if reason is not None:
            return f"t={t:.2f}s: {reason}"
    return None
