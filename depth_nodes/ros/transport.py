"""Automatic Fast DDS shared-memory set-up for a node process that publishes multi-MB messages.

Fast DDS's default shared-memory segment is 512 KB, and the *writer's* segment decides whether
a sample goes over shared memory: a larger sample (a 1 MP image, any point cloud of 640x480
and up) goes out as UDP fragments instead, which best-effort subscribers lose whenever their
socket buffer overflows (measured here: 0 of 10 1280x1024 rgb8 images reach a best-effort
subscriber in another process, 10 of 10 when the publisher uses ``config/fastdds_shm.xml``,
with the subscriber unchanged). A node can fix this for what *it* publishes by pointing
Fast DDS at the packaged profile (128 MB segments, messages up to 64 MB, plus UDPv4 for other hosts) before its
participant is created, i.e. before ``rclpy.init``.

Call :func:`setup_shared_memory` first thing in ``main``; log the line it returns once the
node exists. It does nothing when the user configured the middleware themselves (their own
profile always wins) or turned it off with ``DEPTH_NODES_AUTO_SHM=0``::

    shm_note = setup_shared_memory()      # before rclpy.init
    rclpy.init(args=args)
    node = MyNode()
    node.get_logger().info(shm_note)
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import MutableMapping

__all__ = ["AUTO_SHM_ENV", "USER_CONFIG_ENVS", "PROFILE_NAME", "shm_decision", "find_profile", "setup_shared_memory",
           "ASYNC_PUBLISH_ENV", "PUBLICATION_MODE_ENV", "setup_publication_mode"]

#: Set to ``0`` (or ``false``/``no``/``off``) to keep Fast DDS's defaults.
AUTO_SHM_ENV = "DEPTH_NODES_AUTO_SHM"
#: Any of these set means the user configured Fast DDS: we leave it alone.
USER_CONFIG_ENVS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE",
                    "RMW_FASTRTPS_USE_QOS_FROM_XML", "FASTDDS_BUILTIN_TRANSPORTS")
_FASTDDS_RMWS = ("rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")
PROFILE_NAME = "fastdds_shm.xml"
_PACKAGE = "depth_nodes"


def shm_decision(environ: MutableMapping[str, str]) -> tuple[bool, str]:
    """Whether to set up shared memory in a process with this environment, and why (not).

    Applies when the middleware is Fast DDS (``RMW_IMPLEMENTATION`` unset, the default of
    every ROS 2 release since Foxy except Galactic, or ``rmw_fastrtps_cpp``/``_dynamic_cpp``),
    none of :data:`USER_CONFIG_ENVS` is set, :data:`AUTO_SHM_ENV` is not false, and ``/dev/shm``
    has room for the segment (:data:`MIN_SHM_FREE_BYTES`; Docker's default is 64 MB).
    """
    why_not = _switched_off(environ, AUTO_SHM_ENV) or _not_fast_dds(environ)
    if why_not:
        return False, why_not
    for name in USER_CONFIG_ENVS:
        if environ.get(name, "").strip():
            return False, f"{name} is set (your configuration is used)"
    free = shm_free_bytes()
    if free is not None and free < MIN_SHM_FREE_BYTES:
        return False, (f"only {free / 2**20:.0f} MB free in /dev/shm, the profile's 128 MB segment could not be "
                       "filled (in Docker: --shm-size=1g or --ipc=host)")
    return True, "Fast DDS with its default transports"


def _switched_off(environ: MutableMapping[str, str], name: str) -> str | None:
    """``"NAME=value"`` when the switch ``name`` is set to ``0``/``false``/``no``/``off``, else None."""
    if environ.get(name, "").strip().lower() in ("0", "false", "no", "off"):
        return f"{name}={environ[name]}"
    return None


def _not_fast_dds(environ: MutableMapping[str, str]) -> str | None:
    """Why the middleware is not Fast DDS (``RMW_IMPLEMENTATION`` names another one), else None."""
    rmw = environ.get("RMW_IMPLEMENTATION", "").strip()
    if rmw and rmw not in _FASTDDS_RMWS:
        return f"RMW_IMPLEMENTATION={rmw} is not Fast DDS"
    return None


#: A Fast DDS segment is a sparse file in /dev/shm: writing past the space there kills the process
#: (SIGBUS), so the 128 MB segment needs that much room plus the peers' segments.
MIN_SHM_FREE_BYTES = 256 * 2**20


def shm_free_bytes() -> int | None:
    """Free bytes in ``/dev/shm`` (``None`` where there is none, e.g. not Linux)."""
    try:
        return shutil.disk_usage("/dev/shm").free
    except OSError:
        return None


def find_profile() -> Path | None:
    """The packaged ``fastdds_shm.xml``: installed share directory first, then the source tree."""
    candidates = []
    try:  # a full ROS install (colcon) knows the share directory
        from ament_index_python.packages import get_package_share_directory  # type: ignore

        candidates.append(Path(get_package_share_directory(_PACKAGE)) / "config" / PROFILE_NAME)
    except Exception:  # noqa: BLE001 - not installed with ament, or no ament_index here
        pass
    candidates.append(Path(sys.prefix) / "share" / _PACKAGE / "config" / PROFILE_NAME)  # pip install
    candidates.append(Path(__file__).resolve().parents[2] / "config" / PROFILE_NAME)  # source tree / editable
    for path in candidates:
        if path.is_file():
            return path
    return None


def setup_shared_memory(environ: MutableMapping[str, str] | None = None, profile: Path | None = None) -> str:
    """Point ``FASTDDS_DEFAULT_PROFILES_FILE`` at the shared-memory profile if :func:`shm_decision` allows.

    Must run before ``rclpy.init`` (Fast DDS reads the variable when the participant is made).
    Returns one line saying what was done, for the node's log.
    """
    environ = os.environ if environ is None else environ
    apply, reason = shm_decision(environ)
    if not apply:
        return f"Fast DDS shared-memory set-up skipped: {reason}"
    profile = find_profile() if profile is None else Path(profile)
    if profile is None or not profile.is_file():
        return f"Fast DDS shared-memory set-up skipped: {PROFILE_NAME} not found (is depth_nodes installed?)"
    environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    return (f"Fast DDS: large messages over shared memory (messages up to 64 MB) with FASTDDS_DEFAULT_PROFILES_FILE={profile}"
            f" for this process; set {AUTO_SHM_ENV}=0 to keep Fast DDS's defaults")


#: Set to ``0`` (or ``false``/``no``/``off``) to keep rmw_fastrtps' synchronous publishing.
ASYNC_PUBLISH_ENV = "DEPTH_NODES_ASYNC_PUBLISH"
#: rmw_fastrtps' own switch (``SYNCHRONOUS``, ``ASYNCHRONOUS``, ``AUTO``); set by the user, it wins.
PUBLICATION_MODE_ENV = "RMW_FASTRTPS_PUBLICATION_MODE"


def setup_publication_mode(environ: MutableMapping[str, str] | None = None) -> str:
    """Let Fast DDS send this process's messages from its own thread (``RMW_FASTRTPS_PUBLICATION_MODE=ASYNCHRONOUS``).

    With synchronous publishing (rmw_fastrtps' default) ``publish()`` returns only once the sample
    is serialized, copied into the shared-memory segment and handed to every reader: 5-6 ms of
    the mono node's frame for its ~7 MB of outputs at 640x480 (``bench_nodes``). Asynchronously,
    ``publish()`` returns after serialization and Fast DDS's sender thread does the rest while the
    node goes on with the next frame (2.6-2.8 ms). Must run before ``rclpy.init``. Skipped when the
    middleware is not Fast DDS, when the user set :data:`PUBLICATION_MODE_ENV` or takes QoS from
    their XML (``RMW_FASTRTPS_USE_QOS_FROM_XML``), or with :data:`ASYNC_PUBLISH_ENV` ``=0``.
    Returns one line for the node's log.
    """
    environ = os.environ if environ is None else environ
    why_not = _switched_off(environ, ASYNC_PUBLISH_ENV) or _not_fast_dds(environ)
    if why_not:
        return f"Fast DDS publication mode left alone: {why_not}"
    for name in (PUBLICATION_MODE_ENV, "RMW_FASTRTPS_USE_QOS_FROM_XML"):
        if environ.get(name, "").strip():
            return f"Fast DDS publication mode left alone: {name} is set (your configuration is used)"
    environ[PUBLICATION_MODE_ENV] = "ASYNCHRONOUS"
    return (f"Fast DDS: asynchronous publishing ({PUBLICATION_MODE_ENV}=ASYNCHRONOUS) for this process; "
            f"set {ASYNC_PUBLISH_ENV}=0 to publish synchronously")
