"""package.xml lists what the code imports, each with its rosdep key or a pip line, and nothing else.

Every top-level import of a third-party module in depth_nodes/, training/ and launch/ (read with
``ast``) must be an ``exec_depend`` (by its rosdep key) or named in the package's pip comment;
every ``exec_depend`` must be imported somewhere or run by a launch file.
"""
from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# import name -> rosdep key, where they differ from the ROS package name
ROSDEP_KEYS = {"numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml", "scipy": "python3-scipy",
               "tqdm": "python3-tqdm"}
# import name -> pip requirement, for what rosdep has no key for
PIP_NAMES = {"onnxruntime": "onnxruntime", "torch": "torch", "tensorrt": "tensorrt", "cuda": "cuda-python",
             "rosbags": "rosbags", "mujoco": "mujoco", "onnx": "onnx", "yourdfpy": "yourdfpy", "lz4": "lz4",
             "backports": "backports.zstd"}
OURS = {"depth_nodes", "depth_training", "__future__", "compression"}  # compression.zstd: Python 3.14's stdlib
# exec_depends used without an import: executables started by launch files
LAUNCHED = {"rviz2"}


def _imports() -> set[str]:
    found = set()
    for root in ("depth_nodes", "training", "launch"):
        for f in (REPO / root).rglob("*.py"):
            for n in ast.walk(ast.parse(f.read_text())):
                if isinstance(n, ast.Import):
                    found |= {a.name.split(".")[0] for a in n.names}
                elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
                    found.add(n.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - OURS


def _package():
    text = (REPO / "package.xml").read_text()
    root = ET.fromstring(text)
    assert root.tag == "package" and root.get("format") == "3"
    depends = [e.text for e in root.iter("exec_depend")]
    comments = text[text.index("<package"):]
    return depends, comments


def test_every_import_has_a_rosdep_key_or_a_pip_line():
    depends, text = _package()
    missing = []
    for module in sorted(_imports()):
        if ROSDEP_KEYS.get(module, module) in depends:
            continue
        pip = PIP_NAMES.get(module)
        if pip is None or f" {pip}" not in text.split("pip install", 1)[-1]:
            missing.append(module)
    assert not missing, f"package.xml has neither an exec_depend nor a pip line for {missing}"


def test_nothing_unused_is_listed():
    depends, _ = _package()
    used = {ROSDEP_KEYS.get(m, m) for m in _imports()}
    launch_text = "".join(p.read_text() for p in [*(REPO / "launch").glob("*.py"), REPO / "depth_nodes/launch_support.py"])
    unused = [d for d in depends if d not in used and not (d in LAUNCHED and f'"{d}"' in launch_text)]
    assert not unused, f"package.xml lists {unused}, which nothing imports or launches"
    assert len(depends) == len(set(depends))
