"""MuJoCo model of the cell, written as MJCF text from :class:`.arm.ArmSpec` and :class:`.scene.SceneSpec`.

The arm's bodies follow the URDF exactly: body ``child`` sits in body ``parent`` at the joint
origin (``pos`` = xyz, ``quat`` = rpy) and carries a hinge at its origin along the joint axis, so
MuJoCo's ``xpos/xmat`` of body ``linkN`` equals the URDF FK of ``linkN``. Fixed URDF joints become
bodies without joints. Cameras sit in bodies named after their optical frames with
``quat = (0, 1, 0, 0)`` (see :mod:`.camera_model`).

Textures are declared as flat placeholders and their pixels are written into ``model.tex_data``
after compiling (:func:`build_model`), so the MJCF needs no image files.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from .arm import COLOR_OPTICAL_FRAME, ArmSpec, Visual
from .camera_model import QUAT_OPTICAL_MJCAM
from .scene import FLOOR_Z, ROOM_HALF, TABLE_THICKNESS, WALL_TOP, TABLE_X, TABLE_Y, ObjectSpec, SceneSpec
from .transforms import matrix_to_quat_wxyz, rpy_to_matrix

WRIST_CAMERA = "wrist_color"
STEREO_LEFT_CAMERA = "stereo_left"
STEREO_RIGHT_CAMERA = "stereo_right"
STEREO_LINK = "stereo_link"
STEREO_LEFT_FRAME = "stereo_left_optical_frame"
STEREO_RIGHT_FRAME = "stereo_right_optical_frame"
# Clip planes as fractions of the model extent (fixed at 2 m below): near 1 cm, far 20 m.
EXTENT = 2.0
ZNEAR, ZFAR = 0.005, 10.0


def _f(values) -> str:
    return " ".join(f"{float(v):.17g}" for v in np.ravel(values))


def _pose_attrs(T: np.ndarray) -> str:
    return f'pos="{_f(T[:3, 3])}" quat="{_f(matrix_to_quat_wxyz(T[:3, :3]))}"'


def _visual_geom(vis: Visual, index: int) -> str:
    quat = matrix_to_quat_wxyz(rpy_to_matrix(vis.rpy))
    if vis.kind == "cylinder":
        size = (vis.size[0], vis.size[1] / 2)
    elif vis.kind == "box":
        size = tuple(s / 2 for s in vis.size)
    else:
        size = vis.size
    return (
        f'<geom name="{vis.link}_visual{index}" type="{vis.kind}" size="{_f(size)}" '
        f'pos="{_f(vis.xyz)}" quat="{_f(quat)}" rgba="{_f(vis.rgba)}"/>'
    )


def _arm_bodies(arm: ArmSpec, T_world_base: np.ndarray, wrist_fovy: float) -> list[str]:
    children: dict[str, list] = {}
    for jt in arm.joints:
        children.setdefault(jt.parent, []).append(jt)

    def body(name: str, attrs: str, joint_xml: str, depth: int) -> list[str]:
        pad = "  " * depth
        out = [f'{pad}<body name="{name}" {attrs}>']
        if joint_xml:
            out.append(f"{pad}  {joint_xml}")
        for k, vis in enumerate(v for v in arm.visuals if v.link == name):
            out.append(f"{pad}  {_visual_geom(vis, k)}")
        if name == COLOR_OPTICAL_FRAME:
            out.append(f'{pad}  <camera name="{WRIST_CAMERA}" quat="{_f(QUAT_OPTICAL_MJCAM)}" fovy="{wrist_fovy:.12g}"/>')
        for jt in children.get(name, []):
            jxml = ""
            if not jt.is_fixed:
                jxml = (f'<joint name="{jt.name}" type="hinge" axis="{_f(jt.axis)}" '
                        f'range="{jt.lower:.12g} {jt.upper:.12g}"/>')
            out += body(jt.child, _pose_attrs(jt.origin()), jxml, depth + 1)
        out.append(f"{pad}</body>")
        return out

    return body(arm.links[0], _pose_attrs(T_world_base), "", 2)


def _object_geom(obj: ObjectSpec) -> str:
    return (f'<geom name="{obj.name}" type="{obj.shape}" size="{_f(obj.size)}" '
            f'material="mat_{obj.name}" rgba="{_f(obj.rgba)}"/>')


def scene_to_mjcf(arm: ArmSpec, scene: SceneSpec, max_width: int, max_height: int) -> str:
    """The MJCF document (str). ``max_width/height`` size the offscreen framebuffer."""
    tx0, tx1 = TABLE_X
    ty0, ty1 = TABLE_Y
    table_centre = ((tx0 + tx1) / 2, (ty0 + ty1) / 2, -TABLE_THICKNESS / 2)
    table_half = ((tx1 - tx0) / 2, (ty1 - ty0) / 2, TABLE_THICKNESS / 2)
    assets = [
        f'<texture name="tex_floor" type="2d" builtin="flat" width="{scene.floor_texture.shape[1]}" '
        f'height="{scene.floor_texture.shape[0]}" rgb1="0.5 0.5 0.5"/>',
        '<material name="mat_floor" texture="tex_floor" texrepeat="0.5 0.5" texuniform="true" specular="0.05"/>',
        f'<texture name="tex_wall" type="2d" builtin="flat" width="{scene.wall_texture.shape[1]}" '
        f'height="{scene.wall_texture.shape[0]}" rgb1="0.8 0.8 0.8"/>',
        '<material name="mat_wall" texture="tex_wall" texrepeat="0.7 0.7" texuniform="true" specular="0"/>',
        f'<texture name="tex_table" type="2d" builtin="flat" width="{scene.table_texture.shape[1]}" '
        f'height="{scene.table_texture.shape[0]}" rgb1="0.5 0.4 0.3"/>',
        '<material name="mat_table" texture="tex_table" texrepeat="3 3" texuniform="true" specular="0.1" shininess="0.2"/>',
    ]
    for obj in scene.all_objects:
        h, w = obj.texture.shape[:2]
        assets.append(f'<texture name="tex_{obj.name}" type="2d" builtin="flat" width="{w}" height="{h}" rgb1="1 1 1"/>')
        assets.append(f'<material name="mat_{obj.name}" texture="tex_{obj.name}" texrepeat="1 1" specular="0.1"/>')
    world = [
        '<light name="key" pos="0.4 -0.7 1.8" dir="-0.2 0.35 -1" castshadow="true" diffuse="0.55 0.55 0.55" specular="0.1 0.1 0.1"/>',
        '<light name="fill" pos="-0.6 0.8 1.5" dir="0.3 -0.4 -1" castshadow="false" diffuse="0.3 0.3 0.3" specular="0 0 0"/>',
        f'<geom name="floor" type="plane" pos="0 0 {FLOOR_Z:.12g}" size="4 4 0.1" material="mat_floor"/>',
        f'<geom name="table" type="box" pos="{_f(table_centre)}" size="{_f(table_half)}" material="mat_table"/>',
    ]
    wall_half_h = (WALL_TOP - FLOOR_Z) / 2
    for k, (x, y, hx, hy) in enumerate([(ROOM_HALF, 0, 0.05, ROOM_HALF), (-ROOM_HALF, 0, 0.05, ROOM_HALF),
                                        (0, ROOM_HALF, ROOM_HALF, 0.05), (0, -ROOM_HALF, ROOM_HALF, 0.05)]):
        world.append(f'<geom name="wall{k}" type="box" pos="{x} {y} {FLOOR_Z + wall_half_h:.12g}" '
                     f'size="{hx} {hy} {wall_half_h:.12g}" material="mat_wall"/>')
    world += moving_parts(arm, scene, scene.color_fovy_deg)
    return mjcf_document(assets, world, max_width, max_height, "0.35 0.35 0.35", "0.25 0.25 0.25")


def moving_parts(arm: ArmSpec, scene: SceneSpec, wrist_fovy: float) -> list[str]:
    """Worldbody lines of the arm (wrist camera of ``wrist_fovy`` degrees), the objects, the distractor
    (a mocap body) and the stereo rig."""
    world = _arm_bodies(arm, scene.T_world_base, wrist_fovy)
    for obj in scene.objects:
        world.append(f'<body name="{obj.name}" {_pose_attrs(obj.pose)}>{_object_geom(obj)}</body>')
    if scene.distractor is not None:
        d = scene.distractor
        world.append(f'<body name="{d.name}" mocap="true" {_pose_attrs(d.pose)}>{_object_geom(d)}</body>')
    rig = scene.stereo
    cam = f'quat="{_f(QUAT_OPTICAL_MJCAM)}" fovy="{rig.fovy_deg:.12g}"'
    world += [
        f'<body name="{STEREO_LINK}" {_pose_attrs(rig.T_world_link)}>',
        f'  <body name="{STEREO_LEFT_FRAME}" {_pose_attrs(rig.T_link_left)}><camera name="{STEREO_LEFT_CAMERA}" {cam}/></body>',
        f'  <body name="{STEREO_RIGHT_FRAME}" {_pose_attrs(rig.T_link_right)}><camera name="{STEREO_RIGHT_CAMERA}" {cam}/></body>',
        "</body>",
    ]
    return world


def mjcf_document(assets: list[str], world: list[str], max_width: int, max_height: int, ambient: str,
                  diffuse: str) -> str:
    """The MJCF text around ``assets`` and ``world`` lines; ``ambient``/``diffuse``: the headlight's RGB."""
    return "\n".join([
        '<mujoco model="depth_sim_tabletop">',
        '  <compiler angle="radian" autolimits="true"/>',
        '  <option gravity="0 0 0"/>',
        f'  <statistic extent="{EXTENT}" center="0 0 0"/>',
        "  <visual>",
        f'    <global offwidth="{max_width}" offheight="{max_height}"/>',
        f'    <map znear="{ZNEAR}" zfar="{ZFAR}"/>',
        '    <quality shadowsize="1024" offsamples="4"/>',
        f'    <headlight ambient="{ambient}" diffuse="{diffuse}" specular="0 0 0"/>',
        "  </visual>",
        '  <default><geom contype="0" conaffinity="0"/></default>',
        "  <asset>", *("    " + a for a in assets), "  </asset>",
        "  <worldbody>", *("    " + w for w in world), "  </worldbody>",
        "</mujoco>",
    ]) + "\n"


