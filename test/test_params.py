"""Parameter specs: validation rules and descriptors (the node-level checks are in test_stereo_node)."""
import pytest
from rcl_interfaces.msg import ParameterType

from depth_nodes.nodes.stereo_depth_node import PARAMS
from depth_nodes.ros.params import ParamSpec, check_value

SPEC = ParamSpec("x", 1.0, "A value.", 0.0, 2.0, dynamic=True)


def test_check_value_rules():
    assert check_value(SPEC, 1.5) is None
    assert check_value(SPEC, 1) is None  # ints are fine for doubles
    assert "above the maximum" in check_value(SPEC, 3.0)
    assert "below the minimum" in check_value(SPEC, -1.0)
    assert "expected float" in check_value(SPEC, "a")
    choice = ParamSpec("q", "a", "Q.", choices=("a", "b"))
    assert "not one of" in check_value(choice, "c")


def test_descriptors_carry_type_range_and_text():
    d = SPEC.descriptor()
    assert d.type == ParameterType.PARAMETER_DOUBLE and not d.read_only
    assert d.floating_point_range[0].to_value == 2.0
    assert "Can change at run time" in d.description


def test_every_stereo_parameter_is_in_the_config_file():
    import yaml
    from pathlib import Path

    cfg = yaml.safe_load((Path(__file__).parents[1] / "config/stereo_depth.yaml").read_text())
    values = cfg["/**"]["ros__parameters"]
    names = {p.name for p in PARAMS}
    assert set(values) == names
    for p in PARAMS:
        assert check_value(p, values[p.name]) is None, p.name
        assert values[p.name] == p.default, p.name
