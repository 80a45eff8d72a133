"""Declaring, validating and updating node parameters from a table of specs.

Each node lists its parameters once as :class:`ParamSpec` rows (name, default, description,
range or choices, whether it may change at run time). :func:`declare_parameters` declares them
with full descriptors (so ``ros2 param describe`` shows type, range and text), reads the values
(from ``config/*.yaml`` via ``--params-file`` or overrides), and validates them with one clear
message per bad value. :func:`make_on_set_callback` accepts run-time changes of the dynamic
parameters only, after the same checks plus the node's own cross-parameter check.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.parameter import Parameter

__all__ = ["ParamSpec", "ParameterError", "declare_parameters", "make_on_set_callback", "check_value"]


class ParameterError(ValueError):
    """A parameter value is invalid; the message names the parameter and the rule."""


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    dynamic: bool = False

    @property
    def ptype(self) -> Parameter.Type:
        return Parameter.Type.from_parameter_value(self.default)

    def descriptor(self) -> ParameterDescriptor:
        text = self.description
        if self.choices:
            text += f" One of: {', '.join(map(str, self.choices))}."
        text += " Can change at run time." if self.dynamic else " Read at start-up only."
        d = ParameterDescriptor(name=self.name, type=int(self.ptype), description=text,
                                read_only=not self.dynamic)
        if self.min is not None and self.max is not None:
            if isinstance(self.default, bool):
                pass
            elif isinstance(self.default, int):
                d.integer_range = [IntegerRange(from_value=int(self.min), to_value=int(self.max), step=0)]
            elif isinstance(self.default, float):
                d.floating_point_range = [FloatingPointRange(from_value=float(self.min), to_value=float(self.max), step=0.0)]
        return d


def check_value(spec: ParamSpec, value) -> str | None:
    """Return a reason string if ``value`` is not valid for ``spec``, else ``None``."""
    if type(value) is not type(spec.default):
        if isinstance(spec.default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        else:
            return f"{spec.name}: expected {type(spec.default).__name__}, got {type(value).__name__} {value!r}"
    if spec.choices is not None and value not in spec.choices:
        return f"{spec.name}: {value!r} is not one of {', '.join(map(repr, spec.choices))}"
    if spec.min is not None and value < spec.min:
        return f"{spec.name}: {value!r} is below the minimum {spec.min}"
    if spec.max is not None and value > spec.max:
        return f"{spec.name}: {value!r} is above the maximum {spec.max}"
    return None


def declare_parameters(node, specs: Sequence[ParamSpec],
                       check: Callable[[dict[str, Any]], list[str]] | None = None) -> dict[str, Any]:
    """Declare all ``specs`` on ``node``; return ``{name: value}``.

    Raises :class:`ParameterError` listing every invalid value (wrong type, out of range, not a
    valid choice) so a bad YAML file is fixed in one go. ``check(values)``, if given, returns the
    node's own problems (cross-parameter rules, ``"name: reason"`` strings); it sees the defaults
    in place of values that already failed, and its problems are listed with the others.
    """
    problems: list[str] = []
    values: dict[str, Any] = {}
    for spec in specs:
        try:
            # Declare without the range so that an out-of-range override is reported by our
            # message (rclpy's own is terse); the range is in the descriptor for introspection.
            p = node.declare_parameter(spec.name, spec.default, spec.descriptor(), ignore_override=False)
            value = p.value
        except ParameterException as exc:
            problems.append(f"{spec.name}: {exc}")
            continue
        except Exception as exc:  # rclpy raises several types for type mismatches
            problems.append(f"{spec.name}: invalid value ({exc})")
            continue
        if isinstance(spec.default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        reason = check_value(spec, value)
        if reason:
            problems.append(reason)
        values[spec.name] = value
    if check is not None:
        failed = {p.split(":", 1)[0] for p in problems}
        seen = {k: (spec.default if spec.name in failed or k not in values else values[k])
                for spec in specs for k in (spec.name,)}
        problems += [p for p in check(seen) if p.split(":", 1)[0] not in failed]
    if problems:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(problems))
    return values


def make_on_set_callback(specs: Sequence[ParamSpec], current: dict[str, Any],
                         apply: Callable[[dict[str, Any]], str | None]):
    """An ``add_on_set_parameters_callback`` handler.

    Rejects changes to read-only parameters and invalid values; otherwise calls
    ``apply(new_values)`` (the full dict with the changes), which returns a reason to reject
    (cross-parameter rules) or ``None`` after applying the change. ``current`` is updated.
    """
    by_name = {s.name: s for s in specs}

    def on_set(params: list[Parameter]) -> SetParametersResult:
        proposed = dict(current)
        for p in params:
            spec = by_name.get(p.name)
            if spec is None:
                continue  # parameters not owned by this table (e.g. use_sim_time)
            if not spec.dynamic:
                return SetParametersResult(successful=False, reason=f"{p.name}: read-only (set it at start-up)")
            value = p.value
            if isinstance(spec.default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            reason = check_value(spec, value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            proposed[p.name] = value
        reason = apply(proposed)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        current.update(proposed)
        return SetParametersResult(successful=True)

    return on_set
