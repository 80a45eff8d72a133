"""Issue 12 item 6: the package installs the way colcon's ament_python build installs it.

colcon (``colcon build``, no ``--symlink-install``) runs ``setup.py build --build-base B install
--prefix P --single-version-externally-managed --record R``; ``setup.cfg``'s ``[install]
install_scripts=$base/lib/depth_nodes`` puts the console scripts where ``ros2 run depth_nodes X``
looks, and ``data_files`` put package.xml, launch, config and rviz under ``share/depth_nodes`` and
the ament index marker under ``share/ament_index``. The build runs on a copy of the tracked files
(the working tree stays clean) and the installed ``depth-train`` is run from the prefix.
"""
import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = "depth_nodes"


def _console_scripts() -> list[str]:
    text = (ROOT / "setup.py").read_text()
    block = text[text.index('"console_scripts"'):]
    block = block[:block.index("]")]
    return re.findall(r'"([\w-]+)\s*=', block)


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    root = tmp_path_factory.mktemp("colcon")
    src = root / "src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for rel in files:
        if rel.startswith((".venv/", "out/")) or not (ROOT / rel).is_file():
            continue
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    res = subprocess.run([sys.executable, "setup.py", "-q", "build", "--build-base", str(root / "build"), "install",
                          "--prefix", str(root / "install"), "--single-version-externally-managed",
                          "--record", str(root / "install_manifest.txt")], cwd=src, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return root / "install"


def test_setup_cfg_sends_scripts_to_lib_package():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["develop"]["script_dir"] == f"$base/lib/{PKG}"  # colcon --symlink-install
    assert cfg["install"]["install_scripts"] == f"$base/lib/{PKG}"


def test_executables_are_in_lib_package(prefix):
    scripts = _console_scripts()
    assert {"stereo_depth_node", "mono_depth_node", "descriptor_tracker_node", "depth-train"} <= set(scripts)
    for name in scripts:
        exe = prefix / "lib" / PKG / name
        assert exe.is_file() and os.access(exe, os.X_OK), f"{exe} missing (ros2 run {PKG} {name} would fail)"
    assert not (prefix / "bin").exists() or not any((prefix / "bin").iterdir())


def test_share_holds_package_xml_launch_config_rviz_and_the_index_marker(prefix):
    share = prefix / "share" / PKG
    assert (share / "package.xml").read_text() == (ROOT / "package.xml").read_text()
    for folder, pattern in (("launch", "*.launch.py"), ("config", "*.yaml"), ("config", "*.xml"), ("rviz", "*.rviz")):
        expected = sorted(p.name for p in (ROOT / folder).glob(pattern))
        assert expected, f"no {folder}/{pattern} in the repository"
        assert sorted(p.name for p in (share / folder).glob(pattern)) == expected
    marker = prefix / "share" / "ament_index" / "resource_index" / "packages" / PKG
    assert marker.is_file()  # what `ros2 pkg list` / get_package_share_directory look for


def test_installed_python_packages_and_entry_points_work(prefix):
    site = next((prefix / "lib").glob("python3*/site-packages"))
    assert (site / "depth_nodes" / "nodes" / "stereo_depth_node.py").is_file()
    assert (site / "depth_training" / "cli.py").is_file()  # the training/ folder installs as depth_training
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"}
    res = subprocess.run([str(prefix / "lib" / PKG / "depth-train"), "--help"], capture_output=True, text=True,
                         env=env, cwd=prefix, timeout=120)
    assert res.returncode == 0 and "repair" in res.stdout, res.stderr[-2000:]
    # every node script's module and function exist in the installed tree (what `ros2 run` executes)
    text = (ROOT / "setup.py").read_text()
    targets = re.findall(r'"[\w-]+\s*=\s*([\w.]+):(\w+)"', text)
    code = "; ".join(f"import importlib; assert callable(getattr(importlib.import_module('{m}'), '{f}'))"
                     for m, f in targets)
    res = subprocess.run([sys.executable, "-c", code + f"; import depth_nodes; assert depth_nodes.__file__.startswith("
                          f"{str(site)!r})"], capture_output=True, text=True, env=env, cwd=prefix, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
