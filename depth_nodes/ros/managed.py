"""Managed (lifecycle) variants of the depth_nodes nodes, for nav2-style bringup.

``<node> --managed --ros-args ...`` (see :func:`depth_nodes.ros.node_main.run_node`) runs
:func:`managed_class` of the node: an ``rclpy.lifecycle.LifecycleNode`` with the node's name whose
lifecycle services (``<node>/change_state``, ``<node>/get_state``, ...) drive it:

==============  ==========================================================================
transition      what happens
==============  ==========================================================================
configure       the node's own constructor runs: parameters declared and validated, model
                loaded and warmed up, publishers, subscriptions and timers created. Invalid
                parameters or a model that cannot load: the transition fails with the
                node's usual message in the log and the node stays unconfigured.
activate        inputs are processed and outputs published (lifecycle publishers enabled)
deactivate      input callbacks and the node's timers do nothing; publishers disabled
cleanup         everything configure made is destroyed (worker thread stopped, model closed,
                parameters undeclared: command-line values come back on the next configure,
                values set at run time do not)
shutdown        as cleanup, from any state
==============  ==========================================================================

One mechanism for every node, without changes inside them: the node class's ``__init__`` is
deferred to ``on_configure`` (its ``super().__init__`` lands on an already initialised
``LifecycleNode`` and does nothing), and while it runs, ``create_publisher`` makes lifecycle
publishers and ``create_subscription`` / ``create_timer`` wrap their callbacks so that they run
only while the node is active; the same holds for what the node makes later, until cleanup (the
input QoS follower re-making a subscription while active).
"""
from __future__ import annotations

import functools

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle.publisher import LifecyclePublisher
from rclpy.node import Node

__all__ = ["managed_class", "MANAGED_FLAG", "MANAGED_ENV"]

#: Command-line switch (before ``--ros-args``) that selects the managed variant.
MANAGED_FLAG = "--managed"
#: The same from the environment (``true``/``1``): what the launch files' ``managed`` argument sets.
MANAGED_ENV = "DEPTH_NODES_MANAGED"

_ENTITY_LISTS = (("_publishers", "destroy_publisher"), ("_subscriptions", "destroy_subscription"),
                 ("_timers", "destroy_timer"), ("_services", "destroy_service"), ("_clients", "destroy_client"))


class _LifecycleBase(LifecycleNode):
    """The ``LifecycleNode`` under the node class: initialised once, by :class:`managed_class`'s ``__init__``."""

    def __init__(self, node_name: str, **kwargs):
        if getattr(self, "_lifecycle_ready", False):
            return  # the node class's super().__init__ during configure: already a node
        self._lifecycle_ready = True
        self._active = False
        self._configuring = False
        self._tearing_down = False
        self._configured_snapshot = None
        LifecycleNode.__init__(self, node_name, **kwargs)

    def destroy_node(self):
        if self._tearing_down:
            return True  # the node class's destroy_node during cleanup: keep the node itself
        return LifecycleNode.destroy_node(self)

    # ------------------------------------- entities the node makes (while configuring or configured)
    @property
    def _node_entities(self) -> bool:
        """True from configure to cleanup: entities made now are the node's own (a subscription the
        QoS follower re-makes while active included), not rclpy's built-in ones."""
        return self._configuring or self._configured_snapshot is not None

    def create_publisher(self, msg_type, topic, qos_profile, **kwargs):
        if self._node_entities:
            pub = self.create_lifecycle_publisher(msg_type, topic, qos_profile, **kwargs)
            if self._active:
                pub.on_activate(None)  # made while active: enabled like the others
            return pub
        return Node.create_publisher(self, msg_type, topic, qos_profile, **kwargs)

    def create_subscription(self, msg_type, topic, callback, qos_profile, **kwargs):
        if self._node_entities:
            callback = self._when_active(callback)
        return Node.create_subscription(self, msg_type, topic, callback, qos_profile, **kwargs)

    def create_timer(self, timer_period_sec, callback, *args, **kwargs):
        if self._node_entities and callback is not None:
            callback = self._when_active(callback)
        return Node.create_timer(self, timer_period_sec, callback, *args, **kwargs)

    def _when_active(self, callback):
        @functools.wraps(callback)
        def gated(*args, **kwargs):
            if self._active:
                return callback(*args, **kwargs)
            return None
        return gated


def managed_class(node_cls: type, node_name: str) -> type:
    """A lifecycle variant of ``node_cls`` (a ``Node`` subclass whose ``__init__(**kwargs)`` calls
    ``super().__init__(node_name, **kwargs)``); constructed with the same keyword arguments."""

    class Managed(node_cls, _LifecycleBase):
        def __init__(self, **kwargs):
            self._node_kwargs = kwargs
            _LifecycleBase.__init__(self, node_name, **kwargs)
            self.get_logger().info(f"managed node: waiting for configure ({self.get_name()}/change_state)")

        def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
            from depth_nodes.optional_deps import missing_package_message
            from depth_nodes.ros.params import ParameterError

            self._configured_snapshot = (set(vars(self)), set(self._parameters),
                                         list(self._on_set_parameters_callbacks),
                                         {name: list(getattr(self, name)) for name, _ in _ENTITY_LISTS})
            self._configuring = True
            try:
                node_cls.__init__(self, **self._node_kwargs)
            except (ParameterError, ModuleNotFoundError) as exc:
                message = missing_package_message(exc) if isinstance(exc, ModuleNotFoundError) else str(exc)
                if message is None:
                    raise
                self.get_logger().error(f"configure failed: {message}")
                self._configuring = False
                self._teardown()
                return TransitionCallbackReturn.FAILURE
            finally:
                self._configuring = False
            return TransitionCallbackReturn.SUCCESS

        def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
            self._active = True
            return super().on_activate(state)

        def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
            self._active = False
            return super().on_deactivate(state)

        def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
            self._teardown()
            return TransitionCallbackReturn.SUCCESS

        def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
            self._teardown()
            return TransitionCallbackReturn.SUCCESS

        def _teardown(self) -> None:
            """Undo what configure made (see the module docstring)."""
            self._active = False
            if self._configured_snapshot is None:
                return
            attrs, params, callbacks, entities = self._configured_snapshot
            self._configured_snapshot = None
            self._tearing_down = True
            try:
                node_cls.destroy_node(self)  # the node's own teardown: worker stopped, backend closed
            finally:
                self._tearing_down = False
            for name, destroy in _ENTITY_LISTS:
                for entity in [e for e in getattr(self, name) if e not in entities[name]]:
                    if isinstance(entity, LifecyclePublisher):
                        self.destroy_lifecycle_publisher(entity)
                    else:
                        getattr(self, destroy)(entity)
            for cb in [c for c in self._on_set_parameters_callbacks if c not in callbacks]:
                self.remove_on_set_parameters_callback(cb)
            for name in [p for p in self._parameters if p not in params]:
                # undeclare_parameter refuses read-only ones: drop them as it would (declared again on configure)
                self._parameters.pop(name, None)
                self._descriptors.pop(name, None)
            for name in [a for a in vars(self) if a not in attrs]:
                delattr(self, name)

    Managed.__name__ = Managed.__qualname__ = f"Managed{node_cls.__name__}"
    return Managed