@dataclass
class ModelIndex:
    """Ids into a compiled model: ``qpos_adr`` (6,) of ``joint1..6``; ``geom_labels`` (ngeom,) int16
    object label per geom (0 = not an object); ``object_bodies`` body ids in ``scene.all_objects`` order;
    camera ids; ``distractor_mocap`` (-1 if none)."""

    qpos_adr: np.ndarray
    geom_labels: np.ndarray
    object_bodies: np.ndarray
    wrist_camera: int
    stereo_left_camera: int
    stereo_right_camera: int
    distractor_mocap: int


def _id(model: mujoco.MjModel, kind: mujoco.mjtObj, name: str) -> int:
    i = mujoco.mj_name2id(model, kind, name)
    if i < 0:
        raise RuntimeError(f"mjcf: compiled model has no {kind.name} named {name!r}")
    return i


def _write_texture(model: mujoco.MjModel, name: str, pixels: np.ndarray) -> None:
    t = _id(model, mujoco.mjtObj.mjOBJ_TEXTURE, name)
    h, w, c = int(model.tex_height[t]), int(model.tex_width[t]), int(model.tex_nchannel[t])
    if pixels.shape != (h, w, c):
        raise ValueError(f"mjcf: texture {name!r} is {h}x{w}x{c} but pixels are {pixels.shape}")
    adr = int(model.tex_adr[t])
    model.tex_data[adr : adr + h * w * c] = pixels.reshape(-1)


