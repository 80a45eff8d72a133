"""The one ``main()`` every depth_nodes node runs: command line, process set-up, spin, shutdown.

Order matters and is the same for every node:

1. ``--help`` / ``--params-file`` checks (:func:`depth_nodes.ros.node_cli.handle_command_line`),
   before anything starts;
2. glibc keeps multi-MB blocks in the heap (:func:`depth_nodes.process_memory.keep_large_buffers`),
   Fast DDS gets shared memory for large messages
   (:func:`depth_nodes.ros.transport.setup_shared_memory`) and publishes asynchronously
   (:func:`depth_nodes.ros.transport.setup_publication_mode`), all before ``rclpy.init``;
3. the node is built; invalid parameters (:class:`~depth_nodes.ros.params.ParameterError`) are one
   message on stderr and exit status 2;
4. the interpreter hands the GIL between threads every 0.5 ms instead of 5 ms
   (:data:`SWITCH_INTERVAL_S`): a frame goes from the executor thread to the node's worker thread
   (:class:`~depth_nodes.pipelines.worker.LatestFrameWorker`), and with Python's default the worker
   could wait up to 5 ms for the executor thread to let go after the hand-over;
5. spin until Ctrl-C or an external shutdown, which ends with exit status 0 and no traceback.

With ``--managed`` (before ``--ros-args``), or ``DEPTH_NODES_MANAGED=true`` in its environment (the
launch files' ``managed`` argument), the node is its lifecycle variant
(:func:`depth_nodes.ros.managed.managed_class`): it starts unconfigured, loads its model on
``configure`` and publishes only while active.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Sequence

__all__ = ["run_node", "SWITCH_INTERVAL_S"]

SWITCH_INTERVAL_S = 0.0005  # sys.setswitchinterval for node processes (Python's default is 0.005)


def run_node(name: str, factory: Callable[[], object], usage, args: Sequence[str] | None = None) -> int:
    """Run the node that ``factory()`` builds; returns the process exit status.

    Args:
        name: the executable's name, prefixed to start-up errors.
        factory: builds the rclpy node (called after ``rclpy.init``).
        usage: the node's :class:`~depth_nodes.ros.node_cli.NodeUsage` (``--help`` text).
        args: the command line (default ``sys.argv``), passed to ``rclpy.init``.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from depth_nodes.optional_deps import missing_package_message
    from depth_nodes.process_memory import keep_large_buffers
    from depth_nodes.ros.managed import MANAGED_ENV, MANAGED_FLAG, managed_class
    from depth_nodes.ros.node_cli import handle_command_line
    from depth_nodes.ros.params import ParameterError
    from depth_nodes.ros.transport import setup_publication_mode, setup_shared_memory

    argv = list(sys.argv if args is None else args)
    code = handle_command_line(argv, usage)
    if code is not None:
        return code
    managed = MANAGED_FLAG in argv[1:argv.index("--ros-args") if "--ros-args" in argv else len(argv)]
    if managed:
        argv.remove(MANAGED_FLAG)
    if managed or os.environ.get(MANAGED_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        factory = managed_class(factory, name)
    malloc_note = keep_large_buffers()  # multi-MB messages every frame: no page faults per frame
    shm_note = setup_shared_memory()  # large outputs over shared memory (Fast DDS)
    mode_note = setup_publication_mode()  # Fast DDS sends them from its own thread
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # the worker thread gets a new frame without waiting 5 ms
    rclpy.init(args=argv)
    try:
        node = factory()
    except ParameterError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    except ModuleNotFoundError as exc:  # an optional package (onnxruntime, torch, ...): one line naming it
        message = missing_package_message(exc)
        if message is None:
            raise
        print(f"{name}: {message}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    node.get_logger().info(malloc_note)
    node.get_logger().info(shm_note)
    node.get_logger().info(mode_note)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
