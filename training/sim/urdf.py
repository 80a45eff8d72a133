"""URDF text for the simulated arm, written from :class:`.arm.ArmSpec` (the same numbers as the MJCF).

The URDF covers ``base_link`` .. ``camera_color_optical_frame``; ``world -> base_link`` and the
stereo rig are static transforms in the bag (``/tf_static``), as on a real robot cell.
"""
from __future__ import annotations

from xml.sax.saxutils import quoteattr

from .arm import ArmSpec, Visual


def _fmt(values) -> str:
    return " ".join(f"{float(v):.17g}" for v in values)


def _geometry(vis: Visual) -> str:
    if vis.kind == "cylinder":
        return f'<cylinder radius="{vis.size[0]:.17g}" length="{vis.size[1]:.17g}"/>'
    if vis.kind == "box":
        return f'<box size="{_fmt(vis.size)}"/>'
    if vis.kind == "sphere":
        return f'<sphere radius="{vis.size[0]:.17g}"/>'
    raise ValueError(f"urdf: unknown visual kind {vis.kind!r} on link {vis.link!r}")


def arm_to_urdf(arm: ArmSpec) -> str:
    """The URDF document (str) with one ``<link>`` per frame and one ``<joint>`` per :class:`JointSpec`."""
    lines = ['<?xml version="1.0"?>', f"<robot name={quoteattr(arm.name)}>"]
    colours: dict[tuple, str] = {}
    for vis in arm.visuals:
        colours.setdefault(tuple(vis.rgba), f"colour{len(colours)}")
    for rgba, name in colours.items():
        lines.append(f'  <material name="{name}"><color rgba="{_fmt(rgba)}"/></material>')
    for link in arm.links:
        body = [
            f'    <visual><origin xyz="{_fmt(v.xyz)}" rpy="{_fmt(v.rpy)}"/>'
            f"<geometry>{_geometry(v)}</geometry>"
            f'<material name="{colours[tuple(v.rgba)]}"/></visual>'
            for v in arm.visuals
            if v.link == link
        ]
        if body:
            lines += [f'  <link name="{link}">', *body, "  </link>"]
        else:
            lines.append(f'  <link name="{link}"/>')
    for jt in arm.joints:
        kind = "fixed" if jt.is_fixed else "revolute"
        lines.append(f'  <joint name="{jt.name}" type="{kind}">')
        lines.append(f'    <parent link="{jt.parent}"/><child link="{jt.child}"/>')
        lines.append(f'    <origin xyz="{_fmt(jt.xyz)}" rpy="{_fmt(jt.rpy)}"/>')
        if not jt.is_fixed:
            lines.append(f'    <axis xyz="{_fmt(jt.axis)}"/>')
            lines.append(
                f'    <limit lower="{jt.lower:.17g}" upper="{jt.upper:.17g}" '
                f'velocity="{jt.velocity:.17g}" effort="{jt.effort:.17g}"/>'
            )
        lines.append("  </joint>")
    lines.append("</robot>")
    return "\n".join(lines) + "\n"