def build_model(arm: ArmSpec, scene: SceneSpec, max_width: int, max_height: int,
                variety=None) -> tuple[mujoco.MjModel, ModelIndex, str]:
    """Compile the scene: returns (model with procedural textures written in, ids, the MJCF text).

    ``variety`` (a :class:`.variety.Variety` in the world of ``arm`` and ``scene``): the varied room,
    lights and surfaces of :mod:`.mjcf_variety` instead of the classic cell."""
    if variety is None:
        xml = scene_to_mjcf(arm, scene, max_width, max_height)
        textures = {"tex_floor": scene.floor_texture, "tex_table": scene.table_texture, "tex_wall": scene.wall_texture}
        textures.update((f"tex_{obj.name}", obj.texture) for obj in scene.all_objects)
    else:
        from .mjcf_variety import variety_to_mjcf

        xml, textures = variety_to_mjcf(arm, scene, variety, max_width, max_height)
    model = mujoco.MjModel.from_xml_string(xml)
    for name, pixels in textures.items():
        _write_texture(model, name, pixels)
    labels = np.zeros(model.ngeom, dtype=np.int16)
    for obj in scene.all_objects:
        labels[_id(model, mujoco.mjtObj.mjOBJ_GEOM, obj.name)] = obj.label
    qpos_adr = np.array([model.jnt_qposadr[_id(model, mujoco.mjtObj.mjOBJ_JOINT, j.name)] for j in arm.revolute])
    mocap = -1
    if scene.distractor is not None:
        mocap = int(model.body_mocapid[_id(model, mujoco.mjtObj.mjOBJ_BODY, scene.distractor.name)])
    index = ModelIndex(
        qpos_adr=qpos_adr,
        geom_labels=labels,
        object_bodies=np.array([_id(model, mujoco.mjtObj.mjOBJ_BODY, o.name) for o in scene.all_objects], dtype=int),
        wrist_camera=_id(model, mujoco.mjtObj.mjOBJ_CAMERA, WRIST_CAMERA),
        stereo_left_camera=_id(model, mujoco.mjtObj.mjOBJ_CAMERA, STEREO_LEFT_CAMERA),
        stereo_right_camera=_id(model, mujoco.mjtObj.mjOBJ_CAMERA, STEREO_RIGHT_CAMERA),
        distractor_mocap=mocap,
    )
    return model, index, xml
